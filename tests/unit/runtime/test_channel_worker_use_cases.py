"""The channel worker, delivery feedback and a profile's erasure on the in-memory storage:
a message goes out once, is skipped when the profile no longer allows it, is tried again
on passing trouble, waits for SES's record when its call had no answer, and leaves with
the profile (SPEC §5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.channels import DeliveryError, Unanswered
from chalicelib.adapters.clock import VirtualClock, use_clock
from chalicelib.adapters.memory_storage import MemoryQueues, MemoryStorage
from chalicelib.bootstrap import bootstrap
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.runtime import channels, events, feedback, profiles
from chalicelib.runtime.messages import Deliver, EventBody, EventMessage
from chalicelib.runtime.storage import HistoryMark, MessageMove, MessageRow
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.facts import Event

START = datetime(2026, 6, 10, 10, tzinfo=UTC)
ADA = {"first_name": "Ada", "email": "ada@example.com", "consents": {"email": True}}
HELLO = {"type": "send", "channel": "email", "template": {"subject": "Hello", "body": "Hi"}}


class Outbox:
    """The use cases wired to memory, on a virtual clock; SES stands in as a list."""

    def __init__(self, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = clock
        self.storage = MemoryStorage()
        self.queues = MemoryQueues()
        self.sent: list[dict[str, Any]] = []
        self.trouble: list[Exception] = []  # what SES raises next, one call each
        bootstrap(self.storage, self.queues)
        monkeypatch.setattr(channels.email, "send_email", self._send_email)

    def _send_email(self, **request: Any) -> str:
        if self.trouble:
            raise self.trouble.pop(0)
        self.sent.append(request)
        return f"ses-{len(self.sent)}"

    def queued(self, profile_id: str = "ada") -> Deliver:
        """Ada (or another) signed up to a scenario of one e-mail: its channel queue message."""
        self.storage.put_profile("customers", profile_id, ADA)
        document = {
            "name": "hello", "profile_db": "customers", "entry": "hello",
            "triggers": [{"id": "signup", "type": "event", "event": "signup", "next": "hello"}],
            "nodes": {"hello": HELLO},
        }  # fmt: skip
        self.storage.put_scenario(CompiledScenario.from_document(document, "s1", 1))
        event = Event("signup", self.clock.now(), {}, id=f"signup-{profile_id}")
        events.process(
            EventMessage(profile_db="customers", profile_id=profile_id, event=EventBody.of(event))
        )
        (message,) = self.queues.take("email")
        assert isinstance(message, Deliver)
        return message

    def row(self, message: Deliver) -> MessageRow:
        found = self.storage.outbox_message(message.message_id)
        assert found is not None
        return found

    def announced(self) -> list[str]:
        return [body.type for body in self.announcements()]

    def announcements(self) -> list[EventBody]:
        return [m.event for m in self.queues.take("events") if isinstance(m, EventMessage)]

    def counted(self, status: str) -> int:
        return self.storage.version_counters("s1", 1).counts.get(f"ch_{status}|email|hello", 0)


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbox]:
    clock = VirtualClock(START)
    previous = use_clock(clock)
    try:
        yield Outbox(clock, monkeypatch)
    finally:
        use_clock(previous)
        bootstrap()


def test_a_queued_email_goes_out_once_however_often_its_message_comes(outbox: Outbox) -> None:
    message = outbox.queued()
    channels.deliver(message)
    (event,) = outbox.announcements()
    assert (event.type, event.id) == ("message.sent", f"{message.message_id}:sent")
    channels.deliver(message)  # redelivered by the queue
    assert [request["subject"] for request in outbox.sent] == ["Hello"]
    row = outbox.row(message)
    assert (row.status, row.attempts, row.values["provider_id"]) == ("sent", 1, "ses-1")
    assert row.sent_at == START
    assert set(row.feedback or {}) == {"sent"}
    assert outbox.counted("sent") == 1
    # the queue's message stands for the event's outbox row: coming again, it announces the
    # same event again (its consumer handles an event once), and no row is left behind
    assert outbox.announcements() == [event]
    assert list(outbox.storage.overdue_rows(START + timedelta(days=1))) == []


def test_a_sent_event_lost_with_its_batch_goes_out_when_the_message_comes_again(
    outbox: Outbox,
) -> None:
    message = outbox.queued()
    uow = UnitOfWork(buffered=True)
    channels.deliver(message, uow)  # sent and recorded; the batch dies before its flush
    assert outbox.announced() == []
    assert outbox.counted("sent") == 1
    channels.deliver(message)  # the queue hands the message out again
    assert [request["subject"] for request in outbox.sent] == ["Hello"]
    assert outbox.announced() == ["message.sent"]
    assert outbox.counted("sent") == 1


def test_a_due_message_is_claimed_in_the_request_that_reads_its_row(outbox: Outbox) -> None:
    message = outbox.queued()
    assert (message.scenario_id, message.version) == ("s1", 1)  # a version without rate limit
    channels.deliver(message)
    assert [request["subject"] for request in outbox.sent] == ["Hello"]
    assert outbox.storage.reads["outbox_message"] == 0
    channels.deliver(message)  # delivered again: refused, decided from the row it found
    assert len(outbox.sent) == 1
    assert outbox.storage.reads["outbox_message"] == 0


def test_a_batchs_sent_events_are_queued_together_at_its_end(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [outbox.queued("ada"), outbox.queued("bob")]
    outbox.announced()  # what the sign-ups announced
    calls: list[str] = []
    send = outbox.queues.send

    def counted(queue: str, sent: Any) -> int:
        calls.append(queue)
        return send(queue, sent)

    monkeypatch.setattr(outbox.queues, "send", counted)
    uow = UnitOfWork(buffered=True)
    for message in batch:
        channels.deliver(message, uow)
    assert len(outbox.sent) == 2
    assert calls == []  # their events wait for the batch's end
    uow.flush()
    assert calls == ["events"]
    assert outbox.announced() == ["message.sent", "message.sent"]


def test_a_batch_reads_the_profiles_its_messages_go_to_in_one_request(outbox: Outbox) -> None:
    batch = [outbox.queued("ada"), outbox.queued("bob")]
    assert [(m.profile_db, m.profile_id) for m in batch] == [
        ("customers", "ada"),
        ("customers", "bob"),
    ]
    outbox.storage.reads.clear()
    uow = UnitOfWork(buffered=True)
    channels.read_ahead(uow, [message.wire() for message in batch])
    for message in batch:
        channels.deliver(message, uow)
    assert len(outbox.sent) == 2
    assert (outbox.storage.reads["read_ahead"], outbox.storage.reads["profile fields"]) == (
        1,
        0,
    )


def test_a_message_that_does_not_say_whose_it_is_has_its_row_read_first(outbox: Outbox) -> None:
    message = Deliver(message_id=outbox.queued().message_id)  # queued before messages said
    channels.deliver(message)
    channels.deliver(message)
    assert len(outbox.sent) == 1
    assert outbox.storage.reads["outbox_message"] == 2


def test_a_consent_withdrawn_before_it_leaves_skips_it_in_the_history_too(
    outbox: Outbox,
) -> None:
    message = outbox.queued()
    outbox.storage.put_profile("customers", "ada", {**ADA, "consents": {"email": False}})
    channels.deliver(message)
    assert outbox.sent == []
    row = outbox.row(message)
    assert (row.status, row.values["reason"]) == ("skipped", "no_consent")
    (history,) = outbox.storage.profile("customers", "ada").view.messages
    assert set(history.statuses) == {"skipped"}
    assert outbox.counted("skipped") == 1


def test_the_history_says_when_a_message_was_sent_to_the_second(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_time, late = outbox.queued("ada"), outbox.queued("bob")
    marks: list[str] = []
    mark = outbox.storage.mark_history

    def marking(change: HistoryMark) -> bool:
        marks.append(change.message_id)
        return mark(change)

    monkeypatch.setattr(outbox.storage, "mark_history", marking)
    outbox.clock.advance(timedelta(milliseconds=900))
    channels.deliver(on_time)  # within a second of its planned moment: the history has it
    outbox.trouble = [DeliveryError("throttled", retryable=True)]
    channels.deliver(late)
    retry_at = outbox.row(late).retry_at
    assert retry_at is not None
    outbox.clock.set(retry_at)
    channels.deliver(late)
    assert marks == [late.message_id]
    ((ada,), (bob,)) = (
        outbox.storage.profile("customers", p).view.messages for p in ("ada", "bob")
    )
    assert (ada.statuses, bob.statuses) == ({"sent": START}, {"sent": retry_at})


def test_passing_trouble_tries_again_later_until_the_last_attempt_fails(outbox: Outbox) -> None:
    message = outbox.queued()
    outbox.trouble = [DeliveryError("throttled", retryable=True) for _ in range(5)]
    channels.deliver(message)
    row = outbox.row(message)
    assert (row.status, row.attempts, row.last_error) == ("queued", 1, "throttled")
    assert row.retry_at == START + timedelta(seconds=10)
    with pytest.raises(channels.NotYet):  # its queue message came back before the retry
        channels.deliver(message)
    for _ in range(4):
        retry_at = outbox.row(message).retry_at
        assert retry_at is not None
        outbox.clock.set(retry_at)
        channels.deliver(message)
    row = outbox.row(message)
    assert (row.status, row.attempts, outbox.sent) == ("failed", 5, [])
    assert row.values["reason"] == "throttled (after 5 attempts)"
    assert outbox.announced() == ["message.failed"]


def test_an_email_without_an_answer_is_sent_once_ses_records_it(outbox: Outbox) -> None:
    message = outbox.queued()
    outbox.trouble = [Unanswered("read timeout")]
    channels.deliver(message)
    assert outbox.row(message).status == "unconfirmed"
    recorded_at = START + timedelta(seconds=2)
    channels.recorded(feedback.record(message.message_id, "sent", recorded_at))
    row = outbox.row(message)
    assert (row.status, row.sent_at) == ("sent", recorded_at)
    outbox.clock.advance(channels.LEASE)
    channels.deliver(message)  # its lease ended: nothing goes out again
    assert outbox.sent == []


def test_a_send_moves_its_row_and_records_its_status_in_one_write(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = outbox.queued()
    outbox.announced()
    moves: list[MessageMove] = []
    move = outbox.storage.move_message

    def moving(change: MessageMove) -> None:
        moves.append(change)
        move(change)

    monkeypatch.setattr(outbox.storage, "move_message", moving)
    channels.deliver(message)
    (sent,) = moves
    assert sent.recorded is not None
    assert sent.recorded.record.status == "sent"
    assert outbox.row(message).feedback == {"sent": START}
    assert (outbox.counted("sent"), outbox.announced()) == (1, ["message.sent"])


def test_a_send_ses_records_before_the_worker_moves_its_row_counts_once(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = outbox.queued()
    outbox.announced()
    send = channels.email.send_email

    def recorded_first(**request: Any) -> str:
        provider_id = send(**request)
        feedback.record(message.message_id, "sent", START)  # SES's Send event, at once
        return provider_id

    monkeypatch.setattr(channels.email, "send_email", recorded_first)
    channels.deliver(message)
    row = outbox.row(message)
    assert (row.status, row.feedback, len(outbox.sent)) == ("sent", {"sent": START}, 1)
    assert (outbox.counted("sent"), outbox.announced()) == (1, ["message.sent"])


def test_an_email_ses_has_no_record_of_goes_again_after_its_lease(outbox: Outbox) -> None:
    message = outbox.queued()
    outbox.trouble = [Unanswered("read timeout")]
    channels.deliver(message)
    outbox.clock.advance(channels.LEASE)
    channels.deliver(message)
    row = outbox.row(message)
    assert (row.status, row.attempts, len(outbox.sent)) == ("sent", 2, 1)
    assert "SES has no record of it" in (row.last_error or "")


def test_a_status_reported_twice_is_recorded_and_counted_once(outbox: Outbox) -> None:
    message = outbox.queued()
    channels.deliver(message)
    outbox.announced()
    opened = START + timedelta(hours=1)
    feedback.record(message.message_id, "opened", opened)
    answer = feedback.record(message.message_id, "opened", opened + timedelta(minutes=1))
    assert answer["feedback"]["opened"] == "2026-06-10T11:00:00Z"
    assert outbox.counted("opened") == 1
    assert outbox.announced() == ["message.opened"]
    (history,) = outbox.storage.profile("customers", "ada").view.messages
    assert history.statuses["opened"] == opened
    with pytest.raises(feedback.UnknownMessage):
        feedback.record("nosuch", "opened", opened)


def test_an_erased_profile_takes_its_journey_and_messages_with_it(outbox: Outbox) -> None:
    message = outbox.queued()
    assert profiles.erase("customers", "ada")
    assert outbox.storage.outbox_message(message.message_id) is None
    assert outbox.storage.instances_of_profile("customers", "ada") == []
    assert not outbox.storage.profile("customers", "ada", history=False).exists
    channels.deliver(message)  # its queue message comes after: nothing to send
    assert outbox.sent == []
    assert not profiles.erase("customers", "ada")
