"""The scenario lifecycle, schedule ticks and segment campaigns on the in-memory storage:
what each use case writes, reads and sends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.engine import Instance
from chalicelib.runtime import scenarios, schedules, segments
from chalicelib.runtime.messages import Capture, Migrate, Resume, ScanSegment
from chalicelib.runtime.storage import Changes, InstanceWrite, ReadAhead, StoredInstance
from chalicelib.scenarios.facts import Event
from tests.http.support import NIGHTLY, journey
from tests.unit.runtime.test_use_cases import START, Stack


def in_flight(stack: Stack, scenario_id: str, instance_id: str = "i1") -> None:
    """An active instance of the scenario's first version, waiting at `wait`."""
    instance = Instance(
        instance_id, scenario_id, 1, "ada", Event("signup", START, {}, id="e1"),
        profile_db="customers", node="wait", waiting="timer", wake_at=START + timedelta(1),
        node_entered_at=START, step=1,
    )  # fmt: skip
    stack.storage.commit(Changes(instances=[InstanceWrite(StoredInstance(instance, 1), None)]))


# --- the lifecycle ------------------------------------------------------------------------


def test_an_activation_reads_the_metadata_once_and_lists_every_trigger(stack: Stack) -> None:
    scenario_id = scenarios.create(journey(NIGHTLY))["scenario_id"]
    stack.storage.reads.clear()

    active = scenarios.activate(scenario_id)

    assert stack.storage.reads["scenario_record"] == 1
    assert (active["status"], active["version"]) == ("active", 1)
    assert active["webhook_secret"]
    assert scenarios.get(scenario_id) == active
    assert stack.storage.scenarios_for_event("signup") == [scenario_id]
    (entry,) = stack.storage.schedules()
    assert (entry.trigger_id, entry.next_run) == ("nightly", START.replace(hour=19, minute=30))
    assert scenarios.activate(scenario_id) == active  # active already: nothing changes


def test_a_scenario_reactivated_unchanged_keeps_its_version_and_its_profiles_go_on(
    stack: Stack,
) -> None:
    scenario_id = scenarios.create(journey())["scenario_id"]
    secret = scenarios.activate(scenario_id)["webhook_secret"]
    in_flight(stack, scenario_id)

    stopped = scenarios.deactivate(scenario_id, keep_profiles=True)
    assert stopped["status"] == "stopped"
    assert stack.storage.scenarios_for_event("signup") == []
    again = scenarios.activate(scenario_id)
    assert (again["version"], again["webhook_secret"]) == (1, secret)
    assert stack.queues.take("steps") == [Resume(instance_id="i1")]

    scenarios.deactivate(scenario_id, keep_profiles=True)
    edited = scenarios.replace(scenario_id, journey(name="Edited"))
    assert (edited["version"], edited["name"], edited["problems"]) == (1, "Edited", [])
    assert scenarios.activate(scenario_id)["version"] == 2


def test_a_live_edit_writes_a_version_that_profiles_in_flight_move_onto(stack: Stack) -> None:
    scenario_id = scenarios.create(journey())["scenario_id"]
    scenarios.activate(scenario_id)
    in_flight(stack, scenario_id)
    stack.queues.take("steps")

    edited = scenarios.replace(scenario_id, journey(NIGHTLY, name="Edited"))

    assert edited["version"] == 2
    assert stack.queues.take("steps") == [Migrate(instance_id="i1")]
    assert [entry.trigger_id for entry in stack.storage.schedules()] == ["nightly"]
    listed, token = scenarios.versions(scenario_id, 1, None)
    assert [v["version"] for v in listed] == [1]
    assert token is not None
    assert [v["version"] for v in scenarios.versions(scenario_id, 1, token)[0]] == [2]


def test_trash_and_restore_go_back_to_the_status_before(stack: Stack) -> None:
    scenario_id = scenarios.create(journey())["scenario_id"]
    scenarios.activate(scenario_id)
    with pytest.raises(scenarios.LifecycleError):
        scenarios.trash(scenario_id)
    scenarios.deactivate(scenario_id, keep_profiles=True)

    assert scenarios.trash(scenario_id)["status"] == "trashed"
    with pytest.raises(scenarios.LifecycleError):
        scenarios.activate(scenario_id)
    assert scenarios.restore(scenario_id)["status"] == "stopped"
    with pytest.raises(scenarios.NotFound):
        scenarios.get("nope")
    assert scenarios.find("nope") is None


def test_the_list_pages_through_the_scenarios_its_filters_keep(stack: Stack) -> None:
    wanted = {scenarios.create(journey(tags=["rare"]))["scenario_id"] for _ in range(3)}
    for _ in range(4):
        scenarios.create(journey(tags=["common"]))

    walked, token = [], None
    while True:
        page = scenarios.list_page(2, token, tag="rare")
        walked.append(page.scenarios)
        token = page.next_token
        if token is None:
            break

    assert [len(scenarios_of_page) for scenarios_of_page in walked] == [2, 1]
    assert {m["scenario_id"] for page in walked for m in page} == wanted


# --- schedules and segments -----------------------------------------------------------


def test_a_due_schedule_run_fans_out_once(stack: Stack) -> None:
    scenario_id = scenarios.create(journey(NIGHTLY))["scenario_id"]
    scenarios.activate(scenario_id)
    run_at = START.replace(hour=19, minute=30)

    assert schedules.tick(run_at - timedelta(minutes=1)) == 0
    assert schedules.tick(run_at) == 1
    assert schedules.tick(run_at) == 0  # claimed: the next run is tomorrow's
    jobs = stack.queues.take("segments")
    assert len(jobs) == 4  # the fewest parts of a scan
    assert {job.run_id for job in jobs if isinstance(job, ScanSegment)} == {
        f"{scenario_id}:nightly:2026-06-10T19:30:00Z"
    }
    (entry,) = stack.storage.schedules()
    assert entry.next_run == run_at + timedelta(days=1)


def test_a_segment_campaign_captures_the_members_of_its_database(stack: Stack) -> None:
    scenario_id = scenarios.create(journey())["scenario_id"]
    scenarios.activate(scenario_id)
    stack.storage.put_profile("customers", "ada", {"city": "Berlin"})
    stack.storage.put_profile("customers", "bob", {"city": "Paris"})
    stack.storage.put_profile("leads", "cy", {"city": "Berlin"})
    berliners = {"field": "profile.city", "op": "eq", "value": "Berlin"}
    stack.storage.define_segment("berlin", {"profile_db": "customers", "where": berliners})

    assert segments.count_members("berlin") == 1
    assert segments.count_members("nope") is None
    schedules.quick_send(stack.storage.version(scenario_id, 1), "berlin")
    results = [
        schedules.process_segment(job, START)
        for job in stack.queues.take("segments")
        if isinstance(job, ScanSegment)
    ]

    assert sum(result.scanned for result in results) == 2
    captured = [m for m in stack.queues.take("steps") if isinstance(m, Capture)]
    assert [(m.profile_db, m.profile_id) for m in captured] == [("customers", "ada")]


# --- listened event types -----------------------------------------------------------------


def test_activations_and_edits_list_what_journeys_listen_to_and_a_stack_lists_its_past_once(
    stack: Stack,
) -> None:
    scenario_id = scenarios.create(journey(exit_on=[{"event": "order.created"}]))["scenario_id"]
    scenarios.activate(scenario_id)
    assert stack.storage.listened("order.created")
    assert not stack.storage.listened("page.visited")
    waiting = journey(name="Edited", conversion={"event": "purchase", "within": "P7D"})
    waiting["nodes"]["wait"] = {"type": "wait_for", "condition": {"field": "profile.vip",
                                "op": "eq", "value": True}, "timeout": "P1D", "next": "bye"}  # fmt: skip
    scenarios.replace(scenario_id, waiting)
    assert stack.storage.listened("purchase")
    assert stack.storage.listened("page.visited")  # a wait for a condition hears any event
    assert stack.storage.listened("order.created")  # version 1's journeys: kept listed

    # a stack whose scenarios were saved before it listed them, as an upgraded one
    stack.storage.listening.clear()
    stack.storage.listeners_done = stack.storage.triggers_done = False
    assert stack.storage.listened("page.visited")  # unlisted yet: every event is heard
    assert stack.storage.read_ahead(ReadAhead(event_types=["signup"])).triggered is None
    assert scenarios.list_listeners() == 1
    assert stack.storage.listeners_listed()
    assert stack.storage.triggers_listed()
    assert stack.storage.read_ahead(ReadAhead(event_types=["signup"])).triggered == {
        "signup": [scenario_id]
    }
    assert stack.storage.listened("order.created")
    assert stack.storage.listened("purchase")
    assert scenarios.list_listeners() == 0  # once
