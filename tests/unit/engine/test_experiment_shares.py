"""An `experiment` node of three or four branches splits by its percents (SPEC §1.3), and
with a decided winner sends everyone down the winner whatever its share was."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from chalicelib.engine import Send

INSTANCES = 4_000


def mail(subject: str) -> dict[str, Any]:
    return {"type": "send", "channel": "email", "template": {"subject": subject}}


def experiment(percents: list[int]) -> dict[str, Any]:
    return {
        "type": "experiment",
        "branches": [
            {"name": f"b{index}", "percent": percent, "next": f"mail{index}"}
            for index, percent in enumerate(percents)
        ],
        "metric": "opened",
        "decide_after": "P7D",
    }


def nodes(percents: list[int]) -> dict[str, Any]:
    return {
        "exp": experiment(percents),
        **{f"mail{index}": mail(f"b{index}") for index in range(len(percents))},
    }


@pytest.mark.parametrize("percents", [[20, 30, 50], [10, 20, 30, 40], [70, 10, 10, 10]])
def test_the_branches_take_their_percent_of_the_profiles(
    make_scenario, make_profile, enter, pick, percents
):
    scenario = make_scenario(nodes(percents))
    taken: Counter[str] = Counter()
    for index in range(INSTANCES):
        admission = enter(scenario, make_profile(f"p{index}"), instance_id=f"i{index}")
        name = admission.instance.branches["exp"].name
        assert [s.subject for s in pick(admission.steps[0], Send)] == [name]
        taken[name] += 1
    for index, percent in enumerate(percents):
        share = taken[f"b{index}"] / INSTANCES * 100
        assert percent - 3 <= share <= percent + 3, (index, share)


def test_a_winner_with_a_small_share_takes_everyone(make_scenario, make_profile, enter, pick):
    scenario = make_scenario(nodes([70, 10, 10, 10]))
    for index in range(200):
        admission = enter(
            scenario, make_profile(f"p{index}"), instance_id=f"i{index}", winners={"exp": "b3"}
        )
        assert [s.subject for s in pick(admission.steps[0], Send)] == ["b3"]
