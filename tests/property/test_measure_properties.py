"""Properties of the measurement groups (SPEC §8).

1. A holdout of p % holds out p % (± 1 point) of 10,000 simulated profile ids, and the
   global control group likewise; the two are independent of each other.
2. A profile's group does not depend on the scenario's version, and its control group
   membership not on the scenario at all.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.engine import CompiledScenario
from chalicelib.engine.measure import group_of
from chalicelib.engine.state import CONTROL, HOLDOUT, TREATMENT
from chalicelib.scenarios.facts import Profile

PROFILES = [Profile(f"customer-{index}") for index in range(10_000)]


def scenario(
    scenario_id: str = "s1", version: int = 1, holdout: float | None = 10
) -> CompiledScenario:
    document = {
        "name": "Measured",
        "entry": "hello",
        "nodes": {"hello": {"type": "send", "channel": "email", "template": {"body": "Hi"}}},
    }
    if holdout is not None:
        document["holdout"] = {"percent": holdout}
    return CompiledScenario.from_document(document, scenario_id=scenario_id, version=version)


def share(scenario: CompiledScenario, group: str, control_percent: float = 0.0) -> float:
    groups = [group_of(scenario, profile, control_percent) for profile in PROFILES]
    return groups.count(group) / len(groups) * 100


def test_a_ten_percent_holdout_holds_out_ten_percent() -> None:
    for scenario_id in ("welcome", "abandoned-cart", "s-3f9c2a", "win_back"):
        assert 9 <= share(scenario(scenario_id), HOLDOUT) <= 11, scenario_id


def test_a_five_percent_control_group_holds_five_percent() -> None:
    assert 4 <= share(scenario(holdout=None), CONTROL, control_percent=5) <= 6


def test_holdout_and_control_are_independent() -> None:
    # Control takes 10 % first; the holdout then takes 10 % of the other 90 %.
    measured = scenario(holdout=10)
    assert 9 <= share(measured, CONTROL, control_percent=10) <= 11
    assert 8 <= share(measured, HOLDOUT, control_percent=10) <= 10


profile_ids = st.text(min_size=1, max_size=40)


@settings(max_examples=200)
@given(
    profile_id=profile_ids,
    scenario_id=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
    percent=st.floats(min_value=0.01, max_value=99.99),
    control_percent=st.floats(min_value=0, max_value=100),
    version=st.integers(min_value=2, max_value=50),
)
def test_groups_are_stable_across_versions(
    profile_id: str, scenario_id: str, percent: float, control_percent: float, version: int
) -> None:
    profile = Profile(profile_id)
    first = group_of(scenario(scenario_id, 1, percent), profile, control_percent)
    later = group_of(scenario(scenario_id, version, percent), profile, control_percent)
    assert first == later


@settings(max_examples=200)
@given(profile_id=profile_ids, control_percent=st.floats(min_value=0.01, max_value=100))
def test_control_is_the_same_in_every_scenario(profile_id: str, control_percent: float) -> None:
    profile = Profile(profile_id)
    groups = {
        group_of(scenario(scenario_id), profile, control_percent) == CONTROL
        for scenario_id in ("a", "b", "c")
    }
    assert len(groups) == 1


@settings(max_examples=200)
@given(profile_id=profile_ids)
def test_a_transactional_scenario_treats_everyone(profile_id: str) -> None:
    document = {
        "name": "Receipt",
        "transactional": True,
        "holdout": {"percent": 99.99},
        "entry": "hello",
        "nodes": {"hello": {"type": "send", "channel": "email", "template": {"body": "Hi"}}},
    }
    receipt = CompiledScenario.from_document(document)
    assert group_of(receipt, Profile(profile_id), control_percent=100) == TREATMENT
