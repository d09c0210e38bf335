"""A scenario version prepared for running: conditions compiled, settings parsed, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.durations import parse_clock_time, parse_duration, zone
from chalicelib.scenarios.facts import Predicate
from chalicelib.scenarios.model import (
    ConditionNode,
    Node,
    Scenario,
    ScheduleTrigger,
    SplitNode,
    Trigger,
    WaitForNode,
)
from chalicelib.scenarios.validation import validate_scenario


@dataclass(frozen=True, slots=True)
class CompiledGoal:
    event: str
    where: Predicate


class CompiledScenario:
    """One version of a scenario, ready for the engine. Build it once and reuse it."""

    def __init__(self, scenario: Scenario, scenario_id: str = "scenario", version: int = 1) -> None:
        self.model = scenario
        self.scenario_id = scenario_id
        self.version = version
        self.name = scenario.name
        self.nodes: dict[str, Node] = dict(scenario.nodes)
        self.triggers: dict[str, Trigger] = {t.id: t for t in scenario.triggers}
        self.tz = zone(scenario.timezone)
        self.actuality = _duration(scenario.actuality)
        self.goals = [CompiledGoal(g.event, compile_condition(g.where)) for g in scenario.exit_on]
        self.trigger_where: dict[str, Predicate] = {}
        self.trigger_actuality: dict[str, timedelta | None] = {}
        for trigger in scenario.triggers:
            where = getattr(trigger, "where", None)
            if isinstance(trigger, ScheduleTrigger):
                where = trigger.segment
            self.trigger_where[trigger.id] = compile_condition(where)
            self.trigger_actuality[trigger.id] = _duration(trigger.actuality) or self.actuality
        # Node conditions: a condition node's `if`, a wait_for's `where` or `condition`,
        # and a split's branches, in order.
        self.conditions: dict[str, Predicate] = {}
        self.branches: dict[str, list[Predicate]] = {}
        for node_id, node in self.nodes.items():
            if isinstance(node, ConditionNode):
                self.conditions[node_id] = compile_condition(node.if_)
            elif isinstance(node, WaitForNode):
                self.conditions[node_id] = compile_condition(node.where or node.condition)
            elif isinstance(node, SplitNode):
                self.branches[node_id] = [compile_condition(b.if_) for b in node.branches]
        quiet = scenario.quiet_hours
        self.quiet_hours = (
            (parse_clock_time(quiet.start), parse_clock_time(quiet.end)) if quiet else None
        )
        self.frequency_cap = scenario.frequency_cap
        self.cap_window = _duration(scenario.frequency_cap.per) if scenario.frequency_cap else None

    @classmethod
    def from_document(
        cls, document: Any, scenario_id: str = "scenario", version: int = 1
    ) -> CompiledScenario:
        """Validate a scenario document (raising ScenarioInvalid) and compile it."""
        return cls(validate_scenario(document), scenario_id, version)

    def actuality_for(self, trigger_id: str | None) -> timedelta | None:
        if trigger_id is None:
            return self.actuality
        return self.trigger_actuality.get(trigger_id, self.actuality)


def _duration(text: str | None) -> timedelta | None:
    return parse_duration(text) if text else None
