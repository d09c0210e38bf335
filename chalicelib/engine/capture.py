"""Capture: whether a trigger (or the default capture) takes a profile into a scenario.

Applies the trigger's event type, `where`, schedule segment and sample, `limit`, the
scenario's re-entry mode against the profile's existing instances of the scenario and
its entry limit; then puts the profile in its measurement group (treatment, holdout or
control, see measure.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.scenarios.conditions import MISSING, compile_path
from chalicelib.scenarios.durations import parse_duration
from chalicelib.scenarios.facts import Event, Facts, Predicate, Profile
from chalicelib.scenarios.model import EventTrigger, ScheduleTrigger
from chalicelib.scenarios.schedules import in_sample

from .compiled import CompiledScenario
from .interpreter import Step, end, start
from .measure import group_of
from .state import EXITED, Instance


@dataclass(slots=True)
class Admission:
    """The answer to a capture: the steps it caused, or why it was refused.

    With re-entry `restart` the steps are the ended old instance(s) and then the new one.
    """

    steps: list[Step] = field(default_factory=list)
    refused: str | None = None

    @property
    def instance(self) -> Instance | None:
        """The new instance, when the profile was captured."""
        return self.steps[-1].instance if self.steps and self.refused is None else None


def capture(
    scenario: CompiledScenario,
    profile: Profile,
    event: Event,
    *,
    instance_id: str,
    now: datetime,
    trigger_id: str | None = None,
    node: str | None = None,
    existing: Sequence[Instance] = (),
    segments: Mapping[str, Predicate] | None = None,
    control_percent: float = 0.0,
    entries_in_window: int = 0,
    winners: Mapping[str, str] | None = None,
) -> Admission:
    """Capture `profile` by `event` through `trigger_id`, or by the default capture.

    `existing` are the profile's instances of this scenario (any status); the default
    capture enters at `node` when given (a jump to a node), else at the scenario's entry.
    From the runtime's records: `control_percent`, the stack's global control group;
    `entries_in_window`, the captures of this scenario so far in the current window of
    its entry limit (`measure.entry_window`); `winners`, its experiments' decided winners.
    Refusal reasons: no_entry, unknown_node, unknown_trigger, other_event, where,
    not_in_sample, limit, duplicate, reentry, already_in, entry_limit.
    """
    limit_key = None
    if trigger_id is None:
        target = node or scenario.model.entry
        if target is None:
            return Admission(refused="no_entry")
        if target not in scenario.nodes:
            return Admission(refused="unknown_node")
    else:
        trigger = scenario.triggers.get(trigger_id)
        if trigger is None:
            return Admission(refused="unknown_trigger")
        if isinstance(trigger, EventTrigger) and trigger.event != event.type:
            return Admission(refused="other_event")
        # Positional (profile, now, tz, event, entry, vars, entered_at, scenario_id,
        # segments): keyword arguments made this about twice as slow.
        facts = Facts(
            profile, now, scenario.tz, event, event, {}, None, scenario.scenario_id,
            segments or {},
        )  # fmt: skip
        if not scenario.trigger_where[trigger_id](facts):
            return Admission(refused="where")
        # Not isinstance: against a pydantic model class it fails slowly (see interpreter).
        if type(trigger) is ScheduleTrigger and not in_sample(profile.profile_id, trigger.sample):
            return Admission(refused="not_in_sample")
        if isinstance(trigger, EventTrigger) and trigger.limit is not None:
            limit = trigger.limit
            limit_key = _limit_key(limit.per, facts)
            since = event.occurred_at - parse_duration(limit.within) if limit.within else None
            fired = sum(
                1
                for instance in existing
                if instance.trigger_id == trigger_id
                and instance.limit_key == limit_key
                and (since is None or instance.entered_at > since)
            )
            if fired >= limit.max:
                return Admission(refused="limit")
        target = trigger.next

    if existing and event.id is not None and any(i.entry.id == event.id for i in existing):
        return Admission(refused="duplicate")
    active = [instance for instance in existing if instance.active]
    reentry = scenario.model.reentry
    reentry_key = None
    if scenario.reentry_key is not None:
        facts = Facts(profile, now, scenario.tz, event, event, {}, None, scenario.scenario_id)
        value = scenario.reentry_key(facts)
        reentry_key = "" if value is MISSING else str(value)  # no value: a key of its own
        active = [instance for instance in active if instance.reentry_key == reentry_key]
    if reentry == "never" and existing:
        return Admission(refused="reentry")
    if reentry in ("when_finished", "per_key") and active:
        return Admission(refused="already_in")
    entry_limit = scenario.entry_limit
    if entry_limit is not None and entries_in_window >= entry_limit.max:
        return Admission(refused="entry_limit")
    steps = (
        [end(scenario, old, now, EXITED, "restart") for old in active]
        if reentry == "restart"
        else []
    )
    steps.append(
        start(
            scenario,
            profile,
            event,
            instance_id=instance_id,
            now=now,
            node=target,
            trigger_id=trigger_id,
            limit_key=limit_key,
            segments=segments,
            group=group_of(scenario, profile, control_percent),
            reentry_key=reentry_key,
            winners=winners,
        )
    )
    return Admission(steps)


def _limit_key(per: str, facts: Facts) -> str:
    """What a trigger limit counts by: the profile, or the value at an event path."""
    if per == "profile":
        return "profile"
    value = compile_path(per)(facts)
    return "" if value is MISSING else str(value)
