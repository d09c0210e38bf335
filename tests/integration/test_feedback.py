"""Delivery feedback on moto: each status counted and announced once, and what it changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters import dynamodb_storage, queues, store
from chalicelib.adapters.aws import client
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.bootstrap import services
from chalicelib.runtime import events, feedback, stats
from chalicelib.runtime.messages import parse_event
from chalicelib.runtime.storage import StatusWrite

pytestmark = pytest.mark.usefixtures("aws_stack")

SENT_AT = "2026-06-10T10:00:00Z"
AT = datetime(2026, 6, 10, 11, tzinfo=UTC)
PARTITION_FIELDS = {"email": "ada@example.com", "consents": {"email": True, "sms": True}}


def a_message(
    message_id: str = "m1", channel: str = "email", to: str = "ada@example.com"
) -> dict[str, Any]:
    """A sent message as a journey step commits it: the row, the history item, the profile."""
    partition = store.profile_partition("customers", "ada")
    if store.profiles.get({"pk": partition, "sk": "P"}) is None:
        store.profiles.put(
            {
                "pk": partition,
                "sk": "P",
                "profile_db": "customers",
                "profile_id": "ada",
                "fields": PARTITION_FIELDS,
                "rev": 1,
            }
        )
    store.profiles.put(
        {
            "pk": partition,
            "sk": f"M#{SENT_AT}#{message_id}",
            "message_id": message_id,
            "scenario_id": "s1",
            "instance_id": "i1",
            "node": "hello",
            "channel": channel,
            "at": SENT_AT,
            "statuses": {"sent": SENT_AT},
        }
    )
    row = {
        "message_id": message_id,
        "kind": "message",
        "instance_id": "i1",
        "scenario_id": "s1",
        "version": 1,
        "profile_db": "customers",
        "profile_id": "ada",
        "node": "hello",
        "channel": channel,
        "to": to,
        "deliver_at": SENT_AT,
        "status": "sent",
    }
    store.messages.put(row)
    return row


def profile() -> dict[str, Any]:
    item = store.profiles.get({"pk": store.profile_partition("customers", "ada"), "sk": "P"})
    assert item is not None
    return item


def statuses(message_id: str = "m1") -> dict[str, str]:
    key = {"pk": store.profile_partition("customers", "ada"), "sk": f"M#{SENT_AT}#{message_id}"}
    item = store.profiles.get(key)
    assert item is not None
    found: dict[str, str] = item["statuses"]
    return found


def events_queued() -> list[dict[str, Any]]:
    """The events queue's bodies (taken off it)."""
    url = queues.queue_url("events")
    bodies = []
    while (
        answer := client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        .get("Messages")
    ):
        bodies.extend(json.loads(m["Body"]) for m in answer)
        for m in answer:
            client("sqs").delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def message_events() -> list[dict[str, Any]]:
    """The `message.*` events queued, with the profile they are for."""
    events = [
        {**body["event"], "profile_db": body["profile_db"], "profile_id": body["profile_id"]}
        for body in events_queued()
    ]
    return [event for event in events if event["type"].startswith("message.")]


def email_counts() -> dict[str, int]:
    counts: dict[str, int] = stats.scenario_stats("s1")["channels"].get("email", {})
    return counts


def test_a_status_reported_twice_counts_and_is_announced_once() -> None:
    a_message()
    first = feedback.record("m1", "delivered", AT)
    again = feedback.record("m1", "delivered", datetime(2026, 6, 10, 12, tzinfo=UTC))
    assert first["feedback"] == again["feedback"] == {"delivered": "2026-06-10T11:00:00Z"}
    assert email_counts()["delivered"] == 1
    (event,) = message_events()
    assert event["type"] == "message.delivered"
    assert event["id"] == "m1:delivered"
    assert event["data"] == {
        "message_id": "m1",
        "scenario_id": "s1",
        "node": "hello",
        "channel": "email",
    }
    assert (event["profile_db"], event["profile_id"]) == ("customers", "ada")
    assert statuses() == {"sent": SENT_AT, "delivered": "2026-06-10T11:00:00Z"}


def test_a_report_that_loses_the_race_counts_nothing() -> None:
    a_message()
    stale = feedback.message_row("m1")  # read before the other report won
    feedback.record("m1", "opened", AT)
    events_queued()
    feedback._record_once(stale, "opened", AT, {}, None)
    assert email_counts()["opened"] == 1
    assert message_events() == []


def test_a_transaction_conflict_is_tried_again_and_counts_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a_message()
    real = dynamodb_storage.transact
    calls = []

    def conflicting_once(items: list[dict[str, Any]]) -> None:
        calls.append(items)
        if len(calls) == 1:
            raise ConditionFailed("TransactionConflict")
        real(items)

    monkeypatch.setattr(dynamodb_storage, "transact", conflicting_once)
    feedback.record("m1", "delivered", AT)
    assert len(calls) == 2
    assert email_counts()["delivered"] == 1


def test_every_status_counts_in_the_channel_and_the_node() -> None:
    a_message()
    for status in feedback.ALL_STATUSES:
        feedback.record("m1", status, AT)
    summed = stats.scenario_stats("s1")
    reported = {status: int(status in feedback.ALL_STATUSES) for status in stats.CHANNEL_STATUSES}
    assert summed["channels"] == {"email": reported}  # all but `skipped`, which no report is
    assert summed["nodes"]["hello"]["channels"] == summed["channels"]
    assert {e["type"] for e in message_events()} == {
        f"message.{status}" for status in feedback.ALL_STATUSES
    }


def test_a_click_is_an_open_too_and_carries_its_url() -> None:
    a_message()
    row = feedback.record("m1", "clicked", AT, url="https://shop.example/sale")
    assert set(row["feedback"]) == {"opened", "clicked"}
    events = {e["type"]: e for e in message_events()}
    assert set(events) == {"message.opened", "message.clicked"}
    assert events["message.clicked"]["data"]["url"] == "https://shop.example/sale"
    feedback.record("m1", "opened", AT)
    assert (email_counts()["opened"], email_counts()["clicked"]) == (1, 1)


def test_unsubscribed_revokes_the_channels_consent() -> None:
    a_message()
    feedback.record("m1", "unsubscribed", AT)
    assert profile()["fields"]["consents"] == {"email": False, "sms": True}


def test_an_unsubscribe_recorded_by_a_worker_that_then_died_still_revokes_consent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a_message()
    storage = services().storage
    record_status = storage.record_status
    died: list[str] = []

    def then_dies(write: StatusWrite) -> None:
        record_status(write)
        if not died:
            died.append("after the status's transaction")
            raise RuntimeError("the worker died")

    monkeypatch.setattr(storage, "record_status", then_dies)
    with pytest.raises(RuntimeError):
        feedback.record("m1", "unsubscribed", AT)
    feedback.record("m1", "unsubscribed", AT)  # the report, delivered again
    assert profile()["fields"]["consents"] == {"email": False, "sms": True}
    assert statuses()["unsubscribed"] == "2026-06-10T11:00:00Z"
    assert email_counts()["unsubscribed"] == 1


def test_a_hard_bounce_marks_the_address_invalid_beside_the_fields() -> None:
    a_message()
    feedback.record("m1", "bounced", AT, hard=True, reason="Permanent/General")
    item = profile()
    assert item["invalid"] == {"email": "ada@example.com"}
    assert "invalid" not in item["fields"]
    (event,) = message_events()
    assert event["data"]["reason"] == "Permanent/General"


def test_invalid_addresses_of_two_channels_and_a_later_upsert_keep_them() -> None:
    from chalicelib.runtime.profiles import upsert

    a_message()
    a_message("m2", channel="sms", to="+14155550100")
    feedback.record("m1", "bounced", AT, hard=True)
    feedback.record("m2", "bounced", AT, hard=True)
    upsert("customers", "ada", {"first_name": "Ada"})
    assert profile()["invalid"] == {"email": "ada@example.com", "sms": "+14155550100"}


def test_a_soft_bounce_leaves_the_address_valid() -> None:
    a_message()
    feedback.record("m1", "bounced", AT, hard=False, reason="Transient/MailboxFull")
    assert "invalid" not in profile()
    assert email_counts()["bounced"] == 1


def test_an_unknown_message_is_refused_and_nothing_changes() -> None:
    with pytest.raises(feedback.UnknownMessage):
        feedback.record("nosuch", "opened", AT)
    assert list(store.stats.scan()) == []
    assert events_queued() == []


def test_an_erased_profiles_message_counts_without_recreating_the_profile() -> None:
    a_message()
    partition = store.profile_partition("customers", "ada")
    store.profiles.batch_delete(
        [{"pk": partition, "sk": "P"}, {"pk": partition, "sk": f"M#{SENT_AT}#m1"}]
    )
    feedback.record("m1", "unsubscribed", AT)
    assert list(store.profiles.query("pk = :pk", values={":pk": partition})) == []


def test_the_event_is_in_the_outbox_until_it_is_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    a_message()

    def crash(*args: Any) -> None:
        raise RuntimeError("the function crashed after the commit")

    monkeypatch.setattr(services().queues, "send", crash)
    with pytest.raises(RuntimeError):
        feedback.record("m1", "opened", AT)
    outbox = store.messages.get({"message_id": "feedback-m1:opened"})
    assert outbox is not None  # the sweeper sends it
    assert outbox["kind"] == "event"
    assert outbox["queue"] == "events"
    assert outbox["payload"]["event"]["type"] == "message.opened"
    assert "pending_shard" in outbox
    monkeypatch.undo()
    feedback.record("m1", "delivered", AT)
    (queued,) = events_queued()
    assert queued["event"]["type"] == "message.delivered"
    assert store.messages.get({"message_id": queued["row_id"]}) is not None
    events.process(parse_event(queued))  # its consumer takes the row out of the outbox
    assert store.messages.get({"message_id": queued["row_id"]}) is None
