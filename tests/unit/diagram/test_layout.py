"""The diagram's graph and layout: every trigger and node kind becomes a box with its
arrows, loops are back edges, and however big the scenario no two boxes overlap."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from chalicelib.diagram import Layout, Placed, layout, scenario_graph
from chalicelib.diagram.graph import ENTRY, MISSING, TRIGGER

ROOT = Path(__file__).resolve().parents[3]
WELCOME = json.loads((ROOT / "examples" / "welcome.json").read_text())


def email(subject: str, next_node: str | None = None) -> dict[str, Any]:
    node = {"type": "send", "channel": "email", "template": {"subject": subject}}
    return {**node, "next": next_node} if next_node else node


def every_kind() -> dict[str, Any]:
    """A scenario with every trigger type and every node type, each way out used."""
    return {
        "name": "Every kind",
        "entry": "hello",
        "triggers": [
            {"id": "signup", "type": "event", "event": "profile.created", "next": "hello"},
            {"id": "nightly", "type": "schedule", "daily": "19:30", "next": "hello"},
            {"id": "crm", "type": "webhook", "next": "hello"},
        ],
        "nodes": {
            "hello": email("Hello {{ profile.first_name }}", "call"),
            "call": {
                "type": "webhook",
                "url": "https://crm.example/x",
                "next": "wait",
                "on_error": "stop",
            },
            "wait": {"type": "pause", "duration": "P1DT12H", "next": "best"},
            "best": {"type": "best_time", "next": "opened"},
            "opened": {
                "type": "wait_for",
                "event": "message.opened",
                "timeout": "P2D",
                "next": "vip",
                "timeout_next": "stop",
            },
            "vip": {
                "type": "condition",
                "if": {"field": "profile.tier", "op": "eq", "value": "gold"},
                "then": "by_city",
                "else": "ab",
            },
            "by_city": {
                "type": "split",
                "branches": [
                    {
                        "name": "Berlin",
                        "if": {"field": "profile.city", "op": "eq", "value": "Berlin"},
                        "next": "points",
                    },
                    {"if": {"segment": "vip"}, "next": "code"},
                ],
                "else": "stop",
            },
            "ab": {
                "type": "ab_split",
                "branches": [{"percent": 30, "next": "points"}, {"percent": 70, "next": "try"}],
            },
            "try": {
                "type": "experiment",
                "metric": "opened",
                "decide_after": "P7D",
                "branches": [
                    {"name": "A", "percent": 50, "next": "code"},
                    {"name": "B", "percent": 50, "next": "other"},
                ],
            },
            "points": {
                "type": "update_profile",
                "ops": [{"field": "points", "op": "increment", "value": 10}],
                "next": "code",
            },
            "code": {"type": "promo_code", "pool": "P10", "next": "stop", "on_empty": "other"},
            "other": {"type": "jump", "scenario": "win-back"},
            "stop": {"type": "exit"},
        },
    }


def overlapping(boxes: list[Placed]) -> list[tuple[str, str]]:
    found = []
    for index, a in enumerate(boxes):
        for b in boxes[index + 1 :]:
            if a.x < b.right and b.x < a.right and a.y < b.bottom and b.y < a.bottom:
                found.append((a.box.key, b.box.key))
    return found


def arrows(drawn: Layout) -> set[tuple[str, str, str]]:
    return {(r.arrow.source, r.arrow.target, r.arrow.label) for r in drawn.routes}


def test_every_trigger_and_node_kind_is_a_box_with_its_summary() -> None:
    graph = scenario_graph(every_kind())
    kinds = {box.id: (box.kind, box.type, box.summary) for box in graph.boxes.values()}
    assert kinds["signup"] == (TRIGGER, "event", "on profile.created")
    assert kinds["nightly"] == (TRIGGER, "schedule", "daily at 19:30")
    assert kinds["crm"][:2] == (TRIGGER, "webhook")
    assert kinds["hello"][2] == "email: Hello {{ profile.first_name }}"
    assert kinds["call"][2] == "POST crm.example/x"
    assert kinds["wait"][2] == "1 day 12 hours"
    assert kinds["best"][2] == "best hour within 1 day"
    assert kinds["opened"][2] == "for message.opened, at most 2 days"
    assert kinds["vip"][2] == "if profile.tier = 'gold'"
    assert kinds["by_city"][2] == "2 branches"
    assert kinds["try"][2] == "2 branches, best opened after 7 days"
    assert kinds["points"][2] == "points + 10"
    assert kinds["code"][2] == "a code from P10"
    assert kinds["other"][2] == "to scenario win-back"
    assert kinds["stop"][2] == "the journey ends"
    assert ENTRY not in graph.boxes, "the entry node has a trigger: no separate entry box"


def test_every_way_out_of_a_node_is_a_labelled_arrow() -> None:
    drawn = arrows(layout(scenario_graph(every_kind())))
    assert {
        ("node/call", "node/stop", "on_error"),
        ("node/opened", "node/vip", "arrived"),
        ("node/opened", "node/stop", "timeout"),
        ("node/vip", "node/by_city", "then"),
        ("node/vip", "node/ab", "else"),
        ("node/by_city", "node/points", "Berlin"),
        ("node/by_city", "node/code", "in segment vip"),
        ("node/by_city", "node/stop", "everyone else"),
        ("node/ab", "node/points", "30 %"),
        ("node/ab", "node/try", "70 %"),
        ("node/try", "node/code", "A 50 %"),
        ("node/code", "node/other", "on_empty"),
        ("trigger/nightly", "node/hello", ""),
    } <= drawn
    assert not [a for a in drawn if a[0] in ("node/other", "node/stop")], "jump and exit end"


def test_triggers_are_on_top_and_forward_arrows_lead_down() -> None:
    drawn = layout(scenario_graph(every_kind()))
    triggers = [b for b in drawn.boxes.values() if b.box.kind == TRIGGER]
    nodes = [b for b in drawn.boxes.values() if b.box.kind != TRIGGER]
    assert max(t.bottom for t in triggers) < min(n.y for n in nodes)
    for route in drawn.routes:
        source, target = drawn.boxes[route.arrow.source], drawn.boxes[route.arrow.target]
        assert not route.back
        assert target.y > source.bottom, route.arrow
    assert overlapping(list(drawn.boxes.values())) == []


def test_a_loop_is_drawn_as_a_back_edge() -> None:
    drawn = layout(scenario_graph(WELCOME))
    back = [(r.arrow.source, r.arrow.target) for r in drawn.routes if r.back]
    assert back == [("node/wait_sms", "node/sms_sent")]
    loop = next(r for r in drawn.routes if r.back)
    target = drawn.boxes["node/sms_sent"]
    assert loop.points[-1] == (target.right, target.y + target.height / 2), "into its side"


def test_a_node_that_leads_to_itself() -> None:
    document = {
        "name": "Poll",
        "entry": "wait",
        "nodes": {"wait": {"type": "pause", "duration": "PT1H", "next": "wait"}},
    }
    drawn = layout(scenario_graph(document))
    (route,) = [r for r in drawn.routes if r.arrow.source == "node/wait"]
    assert route.back
    assert route.arrow.target == "node/wait"


def test_a_ten_way_split_fans_out_with_readable_labels() -> None:
    branches = [
        {
            "name": f"Region {n}",
            "if": {"field": "profile.region", "op": "eq", "value": n},
            "next": f"mail_{n}",
        }
        for n in range(10)
    ]
    nodes: dict[str, Any] = {"regions": {"type": "split", "branches": branches, "else": "rest"}}
    nodes |= {f"mail_{n}": email(f"Hello region {n}") for n in range(10)}
    nodes["rest"] = email("Hello")
    drawn = layout(scenario_graph({"name": "Regions", "entry": "regions", "nodes": nodes}))

    assert overlapping(list(drawn.boxes.values())) == []
    labelled = [r for r in drawn.routes if r.arrow.source == "node/regions"]
    assert len(labelled) == 11
    starts = sorted(r.points[0][0] for r in labelled)
    assert len(set(starts)) == 11, "each arrow leaves from its own point"
    spots = sorted(r.label_at[0] for r in labelled)
    gaps = [b - a for a, b in itertools.pairwise(spots)]
    widest = max(len(r.arrow.label) for r in labelled) * 6.5  # 11 px text
    assert min(gaps) >= widest, "neighbouring labels do not overlap"


def sixty_nodes() -> dict[str, Any]:
    """Sixty nodes in chains, conditions, A/B splits that merge again, and loops."""
    width = 60
    nodes: dict[str, Any] = {}
    for n in range(width):
        following = f"n{n + 1}" if n + 1 < width else None
        if n % 10 == 3:
            nodes[f"n{n}"] = {
                "type": "condition",
                "if": {"field": "profile.vip", "op": "eq", "value": True},
                "then": following,
                "else": f"n{min(n + 4, width - 1)}",
            }
        elif n % 15 == 7:
            nodes[f"n{n}"] = {
                "type": "pause",
                "duration": "P1D",
                "next": f"n{n - 5}" if n > 20 else following,
            }
        elif n % 10 == 5:
            nodes[f"n{n}"] = {
                "type": "ab_split",
                "branches": [
                    {"percent": 50, "next": following},
                    {"percent": 50, "next": f"n{min(n + 3, width - 1)}"},
                ],
            }
        else:
            nodes[f"n{n}"] = email(f"Message {n}", following)
    return {
        "name": "Sixty",
        "entry": "n0",
        "triggers": [{"id": "go", "type": "event", "event": "signup", "next": "n0"}],
        "nodes": nodes,
    }


def test_a_sixty_node_scenario_stays_readable() -> None:
    """No two boxes overlap, every forward arrow still leads down, all inside the canvas."""
    drawn = layout(scenario_graph(sixty_nodes()))
    assert len(drawn.boxes) == 61
    assert overlapping(list(drawn.boxes.values())) == []
    assert any(r.back for r in drawn.routes)
    for route in drawn.routes:
        source, target = drawn.boxes[route.arrow.source], drawn.boxes[route.arrow.target]
        if not route.back:
            assert target.y > source.bottom, route.arrow
    for placed in drawn.boxes.values():
        assert placed.x >= 0
        assert placed.right <= drawn.width
        assert placed.bottom <= drawn.height


def test_parts_that_nothing_links_are_drawn_side_by_side() -> None:
    document = {
        "name": "Loose ends",
        "entry": "a",
        "nodes": {
            "a": email("A", "b"),
            "b": email("B"),
            "lost": email("Nobody comes here", "also"),
        },
    }
    drawn = layout(scenario_graph(document))
    assert {"node/a", "node/b", "node/lost", "node/also", ENTRY} == set(drawn.boxes)
    assert drawn.boxes["node/also"].box.kind == MISSING
    assert overlapping(list(drawn.boxes.values())) == []
    assert drawn.boxes["node/lost"].x > drawn.boxes["node/a"].right


def test_a_draft_that_does_not_validate_is_drawn_anyway() -> None:
    document = {
        "name": "Draft",
        "triggers": [{"type": "event"}, "not a trigger"],
        "nodes": {
            "a": {"type": "condition", "then": 5},
            "b": "not a node",
            "c": {"type": "teleport"},
        },
    }
    drawn = layout(scenario_graph(document))
    assert {"trigger/#1", "node/a", "node/b", "node/c"} == set(drawn.boxes)
    assert drawn.routes == []
    assert layout(scenario_graph("not even an object")).boxes == {}


def test_the_same_document_is_laid_out_the_same_way() -> None:
    first, second = layout(scenario_graph(WELCOME)), layout(scenario_graph(WELCOME))
    assert first.boxes == second.boxes
    assert [r.points for r in first.routes] == [r.points for r in second.routes]
