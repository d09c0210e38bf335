"""Channels end to end: sends reach moto's SES and SNS, webhook nodes reach a loopback
server, and what may not go out, or fails, says why — never twice, never silently."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from harness import Stack, on_event, person, scenario
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from chalicelib.adapters import store
from chalicelib.adapters.aws import client
from chalicelib.adapters.channels import DeliveryError, Unanswered
from chalicelib.adapters.queues import queue_url, send
from chalicelib.bootstrap import services
from chalicelib.config import settings
from chalicelib.local.push_sink import LoopbackPushService, PushSink
from chalicelib.runtime import channels
from chalicelib.runtime.messages import parse_channel
from chalicelib.runtime.storage import MessageRow
from tests.loopback import Answer, serving


def emails() -> list[Any]:
    """What moto's SES accepted, oldest first."""
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def texts() -> list[tuple[str, str]]:
    """(number, text) of every SMS moto's SNS accepted."""
    messages = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages
    return [(number, text) for number, text, *_ in messages.values()]


def rows(**match: Any) -> list[dict[str, Any]]:
    return [
        row
        for row in store.messages.scan()
        if all(row.get(key) == value for key, value in match.items())
    ]


def signed_up(stack: Stack, nodes: dict[str, Any]) -> str:
    """A scenario of `nodes` started by `signup`, Ada (reachable, consenting) signed up, and
    the queues drained; the scenario's id."""
    scenario_id = stack.create(scenario(nodes, [on_event("signup", next(iter(nodes)))]))
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    return scenario_id


def publish_ses_event(event: dict[str, Any]) -> None:
    """What SES's configuration set publishes to the stack's feedback topic."""
    sns = client("sns")
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"] if "feedback" in t["TopicArn"]]
    sns.publish(TopicArn=topic, Message=json.dumps(event))


def send_node(channel: str, next_node: str | None = None, **template: str) -> dict[str, Any]:
    if channel == "email":
        template.setdefault("body", "Hello {{ profile.first_name }}")
    node: dict[str, Any] = {"type": "send", "channel": channel, "template": template}
    if next_node:
        node["next"] = next_node
    return node


def call_node(url: str, **fields: Any) -> dict[str, Any]:
    return {"type": "webhook", "method": "POST", "url": url, **fields}


def test_an_email_and_an_sms_reach_their_providers(stack: Stack) -> None:
    html = '<html><body><a href="https://shop.example/sale">Sale</a></body></html>'
    stack.create(
        scenario(
            {
                "mail": send_node(
                    "email", "text", subject="Hi {{ profile.first_name }}", html=html
                ),
                "text": send_node("sms", body="Code 1234"),
            },
            [on_event("signup", "mail")],
        )
    )
    stack.upsert("ada", person("ada", 7))
    stack.event("signup", "ada")
    stack.drain()

    (mail,) = emails()
    assert mail.destinations["ToAddresses"] == ["ada@example.com"]
    assert mail.subject == "Hi Ada"
    assert "/t/o/" in mail.body  # the open pixel
    assert "https://shop.example/sale" not in mail.body  # the link goes through /t/c/
    assert texts() == [("+14155550007", "Code 1234")]
    assert sorted(m["channel"] for m in stack.sent()) == ["email", "sms"]
    (row,) = rows(channel="email")
    assert row["status"] == "sent"
    assert row["provider_id"]


def test_a_redelivered_message_is_not_sent_again(stack: Stack) -> None:
    signed_up(stack, {"mail": send_node("email", subject="Once")})
    (row,) = rows(channel="email")

    channels.deliver(parse_channel(row["payload"]))  # SQS delivers at least once
    channels.deliver(parse_channel(row["payload"]))

    assert len(emails()) == 1
    assert len(stack.sent()) == 1


def test_a_consent_revoked_before_delivery_skips_the_send(stack: Stack) -> None:
    stack.create(
        scenario(
            {"mail": send_node("email", subject="Night owl")},
            [on_event("signup", "mail")],
            quiet_hours={"start": "09:00", "end": "12:00"},  # START is 10:00: held until noon
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    stack.upsert("ada", {"consents": {"email": False, "sms": True, "push": True}})
    stack.advance("PT3H")

    (row,) = rows(channel="email")
    assert (row["status"], row["reason"]) == ("skipped", "no_consent")
    assert emails() == []


def test_a_held_message_whose_recheck_fails_when_it_leaves_is_skipped(stack: Stack) -> None:
    """Held by quiet hours; meanwhile the profile stopped being a VIP. The journey's check
    held when it queued the message, the channel worker's fails when it leaves."""
    mail = send_node("email", subject="VIPs only")
    mail["recheck"] = {"field": "profile.tier", "op": "eq", "value": "vip"}
    scenario_id = stack.create(
        scenario(
            {"mail": mail},
            [on_event("signup", "mail")],
            quiet_hours={"start": "09:00", "end": "12:00"},  # START is 10:00: held until noon
        )
    )
    stack.upsert("ada", person("ada", tier="vip"))
    stack.event("signup", "ada")
    stack.drain()
    (row,) = rows(channel="email")
    assert (row["status"], row["recheck"]) == ("queued", True)
    stack.upsert("ada", {"tier": "basic"})
    stack.advance("PT3H")

    (row,) = rows(channel="email")
    assert (row["status"], row["reason"]) == ("skipped", "recheck")
    assert emails() == []
    assert stack.stats(scenario_id)["channels"]["email"]["skipped"] == 1
    assert stack.stats(scenario_id)["channels"]["email"]["sent"] == 0


def test_a_held_message_whose_recheck_still_holds_goes_out(stack: Stack) -> None:
    mail = send_node("email", subject="VIPs only")
    mail["recheck"] = {"field": "profile.tier", "op": "eq", "value": "vip"}
    stack.create(
        scenario(
            {"mail": mail},
            [on_event("signup", "mail")],
            quiet_hours={"start": "09:00", "end": "12:00"},
        )
    )
    stack.upsert("ada", person("ada", tier="vip"))
    stack.event("signup", "ada")
    stack.drain()
    stack.upsert("ada", {"first_name": "Ada Lovelace"})
    stack.advance("PT3H")

    (row,) = rows(channel="email")
    assert row["status"] == "sent"
    assert len(emails()) == 1


def test_a_hard_bounced_address_is_not_mailed_again(stack: Stack) -> None:
    stack.create(
        scenario(
            {"first": send_node("email", subject="First")},
            [on_event("signup", "first"), on_event("order.created", "first", "again")],
            reentry="parallel",
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    (first,) = rows(channel="email")
    publish_ses_event(
        {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [{"emailAddress": "ada@example.com"}],
                "timestamp": "2026-06-10T10:01:00.000Z",
            },
            "mail": {
                "timestamp": "2026-06-10T10:00:00.000Z",
                "messageId": first["provider_id"],
                "destination": ["ada@example.com"],
                "tags": {"message_id": [first["message_id"]]},
            },
        }
    )
    stack.drain()
    assert stack.stats(first["scenario_id"])["channels"]["email"]["bounced"] == 1

    stack.event("order.created", "ada")
    stack.drain()

    skipped = [row for row in rows(channel="email") if row["status"] == "skipped"]
    assert [(row["reason"]) for row in skipped] == ["no_address"]
    assert len(emails()) == 1
    stack.upsert("ada", {"email": "ada@new.example"})  # a new address is tried again
    stack.event("order.created", "ada")
    stack.drain()
    assert [mail.destinations["ToAddresses"] for mail in emails()][-1] == ["ada@new.example"]


def test_the_webhook_node_calls_the_url_and_saves_the_answer(stack: Stack) -> None:
    stack.crm.answer_next(Answer(200, {"ticket": 42}))
    stack.create(
        scenario(
            {
                "call": call_node(
                    f"{stack.crm.url}/tickets",
                    headers={"Authorization": "Bearer crm-token"},
                    body='{"phone": "{{ profile.phone }}"}',
                    save_as="crm",
                    next="mail",
                ),
                "mail": send_node("email", subject="Ticket {{ vars.crm.ticket }}"),
            },
            [on_event("signup", "call")],
        )
    )
    stack.upsert("ada", person("ada", 3))
    stack.event("signup", "ada")
    stack.drain()

    (request,) = stack.crm.requests
    assert (request.method, request.path, request.body) == (
        "POST",
        "/tickets",
        '{"phone": "+14155550003"}',
    )
    assert request.headers["Authorization"] == "Bearer crm-token"
    assert [mail.subject for mail in emails()] == ["Ticket 42"]


def test_a_failing_api_is_retried_with_back_off(stack: Stack) -> None:
    stack.crm.answer_next(Answer(503), Answer(502))
    signed_up(
        stack,
        {
            "call": call_node(f"{stack.crm.url}/hook", next="done"),
            "done": send_node("sms", body="Ok"),
        },
    )
    assert len(stack.crm.requests) == 1
    stack.advance("PT10S")
    assert len(stack.crm.requests) == 2
    stack.advance("PT30S")

    assert len(stack.crm.requests) == 3
    assert texts()
    assert stack.instance("ada").status == "completed"


def test_a_throttled_send_is_retried_and_its_history_follows_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = channels.sms.send_sms, []

    def throttled_once(**message: Any) -> str:
        calls.append(message["message_id"])
        if len(calls) == 1:
            raise DeliveryError("Throttling", retryable=True)
        return real(**message)

    monkeypatch.setattr(channels.sms, "send_sms", throttled_once)
    signed_up(stack, {"text": send_node("sms", body="Hi")})
    assert texts() == []
    stack.advance("PT10S")

    assert texts() == [("+14155550100", "Hi")]
    (row,) = rows(channel="sms")
    assert (row["status"], row["attempts"]) == ("sent", 2)
    stack.post("/feedback", {"message_id": row["message_id"], "status": "delivered"})
    partition = store.profile_partition("customers", "ada")
    (history,) = store.profiles.query(
        "pk = :pk AND begins_with(sk, :m)", values={":pk": partition, ":m": "M#"}
    )
    assert set(history["statuses"]) == {"sent", "delivered"}


def test_an_api_that_keeps_failing_takes_on_error(stack: Stack) -> None:
    stack.crm.default = Answer(500, {"error": "down"})
    stack.create(
        scenario(
            {
                "call": call_node(f"{stack.crm.url}/hook", next="done", on_error="sorry"),
                "done": send_node("sms", body="Ok"),
                "sorry": send_node("sms", body="Sorry"),
            },
            [on_event("signup", "call")],
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.advance("PT10M")

    assert len(stack.crm.requests) == channels.MAX_ATTEMPTS
    assert [text for _, text in texts()] == ["Sorry"]
    (call,) = rows(kind="webhook")
    assert call["status"] == "failed"
    assert "HTTP 500" in call["reason"]


def test_a_call_that_times_out_is_retried(stack: Stack) -> None:
    stack.crm.answer_next(Answer(200, {}, delay=5))
    signed_up(
        stack,
        {
            "call": call_node(f"{stack.crm.url}/slow", timeout="PT1S", next="done"),
            "done": send_node("sms", body="Ok"),
        },
    )
    stack.advance("PT10S")

    assert len(stack.crm.requests) == 2
    assert [text for _, text in texts()] == ["Ok"]


def test_cloud_metadata_is_never_called(stack: Stack) -> None:
    signed_up(
        stack,
        {
            "call": call_node("http://169.254.169.254/latest/meta-data/", on_error="sorry"),
            "sorry": send_node("sms", body="Sorry"),
        },
    )

    (call,) = rows(kind="webhook")
    assert call["status"] == "failed"
    assert "169.254.169.254" in call["reason"]
    assert call["attempts"] == 1  # refused, not retried
    assert [text for _, text in texts()] == ["Sorry"]
    assert stack.instance("ada").path[0]["outcome"] == "error refused"  # not a timeout


def test_an_unsubscribe_stops_later_sends(stack: Stack) -> None:
    signed_up(
        stack,
        {
            "first": send_node("email", "wait", subject="First"),
            "wait": {"type": "pause", "duration": "P1D", "next": "second"},
            "second": send_node("email", subject="Second"),
        },
    )
    (first,) = rows(channel="email")
    stack.post(
        "/feedback",
        {"message_id": first["message_id"], "status": "unsubscribed", "at": "2026-06-10T11:00:00Z"},
        status=(200, 202),
    )
    stack.advance("P1D")

    assert [mail.subject for mail in emails()] == ["First"]
    assert stack.fields("ada")["consents"]["email"] is False
    assert stack.instance("ada").path[-1]["outcome"] == "skipped: no_consent"


def test_a_push_reaches_every_subscription_and_gone_ones_leave_the_profile(stack: Stack) -> None:
    with LoopbackPushService() as service:
        phone, laptop = service.sink.subscribe("phone"), service.sink.subscribe("laptop")
        service.sink.unsubscribe(laptop["endpoint"].rsplit("/", 1)[1])
        stack.create(
            scenario(
                {
                    "nudge": send_node(
                        "push", title="Sale", body="Hi {{ profile.first_name }}", url="/sale"
                    )
                },
                [on_event("signup", "nudge")],
            )
        )
        stack.upsert("ada", person("ada", push=[phone, laptop]))
        stack.event("signup", "ada")
        stack.drain()

        (received,) = service.sink.received()
    assert received["name"] == "phone"
    assert {key: received["payload"][key] for key in ("title", "body", "url")} == {
        "title": "Sale",
        "body": "Hi Ada",
        "url": "/sale",
    }
    assert stack.fields("ada")["push"] == [phone]  # the gone one was removed
    (row,) = rows(channel="push")
    assert row["status"] == "sent"


def test_a_provider_crash_is_recorded_and_not_retried(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: Any) -> str:
        raise RuntimeError("a bug, not the provider")

    monkeypatch.setattr(channels.sms, "send_sms", broken)
    signed_up(stack, {"text": send_node("sms", body="Hi")})

    (row,) = rows(channel="sms")
    assert row["status"] == "failed"
    assert "a bug, not the provider" in row["reason"]
    assert row["attempts"] == 1
    assert stack.stats(row["scenario_id"])["channels"]["sms"]["failed"] == 1


def test_a_message_its_worker_cannot_read_is_dead_lettered(stack: Stack) -> None:
    stack.create(scenario({"text": send_node("sms", body="Hi")}, [on_event("signup", "text")]))
    stack.upsert("ada", person("ada"))
    send("sms", {"kind": "message"})  # no message id: it fails every time
    stack.event("signup", "ada")
    stack.drain()

    dead = client("sqs").receive_message(QueueUrl=queue_url("sms-dlq"), MaxNumberOfMessages=10)
    assert [json.loads(m["Body"]) for m in dead["Messages"]] == [{"kind": "message"}]
    assert texts() == [("+14155550100", "Hi")]  # its batch-mates went out


def test_a_skipped_send_earns_no_revenue_and_says_so_in_the_history(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario(
            {"mail": send_node("email", subject="Night owl")},
            [on_event("signup", "mail")],
            quiet_hours={"start": "09:00", "end": "12:00"},
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    stack.upsert("ada", {"consents": {"email": False}})
    stack.advance("PT3H")
    stack.event("order.created", "ada", data={"total": 40})
    stack.drain()

    partition = store.profile_partition("customers", "ada")
    (history,) = store.profiles.query(
        "pk = :pk AND begins_with(sk, :m)", values={":pk": partition, ":m": "M#"}
    )
    assert set(history["statuses"]) == {"skipped"}
    assert history["reason"] == "no_consent"
    assert stack.stats(scenario_id)["revenue"] == 0.0


def queued_not_delivered(stack: Stack, node: dict[str, Any]) -> dict[str, Any]:
    """Ada signed up to a scenario of one send `node`; its message is committed and queued,
    not yet delivered. Its row."""
    stack.create(scenario({"send": node}, [on_event("signup", "send")]))
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    journeys_only(stack)
    (row,) = rows(kind="message")
    return row


def journeys_only(stack: Stack) -> None:
    """Run the events and steps queues until they are empty: the journeys commit and queue
    their messages, and nothing delivers them."""
    for pump in stack.runtime.pumps:
        if pump.queue in ("events", "steps"):
            while pump.run_once():
                pass


def held(row: dict[str, Any]) -> MessageRow:
    """The row as the channel worker reads it."""
    found = services().storage.outbox_message(row["message_id"])
    assert found is not None
    return found


def died_after_claim(stack: Stack, row: dict[str, Any], *, after_the_provider: bool) -> None:
    """A worker claims `row` (and hands it to its provider), then dies."""
    claim = channels._claim(held(row), stack.now)
    assert claim is not None
    if after_the_provider:
        profile = services().storage.profile("customers", "ada", history=False).view
        channels._to_provider(claim.row, profile)
    stack.drain()  # the queue message comes again: the claim is still young
    assert rows(kind="message")[0]["status"] == "sending"


def unanswered_ses(monkeypatch: pytest.MonkeyPatch, *, after_accepting: bool) -> None:
    """SES's SendEmail raises a read timeout, once: after SES accepted the message, or
    before the request reached it."""
    ses = client("sesv2")
    real, armed = ses.send_email, [True]

    def timing_out(**request: Any) -> Any:
        if not armed[0]:
            return real(**request)
        armed[0] = False
        if after_accepting:
            real(**request)
        raise ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")

    monkeypatch.setattr(ses, "send_email", timing_out)


def test_an_email_whose_worker_died_before_ses_took_it_is_sent_after_the_lease(
    stack: Stack,
) -> None:
    row = queued_not_delivered(stack, send_node("email", subject="Hi"))
    died_after_claim(stack, row, after_the_provider=False)

    stack.advance("PT16M")  # the sweeper hands the row back; SES has no record of it

    (row,) = rows(channel="email")
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert [mail.subject for mail in emails()] == ["Hi"]
    assert stack.stats(row["scenario_id"])["channels"]["email"]["sent"] == 1


def test_an_email_whose_worker_died_after_ses_took_it_is_not_sent_again(stack: Stack) -> None:
    row = queued_not_delivered(stack, send_node("email", subject="Hi"))
    died_after_claim(stack, row, after_the_provider=True)

    stack.advance("PT16M")  # SES's Send event is the record that it went out

    (row,) = rows(channel="email")
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert len(emails()) == 1
    assert [m["message_id"] for m in stack.sent()] == [row["message_id"]]
    assert stack.stats(row["scenario_id"])["channels"]["email"]["sent"] == 1


@pytest.mark.parametrize("after_accepting", [True, False], ids=["accepted", "lost"])
def test_an_email_call_without_an_answer_is_settled_by_ses_s_record(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, after_accepting: bool
) -> None:
    unanswered_ses(monkeypatch, after_accepting=after_accepting)
    signed_up(stack, {"mail": send_node("email", subject="Hi")})
    (row,) = rows(channel="email")
    # SES's Send event settles it as soon as it comes; without one it waits, not retried blind
    assert row["status"] == ("sent" if after_accepting else "unconfirmed")
    assert "no answer" in row["last_error"]
    stack.advance("PT10M")
    assert len(emails()) == int(after_accepting)

    stack.advance("PT6M")  # the lease ends: no record of it, so SES never took it

    (row,) = rows(channel="email")
    assert row["status"] == "sent"
    assert len(emails()) == 1
    assert stack.stats(row["scenario_id"])["channels"]["email"]["sent"] == 1


def test_an_sms_whose_worker_died_after_its_claim_is_recorded_not_resent(stack: Stack) -> None:
    row = queued_not_delivered(stack, send_node("sms", body="Hi"))
    died_after_claim(stack, row, after_the_provider=False)

    stack.advance("PT16M")  # no record to ask: it may or may not have gone out

    (row,) = rows(channel="sms")
    assert row["status"] == "failed"
    assert row["reason"].startswith("interrupted")
    assert texts() == []
    assert stack.stats(row["scenario_id"])["channels"]["sms"]["failed"] == 1


def test_an_sms_call_without_an_answer_is_recorded_not_resent(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns, calls = client("sns"), []

    def timing_out(**request: Any) -> Any:
        calls.append(request)
        raise ReadTimeoutError(endpoint_url="https://sns.us-east-1.amazonaws.com")

    monkeypatch.setattr(sns, "publish", timing_out)
    signed_up(stack, {"text": send_node("sms", body="Hi")})
    stack.advance("PT20M")

    (row,) = rows(channel="sms")
    assert (row["status"], row["attempts"], len(calls)) == ("failed", 1, 1)
    assert row["reason"].startswith("interrupted")


def test_a_push_whose_consent_was_withdrawn_since_it_was_queued_is_skipped(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    pushed: list[str] = []

    def push(*, subscription: dict[str, Any], **_: Any) -> None:
        pushed.append(subscription["endpoint"])

    monkeypatch.setattr(channels.push, "send_push", push)
    with LoopbackPushService() as service:
        stack.create(
            scenario({"nudge": send_node("push", title="Sale")}, [on_event("signup", "nudge")])
        )
        stack.upsert("ada", person("ada", push=[service.sink.subscribe("phone")]))
        stack.event("signup", "ada")
        journeys_only(stack)  # the journey queues the push
        stack.upsert("ada", {"consents": {"push": False}})
        stack.drain()

    assert pushed == []
    (row,) = rows(channel="push")
    assert (row["status"], row["reason"]) == ("skipped", "no_consent")


def test_a_push_without_an_answer_is_recorded_not_pushed_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def timing_out(*, subscription: dict[str, Any], **_: Any) -> None:
        calls.append(subscription["endpoint"])
        raise Unanswered(f"push to {subscription['endpoint']}: timed out")

    monkeypatch.setattr(channels.push, "send_push", timing_out)
    with LoopbackPushService() as service:
        stack.create(
            scenario({"nudge": send_node("push", title="Sale")}, [on_event("signup", "nudge")])
        )
        stack.upsert("ada", person("ada", push=[service.sink.subscribe("phone")]))
        stack.event("signup", "ada")
        stack.advance("PT20M")

    (row,) = rows(channel="push")
    assert (row["status"], row["attempts"], len(calls)) == ("failed", 1, 1)
    assert row["reason"].startswith("interrupted")


def test_on_the_local_stack_a_browser_s_push_goes_to_the_sink_not_to_its_service(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackPushService() as sink, serving() as browser_service:
        monkeypatch.setenv("SCENARIA_PUSH_SINK", f"{sink.url}/local/push")
        settings.cache_clear()
        browser = PushSink(browser_service.url).subscribe()  # a real browser's, elsewhere
        signed_up(stack, {"nudge": send_node("push", title="Sale", body="Hi")})
        stack.upsert("bob", person("bob", push=[browser]))
        stack.event("signup", "bob")
        stack.drain()

        assert browser_service.requests == []  # nothing but webhook calls leaves the stack
        (pushed,) = sink.sink.received()
    assert (pushed["endpoint"], pushed["decrypted"]) == (browser["endpoint"], False)
    (row,) = rows(channel="push", profile_id="bob")
    assert row["status"] == "sent"
    assert [m["profile_id"] for m in stack.sent(channel="push")] == ["bob"]


def test_a_webhook_call_whose_worker_died_is_recorded_and_takes_on_error(stack: Stack) -> None:
    node = call_node(f"{stack.crm.url}/hook", on_error="sorry")
    stack.create(
        scenario(
            {"call": node, "sorry": send_node("sms", body="Sorry")}, [on_event("signup", "call")]
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    for pump in stack.runtime.pumps:
        if pump.queue in ("events", "steps"):
            while pump.run_once():
                pass
    (row,) = rows(kind="webhook")
    assert channels._claim(held(row), stack.now) is not None  # claimed, then the worker died

    stack.advance("PT16M")

    (row,) = rows(kind="webhook")
    assert (row["status"], stack.crm.requests) == ("failed", [])
    assert row["reason"].startswith("interrupted")
    assert [text for _, text in texts()] == ["Sorry"]
