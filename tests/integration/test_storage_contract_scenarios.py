"""Both storage adapters keep the port's promises on scenarios, versions, the trigger and
schedule indexes, the real-time view's instances and segments alike: DynamoDB on moto
and in memory answer the same reads and refuse the same writes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.engine import Instance
from chalicelib.runtime import messages
from chalicelib.runtime.storage import (
    Changes,
    Conflict,
    Dispatch,
    InstanceWrite,
    OutboxRow,
    ProfileCreate,
    ReadAhead,
    ScenarioChange,
    ScenarioFilter,
    ScenarioRecord,
    ScheduleEntry,
    Storage,
    StoredInstance,
    Timer,
    TriggerIndex,
    UnknownToken,
    VersionRecord,
)
from chalicelib.scenarios.facts import Event
from tests.http.support import journey

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)


def draft(scenario_id: str, **document: Any) -> ScenarioRecord:
    return ScenarioRecord(scenario_id, "draft", 0, journey(**document), T0, T0)


def activated(storage: Storage, scenario_id: str, **document: Any) -> ScenarioRecord:
    """A scenario saved as a draft, then activated at version 1 with its trigger index."""
    record = draft(scenario_id, **document)
    storage.save_scenario(ScenarioChange(record, None))
    active = replace(record, status="active", version=1, updated_at=T0 + timedelta(minutes=1))
    version = VersionRecord(scenario_id, 1, record.document, active.updated_at)
    listed = TriggerIndex(scenario_id, ("signup",), schedules=(nightly(scenario_id),))
    storage.save_scenario(ScenarioChange(active, record.updated_at, version, listed))
    return active


def nightly(scenario_id: str, next_run: datetime | None = T0 + timedelta(hours=9)) -> ScheduleEntry:
    return ScheduleEntry(scenario_id, "nightly", T0, next_run)


# --- metadata and versions ------------------------------------------------------------------


def test_a_scenario_is_saved_once_new_then_only_as_it_was_read(storage: Storage) -> None:
    record = draft("s1", name="Welcome")
    storage.save_scenario(ScenarioChange(record, None))
    assert storage.scenario_record("s1") == record
    assert storage.scenario_record("nope") is None
    with pytest.raises(Conflict):  # that id is taken
        storage.save_scenario(ScenarioChange(replace(record, status="trashed"), None))

    edited = replace(record, document=journey(name="Edited"), updated_at=T0 + timedelta(1))
    storage.save_scenario(ScenarioChange(edited, record.updated_at))
    assert storage.scenario_record("s1") == edited
    stale = ScenarioChange(
        replace(record, status="active", version=1),
        record.updated_at,  # read before the edit
        VersionRecord("s1", 1, record.document, T0),
        TriggerIndex("s1", ("signup",)),
    )
    with pytest.raises(Conflict):
        storage.save_scenario(stale)
    assert storage.scenario_record("s1") == edited  # and nothing else was written
    assert storage.versions_page("s1", 10, None) == ([], None)


def test_an_activation_writes_its_version_and_indexes_and_never_a_version_again(
    storage: Storage,
) -> None:
    active = activated(storage, "s1", name="Welcome")

    assert storage.scenario_record("s1") == active
    meta = storage.scenario("s1")
    assert meta is not None
    assert (meta.active, meta.version) == (True, 1)
    assert storage.version("s1", 1).model.name == "Welcome"
    assert storage.version_document("s1", 1) == active.document
    assert storage.scenarios_for_event("signup") == ["s1"]
    assert storage.schedules() == [nightly("s1")]
    again = ScenarioChange(active, active.updated_at, VersionRecord("s1", 1, {}, T0))
    with pytest.raises(Conflict):
        storage.save_scenario(again)

    stopped = replace(active, status="stopped", stopped_at=T0 + timedelta(hours=1))
    unlisted = TriggerIndex("s1", ("signup",), schedules=(nightly("s1"),))
    storage.save_scenario(ScenarioChange(stopped, active.updated_at, unlisted=unlisted))
    assert storage.scenario_record("s1") == stopped
    assert storage.scenarios_for_event("signup") == []
    assert storage.schedules() == []


def test_versions_come_in_pages_whose_tokens_serve_that_list_alone(storage: Storage) -> None:
    record = activated(storage, "s1")
    for version in (2, 3):
        changed = replace(record, version=version, updated_at=T0 + timedelta(hours=version))
        written = VersionRecord("s1", version, record.document, changed.updated_at)
        storage.save_scenario(ScenarioChange(changed, record.updated_at, written))
        record = changed

    first, token = storage.versions_page("s1", 2, None)
    assert [v.version for v in first] == [1, 2]
    assert first[1].created_at == T0 + timedelta(hours=2)
    assert token is not None
    rest, end = storage.versions_page("s1", 2, token)
    assert ([v.version for v in rest], end) == ([3], None)
    activated(storage, "s2")
    with pytest.raises(UnknownToken):
        storage.versions_page("s2", 2, token)
    with pytest.raises(UnknownToken):
        storage.node_page("s1", "wait", 2, token)


# --- the scenario list -------------------------------------------------------------------


def test_the_list_keeps_what_its_filter_asks_for(storage: Storage) -> None:
    storage.save_scenario(ScenarioChange(draft("s1", name="Spring Sale", tags=["promo"]), None))
    storage.save_scenario(
        ScenarioChange(draft("s2", name="Welcome", description="A SALE of one", group="eu"), None)
    )
    activated(storage, "s3", name="Winback", tags=["promo", "vip"], group="us")

    def listed(**where: Any) -> list[str]:
        found, token = storage.scenario_page(ScenarioFilter(**where), 1000, None)
        assert token is None
        return sorted(record.scenario_id for record in found)

    assert listed() == ["s1", "s2", "s3"]
    assert listed(status="active") == ["s3"]
    assert listed(tag="promo") == ["s1", "s3"]
    assert listed(tag="vi") == []  # a tag, not a part of one
    assert listed(group="eu") == ["s2"]
    assert listed(groups=("eu", "us")) == ["s2", "s3"]
    assert listed(q="sale") == ["s1", "s2"]  # name or description, in any case
    assert listed(q="SALE", tag="promo") == ["s1"]


def test_the_list_goes_on_after_a_scenario_and_refuses_other_tokens(storage: Storage) -> None:
    for number in range(5):
        storage.save_scenario(ScenarioChange(draft(f"s{number}"), None))
    everything = ScenarioFilter()
    found, token = storage.scenario_page(everything, 1000, None)
    assert token is None
    assert len(found) == 5

    rest, _ = storage.scenario_page(everything, 1000, storage.token_after(found[1]))
    assert rest == found[2:]

    walked: list[str] = []
    token = None
    while True:  # a read of two items at a time still lists every scenario once
        page, token = storage.scenario_page(everything, 2, token)
        walked.extend(record.scenario_id for record in page)
        if token is None:
            break
    assert sorted(walked) == [f"s{number}" for number in range(5)]
    versions_token = storage.token_after(found[0])
    with pytest.raises(UnknownToken):
        storage.versions_page("s0", 2, versions_token)


# --- schedules and what is due ----------------------------------------------------------


def test_a_schedule_run_is_claimed_once(storage: Storage) -> None:
    activated(storage, "s1")
    (entry,) = storage.schedules()
    later = T0 + timedelta(days=1, hours=9)

    assert storage.claim_schedule_run(entry, entry.next_run or T0, later)
    assert not storage.claim_schedule_run(entry, entry.next_run or T0, later)  # claimed
    (moved,) = storage.schedules()
    assert (moved.last_run, moved.next_run) == (entry.next_run, later)
    assert storage.claim_schedule_run(moved, later, None)
    assert storage.schedules()[0].next_run is None  # no run left


def test_next_due_is_the_first_timer_row_or_schedule_run_after_a_moment(
    storage: Storage,
) -> None:
    assert storage.next_due(T0) is None
    activated(storage, "s1")  # its schedule runs at T0 + 9 hours
    waiting = instance("i1", wake_at=T0 + timedelta(hours=2, microseconds=5))
    message = messages.Deliver(message_id="r1", row_id="r1")
    dispatch = Dispatch("email", message, T0, T0 + timedelta(hours=5))
    row = OutboxRow("r1", "message", T0, "customers", "ada", dispatch=dispatch)
    storage.commit(
        Changes(
            instances=[InstanceWrite(StoredInstance(waiting, 1), None)],
            timers=[Timer("i1", "s1", 1, T0 + timedelta(hours=2, microseconds=5))],
            rows=[row],
        )
    )

    assert storage.next_due(T0) == T0 + timedelta(hours=2, seconds=1)  # never early
    assert storage.next_due(T0 + timedelta(hours=2, seconds=1)) == T0 + timedelta(hours=5)
    assert storage.next_due(T0 + timedelta(hours=5)) == T0 + timedelta(hours=9)
    assert storage.next_due(T0 + timedelta(hours=9)) is None


# --- instances at a node ------------------------------------------------------------------


def instance(instance_id: str, **changes: Any) -> Instance:
    found = Instance(
        instance_id, "s1", 1, f"ada-{instance_id}", Event("signup", T0, {}, id="e1"),
        profile_db="customers", node="wait", waiting="timer", wake_at=T0 + timedelta(days=1),
        node_entered_at=T0, step=1,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(found, name, value)
    return found


def test_active_instances_are_found_by_scenario_and_by_node_in_pages(storage: Storage) -> None:
    journeys = [
        instance("i1"),
        instance("i2", node_entered_at=T0 + timedelta(minutes=1)),
        instance("i3", node_entered_at=T0 + timedelta(minutes=2)),
        instance("i4", node="hello", waiting=None, wake_at=None),
        instance("i5", status="completed", waiting=None, wake_at=None, ended_at=T0),
        instance("i6", scenario_id="s2"),
    ]
    storage.commit(Changes(instances=[InstanceWrite(StoredInstance(i, 1), None) for i in journeys]))

    assert sorted(storage.active_instance_ids("s1")) == ["i1", "i2", "i3", "i4"]
    assert storage.instances_at_node("s1", "wait") == ["i1", "i2", "i3"]
    assert storage.instances_at_node("s1", "bye") == []
    first, token = storage.node_page("s1", "wait", 2, None)
    assert [(at.instance_id, at.profile_id) for at in first] == [("i1", "ada-i1"), ("i2", "ada-i2")]
    assert (first[0].entered_at, first[0].wake_at) == (T0, T0 + timedelta(days=1))
    assert token is not None
    rest, end = storage.node_page("s1", "wait", 2, token)
    assert ([at.instance_id for at in rest], end) == (["i3"], None)
    with pytest.raises(UnknownToken):
        storage.node_page("s1", "hello", 2, token)
    with pytest.raises(UnknownToken):
        storage.node_page("s1", "wait", 2, "garbage")


# --- segments -------------------------------------------------------------------------------


def test_a_segment_reads_as_defined_and_its_database_profiles_are_scanned_in_parts(
    storage: Storage,
) -> None:
    definition = {"profile_db": "customers", "where": {"field": "profile.vip", "op": "exists"}}
    storage.define_segment("vips", definition)
    assert storage.segment_definition("vips") == definition
    assert storage.segment_definition("vips", consistent=False) in (definition, None)
    assert storage.segment_definition("nope") is None
    for profile_db, profile_id in [("customers", "ada"), ("customers", "bob"), ("leads", "cy")]:
        created = ProfileCreate(profile_db, profile_id, {"vip": True}, T0)
        storage.commit(Changes(profiles=[created]))
    storage.record_event("customers", "dan", Event("signup", T0, {}, id="e1"))  # no profile

    whole = sorted(p.profile_id for p in storage.segment_profiles("customers"))
    assert whole == ["ada", "bob"]
    parts = [[p.profile_id for p in storage.segment_profiles("customers", n, 3)] for n in range(3)]
    assert sorted(profile_id for part in parts for profile_id in part) == ["ada", "bob"]
    (ada,) = [p for p in storage.segment_profiles("customers") if p.profile_id == "ada"]
    assert (ada.profile_db, ada.fields) == ("customers", {"vip": True})
    assert storage.profile_items_estimate() >= 0


# --- listened event types -------------------------------------------------------------------


def test_listened_event_types_are_kept_once_listed_whatever_the_scenario_becomes(
    storage: Storage,
) -> None:
    storage.mark_listeners_listed()
    storage.mark_triggers_listed()
    assert storage.listeners_listed()
    assert not storage.listened("order.created")
    record = draft("s1")
    storage.save_scenario(ScenarioChange(record, None))
    active = replace(record, status="active", version=1, updated_at=T0 + timedelta(minutes=1))
    listed = TriggerIndex("s1", ("signup",), listens=("order.created", "clicked"))
    version = VersionRecord("s1", 1, record.document, active.updated_at)
    storage.save_scenario(ScenarioChange(active, record.updated_at, version, listed))
    meta = storage.scenario("s1")
    assert meta is not None
    assert meta.active
    assert storage.read_ahead(ReadAhead(scenarios=["s1", "nosuch"])).scenarios == {
        "s1": meta, "nosuch": None,
    }  # fmt: skip
    assert storage.listened("order.created")
    assert storage.listened("clicked")
    assert not storage.listened("signup")  # a trigger is no listener
    batch = storage.read_ahead(ReadAhead(event_types=["clicked", "signup", "clicked"]))
    assert (batch.listened, batch.triggered) == (
        {"clicked": True, "signup": False}, {"clicked": [], "signup": ["s1"]},
    )  # fmt: skip
    joined = {"id": "start", "type": "event", "event": "joined", "next": "hello"}
    document = {**record.document, "triggers": [joined]}  # a live edit's new trigger
    edited = replace(active, version=2, document=document, updated_at=T0 + timedelta(minutes=2))
    relisted = TriggerIndex("s1", ("joined",), listens=("clicked",))
    version = VersionRecord("s1", 2, document, edited.updated_at)
    storage.save_scenario(ScenarioChange(edited, active.updated_at, version, relisted, listed))
    triggered = storage.read_ahead(ReadAhead(event_types=["signup", "joined"])).triggered
    assert triggered == {"signup": [], "joined": ["s1"]}  # the edit's trigger in the other's place
    assert storage.scenarios_for_event("joined") == ["s1"]
    stopped = replace(edited, status="stopped", updated_at=T0 + timedelta(hours=1))
    storage.save_scenario(ScenarioChange(stopped, edited.updated_at, unlisted=relisted))
    assert storage.listened("order.created")  # its ended journeys may still convert
    assert storage.read_ahead(ReadAhead(event_types=["joined"])).triggered == {"joined": []}
    storage.add_listeners("s2", ["*"])  # a wait for a condition: any event
    assert storage.listened("signup")
    assert storage.read_ahead(
        ReadAhead(aliases=[("customers", "ada")], event_types=["signup"])
    ).listened == {"signup": True}


def test_a_stack_whose_scenarios_predate_the_list_hears_every_event_until_it_is_listed(
    aws_stack: None,
) -> None:
    from chalicelib.adapters.dynamodb_storage import DynamoStorage

    storage = DynamoStorage()
    assert not storage.listeners_listed()
    assert storage.listened("anything")
    storage.add_listeners("s1", ["order.created"])
    storage.mark_listeners_listed()
    fresh = DynamoStorage()  # another function's wiring
    assert fresh.read_ahead(ReadAhead(event_types=["order.created", "anything"])).listened == {
        "order.created": True, "anything": False,
    }  # fmt: skip
    assert fresh.listeners_listed()
    assert not fresh.listened("anything")


def test_a_stack_whose_active_scenarios_predate_the_triggers_list_asks_the_index_until_listed(
    aws_stack: None,
) -> None:
    from chalicelib.adapters.dynamodb_storage import DynamoStorage

    storage = DynamoStorage()
    assert not storage.triggers_listed()
    assert (
        storage.read_ahead(ReadAhead(event_types=["signup"])).triggered is None
    )  # ask `scenarios_for_event`
    storage.add_triggers("s1", ["signup"])
    storage.mark_triggers_listed()
    fresh = DynamoStorage()  # another function's wiring
    assert fresh.read_ahead(ReadAhead(event_types=["signup", "other"])).triggered == {
        "signup": ["s1"],
        "other": [],
    }
    assert fresh.triggers_listed()


def test_a_stack_lists_its_older_active_scenarios_triggers_once_at_its_first_tick(
    aws_stack: None,
) -> None:
    from chalicelib.adapters import dynamodb_storage, store
    from chalicelib.bootstrap import bootstrap
    from chalicelib.runtime import scenarios

    active = scenarios.create(journey())["scenario_id"]
    scenarios.activate(active)
    stopped = scenarios.create(journey(name="Stopped"))["scenario_id"]
    scenarios.activate(stopped)
    scenarios.deactivate(stopped)
    # as a stack upgraded from before the lists: its activations left no `triggered`
    store.scenarios.update(dynamodb_storage._listeners_key("signup"), "REMOVE triggered")
    store.scenarios.delete(dynamodb_storage.TRIGGERS_LISTED)
    storage = bootstrap().storage  # a new function's wiring
    assert storage.read_ahead(ReadAhead(event_types=["signup"])).triggered is None
    assert storage.scenarios_for_event("signup") == [active]  # the index answers meanwhile
    assert scenarios.list_listeners() == 2  # the schedule tick's
    assert storage.read_ahead(ReadAhead(event_types=["signup"])).triggered == {"signup": [active]}
    assert scenarios.list_listeners() == 0  # once
