"""Both storage adapters keep the port's promises alike: DynamoDB on moto and in memory
answer the same reads and refuse the same commits, so the use cases' unit tests on the
in-memory one say what happens on AWS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.adapters.memory_storage import MemoryStorage
from chalicelib.engine import Instance
from chalicelib.engine.compiled import WindowLimit
from chalicelib.runtime import messages
from chalicelib.runtime.storage import (
    Changes,
    Conflict,
    DayCounters,
    Dispatch,
    EntryCount,
    ExperimentDecision,
    GuardWrite,
    InstanceWrite,
    Once,
    OutboxRow,
    ProfileCreate,
    ProfileUpdate,
    SentMessage,
    StatsDelta,
    Storage,
    StoredInstance,
    Timer,
)
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "memory"])
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    request.getfixturevalue("aws_stack")
    from chalicelib.adapters.dynamodb_storage import DynamoStorage

    yield DynamoStorage()


def journey(step: int = 1, **changes: object) -> Instance:
    instance = Instance(
        "i1", "s1", 1, "ada", Event("signup", T0, {}, id="e1"), profile_db="customers",
        node="wait", waiting="timer", wake_at=T0 + timedelta(hours=1), step=step,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(instance, name, value)
    return instance


def written(instance: Instance, rev: int | None, seen: list[str] | None = None) -> Changes:
    stored = StoredInstance(instance, (rev or 0) + 1, seen or [])
    return Changes(instances=[InstanceWrite(stored, rev)])


def test_an_instance_is_written_once_new_and_then_only_from_the_revision_read(
    storage: Storage,
) -> None:
    storage.commit(written(journey(), None, ["e1"]))
    with pytest.raises(Conflict):
        storage.commit(written(journey(), None))  # it is not new any more
    with pytest.raises(Conflict):
        storage.commit(written(journey(step=2), 7))  # not the revision read
    storage.commit(written(journey(step=2), 1))
    found = storage.instance("i1")
    assert found is not None
    assert (found.rev, found.instance.step, found.seen) == (2, 2, [])
    (listed,) = storage.instances_of_profile("customers", "ada", "s1")
    assert listed.instance == found.instance
    assert storage.instances_of_profile("customers", "ada", "s2") == []


def test_a_failed_commit_writes_nothing_of_it(storage: Storage) -> None:
    storage.commit(written(journey(), None))
    timer = Timer("i1", "s1", 2, T0 + timedelta(hours=1))
    failing = written(journey(step=2), 5)
    failing.timers.append(timer)
    failing.profiles.append(ProfileCreate("customers", "ada", {"a": 1}, T0))
    with pytest.raises(Conflict):
        storage.commit(failing)
    assert list(storage.due_timers(T0 + timedelta(days=1))) == []
    assert not storage.profile("customers", "ada").exists


def test_profile_changes_touch_only_their_fields(storage: Storage) -> None:
    with pytest.raises(Conflict):  # an update needs the profile
        storage.commit(Changes(profiles=[ProfileUpdate("customers", "ada", T0, {"a": 1})]))
    create = ProfileCreate("customers", "ada", {"name": "Ada", "points": 5, "old": 1}, T0)
    storage.commit(Changes(profiles=[create]))
    with pytest.raises(Conflict):
        storage.commit(Changes(profiles=[create]))
    update = ProfileUpdate(
        "customers", "ada", T0, set_fields={"city": "Oslo"}, remove=["old"],
        add={"points": 10, "visits": 1}, consents={"sms": True}, has_consents=False,
    )  # fmt: skip
    storage.commit(Changes(profiles=[update]))
    record = storage.profile("customers", "ada")
    assert record.exists
    assert record.has_consents
    assert record.view.fields == {
        "name": "Ada", "points": 15, "visits": 1, "city": "Oslo", "consents": {"sms": True}
    }  # fmt: skip
    with pytest.raises(Conflict):  # it has a consents map now
        storage.commit(Changes(profiles=[update]))
    more = ProfileUpdate("customers", "ada", T0, consents={"email": False}, has_consents=True)
    storage.commit(Changes(profiles=[more]))
    assert storage.profile("customers", "ada").view.fields["consents"] == {
        "sms": True, "email": False
    }  # fmt: skip


def test_the_profile_view_holds_its_events_and_messages_oldest_first(storage: Storage) -> None:
    for hours in (2, 1):
        storage.record_event("customers", "ada", Event("visit", T0 + timedelta(hours=hours),
                                                       {}, id=f"v{hours}"))  # fmt: skip
    storage.record_event("customers", "ada", Event("visit", T0 + timedelta(hours=1), {}, id="v1"))
    sent = [SentMessage("customers", "ada", f"m{n}", "s1", "i1", "mail", "email",
                        T0 + timedelta(hours=n)) for n in (3, 1)]  # fmt: skip
    storage.commit(Changes(history=sent))
    record = storage.profile("customers", "ada")
    assert not record.exists
    assert [e.id for e in record.view.events] == ["v1", "v2"]
    assert [m.message_id for m in record.view.messages] == ["m1", "m3"]
    assert record.view.messages[0].statuses == {"sent": T0 + timedelta(hours=1)}


def test_a_capture_guard_counts_captures_one_after_the_other(storage: Storage) -> None:
    first = GuardWrite("customers", "ada", "s1", "i1", None)
    storage.commit(Changes(guards=[first]))
    with pytest.raises(Conflict):
        storage.commit(Changes(guards=[first]))
    storage.commit(Changes(guards=[GuardWrite("customers", "ada", "s1", "i2", 1)]))
    guard = storage.capture_guard("customers", "ada", "s1")
    assert guard is not None
    assert (guard.captures, guard.latest) == (2, "i2")
    assert storage.capture_guard("customers", "ada", "s2") is None


def test_timers_come_due_and_go(storage: Storage) -> None:
    storage.commit(Changes(timers=[Timer("i1", "s1", 3, T0 + timedelta(minutes=5))]))
    assert list(storage.due_timers(T0)) == []
    (due,) = storage.due_timers(T0 + timedelta(minutes=5))
    assert (due.instance_id, due.step) == ("i1", 3)
    storage.forget_timer("i1", 2)  # not its step: stays
    assert len(list(storage.due_timers(T0 + timedelta(hours=1)))) == 1
    storage.forget_timer("i1", 3)
    assert list(storage.due_timers(T0 + timedelta(hours=1))) == []
    storage.commit(Changes(timers=[Timer("i1", "s1", 4, T0)], timers_gone=[]))
    storage.commit(Changes(timers_gone=["i1"]))
    assert list(storage.due_timers(T0 + timedelta(hours=1))) == []


def test_a_pending_row_is_sent_again_by_one_sweeper_until_consumed(storage: Storage) -> None:
    message = messages.Deliver(message_id="r1", row_id="r1")
    dispatch = Dispatch("email", message, T0, T0 + timedelta(minutes=15))
    row = OutboxRow("r1", "message", T0, "customers", "ada", journey(), {"status": "queued"},
                    dispatch)  # fmt: skip
    storage.commit(Changes(rows=[row]))
    with pytest.raises(Conflict):
        storage.commit(Changes(rows=[row]))
    assert list(storage.overdue_rows(T0 + timedelta(minutes=14))) == []
    (overdue,) = storage.overdue_rows(T0 + timedelta(minutes=15))
    assert (overdue.row_id, overdue.queue, overdue.message) == ("r1", "email", message)
    assert storage.postpone_row(overdue, T0 + timedelta(minutes=30))
    assert not storage.postpone_row(overdue, T0 + timedelta(minutes=30))  # another sweeper
    assert list(storage.overdue_rows(T0 + timedelta(minutes=20))) == []
    storage.consume_row("r1")
    assert list(storage.overdue_rows(T0 + timedelta(days=1))) == []


def test_event_ids_the_api_queued_are_remembered(storage: Storage) -> None:
    storage.mark_event_queued("e1", T0)
    storage.mark_event_queued("e1", T0)
    assert storage.events_seen(["e1", "e2"]) == {"e1"}
    assert storage.events_seen([]) == set()


def test_a_code_is_taken_once_per_request_until_the_pool_is_empty(storage: Storage) -> None:
    storage.add_codes("SPRING", ["A", "B"])
    first = storage.take_code("SPRING", "request-1", T0)
    assert storage.take_code("SPRING", "request-1", T0) == first  # asked again
    second = storage.take_code("SPRING", "request-2", T0)
    assert {first, second} == {"A", "B"}
    assert storage.take_code("SPRING", "request-3", T0) is None
    assert storage.take_code("WINTER", "request-4", T0) is None


def test_a_code_is_redeemed_once_whether_it_was_issued_or_not(storage: Storage) -> None:
    if isinstance(storage, MemoryStorage):
        storage.add_codes("SPRING", ["A", "B"])
    else:
        from chalicelib.runtime import promo

        promo.add_codes("SPRING", ["A", "B"])
    issued = storage.take_code("SPRING", "request-1", T0)
    assert storage.redeem_code("SPRING", issued or "", "customers", "ada", T0) == "redeemed"
    assert storage.redeem_code("SPRING", issued or "", "customers", "bob", T0) == "again"
    other = "B" if issued == "A" else "A"
    assert storage.redeem_code("SPRING", other, "customers", "ada", T0) == "redeemed"
    assert storage.take_code("SPRING", "request-2", T0) is None  # redeemed: no longer available
    assert storage.redeem_code("SPRING", "Z", "customers", "ada", T0) == "unknown"
    assert storage.redeem_code("WINTER", "A", "customers", "ada", T0) == "unknown"


def test_an_entry_window_counts_captures_up_to_its_max_and_refuses_the_next(
    storage: Storage,
) -> None:
    day = (datetime(2026, 6, 10, tzinfo=UTC), datetime(2026, 6, 11, tzinfo=UTC))
    assert storage.entries_in_window("s1", day) == 0
    for _ in range(2):
        storage.commit(Changes(entries=[EntryCount("s1", day, 2)]))
    with pytest.raises(Conflict):  # the last place is taken: the whole commit fails
        storage.commit(
            Changes(timers=[Timer("i1", "s1", 1, T0)], entries=[EntryCount("s1", day, 2)])
        )
    assert list(storage.due_timers(T0 + timedelta(days=1))) == []
    assert storage.entries_in_window("s1", day) == 2
    next_day = (day[1], day[1] + timedelta(days=1))
    assert storage.entries_in_window("s1", next_day) == 0
    assert storage.entries_in_window("s2", day) == 0


def test_send_slots_are_spaced_and_handed_out_in_the_order_asked(storage: Storage) -> None:
    per_minute = WindowLimit(100, timedelta(minutes=1))
    slots = [storage.take_send_slot("s1", per_minute, T0) for _ in range(3)]
    assert slots == [T0, T0 + timedelta(seconds=0.6), T0 + timedelta(seconds=1.2)]
    assert storage.take_send_slot("s2", per_minute, T0) == T0  # a bucket per scenario
    later = T0 + timedelta(seconds=1)
    assert storage.take_send_slot("s1", per_minute, later) == T0 + timedelta(seconds=1.8)
    idle = T0 + timedelta(minutes=5)
    assert storage.take_send_slot("s1", per_minute, idle) == idle  # one token kept, not more
    assert storage.take_send_slot("s1", per_minute, idle) == idle + timedelta(seconds=0.6)


# --- measurement ---


def test_the_control_percent_is_kept(storage: Storage) -> None:
    assert storage.control_percent() == 0
    storage.set_control_percent(7.5, T0)
    assert storage.control_percent() == 7.5


def test_a_versions_counters_sum_every_day_and_keep_the_first_marks(storage: Storage) -> None:
    def delta(day: str, spread: str, at: datetime) -> StatsDelta:
        return StatsDelta(
            "s1", 1, day, spread, {"branch_entered|exp|a": 1}, {"first_entry|exp": at}
        )

    later = T0 + timedelta(days=1)
    storage.commit(Changes(stats=[delta("2026-06-11", "i2", later)]))
    storage.commit(Changes(stats=[delta("2026-06-10", "i1", T0)]))
    storage.commit(Changes(stats=[delta("2026-06-10", "i1", later)]))  # not the first
    storage.commit(Changes(stats=[StatsDelta("s1", 2, "2026-06-10", "i3", {"entered": 1})]))
    counted = storage.version_counters("s1", 1)
    assert counted.counts == {"branch_entered|exp|a": 3}
    assert counted.firsts == {"first_entry|exp": T0}


def test_decisions_are_kept_per_version_and_node(storage: Storage) -> None:
    undecided = ExperimentDecision("s1", 2, "exp", (1, 2), decide_again_at=T0)
    storage.put_decision(undecided)
    decided = ExperimentDecision("s1", 2, "exp2", (2,), "b", T0, None, {"a": 0.05, "b": 0.95})
    storage.put_decision(decided)
    assert storage.decisions("s1", 2) == {"exp": undecided, "exp2": decided}
    assert storage.decisions("s1", 1) == {}


def test_counters_are_read_per_version_and_day(storage: Storage) -> None:
    storage.commit(Changes(stats=[StatsDelta("s1", 1, "2026-06-10", "i1", {"entered": 2})]))
    storage.commit(Changes(stats=[StatsDelta("s1", 2, "2026-06-11", "i2", {"entered": 1},
                                             {"first_entry|exp": T0})]))  # fmt: skip
    storage.commit(Changes(stats=[StatsDelta("s2", 1, "2026-06-10", "i3", {"entered": 5})]))

    def read(version: int | None) -> list[DayCounters]:
        return sorted(storage.day_counters("s1", version), key=lambda part: part.version)

    assert read(None) == [
        DayCounters(1, date(2026, 6, 10), {"entered": 2}),
        DayCounters(2, date(2026, 6, 11), {"entered": 1}),  # a first mark is no counter
    ]
    assert read(2) == [DayCounters(2, date(2026, 6, 11), {"entered": 1})]
    assert list(storage.day_counters("s3")) == []


def test_a_once_only_record_makes_its_commit_happen_once(storage: Storage) -> None:
    counted = Changes(
        stats=[StatsDelta("s1", 1, "2026-06-10", "e1", {"revenue_cents": 500})],
        once=[Once("revenue#e1#s1", T0, T0 + timedelta(days=7))],
    )
    assert not storage.once_done("revenue#e1#s1")
    storage.commit(counted)
    with pytest.raises(Conflict):
        storage.commit(counted)  # again: nothing of it is written
    assert storage.once_done("revenue#e1#s1")
    assert storage.version_counters("s1", 1).counts == {"revenue_cents": 500}
    storage.forget_once("revenue#e1#s1")
    assert not storage.once_done("revenue#e1#s1")


def test_a_pool_takes_each_code_once_and_counts_what_is_left(storage: Storage) -> None:
    assert not storage.pool_exists("SPRING")
    assert storage.add_codes("SPRING", ["A", "B", "B"]) == 2
    taken = storage.take_code("SPRING", "request-1", T0)
    assert storage.add_codes("SPRING", ["A", "B", "C"]) == 1  # a taken code is not added again
    assert storage.codes_left("SPRING") == 2
    assert taken is not None
    while storage.take_code("SPRING", f"more-{storage.codes_left('SPRING')}", T0):
        pass
    assert storage.codes_left("SPRING") == 0
    assert storage.pool_exists("SPRING")  # all taken: the pool is still there


def test_messages_sent_in_a_span_are_found_newest_first(storage: Storage) -> None:
    sent = [SentMessage("customers", "ada", f"m{n}", "s1", "i1", "mail", "email",
                        T0 + timedelta(hours=n, microseconds=500)) for n in (0, 1, 2, 3)]  # fmt: skip
    storage.commit(Changes(history=sent))
    found = storage.messages_between(
        "customers", "ada", T0 + timedelta(hours=1), T0 + timedelta(hours=2, microseconds=500)
    )
    assert [m.message_id for m in found] == ["m2", "m1"]  # to the microsecond, both ends in
    found = storage.messages_between(
        "customers", "ada", T0 + timedelta(microseconds=500), T0 + timedelta(hours=2)
    )
    assert [m.message_id for m in found] == ["m1", "m0"]
    assert storage.messages_between("customers", "bob", T0, T0 + timedelta(days=1)) == []
