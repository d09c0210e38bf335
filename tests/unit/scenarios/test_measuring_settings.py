"""The settings and the node of SPEC §8 as scenario documents: what validates, what is refused where."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.scenarios.model import ExperimentNode, Scenario
from chalicelib.scenarios.validation import check_scenario

HELLO = {"type": "send", "channel": "email", "template": {"subject": "Hello"}}


def document(**settings: Any) -> dict[str, Any]:
    nodes = settings.pop("nodes", {})
    return {"name": "Measured", "entry": "hello", "nodes": {"hello": HELLO, **nodes}, **settings}


def problems_of(doc: dict[str, Any]) -> dict[str, str]:
    parsed, problems = check_scenario(doc)
    assert (parsed is None) == bool(problems)
    return {problem.path: problem.message for problem in problems}


def experiment(**fields: Any) -> dict[str, Any]:
    node = {
        "type": "experiment",
        "branches": [
            {"name": "A", "percent": 50, "next": "hello"},
            {"name": "B", "percent": 50, "next": "hello"},
        ],
        "metric": "clicked",
        "decide_after": "P7D",
    }
    return {**node, **fields}


def test_every_measuring_setting_validates() -> None:
    parsed, problems = check_scenario(
        document(
            transactional=False,
            holdout={"percent": 10},
            conversion={
                "event": "order.created",
                "where": {"field": "event.data.total", "op": "gt", "value": 20},
                "within": "P7D",
            },
            rate_limit={"max": 500, "per": "PT1M"},
            entry_limit={"max": 10000, "per": "P1D"},
            reentry="per_key",
            reentry_key="event.data.cart_id",
            nodes={"exp": experiment(metric="conversion")},
        )
    )
    assert problems == []
    assert isinstance(parsed, Scenario)
    assert parsed.holdout is not None
    assert parsed.holdout.percent == 10
    assert parsed.reentry_key == "event.data.cart_id"


def test_settings_default_to_nothing_measured() -> None:
    parsed, _ = check_scenario(document())
    assert parsed is not None
    assert parsed.transactional is False
    assert (parsed.holdout, parsed.conversion, parsed.rate_limit, parsed.entry_limit) == (
        None, None, None, None,
    )  # fmt: skip


def test_experiment_defaults() -> None:
    parsed, _ = check_scenario(document(nodes={"exp": experiment()}))
    assert parsed is not None
    node = parsed.nodes["exp"]
    assert isinstance(node, ExperimentNode)
    assert (node.min_per_branch, node.confidence) == (500, 0.9)


def test_conversion_within_defaults_to_seven_days() -> None:
    parsed, _ = check_scenario(document(conversion={"event": "order.created"}))
    assert parsed is not None
    assert parsed.conversion is not None
    assert parsed.conversion.within == "P7D"


@pytest.mark.parametrize(
    ("settings", "path", "fragment"),
    [
        ({"holdout": {"percent": 0}}, "$.holdout.percent", "greater than 0"),
        ({"holdout": {"percent": 100}}, "$.holdout.percent", "less than 100"),
        ({"holdout": {"percent": 10, "share": 10}}, "$.holdout.share", "unknown field"),
        ({"conversion": {"within": "P7D"}}, "$.conversion.event", "required"),
        ({"conversion": {"event": "x", "within": "PT0S"}}, "$.conversion.within", "positive"),
        ({"conversion": {"event": "x", "within": "P1M"}}, "$.conversion.within", ""),
        (
            {"conversion": {"event": "x", "where": {"field": "x", "op": "eq", "value": 1}}},
            "$.conversion.where.field",
            "field path",
        ),
        ({"rate_limit": {"max": 0, "per": "PT1M"}}, "$.rate_limit.max", "greater than"),
        ({"rate_limit": {"max": 5}}, "$.rate_limit.per", "required"),
        ({"entry_limit": {"max": 5, "per": "-P1D"}}, "$.entry_limit.per", "positive"),
        ({"transactional": "maybe"}, "$.transactional", "boolean"),
        ({"reentry": "per_key"}, "$.reentry_key", "needs a 'reentry_key'"),
        ({"reentry_key": "event.data.cart_id"}, "$.reentry_key", "goes with reentry 'per_key'"),
        (
            {"reentry": "parallel", "reentry_key": "event.data.cart_id"},
            "$.reentry_key",
            "goes with reentry 'per_key'",
        ),
        (
            {"reentry": "per_key", "reentry_key": "profile.city"},
            "$.reentry_key",
            "capturing event",
        ),
        ({"reentry": "per_key", "reentry_key": "event."}, "$.reentry_key", "field path"),
    ],
)
def test_bad_measuring_settings(settings: dict[str, Any], path: str, fragment: str) -> None:
    problems = problems_of(document(**settings))
    assert list(problems) == [path]
    assert fragment in problems[path]


def _branches(*percents: int) -> list[dict[str, Any]]:
    return [{"name": f"b{i}", "percent": p, "next": "hello"} for i, p in enumerate(percents)]


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"branches": _branches(100)}, "$.nodes.exp.branches", "at least 2"),
        ({"branches": _branches(20, 20, 20, 20, 20)}, "$.nodes.exp.branches", "at most 4"),
        ({"branches": _branches(50, 40)}, "$.nodes.exp.branches", "sum to 90"),
        ({"branches": _branches(100, 0)}, "$.nodes.exp.branches[1].percent", "greater than"),
        (
            {"branches": [{"name": "A", "percent": 50}, {"name": "A", "percent": 50}]},
            "$.nodes.exp.branches",
            "'A' repeated",
        ),
        ({"branches": [{"percent": 50}, {"name": "B", "percent": 50}]}, "$.nodes.exp.branches[0].name", "required"),
        ({"metric": "revenue"}, "$.nodes.exp.metric", "'conversion', 'opened' or 'clicked'"),
        ({"metric": "conversion"}, "$.nodes.exp.metric", "needs the scenario's 'conversion'"),
        ({"decide_after": None}, "$.nodes.exp.decide_after", ""),
        ({"decide_after": "-P1D"}, "$.nodes.exp.decide_after", "negative"),
        ({"min_per_branch": 0}, "$.nodes.exp.min_per_branch", "greater than"),
        ({"confidence": 1}, "$.nodes.exp.confidence", "less than 1"),
        ({"confidence": 0.4}, "$.nodes.exp.confidence", "greater than or equal to 0.5"),
        ({"branches": [{"name": "A", "percent": 50, "next": "gone"}, {"name": "B", "percent": 50}]},
         "$.nodes.exp.branches[0].next", "not a node"),
    ],
)  # fmt: skip
def test_bad_experiment(fields: dict[str, Any], path: str, fragment: str) -> None:
    node = {key: value for key, value in experiment(**fields).items() if value is not None}
    problems = problems_of(document(nodes={"exp": node}))
    assert list(problems) == [path]
    assert fragment in problems[path]


def test_experiment_on_conversion_with_the_scenario_conversion_is_fine() -> None:
    doc = document(
        conversion={"event": "order.created"}, nodes={"exp": experiment(metric="conversion")}
    )
    assert problems_of(doc) == {}
