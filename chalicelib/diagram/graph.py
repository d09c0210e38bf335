"""A scenario document as the boxes and arrows the diagram draws.

Built from the raw document, not the validated model, so a draft that does not validate
yet is drawn too: a reference to a node that does not exist becomes a `missing` box,
where the problem shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import words

TRIGGER, NODE, ENTRY, MISSING = "trigger", "node", "entry", "missing"


@dataclass(frozen=True, slots=True)
class Box:
    """A trigger, a node, the default entry or a missing node, as one box of the diagram.

    `key` is unique in the diagram (`trigger/<id>`, `node/<id>`, `entry`): a trigger and a
    node may share an id."""

    key: str
    kind: str
    id: str
    type: str
    summary: str
    channel: str | None = None  # a send's channel: its counters are that channel's


@dataclass(frozen=True, slots=True)
class Arrow:
    """An edge from one box to another; `role` says which field it comes from (`next`,
    `then`, `else`, `branch`, `timeout_next`, `on_error`, `on_empty`, `trigger`)."""

    source: str
    target: str
    role: str
    label: str = ""


@dataclass(slots=True)
class Graph:
    """The boxes (triggers first, then nodes in document order) and the arrows."""

    name: str
    boxes: dict[str, Box] = field(default_factory=dict)
    arrows: list[Arrow] = field(default_factory=list)


def node_key(node_id: str) -> str:
    return f"node/{node_id}"


def scenario_graph(document: Any) -> Graph:
    """The boxes and arrows of a scenario document (SPEC §1), valid or not."""
    document = document if isinstance(document, dict) else {}
    graph = Graph(str(document.get("name") or "Scenario"))
    nodes = document.get("nodes") if isinstance(document.get("nodes"), dict) else {}
    triggers = [t for t in _list(document.get("triggers")) if isinstance(t, dict)]
    for index, trigger in enumerate(triggers):
        trigger_id = str(trigger.get("id") or f"#{index + 1}")
        key = f"trigger/{trigger_id}"
        graph.boxes[key] = Box(
            key, TRIGGER, trigger_id, str(trigger.get("type")), words.trigger(trigger)
        )
        _arrow(graph, key, trigger.get("next"), "trigger")
    entry = document.get("entry")
    if isinstance(entry, str) and all(t.get("next") != entry for t in triggers):
        graph.boxes[ENTRY] = Box(ENTRY, ENTRY, "entry", "entry", "API, manual add, segment, jump")
        _arrow(graph, ENTRY, entry, "trigger")
    for node_id, element in nodes.items():
        key = node_key(node_id)
        element = element if isinstance(element, dict) else {}
        channel = element.get("channel") if element.get("type") == "send" else None
        graph.boxes[key] = Box(
            key,
            NODE,
            node_id,
            str(element.get("type", "?")),
            words.node(element),
            str(channel) if channel else None,
        )
        for target, role, label in _exits(element):
            _arrow(graph, key, target, role, label)
    for arrow in graph.arrows:
        target = arrow.target.removeprefix("node/")
        if arrow.target not in graph.boxes:
            graph.boxes[arrow.target] = Box(
                arrow.target, MISSING, target, "missing", "no such node"
            )
    return graph


def _exits(element: dict[str, Any]) -> list[tuple[Any, str, str]]:
    """(target, role, label) of every way out of a node."""
    kind = element.get("type")
    if kind == "condition":
        return [(element.get("then"), "then", "then"), (element.get("else"), "else", "else")]
    if kind in ("split", "ab_split", "experiment"):
        branches = [b for b in _list(element.get("branches")) if isinstance(b, dict)]
        found = [(b.get("next"), "branch", words.branch(b, i)) for i, b in enumerate(branches)]
        return [*found, (element.get("else"), "else", "everyone else")]
    if kind == "wait_for" and element.get("timeout_next"):
        arrived = "arrived" if element.get("event") else "holds"
        return [
            (element.get("next"), "next", arrived),
            (element["timeout_next"], "timeout_next", "timeout"),
        ]
    if kind == "webhook":
        return [
            (element.get("next"), "next", ""),
            (element.get("on_error"), "on_error", "on_error"),
        ]
    if kind == "promo_code":
        return [
            (element.get("next"), "next", ""),
            (element.get("on_empty"), "on_empty", "on_empty"),
        ]
    return [(element.get("next"), "next", "")]


def _arrow(graph: Graph, source: str, target: Any, role: str, label: str = "") -> None:
    if isinstance(target, str) and target:
        graph.arrows.append(Arrow(source, node_key(target), role, label))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
