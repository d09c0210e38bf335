"""Profile merges on the in-memory storage: fields, histories and journeys move to `into`,
one instance per scenario survives, a merged id resolves to `into`, and a merge cut short
at any step is finished by its retry or by the steps queue, announced once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_use_cases import START, Stack, email

from chalicelib.adapters.memory_storage import MemoryStorage
from chalicelib.runtime import events, merges, sweeper
from chalicelib.runtime.messages import EventBody, EventMessage, Merge, parse_event
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.facts import Event

ADA = {"first_name": "Ada", "email": "ada@example.com", "consents": {"email": True, "push": False}}
BOB = {
    "first_name": "Bob",
    "email": "bob@example.com",
    "phone": "+14155550100",
    "consents": {"email": True, "push": True, "sms": True},
}


def two_waits(stack: Stack) -> str:
    """hello → a one-hour pause → a day waiting for `clicked` → bye."""
    return stack.scenario(
        {
            "hello": email("Hello", "hour"),
            "hour": {"type": "pause", "duration": "PT1H", "next": "click"},
            "click": {"type": "wait_for", "event": "clicked", "timeout": "P1D", "next": "bye"},
            "bye": email("Bye"),
        }
    )


def both_on_the_journey(stack: Stack) -> None:
    """Ada signs up and reaches `click` after an hour; Bob signs up two hours later and
    is at `hour`: his current node was entered latest."""
    stack.storage.put_profile("customers", "ada", ADA)
    stack.storage.put_profile("customers", "bob", BOB)
    stack.event("signup", "ada")
    stack.drain()
    stack.advance(timedelta(hours=2))
    stack.event("signup", "bob")
    stack.drain()


def merged_events(storage: MemoryStorage, profile_id: str) -> list[dict]:
    events = storage.profiles[("customers", profile_id)].events.values()
    return [event.data for event in events if event.type == "profile.merged"]


def test_a_merge_moves_fields_history_and_the_journey_furthest_along_to_into(
    stack: Stack,
) -> None:
    scenario_id = two_waits(stack)
    both_on_the_journey(stack)
    (ada_journey,) = stack.instances("ada")
    (bob_journey,) = stack.instances("bob")
    assert (ada_journey.node, bob_journey.node) == ("click", "hour")

    answer = merges.merge("customers", "ada", ["bob"])
    stack.drain()

    assert answer["merged"] == ["bob"]
    fields = stack.storage.profiles[("customers", "ada")].fields
    assert fields == {
        "first_name": "Ada",
        "email": "ada@example.com",
        "phone": "+14155550100",
        "consents": {"email": True, "push": False, "sms": True},
    }
    journeys = {i.instance_id: i for i in stack.instances("ada")}
    assert stack.instances("bob") == []
    survivor, ended = journeys[bob_journey.instance_id], journeys[ada_journey.instance_id]
    assert (survivor.status, survivor.node) == ("active", "hour")
    assert (ended.status, ended.reason) == ("exited", "merged")
    assert stack.storage.version_counters(scenario_id, 1).counts["exited"] == 1  # as any exit
    history = stack.storage.profiles[("customers", "ada")]
    assert {event.type for event in history.events.values()} >= {"signup", "profile.merged"}
    assert sum(1 for m in history.messages.values() if m.node == "hello") == 2
    assert merged_events(stack.storage, "ada") == [{"merged": ["bob"], "derived": True}]

    # the survivor goes on with Ada's fields, and Bob's later events move it
    stack.advance(timedelta(hours=1))
    assert journeys[bob_journey.instance_id].instance_id in {
        i.instance_id for i in stack.instances("ada") if i.node == "click"
    }
    stack.event("clicked", "bob")
    stack.drain()
    survivor = next(i for i in stack.instances("ada") if i.instance_id == bob_journey.instance_id)
    assert survivor.status == "completed"
    assert "clicked" in {
        e.type for e in stack.storage.profiles[("customers", "ada")].events.values()
    }
    assert stack.storage.profiles[("customers", "bob")].events == {}


def test_the_same_merge_again_changes_nothing_and_announces_once(stack: Stack) -> None:
    two_waits(stack)
    both_on_the_journey(stack)
    first = merges.merge("customers", "ada", ["bob"])
    stack.drain()
    before = (stack.storage.profiles[("customers", "ada")].fields, stack.instances("ada"))

    again = merges.merge("customers", "ada", ["bob", "bob"])
    stack.drain()

    assert again == first
    assert (stack.storage.profiles[("customers", "ada")].fields, stack.instances("ada")) == before
    assert len(merged_events(stack.storage, "ada")) == 1


STEPS = ("alias_profile", "fold_profile", "move_profile_rows", "commit", "finish_merge")


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("finished_by", ["retry", "steps queue"])
def test_a_merge_cut_short_at_any_step_is_finished_the_same(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, step: str, finished_by: str
) -> None:
    two_waits(stack)
    both_on_the_journey(stack)
    original = getattr(stack.storage, step)
    calls = [0]

    def crashing(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError(f"{step} crashed")
        return original(*args, **kwargs)

    monkeypatch.setattr(stack.storage, step, crashing)
    with pytest.raises(RuntimeError):
        merges.merge("customers", "ada", ["bob"])
    if finished_by == "retry":
        merges.merge("customers", "ada", ["bob"])
    else:
        stack.clock.advance(merges.RESUME_AFTER)
        overdue = list(stack.storage.overdue_rows(stack.clock.now()))
        assert [type(row.message) for row in overdue] == [Merge]
        sweeper.sweep(stack.clock.now())
    stack.drain()

    fields = stack.storage.profiles[("customers", "ada")].fields
    assert fields is not None
    assert fields["phone"] == "+14155550100"
    assert stack.instances("bob") == []
    statuses = sorted((i.status, i.reason or "") for i in stack.instances("ada"))
    assert statuses == [("active", ""), ("exited", "merged")]
    assert len(merged_events(stack.storage, "ada")) == 1
    assert stack.storage.merges[merges.merge_id("customers", "ada", ["bob"])].done
    assert not any(
        kept.dispatch_at for kept in stack.storage.rows.values() if kept.row.kind == "merge"
    )


@pytest.mark.parametrize(
    ("into", "merged", "status", "field"),
    [
        ("ada", ["ada"], 400, "$.from[0]"),
        ("nobody", ["bob"], 404, "$.into"),
        ("ada", ["nobody"], 404, "$.from[0]"),
        ("ada", [], 400, "$.from"),
        ("ada", [f"p{n}" for n in range(101)], 400, "$.from"),
    ],
)
def test_what_cannot_be_merged_is_refused_naming_the_field(
    stack: Stack, into: str, merged: list[str], status: int, field: str
) -> None:
    stack.storage.put_profile("customers", "ada", ADA)
    stack.storage.put_profile("customers", "bob", BOB)
    with pytest.raises(merges.MergeRefused) as refused:
        merges.merge("customers", into, merged)
    assert (refused.value.status, str(refused.value).split(":")[0]) == (status, field)
    assert stack.storage.merges == {}
    assert stack.storage.aliases == {}


def test_a_profile_merged_into_another_cannot_be_merged_elsewhere(stack: Stack) -> None:
    for profile_id in ("ada", "bob", "cy"):
        stack.storage.put_profile("customers", profile_id, ADA)
    merges.merge("customers", "ada", ["bob"])
    with pytest.raises(merges.MergeRefused) as refused:
        merges.merge("customers", "cy", ["bob"])
    assert (refused.value.status, str(refused.value)[:9]) == (409, "$.from[0]")
    with pytest.raises(merges.MergeRefused) as into_merged:
        merges.merge("customers", "bob", ["cy"])
    assert (into_merged.value.status, str(into_merged.value)[:6]) == (409, "$.into")


def test_a_merged_id_resolves_to_into_along_a_chain(stack: Stack) -> None:
    for profile_id in ("ada", "bob", "cy"):
        stack.storage.put_profile("customers", profile_id, ADA)
    merges.merge("customers", "bob", ["cy"])
    merges.merge("customers", "ada", ["bob"])
    assert merges.resolve(UnitOfWork(), "customers", "cy") == "ada"
    uow = UnitOfWork()
    uow.profile("customers", "cy")
    aliases_read = stack.storage.reads["merged_into"]
    assert merges.resolve(uow, "customers", "cy") == "ada"  # cy's hop from the profile read
    assert stack.storage.reads["merged_into"] == aliases_read + 2  # bob's and ada's aliases
    stack.event("visited", "cy")
    assert "visited" in {
        e.type for e in stack.storage.profiles[("customers", "ada")].events.values()
    }
    assert isinstance(stack.queues.sent["events"][0][0], EventMessage)


def test_a_batch_of_events_reads_its_profiles_aliases_at_once(stack: Stack) -> None:
    for profile_id in ("ada", "bob", "cy"):
        stack.storage.put_profile("customers", profile_id, ADA)
    merges.merge("customers", "ada", ["bob"])
    batch = [
        EventMessage(
            profile_db="customers", profile_id=profile_id,
            event=EventBody.of(Event("visited", START, {}, id=f"visit-{profile_id}")),
        ).model_dump_json()
        for profile_id in ("ada", "bob", "cy", "cy")
    ] + ["not an event"]  # fmt: skip
    reads = dict(stack.storage.reads)
    uow = UnitOfWork(buffered=True)
    events.read_ahead(uow, batch)
    for body in batch[:4]:
        events.process(parse_event(body), uow)
    uow.flush()  # the batch's history
    assert stack.storage.reads["read_ahead"] == reads.get("read_ahead", 0) + 1
    for read in ("merged_into", "listened", "scenarios_for_event"):
        assert stack.storage.reads[read] == reads.get(read, 0)
    visits = [
        e.id for e in stack.storage.profiles[("customers", "ada")].events.values()
        if e.type == "visited"
    ]  # fmt: skip
    assert sorted(visits) == ["visit-ada", "visit-bob"]  # bob's applies to ada
