"""Whole-scenario validation: every problem, each with its JSON path, in one error.

Element rules (types, durations, templates, operators) come from the pydantic models;
graph rules (dangling references, cycles with no waiting node, unique trigger ids, an
experiment's metric that the scenario does not define) are checked here on the raw
document, so both kinds are reported together even when the document does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .durations import parse_datetime
from .model import WAITING_NODE_TYPES, Scenario, condition_kind
from .schedules import matches_no_date


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a scenario: where (a JSON path such as `$.nodes.a.next`) and what."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class ScenarioInvalid(ValueError):
    """A scenario that cannot be activated, with every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        listing = "; ".join(f"{p.path}: {p.message}" for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{len(self.problems)} problem(s): {listing}{more}")


def validate_scenario(document: Any) -> Scenario:
    """Parse a scenario for activation; raise ScenarioInvalid listing every problem."""
    scenario, problems = check_scenario(document)
    if problems or scenario is None:
        raise ScenarioInvalid(problems)
    return scenario


def check_scenario(document: Any) -> tuple[Scenario | None, list[Problem]]:
    """Parse a scenario and list every problem; the scenario is None when it does not parse."""
    if not isinstance(document, dict):
        return None, [Problem("$", "a scenario is a JSON object")]
    problems: list[Problem] = []
    scenario = None
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as error:
        problems.extend(_schema_problems(document, error))
    problems.extend(_graph_problems(document))
    problems.extend(_schedule_problems(document))
    problems.extend(_experiment_problems(document))
    return (scenario if not problems else None), _unique(problems)


# --- element problems, from pydantic -------------------------------------------------


def _schema_problems(document: dict[str, Any], error: ValidationError) -> Iterator[Problem]:
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "union_tag_invalid":
            context = item.get("ctx", {})
            message = f"unknown type {context.get('tag')!r}: one of {context.get('expected_tags')}"
        loc = item["loc"]
        if loc and loc[-1] == "[key]" and item["type"] != "extra_forbidden":
            loc = loc[:-1]  # pydantic's marker for a bad dict key (a node id): the key is at fault
        yield Problem(json_path(_input_path(document, loc)), message)


def _input_path(document: Any, loc: Sequence[int | str]) -> list[int | str]:
    """Map a pydantic error location onto the input document.

    Discriminated unions add their tag (a node's `type`, a condition's kind) to the
    location, and plain unions add a member name; neither is a key of the input.
    """
    path: list[int | str] = []
    current = document
    tag_dropped = False
    for index, element in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict):
            if not tag_dropped and element in _tags(current):
                tag_dropped = True
                continue
            if element not in current and not last:
                continue
            current = current.get(element)
        elif isinstance(current, list) and isinstance(element, int) and element < len(current):
            current = current[element]
        elif not last:
            continue
        path.append(element)
        tag_dropped = False
    return path


def _tags(value: dict[str, Any]) -> set[Any]:
    node_type = value.get("type")
    kind = node_type if isinstance(node_type, str) else None
    return {kind, condition_kind(value), "consent" if "consent" in value else "field"}


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Sequence[int | str]) -> str:
    """`["nodes", "a", "branches", 0]` → `$.nodes.a.branches[0]`."""
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}"
        else:
            text += f"[{part!r}]"
    return text


# --- graph problems, on the raw document --------------------------------------------

_NODE_LINKS = ("next", "then", "else", "on_error", "timeout_next", "on_empty")


def node_links(node: dict[str, Any]) -> Iterator[tuple[list[int | str], str]]:
    """Every (relative path, target id) edge leaving a raw node."""
    for key in _NODE_LINKS:
        target = node.get(key)
        if isinstance(target, str):
            yield [key], target
    branches = node.get("branches")
    if isinstance(branches, list):
        for index, branch in enumerate(branches):
            if isinstance(branch, dict) and isinstance(branch.get("next"), str):
                yield ["branches", index, "next"], branch["next"]


def _graph_problems(document: dict[str, Any]) -> Iterator[Problem]:
    nodes = document.get("nodes")
    nodes = nodes if isinstance(nodes, dict) else {}
    triggers = document.get("triggers")
    triggers = triggers if isinstance(triggers, list) else []

    def dangling(path: list[int | str], target: str) -> Iterator[Problem]:
        if target not in nodes:
            yield Problem(json_path(path), f"{target!r} is not a node of this scenario")

    entry = document.get("entry")
    if isinstance(entry, str):
        yield from dangling(["entry"], entry)
    seen_ids: dict[str, int] = {}
    for index, trigger in enumerate(triggers):
        if not isinstance(trigger, dict):
            continue
        if isinstance(trigger.get("next"), str):
            yield from dangling(["triggers", index, "next"], trigger["next"])
        trigger_id = trigger.get("id")
        if isinstance(trigger_id, str):
            if trigger_id in seen_ids:
                yield Problem(
                    json_path(["triggers", index, "id"]),
                    f"trigger id {trigger_id!r} is already used by triggers[{seen_ids[trigger_id]}]",
                )
            seen_ids.setdefault(trigger_id, index)
    for node_id, node in nodes.items():
        if isinstance(node, dict):
            for path, target in node_links(node):
                yield from dangling(["nodes", node_id, *path], target)
    yield from _instant_cycles(nodes)


def _schedule_problems(document: dict[str, Any]) -> Iterator[Problem]:
    """Schedule triggers that would never fire: a cron expression that no date fulfils
    (`0 0 31 2 *`, February 31st) or a `once` after its `until`."""
    triggers = document.get("triggers")
    for index, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        if not isinstance(trigger, dict) or trigger.get("type") != "schedule":
            continue
        cron = trigger.get("cron")
        if isinstance(cron, str) and matches_no_date(cron):
            yield Problem(
                json_path(["triggers", index, "cron"]),
                f"{cron!r} matches no date: this schedule would never fire",
            )
        once, until = parse_datetime(trigger.get("once")), parse_datetime(trigger.get("until"))
        if once is not None and until is not None and once > until:
            yield Problem(
                json_path(["triggers", index, "until"]),
                "is before 'once': this schedule would never fire",
            )


def _experiment_problems(document: dict[str, Any]) -> Iterator[Problem]:
    """An experiment measured by conversion needs the scenario's `conversion` to count it."""
    nodes = document.get("nodes")
    if document.get("conversion") is not None or not isinstance(nodes, dict):
        return
    for node_id, node in nodes.items():
        if (
            isinstance(node, dict)
            and node.get("type") == "experiment"
            and node.get("metric") == "conversion"
        ):
            yield Problem(
                json_path(["nodes", node_id, "metric"]),
                "metric 'conversion' needs the scenario's 'conversion' setting "
                '(e.g. {"event": "order.created", "within": "P7D"})',
            )


def _instant_cycles(nodes: dict[str, Any]) -> Iterator[Problem]:
    """Cycles made only of instant nodes would spin forever: report each once."""
    instant = {
        node_id: [t for _, t in node_links(node) if t in nodes]
        for node_id, node in nodes.items()
        if isinstance(node, dict) and not _is_waiting(node)
    }
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for start in instant:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(instant[start]))]
        trail = [start]
        state[start] = 1
        while stack:
            node_id, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                trail.pop()
                state[node_id] = 2
            elif target in instant and state.get(target) == 1:
                cycle = [*trail[trail.index(target) :], target]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    yield Problem(
                        json_path(["nodes", target]),
                        f"cycle {' → '.join(cycle)} passes through no waiting node "
                        "(pause, best_time, wait_for)",
                    )
            elif target in instant and not state.get(target):
                state[target] = 1
                trail.append(target)
                stack.append((target, iter(instant[target])))


def _is_waiting(node: dict[str, Any]) -> bool:
    node_type = node.get("type")
    return isinstance(node_type, str) and node_type in WAITING_NODE_TYPES


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
