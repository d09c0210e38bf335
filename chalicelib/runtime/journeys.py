"""Moving journeys: capture a profile, feed a stimulus to an instance, migrate it.

Every use case reads the instance with its revision, runs the engine, and commits the
step with `rev` as the condition: if another worker moved the instance meanwhile, the
commit fails without writing and the use case starts over from the new state.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import profile_key
from chalicelib.engine import (
    Stimulus,
    WakeUp,
    advance,
    capture,
    migrate,
)
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.engine.interpreter import Step
from chalicelib.engine.measure import entry_window
from chalicelib.scenarios.durations import parse_duration
from chalicelib.scenarios.facts import Event, Profile
from chalicelib.scenarios.model import EventTrigger

from .commit import Commit
from .segments import library
from .storage import Conflict, StoredInstance
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

ATTEMPTS = 5


class Contention(RuntimeError):
    """An instance kept changing under us; the message is retried later."""


@dataclass(frozen=True)
class Captured:
    instance_id: str | None
    refused: str | None = None


def instance_id_for(scenario_id: str, profile_key: str, cause: str) -> str:
    """Deterministic: redelivering the same capture can never start a second instance."""
    digest = hashlib.blake2b(f"{scenario_id}|{profile_key}|{cause}".encode(), digest_size=12)
    return digest.hexdigest()


def capture_profile(
    uow: UnitOfWork,
    scenario_id: str,
    profile_db: str,
    profile_id: str,
    event: Event,
    trigger_id: str | None = None,
    node: str | None = None,
) -> Captured:
    """Capture a profile into an active scenario through a trigger or the default capture."""
    scenario = uow.active_version(scenario_id)
    if scenario is None:
        return Captured(None, "not_active")
    if scenario.model.profile_db != profile_db:
        return Captured(None, "other_profile_db")
    # An event captures a profile into a scenario once, whichever trigger or jump it came
    # by (the engine refuses a second as a duplicate): a second try fails to create it.
    cause = f"event|{event.id}" if event.id else f"{trigger_id or node or 'entry'}|None"
    instance_id = instance_id_for(scenario_id, profile_key(profile_db, profile_id), cause)
    guarded = needs_guard(scenario, trigger_id)
    since = _decides_since(scenario, trigger_id, event)
    for _ in range(ATTEMPTS):
        guard = uow.capture_guard(profile_db, profile_id, scenario_id) if guarded else None
        profile = uow.profile(profile_db, profile_id, scenario.reads_history)
        latest = guard.latest if guard else None
        existing = (
            _instances_of(uow, profile_db, profile_id, scenario_id, latest, since)
            if guarded
            else []
        )
        if any(stored.instance.instance_id == instance_id for stored in existing):
            return Captured(instance_id, "duplicate")
        now = clock_now()
        limit = scenario.entry_limit
        window = entry_window(limit, now) if limit is not None else None
        admission = capture(
            scenario,
            profile.view,
            event,
            instance_id=instance_id,
            now=now,
            trigger_id=trigger_id,
            node=node,
            existing=[stored.instance for stored in existing],
            segments=library,
            entries_in_window=uow.entries_in_window(scenario_id, window) if window else 0,
            control_percent=uow.control_percent(),
            winners=uow.winners(scenario_id, scenario.version),
        )
        if admission.refused is not None:
            return Captured(None, admission.refused)
        before = {stored.instance.instance_id: stored for stored in existing}
        commit = Commit(clock_now())
        for step in admission.steps:
            commit.add(step, before.get(step.instance.instance_id), profile=profile)
        if guarded:
            counted = guard.captures if guard else None
            commit.guard(profile_db, profile_id, scenario_id, instance_id, counted)
        if limit is not None and window is not None:
            commit.count_entry(scenario_id, window, limit.max)
        try:
            uow.commit(commit, _last_profile(admission.steps))
        except Conflict:
            if uow.storage.instance(instance_id) is not None:
                return Captured(instance_id, "duplicate")
            for stored in existing:
                uow.forget_instance(stored.instance.instance_id)
            continue
        logger.info(
            "captured",
            extra={
                "scenario_id": scenario_id,
                "instance_id": instance_id,
                "profile_id": profile_id,
            },
        )
        return Captured(instance_id)
    raise Contention(f"capture into {scenario_id} kept conflicting")


def needs_guard(scenario: CompiledScenario, trigger_id: str | None) -> bool:
    """Whether a capture must be serialized with the profile's other captures: re-entry
    modes and trigger limits decide from the instances that exist, so two captures at
    once must not both decide on the same ones. Only `parallel` without a limit need not."""
    trigger = scenario.triggers.get(trigger_id) if trigger_id else None
    limited = getattr(trigger, "limit", None) is not None or scenario.model.entry_limit is not None
    return scenario.model.reentry != "parallel" or limited


def _decides_since(
    scenario: CompiledScenario, trigger_id: str | None, event: Event
) -> datetime | None:
    """Since when the profile's instances of the scenario decide a capture (None: all of
    them): re-entry `never` and a trigger limit without `within` look at every past
    journey, a limit `within` at those entered since, the other modes at the active ones."""
    trigger = scenario.triggers.get(trigger_id) if trigger_id else None
    limit = trigger.limit if isinstance(trigger, EventTrigger) else None
    if scenario.model.reentry == "never" or (limit is not None and limit.within is None):
        return None
    now = clock_now()
    if limit is not None and limit.within is not None:
        return min(now, event.occurred_at - parse_duration(limit.within))
    return now


def _instances_of(
    uow: UnitOfWork,
    profile_db: str,
    profile_id: str,
    scenario_id: str,
    latest: str | None,
    since: datetime | None,
) -> list[StoredInstance]:
    """The profile's instances of the scenario that matter `since`. The profile index is
    eventually consistent, so the latest capture, which the guard item names, is read
    from the table if missing."""
    found = [
        stored
        for stored in uow.instances_of_profile(profile_db, profile_id, since=since)
        if stored.instance.scenario_id == scenario_id
    ]
    if latest and all(stored.instance.instance_id != latest for stored in found):
        loaded = uow.instance(latest)
        if loaded is not None:
            found.append(loaded)
    return found


def _last_profile(steps: list[Step]) -> Profile | None:
    profiles = [step.profile for step in steps if step.profile is not None]
    return profiles[-1] if profiles else None


def feed(
    uow: UnitOfWork,
    instance_id: str,
    stimulus: Stimulus | None,
    event_id: str | None = None,
    resuming: bool = False,
) -> bool:
    """Give a stimulus to an instance (None: only bring it onto the current version;
    `resuming`: after reactivation, go on if the wait ran out while it slept).

    True when it moved. Sleeping instances (their scenario stopped with profiles kept)
    do not move: a wake-up leaves the timer in place for the reactivation. An event is
    applied to an instance at most once (`seen_events`). An instance whose scenario has
    a newer version is migrated first, in the same commit.
    """
    for _ in range(ATTEMPTS):
        stored = uow.instance(instance_id)
        if stored is None:
            return False
        instance = stored.instance
        if not instance.active or (event_id is not None and event_id in stored.seen):
            return False
        meta = uow.scenario(instance.scenario_id)
        if meta is None or not meta.active:
            return False
        history = any(  # the instance's version's, or the one it is about to migrate to
            uow.version(instance.scenario_id, v).reads_history
            for v in {instance.version, meta.version}
        )
        record = uow.profile(instance.profile_db, instance.profile_id, history)
        profile = record.view
        now = clock_now()
        current, effects = instance, []
        if instance.version != meta.version:  # a live edit this instance has not seen yet
            scenario = uow.version(instance.scenario_id, meta.version)
            winners = uow.winners(instance.scenario_id, meta.version)
            moved = migrate(scenario, current, profile, now, library, winners)
            current, profile, effects = moved.instance, moved.profile or profile, moved.effects
        if resuming and current.active and current.wake_at is not None:
            stimulus = WakeUp(current.step)
        if stimulus is not None and current.active:
            scenario = uow.version(current.scenario_id, current.version)
            winners = uow.winners(current.scenario_id, current.version)
            step = advance(scenario, current, profile, stimulus, now, library, winners)
            current, profile = step.instance, step.profile or profile
            effects = [*effects, *step.effects]
        if not effects and current == instance:
            return False
        commit = Commit(now)
        commit.add(Step(current, effects, profile), stored, event_id, record)
        try:
            uow.commit(commit, profile)
        except Conflict:
            continue
        return True
    raise Contention(f"instance {instance_id} kept changing")


def migrate_instance(uow: UnitOfWork, instance_id: str) -> bool:
    """Move an active instance onto its scenario's current version (SPEC §1.6)."""
    return feed(uow, instance_id, None)


def event_triggers(scenario: CompiledScenario, event_type: str) -> list[str]:
    return [
        trigger.id
        for trigger in scenario.triggers.values()
        if isinstance(trigger, EventTrigger) and trigger.event == event_type
    ]
