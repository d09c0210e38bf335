"""Both storage adapters keep the port's promises alike: DynamoDB on moto and in memory
answer the same reads and refuse the same commits, so the use cases' unit tests on the
in-memory one say what happens on AWS."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.adapters.memory_storage import MemoryStorage
from chalicelib.engine import Instance
from chalicelib.engine.compiled import WindowLimit
from chalicelib.engine.orders import Item, OrderState
from chalicelib.engine.sessions import SessionState
from chalicelib.runtime import messages
from chalicelib.runtime.storage import (
    AbandonTimer,
    CaptureGuard,
    CartStage,
    Changes,
    Conflict,
    DayCounters,
    Dispatch,
    EntryCount,
    EventTimer,
    ExperimentDecision,
    GuardWrite,
    InstanceWrite,
    ListLine,
    MembershipWrite,
    MergeRecord,
    Once,
    OrderWrite,
    OutboxRow,
    PriceChange,
    ProductOrdered,
    ProductView,
    ProfileCreate,
    ProfileState,
    ProfileUpdate,
    ReadAhead,
    SentMessage,
    SessionTimer,
    SessionWrite,
    SignalSettings,
    StatsDelta,
    Storage,
    StoredInstance,
    StoredOrder,
    StoredProduct,
    StoredSession,
    Timer,
    Watch,
)
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)


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
    assert storage.read_ahead(ReadAhead(instances=["i1", "nosuch"])).instances == {"i1": found}


def test_a_read_ahead_answers_as_the_single_reads_do_in_one_request(storage: Storage) -> None:
    from chalicelib.adapters.aws import count_requests

    storage.commit(written(journey(), None, ["e1"]))
    create = ProfileCreate("customers", "ada", {"name": "Ada"}, T0)
    storage.commit(
        Changes(profiles=[create], guards=[GuardWrite("customers", "ada", "s1", "i1", None)])
    )
    storage.set_control_percent(5, T0)
    ada, guard = ("customers", "ada"), ("customers", "ada", "s1")
    wanted = ReadAhead(
        instances=["i1", "i2"], scenarios=["s1"], profiles=[ada], aliases=[ada],
        event_types=["signup"], guards=[guard], control=True,
    )  # fmt: skip
    with count_requests() as counted:
        found = storage.read_ahead(wanted)
    assert counted.total == (0 if isinstance(storage, MemoryStorage) else 1)
    assert found.instances == {"i1": storage.instance("i1")}
    assert found.scenarios == {"s1": storage.scenario("s1")}
    assert found.profiles == {ada: storage.profile(*ada, history=False)}
    assert found.aliases == {}
    assert found.listened == {"signup": storage.listened("signup")}
    assert found.guards == {guard: storage.capture_guard(*guard)}
    assert found.control_percent == 5


def test_since_a_moment_a_profile_shows_its_active_journeys_and_those_ending_after_it(
    storage: Storage,
) -> None:
    def ended(instance_id: str, at: datetime, scenario_id: str = "s1") -> Instance:
        return journey(
            instance_id=instance_id, scenario_id=scenario_id, status="exited", ended_at=at,
            node=None, waiting=None, wake_at=None,
        )  # fmt: skip

    writes = [
        InstanceWrite(StoredInstance(journey(instance_id="active"), 1, []), None),
        InstanceWrite(StoredInstance(ended("long-ago", T0), 1, []), None),
        InstanceWrite(StoredInstance(ended("lately", T0 + timedelta(days=9)), 1, []), None),
        InstanceWrite(  # ended long ago, converting for a month after
            StoredInstance(ended("converting", T0, "s2"), 1, []), None, T0 + timedelta(days=30)
        ),
    ]
    storage.commit(Changes(instances=writes))

    def ids(**options: object) -> list[str]:
        found = storage.instances_of_profile("customers", "ada", **options)  # type: ignore[arg-type]
        return sorted(stored.instance.instance_id for stored in found)

    assert ids() == ["active", "converting", "lately", "long-ago"]
    assert ids(since=T0 + timedelta(days=8)) == ["active", "converting", "lately"]
    assert ids(since=T0 + timedelta(days=10)) == ["active", "converting"]
    assert ids(since=T0 + timedelta(days=31)) == ["active"]
    assert ids(since=T0 + timedelta(days=8), scenario_id="s2") == ["converting"]
    assert ids(since=T0 - timedelta(days=1)) == ids()


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


def test_profiles_are_read_together_as_each_is_read_without_its_history(
    storage: Storage,
) -> None:
    storage.commit(Changes(profiles=[ProfileCreate("customers", "ada", {"name": "Ada"}, T0)]))
    storage.record_event("customers", "ada", Event("signup", T0, {}, id="e1"))
    wanted = [("customers", "ada"), ("customers", "nobody")]
    found = storage.read_ahead(ReadAhead(profiles=wanted)).profiles
    assert found == {profile: storage.profile(*profile, history=False) for profile in wanted}
    assert found[("customers", "ada")].view.fields == {"name": "Ada"}
    assert found[("customers", "ada")].view.events == []
    assert not found[("customers", "nobody")].exists


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


def test_a_batch_of_events_is_recorded_at_once_the_same_event_once(storage: Storage) -> None:
    visits = [("customers", "ada", Event("visit", T0 + timedelta(minutes=n), {}, id=f"v{n}"))
              for n in range(30)]  # fmt: skip
    storage.record_events(
        [visits[0], *visits, ("customers", "bob", Event("visit", T0, {}, id="b1"))]
    )  # more than a BatchWriteItem's 25, v0 twice in its first
    storage.record_events(visits[28:])  # the same again: the same entries
    assert [e.id for e in storage.profile("customers", "ada").view.events] == [
        f"v{n}" for n in range(30)
    ]
    (visit,) = storage.profile("customers", "bob").view.events
    assert (visit.id, visit.type, visit.occurred_at) == ("b1", "visit", T0)
    storage.record_events([])


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
    wanted = [("customers", "ada", "s1"), ("customers", "ada", "s2"), ("customers", "bob", "s1")]
    ahead = storage.read_ahead(ReadAhead(guards=wanted))
    assert ahead.guards == {key: storage.capture_guard(*key) for key in wanted}
    assert ahead.control_percent is None  # not asked


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
    storage.consume_rows(["r1"])
    assert list(storage.overdue_rows(T0 + timedelta(days=1))) == []
    others = [OutboxRow(f"r{n}", "message", T0, "customers", "ada", journey(),
                        {"status": "queued"}, dispatch) for n in range(2, 30)]  # fmt: skip
    storage.commit(Changes(rows=others[:20]))
    storage.commit(Changes(rows=others[20:]))
    storage.consume_rows([row.row_id for row in others[1:]])  # more than a BatchWriteItem's 25
    (left,) = storage.overdue_rows(T0 + timedelta(days=1))
    assert left.row_id == "r2"


def test_event_ids_the_api_queued_are_remembered(storage: Storage) -> None:
    storage.mark_events_queued(["e1"], T0)
    storage.mark_events_queued(["e1", *(f"x{n}" for n in range(30))], T0)  # over 25
    assert storage.events_seen(["e1", "e2", "x29"]) == {"e1", "x29"}
    assert storage.events_seen([]) == set()


def test_a_code_is_taken_once_per_request_until_the_pool_is_empty(storage: Storage) -> None:
    storage.add_codes("SPRING", ["A", "B"])
    first = storage.take_code("SPRING", "request-1", T0)
    assert storage.take_code("SPRING", "request-1", T0) == first  # asked again
    second = storage.take_code("SPRING", "request-2", T0)
    assert {first, second} == {"A", "B"}
    assert storage.take_code("SPRING", "request-3", T0) is None
    assert storage.take_code("SPRING", "request-2", T0) == second  # asked again, none left
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
    assert storage.redeem_code("SPRING", issued or "", "customers", "ada", T0) == "repeated"
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
    assert storage.read_ahead(ReadAhead(control=True)).control_percent == 0
    storage.set_control_percent(7.5, T0)
    assert storage.control_percent() == 7.5
    assert storage.read_ahead(ReadAhead(control=True)).control_percent == 7.5


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


# --- segment membership ---


def membership(was: tuple[str, ...], members: tuple[str, ...]) -> MembershipWrite:
    return MembershipWrite("customers", "ada", was, members)


def test_a_membership_is_written_from_the_one_read_and_kept_beside_the_fields(
    storage: Storage,
) -> None:
    with pytest.raises(Conflict):  # no profile: nothing is created
        storage.commit(Changes(memberships=[membership((), ("a",))]))
    storage.commit(Changes(profiles=[ProfileCreate("customers", "ada", {"city": "Berlin"}, T0)]))
    assert storage.profile("customers", "ada").segments == ()
    storage.commit(Changes(memberships=[membership((), ("a", "b"))]))
    with pytest.raises(Conflict):  # not the membership read
        storage.commit(Changes(memberships=[membership((), ("c",))]))
    with pytest.raises(Conflict):
        storage.commit(Changes(memberships=[membership(("a",), ("c",))]))
    record = storage.profile("customers", "ada")
    assert (record.segments, record.view.fields) == (("a", "b"), {"city": "Berlin"})
    storage.commit(Changes(memberships=[membership(("a", "b"), ())]))
    assert storage.profile("customers", "ada").segments == ()


def test_a_membership_goes_with_the_profiles_own_change_in_one_commit(storage: Storage) -> None:
    create = ProfileCreate("customers", "ada", {"city": "Berlin"}, T0)
    storage.commit(Changes(profiles=[create], memberships=[membership((), ("berliners",))]))
    assert storage.profile("customers", "ada").segments == ("berliners",)
    update = ProfileUpdate("customers", "ada", T0, {"city": "Rome"})
    with pytest.raises(Conflict):  # the membership changed since it was read: neither lands
        storage.commit(Changes(profiles=[update], memberships=[membership((), ("romans",))]))
    assert storage.profile("customers", "ada").view.fields == {"city": "Berlin"}
    change = membership(("berliners",), ("romans",))
    storage.commit(Changes(profiles=[update], memberships=[change]))
    record = storage.profile("customers", "ada")
    assert (record.segments, record.view.fields) == (("romans",), {"city": "Rome"})


def test_segments_are_defined_replaced_and_deleted(storage: Storage) -> None:
    where = {"field": "profile.city", "op": "eq", "value": "Berlin"}
    storage.define_segment("berliners", {"profile_db": "customers", "where": where})
    storage.define_segment("all", {"profile_db": "other", "where": {"all": [where]}})
    storage.define_segment("all", {"profile_db": "customers", "where": where})
    found = storage.defined_segments()
    assert sorted(found) == ["all", "berliners"]
    assert found["all"].profile_db == "customers"
    assert storage.delete_segment("all")
    assert not storage.delete_segment("all")
    assert list(storage.defined_segments()) == ["berliners"]


def test_a_scan_of_the_profiles_in_parts_reads_each_once_without_history(
    storage: Storage,
) -> None:
    for number in range(7):
        create = ProfileCreate("customers", f"p{number}", {"n": number}, T0)
        storage.commit(Changes(profiles=[create]))
    storage.commit(Changes(memberships=[MembershipWrite("customers", "p3", (), ("s",))]))
    storage.record_event("customers", "p3", Event("signup", T0, {}, id="e1"))
    parts = [list(storage.scan_profiles(part, 3)) for part in range(3)]
    seen = sorted(record.view.profile_id for part in parts for record in part)
    assert seen == [f"p{number}" for number in range(7)]
    (p3,) = [record for part in parts for record in part if record.view.profile_id == "p3"]
    assert (p3.exists, p3.segments, p3.view.fields, p3.view.events) == (True, ("s",), {"n": 3}, [])


def test_the_latest_membership_run_is_remembered(storage: Storage) -> None:
    assert not storage.membership_run_done("daily:2026-06-10")
    storage.mark_membership_run("daily:2026-06-10", T0)
    assert storage.membership_run_done("daily:2026-06-10")
    assert not storage.membership_run_done("daily:2026-06-11")
    storage.mark_membership_run("daily:2026-06-11", T0 + timedelta(days=1))
    assert storage.membership_run_done("daily:2026-06-11")


# --- merges ---


def profiles(storage: Storage, **fields: dict[str, object]) -> None:
    for profile_id, values in fields.items():
        storage.commit(Changes(profiles=[ProfileCreate("customers", profile_id, values, T0)]))


def test_a_profile_state_tells_an_item_a_history_and_an_alias(storage: Storage) -> None:
    profiles(storage, ada={"name": "Ada"}, bob={"name": "Bob"})
    storage.record_event("customers", "cy", Event("visit", T0, {}, id="v1"))
    assert storage.profile_state("customers", "ada") == ProfileState(True, False, None)
    assert storage.profile_state("customers", "cy") == ProfileState(False, True, None)
    assert storage.profile_state("customers", "nobody") == ProfileState(False, False, None)
    storage.alias_profile("customers", "bob", "ada")
    storage.alias_profile("customers", "bob", "ada")  # again: the same
    storage.alias_profile("customers", "cy", "ada")  # a history alone has an alias too
    assert storage.merged_into("customers", "bob") == "ada"
    assert storage.merged_into("customers", "ada") is None
    assert storage.profile("customers", "bob").merged_into == "ada"  # the profile read says so
    assert storage.profile("customers", "ada").merged_into is None
    assert storage.profile_state("customers", "cy").merged_into == "ada"
    asked = [("customers", "ada"), ("customers", "bob"), ("customers", "cy"), ("other", "bob")]
    asked += [("customers", "nobody")]
    aliases = storage.read_ahead(ReadAhead(aliases=asked)).aliases
    assert aliases == {("customers", "bob"): "ada", ("customers", "cy"): "ada"}
    assert storage.read_ahead(ReadAhead(aliases=[])).aliases == {}
    profiles(storage, dan={"name": "Dan"})
    with pytest.raises(Conflict):  # bob is merged into ada already
        storage.alias_profile("customers", "bob", "dan")
    with pytest.raises(Conflict):  # into bob: merged itself
        storage.alias_profile("customers", "dan", "bob")
    with pytest.raises(Conflict):  # into nobody
        storage.alias_profile("customers", "dan", "nobody")
    assert storage.merged_into("customers", "dan") is None


def test_folding_adds_the_fields_into_lacks_and_leaves_the_alias(storage: Storage) -> None:
    profiles(
        storage,
        ada={"name": "Ada", "consents": {"email": True}},
        bob={"name": "Bob", "phone": "+1", "consents": {"email": False, "sms": True}},
    )
    storage.alias_profile("customers", "bob", "ada")
    storage.fold_profile("customers", "bob", "ada")
    storage.fold_profile("customers", "bob", "ada")  # again: nothing more
    assert storage.profile("customers", "ada").view.fields == {
        "name": "Ada", "phone": "+1", "consents": {"email": True, "sms": True}
    }  # fmt: skip
    assert not storage.profile("customers", "bob").exists
    assert storage.profile_state("customers", "bob") == ProfileState(False, False, "ada")


def test_moving_rows_brings_the_history_and_guards_to_into_which_keeps_its_own(
    storage: Storage,
) -> None:
    profiles(storage, ada={"name": "Ada"}, bob={"name": "Bob"})
    storage.record_event("customers", "bob", Event("visit", T0, {}, id="v1"))
    storage.record_event("customers", "ada", Event("visit", T0, {}, id="v0"))
    storage.commit(
        Changes(
            history=[
                SentMessage("customers", "bob", "m1", "s1", "i1", "bob's", "email", T0),
                SentMessage("customers", "bob", "m2", "s1", "i2", "mail", "email", T0),
                SentMessage("customers", "ada", "m1", "s1", "i1", "ada's", "email", T0),
            ],
            guards=[GuardWrite("customers", "bob", "s1", "i2", None)],
        )
    )
    storage.alias_profile("customers", "bob", "ada")
    storage.move_profile_rows("customers", "bob", "ada")
    storage.move_profile_rows("customers", "bob", "ada")  # again: nothing more
    view = storage.profile("customers", "ada").view
    assert [e.id for e in view.events] == ["v0", "v1"]
    assert {m.message_id: m.node for m in view.messages} == {"m1": "ada's", "m2": "mail"}
    assert storage.capture_guard("customers", "ada", "s1") == CaptureGuard(1, "i2")
    left = storage.profile("customers", "bob").view
    assert (left.events, left.messages) == ([], [])
    assert storage.capture_guard("customers", "bob", "s1") is None
    assert storage.profile_state("customers", "bob").history is False


def test_a_merge_record_is_stored_once_with_its_row_and_then_done(storage: Storage) -> None:
    record = MergeRecord("mg1", "customers", "ada", ("bob", "cy"), T0)
    message = messages.Merge(merge_id="mg1", row_id="merge-mg1")
    row = OutboxRow(
        "merge-mg1", "merge", T0, "customers", "ada",
        dispatch=Dispatch("steps", message, T0, T0 + timedelta(minutes=1)),
    )  # fmt: skip
    assert storage.begin_merge(record, row) == record
    later = MergeRecord("mg1", "customers", "ada", ("bob", "cy"), T0 + timedelta(hours=1))
    assert storage.begin_merge(later, row) == record  # a retry: the first
    assert storage.merge_record("mg1") == record
    assert storage.merge_record("mg2") is None
    (pending,) = storage.overdue_rows(T0 + timedelta(minutes=2))
    assert pending.message == message
    storage.finish_merge("mg1")
    assert storage.merge_record("mg1") == MergeRecord(
        "mg1", "customers", "ada", ("bob", "cy"), T0, done=True
    )


# --- loyalty ---


def test_an_event_timer_comes_due_beside_the_instances_timers_and_goes(storage: Storage) -> None:
    available = messages.EventMessage(
        profile_db="customers", profile_id="ada",
        event=messages.EventBody(
            id="b1:points.available", type="points.available",
            occurred_at="2026-06-10T10:05:00Z", data={"points": 50, "derived": True},
        ),
    )  # fmt: skip
    timer = EventTimer("b1:points.available", T0 + timedelta(minutes=5), available)
    storage.set_event_timer(timer)
    storage.set_event_timer(timer)  # kept again: still one timer
    storage.commit(Changes(timers=[Timer("i1", "s1", 3, T0 + timedelta(minutes=10))]))
    assert list(storage.due_timers(T0 + timedelta(minutes=4))) == []
    assert list(storage.due_timers(T0 + timedelta(minutes=5))) == [timer]
    due = list(storage.due_timers(T0 + timedelta(minutes=10)))
    assert sorted(type(t).__name__ for t in due) == ["EventTimer", "Timer"]
    storage.forget_timer("b1:points.available", 0)  # an instance's wake-up: not this one
    assert timer in list(storage.due_timers(T0 + timedelta(minutes=10)))
    storage.forget_event_timer("b1:points.available")
    assert list(storage.due_timers(T0 + timedelta(hours=1))) == [
        Timer("i1", "s1", 3, T0 + timedelta(minutes=10))
    ]


# --- orders ---


def an_order(status: str = "placed", rev: int = 1) -> StoredOrder:
    item = Item("1", {"product_id": "sku-1", "quantity": 2, "price": 9.99, "status": status,
                      "color": "red"}, T0, ("placed", status))  # fmt: skip
    state = OrderState("o-1", {"status": status, "total": 19.98}, (item,), T0, ("1",), (), ("e1",))
    return StoredOrder(state, rev)


def test_an_order_is_written_once_new_and_then_only_from_the_revision_read(
    storage: Storage,
) -> None:
    assert storage.order("customers", "ada", "o-1") is None
    storage.commit(Changes(orders=[OrderWrite("customers", "ada", an_order(), None)]))
    with pytest.raises(Conflict):  # it is not new any more
        storage.commit(Changes(orders=[OrderWrite("customers", "ada", an_order(), None)]))
    with pytest.raises(Conflict):  # not the revision read
        storage.commit(Changes(orders=[OrderWrite("customers", "ada", an_order("x", 3), 2)]))
    shipped = an_order("shipped", 2)
    storage.commit(Changes(orders=[OrderWrite("customers", "ada", shipped, 1)]))
    assert storage.order("customers", "ada", "o-1") == shipped
    assert storage.order("customers", "bob", "o-1") is None
    assert storage.profile("customers", "ada").view.events == []  # not an event of the profile


def test_the_last_order_of_a_product_is_kept_and_never_goes_back(storage: Storage) -> None:
    assert storage.last_ordered_at("customers", "ada", "sku-1") is None
    later = T0 + timedelta(hours=1, microseconds=5)
    storage.commit(Changes(ordered=[ProductOrdered("customers", "ada", "sku-1", later)]))
    with pytest.raises(Conflict):
        storage.commit(Changes(ordered=[ProductOrdered("customers", "ada", "sku-1", T0)]))
    assert storage.last_ordered_at("customers", "ada", "sku-1") == later
    latest = T0 + timedelta(hours=2)
    storage.commit(Changes(ordered=[ProductOrdered("customers", "ada", "sku-1", latest)]))
    assert storage.last_ordered_at("customers", "ada", "sku-1") == latest
    assert storage.last_ordered_at("customers", "ada", "sku-2") is None


def test_an_order_write_that_fails_with_its_commit_writes_nothing(storage: Storage) -> None:
    failing = written(journey(), 4)
    failing.orders.append(OrderWrite("customers", "ada", an_order(), None))
    failing.ordered.append(ProductOrdered("customers", "ada", "sku-1", T0))
    with pytest.raises(Conflict):
        storage.commit(failing)
    assert storage.order("customers", "ada", "o-1") is None
    assert storage.last_ordered_at("customers", "ada", "sku-1") is None


def test_an_abandonment_timer_is_set_only_by_a_later_change_and_stays_once_fired(
    storage: Storage,
) -> None:
    hour = timedelta(hours=1)
    cart = AbandonTimer("customers", "ada", None, T0, T0 + hour)
    view = AbandonTimer("customers", "ada", "sku/1#a", T0, T0 + 2 * hour)
    assert storage.set_abandon_timer(cart)
    assert storage.set_abandon_timer(view)
    assert not storage.set_abandon_timer(replace(cart, due_at=T0 + 3 * hour))  # the same change
    assert storage.abandon_timer("customers", "ada", None) == cart
    assert storage.abandon_timer("customers", "ada", "sku/1#a") == view
    assert storage.abandon_timer("customers", "bob", None) is None
    assert list(storage.due_abandon_timers(T0 + hour - timedelta(seconds=1))) == []
    assert list(storage.due_abandon_timers(T0 + hour)) == [cart]

    later = AbandonTimer("customers", "ada", None, T0 + timedelta(minutes=5), T0 + 2 * hour)
    assert storage.set_abandon_timer(later)
    assert not storage.set_abandon_timer(cart)  # an older change delivered late
    storage.disarm_abandon_timer(cart)  # stale: a later change re-set it
    assert storage.abandon_timer("customers", "ada", None) == later
    storage.disarm_abandon_timer(later)
    assert storage.abandon_timer("customers", "ada", None) == replace(later, due_at=None)
    assert list(storage.due_abandon_timers(T0 + 2 * hour)) == [view]
    assert not storage.set_abandon_timer(later)  # fired: the same change arms nothing
    ended = AbandonTimer("customers", "ada", "sku/1#a", T0 + hour, None)  # an order ended it
    assert storage.set_abandon_timer(ended)
    assert list(storage.due_abandon_timers(T0 + 3 * hour)) == []


def test_a_price_change_keeps_the_document_of_the_last_check_until_settled(
    storage: Storage,
) -> None:
    assert list(storage.price_changes()) == []
    storage.mark_price_change("p1", {"price": 100}, 2)
    storage.mark_price_change("p1", {"price": 90}, 3)  # a further change: the base stays
    storage.mark_price_change("p2", {}, 2)
    assert list(storage.price_changes()) == [
        PriceChange("p1", {"price": 100}, 3), PriceChange("p2", {}, 2)
    ]  # fmt: skip
    storage.settle_price_change("p1", 3, {"price": 80})
    storage.settle_price_change("p2", 1, {"price": 5})  # p2 changed after the version read
    assert list(storage.price_changes()) == [PriceChange("p2", {"price": 5}, 2)]
    storage.settle_price_change("p9", 1, {})  # nothing pending: nothing to settle

    assert storage.last_price_check() is None
    storage.mark_price_check(T0 + timedelta(days=1))
    storage.mark_price_check(T0)  # an earlier check delivered late
    assert storage.last_price_check() == T0 + timedelta(days=1)


def test_a_session_is_kept_with_its_timer_until_it_ends(storage: Storage) -> None:
    state = SessionState(T0, T0 + timedelta(minutes=5), 2, ("sku-1",), True)
    ends = T0 + timedelta(minutes=35)
    first = SessionWrite("customers", "ada", StoredSession(state, 1), None, ends)
    storage.commit(Changes(sessions=[first]))
    with pytest.raises(Conflict):  # there is one already
        storage.commit(Changes(sessions=[first]))
    assert storage.session("customers", "ada") == StoredSession(state, 1)
    assert list(storage.due_sessions(ends - timedelta(seconds=1))) == []
    assert list(storage.due_sessions(ends)) == [SessionTimer("customers", "ada", ends)]
    assert list(storage.due_timers(ends + timedelta(days=1))) == []  # not an instance's timer
    with pytest.raises(Conflict):  # not the revision read
        storage.commit(Changes(sessions=[SessionWrite("customers", "ada", None, 5)]))
    storage.commit(Changes(sessions=[SessionWrite("customers", "ada", None, 1)]))
    assert storage.session("customers", "ada") is None
    assert list(storage.due_sessions(ends + timedelta(days=1))) == []
    assert storage.profile("customers", "ada").view.events == []


# --- commerce ---


def test_a_product_is_put_at_the_next_version_only(storage: Storage) -> None:
    first = StoredProduct("p1", {"price": 10}, T0)
    storage.put_product(first)
    with pytest.raises(Conflict):
        storage.put_product(first)  # version 1 again: it exists
    second = StoredProduct("p1", {"price": 8}, T0 + timedelta(hours=1), 2, {"price": 10})
    storage.put_product(second)
    with pytest.raises(Conflict):
        storage.put_product(replace(second, version=4))
    assert storage.product("p1") == second
    assert storage.product("p2") is None


def test_a_products_change_and_its_fan_out_row_are_written_together(storage: Storage) -> None:
    storage.put_product(StoredProduct("p1", {"price": 10}, T0))
    page = messages.WatchersPage(
        product_id="p1", version=2, changed_at="2026-06-10T10:00:00Z", before={"price": 10},
        after={"price": 8}, row_id="watchers-p1-2",
    )  # fmt: skip
    dispatch = Dispatch("segments", page, T0, T0 + timedelta(minutes=15))
    row = OutboxRow("watchers-p1-2", "watchers", T0, "", "", dispatch=dispatch)
    stale = StoredProduct("p1", {"price": 8}, T0, 3, {"price": 10})
    with pytest.raises(Conflict):
        storage.put_product(stale, row)  # not the next version: neither is written
    assert list(storage.overdue_rows(T0 + timedelta(days=1))) == []
    storage.put_product(StoredProduct("p1", {"price": 8}, T0, 2, {"price": 10}), row)
    (pending,) = storage.overdue_rows(T0 + timedelta(minutes=15))
    assert (pending.row_id, pending.queue, pending.message) == ("watchers-p1-2", "segments", page)


def line(product_id: str, at: datetime, quantity: float = 1, price: float | None = 10) -> ListLine:
    return ListLine(product_id, quantity, price, at, at)


def test_a_line_keeps_its_price_seen_and_an_older_change_is_not_applied(storage: Storage) -> None:
    assert storage.put_line("customers", "ada", "cart", line("p1", T0))
    later = T0 + timedelta(minutes=5)
    assert storage.put_line("customers", "ada", "cart", line("p1", later, quantity=3, price=7))
    assert not storage.put_line("customers", "ada", "cart", line("p1", T0, quantity=9))
    assert storage.list_lines("customers", "ada", "cart") == [ListLine("p1", 3, 10, T0, later)]
    assert storage.list_lines("customers", "ada", "favorites") == []


def test_a_removed_line_is_gone_and_an_older_addition_does_not_bring_it_back(
    storage: Storage,
) -> None:
    storage.put_line("customers", "ada", "cart", line("p1", T0))
    storage.put_line("customers", "ada", "cart", line("p#2", T0))
    removed_at = T0 + timedelta(minutes=10)
    assert not storage.remove_line("customers", "ada", "cart", "p1", T0 - timedelta(minutes=1))
    assert storage.remove_line("customers", "ada", "cart", "p1", removed_at)
    assert not storage.put_line("customers", "ada", "cart", line("p1", T0 + timedelta(minutes=1)))
    assert [x.product_id for x in storage.list_lines("customers", "ada", "cart")] == ["p#2"]
    again = T0 + timedelta(minutes=20)
    assert storage.put_line("customers", "ada", "cart", line("p1", again, price=12))
    assert storage.list_lines("customers", "ada", "cart")[1] == ListLine("p1", 1, 12, again, again)


def test_the_latest_view_of_each_product_is_kept(storage: Storage) -> None:
    later = T0 + timedelta(hours=1)
    assert storage.record_view("customers", "ada", ProductView("p1", 10, later))
    assert not storage.record_view("customers", "ada", ProductView("p1", 12, T0))
    assert storage.record_view("customers", "ada", ProductView("p2", None, T0))
    assert storage.views("customers", "ada") == [
        ProductView("p1", 10, later),
        ProductView("p2", None, T0),
    ]


def test_a_cart_stage_is_not_overwritten_by_an_older_mark(storage: Storage) -> None:
    assert storage.cart_stage("customers", "ada") is None
    later = T0 + timedelta(hours=1)
    assert storage.set_cart_stage("customers", "ada", CartStage("checkout", later))
    assert not storage.set_cart_stage("customers", "ada", CartStage("viewed_cart", T0))
    assert storage.cart_stage("customers", "ada") == CartStage("checkout", later)


def test_the_watchers_of_a_product_are_its_lines_and_views_page_by_page(
    storage: Storage,
) -> None:
    storage.put_line("customers", "ada", "cart", line("p1", T0))
    storage.put_line("customers", "ada", "favorites", line("p1", T0, price=9))
    storage.put_line("customers", "bob", "wishlist", line("p1", T0, price=None))
    storage.record_view("customers", "cy", ProductView("p1", 11, T0))
    storage.put_line("customers", "cy", "cart", line("p2", T0))
    storage.put_line("shop#1", "dan", "cart", line("p1", T0))
    storage.put_line("shop%#2", "eve#x", "cart", line("p1", T0))
    storage.remove_line("shop#1", "dan", "cart", "p1", T0 + timedelta(minutes=1))
    found, token = storage.watchers("p1", 3)
    while token is not None:
        more, token = storage.watchers("p1", 3, token)
        found += more
    assert sorted(found, key=lambda w: (w.profile_id, w.source)) == [
        Watch("customers", "ada", "p1", "cart", 10, T0),
        Watch("customers", "ada", "p1", "favorites", 9, T0),
        Watch("customers", "bob", "p1", "wishlist", None, T0),
        Watch("customers", "cy", "p1", "viewed", 11, T0),
        Watch("shop%#2", "eve#x", "p1", "cart", 10, T0),
    ]


def test_signal_settings_default_until_set(storage: Storage) -> None:
    assert storage.signal_settings() == SignalSettings()
    chosen = SignalSettings("PT2H", "PT30M", "PT15M", {"daily": "09:00"})
    storage.set_signal_settings(chosen, T0)
    assert storage.signal_settings() == chosen


# --- once-only records, counters, pools and what the API reads ---


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
