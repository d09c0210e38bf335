"""Delivery feedback and tracking links through the HTTP API, and journeys reacting to them."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import store
from chalicelib.runtime import ses_events, tracking
from chalicelib.runtime.tracking import CLICK, OPEN
from tests.e2e.harness import Stack, email, person, scenario
from tests.http.support import assert_problem, content_type, send, wait_for_open

SALE = "https://shop.example/sale?utm=mail"


def one_email(stack: Stack, nodes: dict[str, Any] | None = None) -> tuple[str, str]:
    """A scenario that e-mails Ada (and whatever follows); its id and the message's id."""
    scenario_id = stack.create(scenario(nodes or {"hello": email("Hello")}))
    stack.upsert("ada", person("ada"))
    stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": "ada"}, status=201)
    stack.drain()
    (hello,) = stack.sent(node="hello")
    return scenario_id, hello["message_id"]


def email_stats(stack: Stack, scenario_id: str) -> dict[str, int]:
    counts: dict[str, int] = stack.stats(scenario_id)["channels"]["email"]
    return counts


BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def hit(stack: Stack, kind: str, token: str, accept: str | None = BROWSER_ACCEPT) -> Any:
    """Follow a tracking link as a mail client does (no API key)."""
    headers = {"Accept": accept} if accept else {}
    return stack.http.request("GET", f"/t/{kind}/{token}", headers=headers)


def ses_event(message_id: str, event_type: str, **parts: Any) -> dict[str, Any]:
    mail = {
        "timestamp": "2026-06-10T10:00:00.000Z",
        "source": "no-reply@example.com",
        "messageId": "0100018f-EXAMPLE",
        "destination": ["ada@example.com"],
        "tags": {"ses:configuration-set": ["scenaria-test-email"], "message_id": [message_id]},
    }
    return {"eventType": event_type, "mail": mail, **parts}


def in_sns(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:scenaria-test-feedback",
        "Message": json.dumps(event),
        "Timestamp": "2026-06-10T10:00:05.000Z",
    }


HARD_BOUNCE = {
    "bounceType": "Permanent",
    "bounceSubType": "General",
    "bouncedRecipients": [{"emailAddress": "ada@example.com", "status": "5.1.1"}],
    "timestamp": "2026-06-10T10:00:02.000Z",
}


# --- journeys hear of it ----------------------------------------------------------------------


def test_a_wait_for_an_open_goes_on_when_the_pixel_is_loaded(stack: Stack) -> None:
    nodes = wait_for_open()
    scenario_id, message_id = one_email(stack, nodes)
    stack.advance("PT1H")
    pixel = hit(stack, "o", tracking.sign(OPEN, message_id))
    assert pixel.status_code == 200
    assert content_type(pixel) == "image/gif"
    assert pixel.body.startswith(b"GIF89a")
    stack.drain()
    assert [m["node"] for m in stack.sent()] == ["hello", "thanks"]
    assert stack.instance("ada", scenario_id).status == "completed"


# --- tracking links ---------------------------------------------------------------------------


def test_a_click_redirects_and_counts_a_click_and_an_open_once(stack: Stack) -> None:
    scenario_id, message_id = one_email(stack)
    token = tracking.sign(CLICK, message_id, SALE)
    for _ in range(2):
        answer = hit(stack, "c", token)
        assert answer.status_code == 302
        assert answer.headers["Location"] == SALE
    assert hit(stack, "o", tracking.sign(OPEN, message_id)).status_code == 200
    assert hit(stack, "o", tracking.sign(OPEN, message_id), accept="image/*").status_code == 200
    assert hit(stack, "o", tracking.sign(OPEN, message_id), accept=None).status_code == 204
    counts = email_stats(stack, scenario_id)
    assert (counts["sent"], counts["opened"], counts["clicked"]) == (1, 1, 1)
    row = store.messages.get({"message_id": message_id})
    assert row is not None
    assert set(row["feedback"]) == {"sent", "opened", "clicked"}


def test_forged_or_altered_links_are_not_found_and_count_nothing(stack: Stack) -> None:
    scenario_id, message_id = one_email(stack)
    token = tracking.sign(CLICK, message_id, SALE)
    payload, signature = token.split(".")
    elsewhere = tracking.sign(CLICK, message_id, "https://evil.example/").split(".")[0]
    for kind, bad in [
        ("c", f"{elsewhere}.{signature}"),
        ("c", f"{payload}.{signature[::-1]}"),
        ("o", token),  # a click token is no open token
        ("c", "nonsense"),
    ]:
        assert_problem(hit(stack, kind, bad), 404, "tracking link")
    assert email_stats(stack, scenario_id)["clicked"] == 0


def test_a_link_of_an_unknown_message_still_answers_but_records_nothing(stack: Stack) -> None:
    answer = hit(stack, "c", tracking.sign(CLICK, "erased-message", SALE))
    assert (answer.status_code, answer.headers["Location"]) == (302, SALE)
    assert hit(stack, "o", tracking.sign(OPEN, "erased-message")).status_code == 200
    assert list(store.stats.scan()) == []


# --- POST /feedback with SES notifications ------------------------------------------------------


def test_an_ses_hard_bounce_in_its_sns_envelope_marks_the_address_invalid(stack: Stack) -> None:
    scenario_id, message_id = one_email(stack)
    document = in_sns(ses_event(message_id, "Bounce", bounce=HARD_BOUNCE))
    answer = stack.post("/feedback", document)
    assert answer["message_id"] == message_id
    assert answer["feedback"]["bounced"] == "2026-06-10T10:00:02Z"
    stack.post("/feedback", document)  # SNS delivers at least once
    assert email_stats(stack, scenario_id)["bounced"] == 1
    item = store.profiles.get({"pk": store.profile_partition("customers", "ada"), "sk": "P"})
    assert item is not None
    assert item["invalid"] == {"email": "ada@example.com"}


def test_an_ses_complaint_revokes_consent_and_a_delay_changes_nothing(stack: Stack) -> None:
    _, message_id = one_email(stack)
    delay = ses_event(message_id, "DeliveryDelay", deliveryDelay={"delayType": "MailboxFull"})
    assert set(stack.post("/feedback", delay)["feedback"]) == {"sent"}
    complaint = ses_event(
        message_id, "Complaint", complaint={"timestamp": "2026-06-10T12:00:00.000Z"}
    )
    assert "unsubscribed" in stack.post("/feedback", complaint)["feedback"]
    stack.drain()
    assert stack.fields("ada")["consents"]["email"] is False


def test_bad_notifications_are_refused_naming_the_field_and_change_nothing(stack: Stack) -> None:
    scenario_id, message_id = one_email(stack)
    before = stack.stats(scenario_id)
    untagged = ses_event(message_id, "Open", open={"timestamp": "2026-06-10T11:00:00Z"})
    untagged["mail"]["tags"] = {}
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "Message": "You have chosen to subscribe",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    }
    for document, named in [
        (untagged, "$.mail.tags.message_id"),
        (in_sns(untagged), "$.Message.mail.tags.message_id"),
        (confirmation, "$.Type"),
        ({"Type": "Notification", "Message": "{nope"}, "$.Message"),
        (ses_event(message_id, "Click"), "$.click"),
        ({"eventType": "Open", "open": {}}, "$.mail"),
    ]:
        assert_problem(send(stack, "POST", "/feedback", document), 400, named)
    unknown = ses_event("nosuch", "Open", open={"timestamp": "2026-06-10T11:00:00Z"})
    assert_problem(send(stack, "POST", "/feedback", unknown), 404, "nosuch")
    assert stack.stats(scenario_id) == before


def test_the_feedback_queue_records_ses_events_and_drops_unknown_messages(stack: Stack) -> None:
    scenario_id, message_id = one_email(stack)
    opened = ses_event(message_id, "Open", open={"timestamp": "2026-06-10T11:00:00Z"})
    ses_events.process_notification(in_sns(opened))
    ses_events.process_notification(in_sns(opened))
    ses_events.process_notification(in_sns({**opened, "mail": {**opened["mail"], "tags": {}}}))
    stranger = ses_event("nosuch", "Open", open={"timestamp": "2026-06-10T11:00:00Z"})
    ses_events.process_notification(stranger)
    assert email_stats(stack, scenario_id)["opened"] == 1


def test_stats_count_each_nodes_messages_by_channel(stack: Stack) -> None:
    nodes = {"hello": email("Hello", "bye"), "bye": email("Bye")}
    scenario_id, hello = one_email(stack, nodes)
    stack.post("/feedback", {"message_id": hello, "status": "delivered"})
    summed = stack.stats(scenario_id)
    zero = dict.fromkeys(
        ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "failed", "skipped"),
        0,
    )
    assert summed["channels"] == {"email": {**zero, "sent": 2, "delivered": 1}}
    assert summed["nodes"]["hello"]["channels"] == {"email": {**zero, "sent": 1, "delivered": 1}}
    assert summed["nodes"]["bye"]["channels"] == {"email": {**zero, "sent": 1}}
    assert "sms" not in summed["channels"]
