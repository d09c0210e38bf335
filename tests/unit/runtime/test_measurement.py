"""Measuring what a scenario earns at run time (SPEC §8) on the in-memory storage:
groups and conversions counted, experiments decided by the tick, winners followed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.engine.compiled import CompiledScenario
from chalicelib.engine.measure import control_point, holdout_point
from chalicelib.runtime import events, measurement
from chalicelib.runtime.messages import EventBody, EventMessage
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.facts import Event, Profile
from tests.unit.runtime.test_use_cases import ADA, START, Stack, email

CONVERSION = {"event": "purchase", "within": "P7D"}  # order.created also reads revenue


def send(stack: Stack, event_type: str, profile_id: str, event_id: str, **data: Any) -> None:
    event = Event(event_type, stack.clock.now(), data, id=event_id)
    events.process(
        EventMessage(profile_db="customers", profile_id=profile_id, event=EventBody.of(event))
    )
    stack.drain()


def profiles_split(
    scenario_id: str, percent: float, count: int = 60
) -> tuple[list[str], list[str]]:
    """Profile ids that the holdout of `percent` keeps in treatment, and holds out."""
    ids = [f"p{i}" for i in range(count)]
    held = [
        i for i in ids if holdout_point(scenario_id, Profile(i, profile_db="customers")) < percent
    ]
    return [i for i in ids if i not in held], held


def counters(stack: Stack, scenario_id: str) -> dict[str, int]:
    return stack.storage.version_counters(scenario_id, 1).counts


def test_conversions_are_counted_per_group_once_per_instance_within_the_window(
    stack: Stack,
) -> None:
    scenario_id = stack.scenario(
        {"hello": email("Hello")}, holdout={"percent": 50}, conversion=CONVERSION
    )
    treated, held = profiles_split(scenario_id, 50)
    assert treated
    assert held
    for profile_id in (treated[0], treated[1], held[0]):
        send(stack, "signup", profile_id, f"signup-{profile_id}")
    stack.advance(timedelta(days=1))
    send(stack, "purchase", treated[0], "o1", total=10)
    send(stack, "purchase", treated[0], "o1", total=10)  # delivered again
    send(stack, "purchase", treated[0], "o2", total=10)  # converted already
    send(stack, "purchase", held[0], "o3", total=10)  # held out: still measured
    stack.advance(timedelta(days=7))
    send(stack, "purchase", treated[1], "o4", total=10)  # its window has closed

    counted = counters(stack, scenario_id)
    assert counted["group_entered|treatment"] == 2
    assert counted["group_entered|holdout"] == 1
    assert counted["conversions"] == 2
    assert counted["group_conversions|treatment"] == 1
    assert counted["group_conversions|holdout"] == 1
    (held_instance,) = stack.instances(held[0])
    assert held_instance.status == "exited"
    assert "conversion" in held_instance.measured


def test_the_stack_control_percent_puts_profiles_in_the_control_group(stack: Stack) -> None:
    stack.storage.set_control_percent(50, START)
    scenario_id = stack.scenario({"hello": email("Hello")})
    ids = [f"p{i}" for i in range(20)]
    for profile_id in ids:
        send(stack, "signup", profile_id, f"signup-{profile_id}")
    control = [i for i in ids if control_point(Profile(i, profile_db="customers")) < 50]
    counted = counters(stack, scenario_id)
    assert counted["group_entered|control"] == len(control) > 0
    assert counted["group_entered|treatment"] == len(ids) - len(control)
    assert counted["entered"] == len(ids)


def test_group_stats_give_rates_lift_and_p_value() -> None:
    answer = measurement.group_stats(
        {
            "group_entered|treatment": 100, "group_conversions|treatment": 20,
            "group_entered|holdout": 100, "group_conversions|holdout": 10,
        }
    )  # fmt: skip
    assert answer["conversions"] == 30
    assert answer["conversion_rate"] == pytest.approx(0.15)
    assert answer["treatment"] == {"entered": 100, "conversions": 20, "conversion_rate": 0.2}
    holdout = answer["holdout"]
    assert holdout["conversion_rate"] == 0.1
    assert holdout["lift"] == pytest.approx(1.0)
    assert 0.03 < holdout["p_value"] < 0.06  # z ≈ 1.98
    assert answer["control"]["entered"] == 0
    assert answer["control"]["lift"] is None


EXPERIMENT = {
    "type": "experiment",
    "branches": [
        {"name": "a", "percent": 50, "next": "mail_a"},
        {"name": "b", "percent": 50, "next": "mail_b"},
    ],
    "metric": "conversion",
    "decide_after": "P1D",
    "min_per_branch": 5,
    "confidence": 0.9,
}


def test_an_experiment_is_decided_by_the_tick_once_due_and_later_profiles_take_the_winner(
    stack: Stack,
) -> None:
    scenario_id = stack.scenario(
        {"exp": EXPERIMENT, "mail_a": email("A"), "mail_b": email("B")}, conversion=CONVERSION
    )
    ids = [f"p{i}" for i in range(30)]
    for profile_id in ids:
        send(stack, "signup", profile_id, f"signup-{profile_id}")
    for profile_id in ids:
        (instance,) = stack.instances(profile_id)
        if instance.branches["exp"].name == "b":
            send(stack, "purchase", profile_id, f"order-{profile_id}", total=5)
    assert measurement.decide_experiments(stack.storage, stack.clock.now()) == 0  # too early
    (waiting,) = stack.storage.decisions(scenario_id, 1).values()
    assert waiting.winner is None
    assert waiting.decide_again_at == START + timedelta(days=1)

    stack.clock.advance(timedelta(days=1))
    assert measurement.decide_experiments(stack.storage, stack.clock.now()) == 1
    (decided,) = stack.storage.decisions(scenario_id, 1).values()
    assert decided.winner == "b"
    assert decided.decided_at == stack.clock.now()

    send(stack, "signup", "late", "signup-late")
    (late,) = stack.instances("late")
    assert "exp" not in late.branches
    assert any(step.get("outcome") == "winner: b" for step in late.path)


def test_winners_are_read_once_per_unit_of_work(stack: Stack) -> None:
    scenario_id = stack.scenario(
        {"exp": EXPERIMENT, "mail_a": email("A"), "mail_b": email("B")}, conversion=CONVERSION
    )
    uow = UnitOfWork()
    uow.winners(scenario_id, 1)
    uow.winners(scenario_id, 1)
    assert stack.storage.reads["decisions"] == 1


def test_a_live_edit_carries_an_unchanged_experiment_and_restarts_a_changed_one(
    stack: Stack,
) -> None:
    nodes = {"exp": EXPERIMENT, "mail_a": email("A"), "mail_b": email("B")}
    scenario_id = stack.scenario(nodes, conversion=CONVERSION)
    old = stack.storage.version(scenario_id, 1)
    measurement.decide_experiments(stack.storage, START)
    document = old.model.model_dump(mode="json", exclude_none=True)
    same = CompiledScenario.from_document(document, scenario_id, 2)
    (carried,) = measurement.carry_experiments(stack.storage, old, same)
    assert carried.versions == (1, 2)

    changed_nodes = dict(document["nodes"])
    changed_nodes["exp"] = {**EXPERIMENT, "branches": [
        {"name": "a", "percent": 30, "next": "mail_a"},
        {"name": "b", "percent": 70, "next": "mail_b"},
    ]}  # fmt: skip
    changed = CompiledScenario.from_document({**document, "nodes": changed_nodes}, scenario_id, 3)
    assert measurement.carry_experiments(stack.storage, same, changed) == []
    assert stack.storage.decisions(scenario_id, 3) == {}


def test_an_open_counts_for_the_branch_its_message_was_sent_down_once(stack: Stack) -> None:
    scenario_id = stack.scenario(
        {
            "ab": {
                "type": "ab_split",
                "branches": [{"percent": 50, "next": "mail"}, {"percent": 50, "next": "mail"}],
            },
            "mail": email("Hello"),
        }
    )
    stack.storage.put_profile("customers", "ada", ADA)
    send(stack, "signup", "ada", "signup-ada")
    (instance,) = stack.instances("ada")
    (message,) = stack.storage.profiles[("customers", "ada")].messages.values()
    branch = instance.branches["ab"].name
    data = {"message_id": message.message_id, "scenario_id": scenario_id, "node": "mail"}
    send(stack, "message.opened", "ada", "open-1", **data)
    send(stack, "message.opened", "ada", "open-2", **data)  # opened again: once
    send(stack, "message.clicked", "ada", "click-1", **data)
    counted = counters(stack, scenario_id)
    assert counted[f"branch_opened|ab|{branch}"] == 1
    assert counted[f"branch_clicked|ab|{branch}"] == 1
    assert measurement.branch_stats(counted)["ab"][branch]["opened"] == 1
