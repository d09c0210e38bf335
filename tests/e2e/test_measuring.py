"""Measuring what a scenario earns on the local stack (SPEC §8): a holdout measured
against its conversion goal, the stack's control group, and an experiment that picks
its winner once the virtual clock passes `decide_after`."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Stack, email, person, scenario

from chalicelib.engine.measure import holdout_point
from chalicelib.scenarios.facts import Profile

CONVERSION = {"event": "order.created", "within": "P7D"}
PROFILES = [f"p{number}" for number in range(24)]


def enter(stack: Stack, scenario_id: str, profile_ids: list[str]) -> None:
    for number, profile_id in enumerate(profile_ids):
        stack.upsert(profile_id, person(profile_id, number))
        stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": profile_id}, status=201)
    stack.drain()


def order(stack: Stack, profile_id: str) -> None:
    stack.event("order.created", profile_id, event_id=f"order-{profile_id}", data={"total": 20})


def test_a_holdout_is_sent_nothing_and_its_conversions_give_the_lift(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario({"hello": email("Hello")}, holdout={"percent": 50}, conversion=CONVERSION)
    )
    enter(stack, scenario_id, PROFILES)
    held = [
        p for p in PROFILES if holdout_point(scenario_id, Profile(p, profile_db="customers")) < 50
    ]
    treated = [p for p in PROFILES if p not in held]
    assert len(held) >= 4
    assert len(treated) >= 4
    assert {m["to"] for m in stack.sent(channel="email")} == {f"{p}@example.com" for p in treated}

    stack.advance("P1D")
    for profile_id in [*treated[:4], held[0]]:
        order(stack, profile_id)
    order(stack, treated[0])  # the same event again: counted once
    stack.drain()

    stats = stack.stats(scenario_id)
    assert stats["entered"] == len(PROFILES)
    assert stats["conversions"] == 5
    assert stats["treatment"] == {
        "entered": len(treated), "conversions": 4, "conversion_rate": 4 / len(treated),
    }  # fmt: skip
    holdout = stats["holdout"]
    assert (holdout["entered"], holdout["conversions"]) == (len(held), 1)
    assert holdout["lift"] == pytest.approx((4 / len(treated)) / (1 / len(held)) - 1)
    assert 0 < holdout["p_value"] < 1
    assert stats["control"]["entered"] == 0
    assert stack.get(f"/scenarios/{scenario_id}/stats?version=1")["holdout"] == holdout

    stack.advance("P7D")  # every window has closed
    order(stack, [*treated[4:], *held[1:]][0])  # one that had not converted
    stack.drain()
    assert stack.stats(scenario_id)["conversions"] == 5


def test_the_control_group_is_set_for_the_stack_and_measured_apart(stack: Stack) -> None:
    assert stack.get("/settings/control") == {"percent": 0}
    stack.put("/settings/control", {"percent": 100}, status=400)
    stack.put("/settings/control", {"percent": "5"}, status=400)
    assert stack.put("/settings/control", {"percent": 50}) == {"percent": 50}
    assert stack.get("/settings/control") == {"percent": 50}
    scenario_id = stack.create(scenario({"hello": email("Hello")}, conversion=CONVERSION))
    receipts = stack.create(
        scenario({"hello": email("Receipt")}, name="Receipts", transactional=True)
    )
    enter(stack, scenario_id, PROFILES)
    enter(stack, receipts, PROFILES)
    control = stack.stats(scenario_id)["control"]["entered"]
    assert 0 < control < len(PROFILES)
    assert len(stack.sent(subject="Hello")) == len(PROFILES) - control
    assert len(stack.sent(subject="Receipt")) == len(PROFILES)  # transactional: everyone
    assert stack.stats(receipts)["control"]["entered"] == 0


EXPERIMENT: dict[str, Any] = {
    "type": "experiment",
    "branches": [
        {"name": "plain", "percent": 50, "next": "plain_mail"},
        {"name": "bold", "percent": 50, "next": "bold_mail"},
    ],
    "metric": "conversion",
    "decide_after": "P2D",
    "min_per_branch": 5,
    "confidence": 0.9,
}


def test_an_experiment_decides_its_winner_after_decide_after_and_sends_later_profiles_down_it(
    stack: Stack,
) -> None:
    scenario_id = stack.create(
        scenario(
            {"exp": EXPERIMENT, "plain_mail": email("Plain"), "bold_mail": email("Bold")},
            conversion=CONVERSION,
        )
    )
    enter(stack, scenario_id, PROFILES)
    for profile_id in PROFILES:
        if stack.instance(profile_id, scenario_id).branches["exp"].name == "bold":
            order(stack, profile_id)
    stack.drain()

    stack.advance("P1D")  # not yet due
    experiment = stack.stats(scenario_id)["experiments"]["exp"]
    assert experiment["winner"] is None
    bold = experiment["branches"]["bold"]
    assert bold["count"] == bold["entered"] >= 5
    assert bold["rate"] == 1.0
    assert bold["p_best"] > 0.99

    stack.advance("P1DT1M")  # the minute tick decides, nobody asked for the stats
    later = ["late1", "late2", "late3"]
    enter(stack, scenario_id, later)
    for profile_id in later:
        path = stack.instance(profile_id, scenario_id).path
        assert [step["node"] for step in path] == ["exp", "bold_mail"]
    assert len(stack.sent(subject="Bold", to="late1@example.com")) == 1
    experiment = stack.stats(scenario_id)["experiments"]["exp"]
    assert experiment["winner"] == "bold"
    assert experiment["decided_at"] is not None
    assert experiment["branches"]["bold"]["entered"] == bold["entered"]  # winners not counted
    assert stack.stats(scenario_id)["branches"]["exp"]["bold"]["conversions"] == bold["count"]


def test_a_live_edit_keeps_a_decided_experiment_unless_its_branches_change(
    stack: Stack,
) -> None:
    nodes = {"exp": EXPERIMENT, "plain_mail": email("Plain"), "bold_mail": email("Bold")}
    scenario_id = stack.create(scenario(nodes, conversion=CONVERSION))
    enter(stack, scenario_id, PROFILES)
    for profile_id in PROFILES:
        if stack.instance(profile_id, scenario_id).branches["exp"].name == "bold":
            order(stack, profile_id)
    stack.drain()
    stack.advance("P2DT1M")
    assert stack.stats(scenario_id)["experiments"]["exp"]["winner"] == "bold"

    stack.put(f"/scenarios/{scenario_id}", scenario(nodes, conversion=CONVERSION, name="Renamed"))
    assert (
        stack.get(f"/scenarios/{scenario_id}/stats?version=2")["experiments"]["exp"]["winner"]
        == "bold"
    )
    enter(stack, scenario_id, ["kept"])
    assert "exp" not in stack.instance("kept", scenario_id).branches

    reshared = {**EXPERIMENT, "branches": [
        {"name": "plain", "percent": 20, "next": "plain_mail"},
        {"name": "bold", "percent": 80, "next": "bold_mail"},
    ]}  # fmt: skip
    stack.put(
        f"/scenarios/{scenario_id}", scenario({**nodes, "exp": reshared}, conversion=CONVERSION)
    )
    experiment = stack.stats(scenario_id)["experiments"]["exp"]
    assert experiment["winner"] is None
    assert experiment["branches"]["bold"]["entered"] == 0  # started again
    enter(stack, scenario_id, ["restarted"])
    assert "exp" in stack.instance("restarted", scenario_id).branches
