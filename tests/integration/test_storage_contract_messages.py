"""Both storage adapters keep the port's promises about messages on their way alike: the
channel worker's claim and moves of a row, provider feedback recorded once, the profile's
history marked, and a profile erased with its messages (DynamoDB on moto, and memory)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.engine import Instance
from chalicelib.runtime import messages
from chalicelib.runtime.storage import (
    Changes,
    Conflict,
    Dispatch,
    HistoryMark,
    InstanceWrite,
    MessageMove,
    OutboxRow,
    ProfileCreate,
    SentMessage,
    StatsDelta,
    StatusRecord,
    StatusWrite,
    Storage,
    StoredInstance,
    Timer,
)
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)
LEASE = T0 + timedelta(minutes=15)
ENDPOINT = "https://push.example/send/abc"


def journey() -> Instance:
    return Instance(
        "i1", "s1", 1, "ada", Event("signup", T0, {}, id="e1"), profile_db="customers",
        node="hello", step=1,
    )  # fmt: skip


def sent(storage: Storage, message_id: str = "m1", first: bool = True) -> None:
    """A journey's step that sent Ada an e-mail: its row and history, and with the `first`
    the instance and its timer."""
    instance = journey()
    message = messages.Deliver(message_id=message_id).with_row(message_id)
    row = OutboxRow(
        message_id, "message", T0, "customers", "ada", instance,
        {"channel": "email", "node": "hello", "status": "queued", "to": "ada@example.com",
         "subject": "Hi"},
        Dispatch("email", message, T0, LEASE),
    )  # fmt: skip
    history = SentMessage("customers", "ada", message_id, "s1", "i1", "hello", "email", T0)
    changes = Changes(rows=[row], history=[history])
    if first:
        changes.instances.append(InstanceWrite(StoredInstance(instance, 1), None))
        changes.timers.append(Timer("i1", "s1", 1, T0 + timedelta(days=1)))
    storage.commit(changes)


def adas_profile(storage: Storage, **fields: object) -> None:
    storage.commit(Changes(profiles=[ProfileCreate("customers", "ada", dict(fields), T0)]))


def test_a_message_row_reads_as_the_journey_queued_it(storage: Storage) -> None:
    sent(storage)
    row = storage.outbox_message("m1")
    assert row is not None
    assert (row.kind, row.status, row.channel, row.node) == ("message", "queued", "email", "hello")
    assert (row.profile_db, row.profile_id, row.scenario_id, row.version) == (
        "customers", "ada", "s1", 1,
    )  # fmt: skip
    assert (row.instance_id, row.queue, row.deliver_at) == ("i1", "email", T0)
    assert messages.parse(row.payload or {}).message_id == "m1"
    assert (row.values["to"], row.values["subject"]) == ("ada@example.com", "Hi")
    assert (row.attempts, row.claimed_at, row.feedback, row.pushed) == (0, None, None, ())
    assert storage.outbox_message("nosuch") is None


def test_a_row_of_another_kind_is_no_message_and_is_not_claimed(storage: Storage) -> None:
    event = messages.EventMessage(
        profile_db="customers", profile_id="ada",
        event=messages.EventBody.of(Event("signup", T0, {}, id="e1")), row_id="r1",
    )  # fmt: skip
    row = OutboxRow(
        "r1", "event", T0, "customers", "ada", dispatch=Dispatch("events", event, T0, T0)
    )
    storage.keep_pending([row])
    assert storage.outbox_message("r1") is None
    assert storage.claim_if_due("r1", T0, LEASE, T0 + timedelta(seconds=1)) == (False, None)


def test_a_row_is_claimed_once_and_pending_until_its_lease_ends(storage: Storage) -> None:
    sent(storage)
    claimed = storage.claim_message("m1", T0, LEASE)
    assert claimed is not None
    assert (claimed.status, claimed.claimed_at, claimed.attempts, claimed.feedback) == (
        "sending", T0, 1, {},
    )  # fmt: skip
    assert claimed.values["to"] == "ada@example.com"
    assert storage.claim_message("m1", T0, LEASE) is None  # another delivery's
    assert [row.row_id for row in storage.overdue_rows(LEASE - timedelta(seconds=1))] == []
    assert [row.row_id for row in storage.overdue_rows(LEASE)] == ["m1"]
    assert storage.claim_message("nosuch", T0, LEASE) is None


def test_a_row_is_claimed_in_the_request_that_reads_it_only_when_queued_and_due(
    storage: Storage,
) -> None:
    sent(storage)  # due at T0
    second = timedelta(seconds=1)
    claimed, row = storage.claim_if_due("m1", T0 - 5 * second, LEASE, T0 - 4 * second)
    assert not claimed
    assert row is not None
    assert (row.status, row.attempts, row.claimed_at) == ("queued", 0, None)  # as it was
    claimed, row = storage.claim_if_due("m1", T0, LEASE, T0 + second)
    assert claimed
    assert row is not None
    assert (row.status, row.claimed_at, row.attempts, row.feedback) == ("sending", T0, 1, {})
    claimed, row = storage.claim_if_due("m1", T0, LEASE, T0 + second)  # another delivery's
    assert not claimed
    assert row is not None
    assert (row.status, row.attempts) == ("sending", 1)
    retry_at = T0 + timedelta(seconds=10, microseconds=500_000)  # a retry's time comes first
    storage.move_message(MessageMove("m1", "sending", T0, "queued", retry_at=retry_at))
    claimed, row = storage.claim_if_due("m1", T0 + 9 * second, LEASE, T0 + 10 * second)
    assert not claimed
    assert row is not None
    assert (row.status, row.retry_at) == ("queued", retry_at)
    claimed, row = storage.claim_if_due("m1", retry_at, LEASE, retry_at + second)
    assert claimed
    assert row is not None
    assert row.attempts == 2
    assert storage.claim_if_due("nosuch", T0, LEASE, T0 + second) == (False, None)


def test_a_move_needs_the_claim_it_was_held_by(storage: Storage) -> None:
    sent(storage)
    storage.claim_message("m1", T0, LEASE)
    with pytest.raises(Conflict):
        storage.move_message(MessageMove("m1", "sending", T0 + timedelta(seconds=1), "sent"))
    with pytest.raises(Conflict):
        storage.move_message(MessageMove("m1", "unconfirmed", T0, "sent"))
    row = storage.outbox_message("m1")
    assert row is not None
    assert row.status == "sending"
    storage.move_message(MessageMove("m1", "sending", T0, "unconfirmed", last_error="timeout"))
    at = T0 + timedelta(seconds=3)
    storage.move_message(
        MessageMove("m1", "unconfirmed", T0, "sent", final=True, sent_at=at, provider_id="p1")
    )
    row = storage.outbox_message("m1")
    assert row is not None
    assert (row.status, row.sent_at, row.last_error) == ("sent", at, "timeout")
    assert row.values["provider_id"] == "p1"
    assert list(storage.overdue_rows(LEASE + timedelta(days=1))) == []  # out of the pending
    assert [found.message_id for found in storage.sent_messages()] == ["m1"]
    with pytest.raises(Conflict):  # settled: a second move of that claim finds it moved on
        storage.move_message(MessageMove("m1", "unconfirmed", T0, "sent", final=True))


def test_a_move_that_records_a_status_writes_both_or_nothing(storage: Storage) -> None:
    sent(storage)
    storage.claim_message("m1", T0, LEASE)
    at = T0 + timedelta(seconds=2)
    recorded = status_write("sent", at)
    with pytest.raises(Conflict):  # not the claim it was held by: nothing of it is written
        storage.move_message(
            MessageMove("m1", "sending", at, "sent", final=True, recorded=recorded)
        )
    assert storage.version_counters("s1", 1).counts == {}
    storage.move_message(
        MessageMove("m1", "sending", T0, "sent", final=True, sent_at=at, recorded=recorded)
    )
    row = storage.outbox_message("m1")
    assert row is not None
    assert (row.status, row.sent_at, row.feedback) == ("sent", at, {"sent": at})
    assert storage.version_counters("s1", 1).counts == {"ch_sent|email|hello": 1}
    assert [row.row_id for row in storage.overdue_rows(at)] == ["feedback-m1:sent"]


def test_a_move_records_a_status_whose_event_has_no_outbox_row(storage: Storage) -> None:
    sent(storage)
    storage.claim_message("m1", T0, LEASE)
    at = T0 + timedelta(seconds=2)
    recorded = replace(status_write("sent", at), event=None)  # the worker's queue message
    storage.move_message(
        MessageMove("m1", "sending", T0, "sent", final=True, sent_at=at, recorded=recorded)
    )
    row = storage.outbox_message("m1")
    assert row is not None
    assert (row.status, row.feedback) == ("sent", {"sent": at})
    assert storage.version_counters("s1", 1).counts == {"ch_sent|email|hello": 1}
    assert list(storage.overdue_rows(at + timedelta(days=1))) == []


def test_a_move_refuses_a_status_recorded_already_and_writes_nothing(storage: Storage) -> None:
    sent(storage)
    storage.claim_message("m1", T0, LEASE)
    at = T0 + timedelta(seconds=2)
    storage.record_status(status_write("sent", at))  # SES's record of the send came first
    with pytest.raises(Conflict):
        storage.move_message(
            MessageMove("m1", "sending", T0, "sent", final=True, recorded=status_write("sent", at))
        )
    row = storage.outbox_message("m1")
    assert row is not None
    assert row.status == "sending"
    assert storage.version_counters("s1", 1).counts == {"ch_sent|email|hello": 1}
    storage.move_message(MessageMove("m1", "sending", T0, "sent", final=True, sent_at=at))


def test_a_paced_row_put_back_for_a_retry_gives_up_its_slot(storage: Storage) -> None:
    sent(storage)
    slot = T0 + timedelta(minutes=1)
    assert storage.pace_message("m1", slot, 1_800_000_000)
    assert not storage.pace_message("m1", slot, 1_800_000_000)  # it has its slot
    row = storage.outbox_message("m1")
    assert row is not None
    assert (row.status, row.retry_at, row.paced_at) == ("queued", slot, slot)
    storage.claim_message("m1", slot, slot + timedelta(minutes=15))
    assert not storage.pace_message("m1", slot, 1_800_000_000)  # not queued
    retry_at = slot + timedelta(seconds=10)
    dispatch_at = int((retry_at + timedelta(minutes=15)).timestamp())
    storage.move_message(
        MessageMove(
            "m1", "sending", slot, "queued", unpaced=True, retry_at=retry_at,
            dispatch_at=dispatch_at, last_error="HTTP 503",
        )
    )  # fmt: skip
    row = storage.outbox_message("m1")
    assert row is not None
    assert (row.status, row.retry_at, row.paced_at, row.attempts) == ("queued", retry_at, None, 1)
    (pending,) = storage.overdue_rows(datetime.fromtimestamp(dispatch_at, UTC))
    assert pending.dispatch_at == dispatch_at
    storage.claim_message("m1", retry_at, retry_at + timedelta(minutes=15))
    storage.move_message(
        MessageMove("m1", "sending", retry_at, "failed", final=True, ended_at=retry_at,
                    reason="HTTP 503 (after 2 attempts)")
    )  # fmt: skip
    row = storage.outbox_message("m1")
    assert row is not None
    assert (row.status, row.ended_at, row.values["reason"]) == (
        "failed", retry_at, "HTTP 503 (after 2 attempts)",
    )  # fmt: skip


def test_push_endpoints_reached_are_remembered_in_order(storage: Storage) -> None:
    sent(storage)
    storage.mark_pushed("m1", ENDPOINT)
    storage.mark_pushed("m1", ENDPOINT + "2")
    row = storage.outbox_message("m1")
    assert row is not None
    assert row.pushed == (ENDPOINT, ENDPOINT + "2")


def test_the_profile_now_and_its_gone_push_subscriptions(storage: Storage) -> None:
    assert not storage.profile("customers", "ada", history=False).exists
    subscriptions = [{"endpoint": ENDPOINT}, {"endpoint": ENDPOINT + "2"}]
    adas_profile(storage, email="ada@example.com", push=subscriptions)
    storage.record_event("customers", "ada", Event("visited", T0, {}, id="v1"))
    assert len(storage.profile("customers", "ada").view.events) == 1
    record = storage.profile("customers", "ada", history=False)
    assert record.exists
    assert not record.history
    profile = record.view
    assert (profile.profile_db, profile.profile_id) == ("customers", "ada")
    assert profile.fields == {"email": "ada@example.com", "push": subscriptions}
    assert (profile.events, profile.messages) == ([], [])
    assert storage.forget_push_subscriptions(profile, [ENDPOINT])
    assert not storage.forget_push_subscriptions(profile, [ENDPOINT])  # the list changed
    now = storage.profile("customers", "ada", history=False).view
    assert now.fields["push"] == [{"endpoint": ENDPOINT + "2"}]


def test_the_history_entry_takes_a_status_and_a_skip_replaces_sent(storage: Storage) -> None:
    sent(storage)
    sent(storage, "m2", first=False)
    opened = T0 + timedelta(hours=1)
    assert storage.mark_history(HistoryMark("customers", "ada", "m1", T0, "opened", opened))
    skipped = HistoryMark(
        "customers", "ada", "m2", T0, "skipped", opened, replaces="sent", reason="no_consent"
    )
    assert storage.mark_history(skipped)
    history = {m.message_id: m.statuses for m in storage.profile("customers", "ada").view.messages}
    assert history == {"m1": {"sent": T0, "opened": opened}, "m2": {"skipped": opened}}
    assert not storage.mark_history(HistoryMark("customers", "bob", "m1", T0, "opened", opened))


def status_write(status: str, at: datetime, started: bool = True) -> StatusWrite:
    """Message m1's `status` at `at`, as feedback records it."""
    event = messages.EventMessage(
        profile_db="customers", profile_id="ada",
        event=messages.EventBody.of(Event(f"message.{status}", at, {}, id=f"m1:{status}")),
        row_id=f"feedback-m1:{status}",
    )  # fmt: skip
    row = OutboxRow(
        f"feedback-m1:{status}", "event", at, "customers", "ada",
        values={"instance_id": "i1", "scenario_id": "s1", "version": 1},
        dispatch=Dispatch("events", event, at, at),
    )  # fmt: skip
    counters = StatsDelta("s1", 1, "2026-06-10", "m1", {f"ch_{status}|email|hello": 1})
    return StatusWrite(StatusRecord("m1", status, at, started), counters, row)


def test_a_status_is_recorded_once_with_its_counters_and_event(storage: Storage) -> None:
    sent(storage)
    at = T0 + timedelta(hours=1)
    storage.record_status(status_write("delivered", at, started=False))  # no map of statuses yet
    with pytest.raises(Conflict):
        storage.record_status(status_write("delivered", at))
    storage.record_status(status_write("opened", at))
    row = storage.outbox_message("m1")
    assert row is not None
    assert row.feedback == {"delivered": at, "opened": at}
    counts = storage.version_counters("s1", 1).counts
    assert (counts["ch_delivered|email|hello"], counts["ch_opened|email|hello"]) == (1, 1)
    pending = sorted(row.row_id for row in storage.overdue_rows(at))
    assert pending == ["feedback-m1:delivered", "feedback-m1:opened", "m1"]


def test_a_status_of_a_message_that_is_gone_writes_nothing(storage: Storage) -> None:
    with pytest.raises(Conflict):
        storage.record_status(status_write("opened", T0, started=False))
    assert storage.version_counters("s1", 1).counts == {}
    assert list(storage.overdue_rows(T0 + timedelta(days=1))) == []


def test_an_erased_profile_leaves_no_history_message_instance_or_timer(storage: Storage) -> None:
    assert not storage.erase_profile("customers", "ada", [])
    adas_profile(storage, email="ada@example.com")
    sent(storage)
    assert storage.erase_profile("customers", "ada", ["i1"])
    assert storage.outbox_message("m1") is None
    assert storage.instance("i1") is None
    assert list(storage.due_timers(T0 + timedelta(days=2))) == []
    assert not storage.profile("customers", "ada", history=False).exists
    assert storage.profile("customers", "ada").view.messages == []
    assert not storage.erase_profile("customers", "ada", [])
