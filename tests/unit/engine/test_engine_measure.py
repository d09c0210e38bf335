"""Measuring what a scenario earns (SPEC §8) in the engine: holdout and global control,
conversions, engagement per branch, the experiment node and its decision, entry and
rate limits, `per_key` re-entry, and what `simulate` shows of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.engine import (
    ACTIVE,
    COMPLETED,
    EXITED,
    CountStat,
    Exit,
    Send,
    Simulation,
    capture,
    end,
    simulate,
)
from chalicelib.engine.measure import (
    DECIDE_AGAIN_AFTER,
    METRIC_COUNTER,
    control_point,
    conversion_deadline,
    convert,
    decide,
    engage,
    entry_window,
    holdout_point,
    same_experiment,
)
from chalicelib.engine.state import CONTROL, HOLDOUT, TREATMENT
from chalicelib.engine.statistics import Proportion
from chalicelib.scenarios.facts import Event, Message, Profile

NOW = datetime(2026, 6, 10, 10, tzinfo=UTC)  # the engine tests' "now" (conftest)

HELLO = {"type": "send", "channel": "email", "template": {"subject": "Hello"}, "next": "wait"}
WAIT = {"type": "pause", "duration": "P3D"}
ORDER = {"event": "order.created", "where": {"field": "event.data.total", "op": "gte", "value": 10}}


def profile_ids(count: int = 400) -> list[str]:
    return [f"profile-{i}" for i in range(count)]


def held_out_id(scenario_id: str, below: float) -> str:
    """A profile id whose holdout point in `scenario_id` is below `below`."""
    return next(
        i for i in profile_ids() if holdout_point(scenario_id, Profile(i)) < below
    )  # fmt: skip


def kept_id(scenario_id: str, above: float) -> str:
    return next(i for i in profile_ids() if holdout_point(scenario_id, Profile(i)) >= above)


def controlled_id(below: float) -> str:
    return next(i for i in profile_ids() if control_point(Profile(i)) < below)


# --- holdout and the global control group --------------------------------------------


def test_a_held_out_profile_is_counted_entered_sent_nothing_and_exits(
    make_scenario, make_profile, enter, pick, path_of
):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT}, holdout={"percent": 10})

    admission = enter(scenario, make_profile(held_out_id("s1", 10)))

    instance = admission.instance
    assert instance is not None
    assert (instance.status, instance.reason, instance.group) == (EXITED, "holdout", HOLDOUT)
    assert pick(admission.steps[0], Send) == []
    assert path_of(admission.steps[0]) == [("hello", "holdout")]
    effects = admission.steps[0].effects
    assert CountStat("entered", group=HOLDOUT) in effects
    assert CountStat("exited") in effects
    assert not any(isinstance(e, CountStat) and e.name == "node_entered" for e in effects)


def test_a_profile_outside_the_holdout_gets_the_journey(make_scenario, make_profile, enter, pick):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT}, holdout={"percent": 10})

    admission = enter(scenario, make_profile(kept_id("s1", 10)))

    assert admission.instance.group == TREATMENT
    assert admission.instance.status == ACTIVE
    assert len(pick(admission.steps[0], Send)) == 1
    assert CountStat("entered", group=TREATMENT) in admission.steps[0].effects


def test_holdout_is_stable_across_versions_and_differs_between_scenarios(make_scenario):
    versions = [
        make_scenario({"hello": HELLO, "wait": WAIT}, version=v, holdout={"percent": 30})
        for v in (1, 2)
    ]
    other = make_scenario({"hello": HELLO, "wait": WAIT}, scenario_id="s2", holdout={"percent": 30})

    def held(scenario):
        return {
            i
            for i in profile_ids()
            if capture(scenario, Profile(i), _signup(), instance_id=i, now=NOW).instance.group
            == HOLDOUT
        }

    assert held(versions[0]) == held(versions[1])
    assert held(versions[0]) != held(other)


def test_the_global_control_group_holds_the_same_profiles_in_every_scenario(
    make_scenario, make_profile, enter, pick
):
    profile = make_profile(controlled_id(5))
    for scenario_id in ("s1", "s2", "s3"):
        scenario = make_scenario({"hello": HELLO, "wait": WAIT}, scenario_id=scenario_id)

        admission = enter(scenario, profile, control_percent=5)

        instance = admission.instance
        assert (instance.status, instance.reason, instance.group) == (EXITED, "control", CONTROL)
        assert pick(admission.steps[0], Send) == []
        assert CountStat("entered", group=CONTROL) in admission.steps[0].effects


def test_without_a_control_percent_nobody_is_in_the_control_group(
    make_scenario, make_profile, enter
):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT})
    assert enter(scenario, make_profile(controlled_id(5))).instance.group == TREATMENT


def test_transactional_scenarios_hold_nobody_out(make_scenario, make_profile, enter, pick):
    scenario = make_scenario(
        {"hello": HELLO, "wait": WAIT}, transactional=True, holdout={"percent": 99.99}
    )
    for profile_id in profile_ids(20):
        admission = enter(scenario, make_profile(profile_id), control_percent=99.99)
        assert admission.instance.group == TREATMENT
        assert len(pick(admission.steps[0], Send)) == 1


def _signup() -> Event:
    return Event("signup", NOW, {}, id="signup-1")


# --- conversions ---------------------------------------------------------------------


def converting_scenario(make_scenario, **settings):
    return make_scenario(
        {"hello": HELLO, "wait": WAIT},
        conversion={**ORDER, "within": "P7D"},
        **settings,
    )


def test_a_matching_event_within_the_window_converts_once(
    make_scenario, make_profile, make_event, enter
):
    scenario = converting_scenario(make_scenario)
    profile = make_profile()
    instance = enter(scenario, profile).instance
    order = make_event("order.created", NOW + timedelta(days=2), {"total": 25})

    first = convert(scenario, instance, profile, order, order.occurred_at)
    again = convert(scenario, first.instance, profile, order, order.occurred_at)

    assert first.effects == [CountStat("conversions", group=TREATMENT)]
    assert first.instance.measured["conversion"] == order.occurred_at
    assert "conversion" not in instance.measured  # the given instance is left as it was
    assert again.effects == []
    assert again.instance is first.instance


@pytest.mark.parametrize(
    ("event_type", "offset", "total", "converts"),
    [
        ("order.created", timedelta(days=7), 10, True),  # the window's last moment
        ("order.created", timedelta(days=7, seconds=1), 10, False),
        ("order.created", timedelta(seconds=-1), 10, False),  # before the entry
        ("order.created", timedelta(hours=1), 9, False),  # `where` does not hold
        ("cart.updated", timedelta(hours=1), 10, False),
    ],
)
def test_what_converts(
    make_scenario, make_profile, make_event, enter, event_type, offset, total, converts
):
    scenario = converting_scenario(make_scenario)
    profile = make_profile()
    instance = enter(scenario, profile).instance
    event = make_event(event_type, NOW + offset, {"total": total})

    step = convert(scenario, instance, profile, event, NOW + offset)

    assert bool(step.effects) is converts


def test_the_capturing_event_does_not_convert(make_scenario, make_profile, make_event):
    scenario = make_scenario(
        {"hello": HELLO, "wait": WAIT},
        triggers=[{"id": "order", "type": "event", "event": "order.created", "next": "hello"}],
        conversion={"event": "order.created"},
    )
    profile = make_profile()
    order = make_event("order.created", data={"total": 50})
    instance = capture(scenario, profile, order, instance_id="i1", now=NOW, trigger_id="order")
    instance = instance.instance

    assert convert(scenario, instance, profile, order, NOW).effects == []


def test_ended_and_held_out_instances_still_convert(make_scenario, make_profile, make_event, enter):
    scenario = converting_scenario(make_scenario, holdout={"percent": 10})
    held = enter(scenario, make_profile(held_out_id("s1", 10))).instance
    treated = enter(scenario, make_profile(kept_id("s1", 10))).instance
    ended = end(scenario, treated, NOW + timedelta(hours=1)).instance
    order = make_event("order.created", NOW + timedelta(days=1), {"total": 30})

    assert ended.status != ACTIVE
    assert convert(scenario, held, Profile(held.profile_id), order, NOW).effects == [
        CountStat("conversions", group=HOLDOUT)
    ]
    assert convert(scenario, ended, Profile(ended.profile_id), order, NOW).effects == [
        CountStat("conversions", group=TREATMENT)
    ]


def test_conversion_where_reads_the_entry_and_the_profile(make_scenario, make_event, enter):
    scenario = make_scenario(
        {"hello": HELLO, "wait": WAIT},
        conversion={
            "event": "order.created",
            "where": {
                "all": [
                    {"field": "event.data.cart_id", "op": "eq", "value": {"ref": "entry.data.cart_id"}},
                    {"field": "profile.tier", "op": "eq", "value": "gold"},
                ]
            },
        },
    )  # fmt: skip
    gold = Profile("ada", {"tier": "gold"})
    instance = enter(scenario, gold, make_event(data={"cart_id": "c1"})).instance
    same_cart = make_event("order.created", NOW + timedelta(hours=1), {"cart_id": "c1"})
    other_cart = make_event("order.created", NOW + timedelta(hours=1), {"cart_id": "c2"})

    assert convert(scenario, instance, gold, same_cart, NOW).effects
    assert not convert(scenario, instance, gold, other_cart, NOW).effects
    assert not convert(scenario, instance, Profile("ada", {}), same_cart, NOW).effects


def test_conversion_deadline(make_scenario, make_profile, enter):
    measured = converting_scenario(make_scenario)
    instance = enter(measured, make_profile()).instance
    assert conversion_deadline(measured, instance) == NOW + timedelta(days=7)
    unmeasured = make_scenario({"hello": HELLO, "wait": WAIT})
    assert conversion_deadline(unmeasured, instance) is None


# --- branches: ab_split and experiment -----------------------------------------------

EXPERIMENT = {
    "type": "experiment",
    "branches": [
        {"name": "A", "percent": 50, "next": "mail_a"},
        {"name": "B", "percent": 50, "next": "mail_b"},
    ],
    "metric": "conversion",
    "decide_after": "P7D",
    "min_per_branch": 100,
}


def mail(subject):
    return {"type": "send", "channel": "email", "template": {"subject": subject}, "next": "wait"}


def experiment_scenario(make_scenario, **node):
    return make_scenario(
        {"exp": {**EXPERIMENT, **node}, "mail_a": mail("A"), "mail_b": mail("B"), "wait": WAIT},
        conversion={"event": "order.created"},
    )


def test_an_experiment_splits_at_random_stably_and_records_the_branch(
    make_scenario, make_profile, enter, pick
):
    scenario = experiment_scenario(make_scenario)
    taken = {}
    for index in range(200):
        instance_id = f"i{index}"
        admission = enter(scenario, make_profile(f"p{index}"), instance_id=instance_id)
        again = enter(scenario, make_profile(f"p{index}"), instance_id=instance_id)
        branch = admission.instance.branches["exp"]
        assert again.instance.branches["exp"].name == branch.name  # stable per instance
        assert branch.at == NOW
        subject = pick(admission.steps[0], Send)[0].subject
        assert subject == branch.name
        assert CountStat("branch_entered", "exp", branch.name) in admission.steps[0].effects
        taken[instance_id] = branch.name
    assert 70 < list(taken.values()).count("A") < 130


def test_with_a_winner_every_profile_takes_its_way_uncounted_in_the_branches(
    make_scenario, make_profile, enter, pick, path_of
):
    scenario = experiment_scenario(make_scenario)
    for index in range(30):
        admission = enter(
            scenario, make_profile(f"p{index}"), instance_id=f"i{index}", winners={"exp": "B"}
        )
        assert pick(admission.steps[0], Send)[0].subject == "B"
        assert path_of(admission.steps[0])[0] == ("exp", "winner: B")
        assert admission.instance.branches == {}
        assert not any(
            isinstance(e, CountStat) and e.name == "branch_entered"
            for e in admission.steps[0].effects
        )


def test_a_winner_that_is_no_branch_of_the_node_is_ignored(make_scenario, make_profile, enter):
    scenario = experiment_scenario(make_scenario)
    admission = enter(scenario, make_profile(), winners={"exp": "C"})
    assert admission.instance.branches["exp"].name in ("A", "B")


def test_ab_split_branches_are_recorded_and_counted(make_scenario, make_profile, enter):
    scenario = make_scenario(
        {
            "ab": {"type": "ab_split", "branches": [
                {"name": "short", "percent": 50, "next": "mail_a"},
                {"percent": 50, "next": "mail_b"},
            ]},
            "mail_a": mail("A"), "mail_b": mail("B"), "wait": WAIT,
        }
    )  # fmt: skip
    names = set()
    for index in range(40):
        admission = enter(scenario, make_profile(), instance_id=f"i{index}")
        name = admission.instance.branches["ab"].name
        names.add(name)
        assert CountStat("branch_entered", "ab", name) in admission.steps[0].effects
    assert names == {"short", "branch 2"}


def test_a_conversion_counts_for_every_branch_taken(make_scenario, make_profile, make_event, enter):
    scenario = experiment_scenario(make_scenario)
    profile = make_profile()
    instance = enter(scenario, profile).instance
    branch = instance.branches["exp"].name
    order = make_event("order.created", NOW + timedelta(hours=2))

    step = convert(scenario, instance, profile, order, NOW)

    assert step.effects == [
        CountStat("conversions", group=TREATMENT),
        CountStat("branch_conversions", "exp", branch),
    ]


def test_opens_and_clicks_count_once_per_branch_for_messages_after_it(
    make_scenario, make_profile, enter
):
    scenario = experiment_scenario(make_scenario, metric="opened")
    instance = enter(scenario, make_profile()).instance
    branch = instance.branches["exp"].name
    later = Message("m1", "s1", "mail_a", "email", NOW, {"opened": NOW}, instance.instance_id)
    before = Message("m0", "s1", "x", "email", NOW - timedelta(hours=1), {}, instance.instance_id)
    stranger = Message("m2", "s1", "mail_a", "email", NOW, {}, "another-instance")

    opened = engage(instance, later, "opened")
    assert opened.effects == [CountStat("branch_opened", "exp", branch)]
    assert engage(opened.instance, later, "opened").effects == []
    assert engage(opened.instance, later, "clicked").effects == [
        CountStat("branch_clicked", "exp", branch)
    ]
    assert engage(instance, before, "opened").effects == []
    assert engage(instance, stranger, "opened").effects == []
    assert engage(instance, later, "delivered").effects == []


def test_metric_counters_name_the_counted_stats():
    assert METRIC_COUNTER == {
        "conversion": "branch_conversions",
        "opened": "branch_opened",
        "clicked": "branch_clicked",
    }


# --- the experiment decision --------------------------------------------------------


def node_of(make_scenario, **fields):
    return experiment_scenario(make_scenario, **fields).nodes["exp"]


FIRST = NOW - timedelta(days=10)


def test_no_decision_before_decide_after(make_scenario):
    node = node_of(make_scenario)
    counts = {"A": Proportion(10, 1000), "B": Proportion(200, 1000)}

    decision = decide(node, counts, NOW - timedelta(days=3), NOW)

    assert decision.winner is None
    assert decision.decide_again_at == NOW + timedelta(days=4)
    assert decision.p_best["B"] > 0.99  # shown before the decision too


def test_no_decision_while_a_branch_is_under_min_per_branch(make_scenario):
    node = node_of(make_scenario, min_per_branch=500)
    counts = {"A": Proportion(10, 499), "B": Proportion(200, 1000)}

    decision = decide(node, counts, FIRST, NOW)

    assert decision.winner is None
    assert decision.decide_again_at == NOW + DECIDE_AGAIN_AFTER


def test_a_clearly_better_branch_wins(make_scenario):
    node = node_of(make_scenario)
    decision = decide(node, {"A": Proportion(50, 1000), "B": Proportion(90, 1000)}, FIRST, NOW)
    assert decision.winner == "B"
    assert decision.decided_at == NOW
    assert decision.decide_again_at is None


def test_an_unclear_result_is_decided_again_daily(make_scenario):
    node = node_of(make_scenario, confidence=0.95)
    counts = {"A": Proportion(100, 1000), "B": Proportion(103, 1000)}

    decision = decide(node, counts, FIRST, NOW)

    assert decision.winner is None
    assert 0.5 < decision.p_best["B"] < 0.95
    assert decision.decide_again_at == NOW + timedelta(days=1)


def test_the_confidence_decides(make_scenario):
    counts = {"A": Proportion(100, 1000), "B": Proportion(115, 1000)}
    p_best_b = decide(node_of(make_scenario), counts, FIRST, NOW).p_best["B"]
    below = node_of(make_scenario, confidence=round(p_best_b - 0.01, 3))
    above = node_of(make_scenario, confidence=round(p_best_b + 0.01, 3))
    assert decide(below, counts, FIRST, NOW).winner == "B"
    assert decide(above, counts, FIRST, NOW).winner is None


def test_before_anyone_entered_there_is_nothing_to_decide(make_scenario):
    decision = decide(node_of(make_scenario), {}, None, NOW)
    assert decision.winner is None
    assert decision.decide_again_at is None
    assert decision.p_best == pytest.approx({"A": 0.5, "B": 0.5})


def test_editing_the_branches_restarts_the_experiment(make_scenario):
    node = node_of(make_scenario)
    assert same_experiment(node, node_of(make_scenario, metric="opened"))
    assert same_experiment(node, node_of(make_scenario, min_per_branch=7))
    moved = [
        {**EXPERIMENT["branches"][0], "percent": 40},
        {**EXPERIMENT["branches"][1], "percent": 60},
    ]
    assert not same_experiment(node, node_of(make_scenario, branches=moved))
    assert not same_experiment(None, node)


# --- entry limit, rate limit ---------------------------------------------------------


def test_captures_past_the_entry_limit_are_refused(make_scenario, make_profile, enter):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT}, entry_limit={"max": 3, "per": "P1D"})
    assert enter(scenario, make_profile(), entries_in_window=2).instance is not None
    refused = enter(scenario, make_profile(), entries_in_window=3)
    assert refused.refused == "entry_limit"
    assert refused.steps == []


def test_without_an_entry_limit_the_count_does_not_matter(make_scenario, make_profile, enter):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT})
    assert enter(scenario, make_profile(), entries_in_window=10**9).refused is None


def test_entry_windows_are_fixed_from_the_epoch(make_scenario):
    daily = make_scenario({"hello": HELLO, "wait": WAIT}, entry_limit={"max": 3, "per": "P1D"})
    assert entry_window(daily.entry_limit, NOW) == (
        datetime(2026, 6, 10, tzinfo=UTC), datetime(2026, 6, 11, tzinfo=UTC),
    )  # fmt: skip
    minutes = make_scenario({"hello": HELLO, "wait": WAIT}, rate_limit={"max": 500, "per": "PT15M"})
    start, stop = entry_window(minutes.rate_limit, NOW + timedelta(minutes=20))
    assert (start, stop) == (NOW + timedelta(minutes=15), NOW + timedelta(minutes=30))


def test_a_rate_limit_is_compiled_for_the_runtime_to_pace_sends(make_scenario):
    paced = make_scenario({"hello": HELLO, "wait": WAIT}, rate_limit={"max": 500, "per": "PT1M"})
    assert (paced.rate_limit.max, paced.rate_limit.window) == (500, timedelta(minutes=1))
    assert make_scenario({"hello": HELLO, "wait": WAIT}).rate_limit is None


# --- per_key re-entry ------------------------------------------------------------------


def per_key_scenario(make_scenario):
    return make_scenario(
        {"hello": HELLO, "wait": WAIT}, reentry="per_key", reentry_key="event.data.cart_id"
    )


def test_per_key_keeps_one_instance_per_key_at_a_time(
    make_scenario, make_profile, make_event, enter
):
    scenario = per_key_scenario(make_scenario)
    profile = make_profile()
    first = enter(scenario, profile, make_event(data={"cart_id": "c1"})).instance
    assert first.reentry_key == "c1"

    same = enter(scenario, profile, make_event(data={"cart_id": "c1"}), existing=[first])
    other = enter(
        scenario, profile, make_event(data={"cart_id": "c2"}), instance_id="i2", existing=[first]
    )

    assert same.refused == "already_in"
    assert other.refused is None
    assert other.instance.reentry_key == "c2"


def test_per_key_lets_a_key_in_again_once_its_instance_finished(
    make_scenario, make_profile, make_event, enter
):
    scenario = per_key_scenario(make_scenario)
    profile = make_profile()
    first = enter(scenario, profile, make_event(data={"cart_id": "c1"})).instance
    finished = end(scenario, first, NOW, COMPLETED, None).instance

    again = enter(
        scenario, profile, make_event(data={"cart_id": "c1"}), instance_id="i2", existing=[finished]
    )

    assert again.refused is None


def test_per_key_without_a_value_is_a_key_of_its_own(
    make_scenario, make_profile, make_event, enter
):
    scenario = per_key_scenario(make_scenario)
    profile = make_profile()
    keyless = enter(scenario, profile, make_event(data={})).instance
    assert keyless.reentry_key == ""
    assert enter(scenario, profile, make_event(data={}), existing=[keyless]).refused == "already_in"
    keyed = enter(scenario, profile, make_event(data={"cart_id": 7}), existing=[keyless])
    assert keyed.instance.reentry_key == "7"


# --- simulate --------------------------------------------------------------------------


def test_simulate_shows_a_holdout_in_its_path(make_scenario):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT}, holdout={"percent": 10})
    profile_id = held_out_id("s1", 10)

    report = simulate(
        scenario, Simulation.model_validate({"profile": {"profile_id": profile_id}}), NOW
    )

    assert [(e["node"], e["outcome"]) for e in report["path"]] == [("hello", "holdout")]
    assert (report["status"], report["reason"], report["sends"]) == (EXITED, "holdout", [])


def test_simulate_shows_the_control_group(make_scenario):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT})
    request = Simulation.model_validate({"profile": {"profile_id": controlled_id(5)}})
    report = simulate(scenario, request, NOW, control_percent=5)
    assert report["reason"] == "control"


def test_simulate_shows_the_experiment_branch_or_its_winner(make_scenario):
    scenario = experiment_scenario(make_scenario)
    profile = {"profile_id": "ada", "email": "ada@example.com", "consents": {"email": True}}

    drawn = simulate(scenario, Simulation.model_validate({"profile": profile}), NOW)
    decided = simulate(
        scenario, Simulation.model_validate({"profile": profile, "winners": {"exp": "A"}}), NOW
    )

    assert drawn["path"][0]["node"] == "exp"
    assert drawn["path"][0]["outcome"] in ("A", "B")
    assert drawn["sends"][0]["subject"] == drawn["path"][0]["outcome"]
    assert decided["path"][0]["outcome"] == "winner: A"
    assert decided["sends"][0]["subject"] == "A"


def test_exit_effect_of_a_held_out_profile_names_the_reason(
    make_scenario, make_profile, enter, pick
):
    scenario = make_scenario({"hello": HELLO, "wait": WAIT}, holdout={"percent": 10})
    admission = enter(scenario, make_profile(held_out_id("s1", 10)))
    [exit_] = pick(admission.steps[0], Exit)
    assert (exit_.status, exit_.reason, exit_.node) == (EXITED, "holdout", "hello")
