"""Moving journeys: capture a profile, feed a stimulus to an instance, migrate it.

Every use case reads the instance with its revision, runs the engine, and commits the
step with `rev` as the condition: if another worker moved the instance meanwhile, the
commit fails without writing and the use case starts over from the new state.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import profile_key
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.engine import (
    Instance,
    Step,
    Stimulus,
    WakeUp,
    advance,
    capture,
    migrate,
)
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.scenarios.facts import Event
from chalicelib.scenarios.model import EventTrigger

from .commit import Commit
from .segments import library

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


def active_version(scenario_id: str) -> CompiledScenario | None:
    """The scenario's current version when it is active, else None."""
    meta = store.load_scenario(scenario_id)
    if meta is None or meta.get("status") != "active":
        return None
    return store.compiled_version(scenario_id, meta["version"])


def capture_profile(
    scenario_id: str,
    profile_db: str,
    profile_id: str,
    event: Event,
    trigger_id: str | None = None,
    node: str | None = None,
) -> Captured:
    """Capture a profile into an active scenario through a trigger or the default capture."""
    scenario = active_version(scenario_id)
    if scenario is None:
        return Captured(None, "not_active")
    if scenario.model.profile_db != profile_db:
        return Captured(None, "other_profile_db")
    cause = f"{trigger_id or node or 'entry'}|{event.id}"
    instance_id = instance_id_for(scenario_id, profile_key(profile_db, profile_id), cause)
    guard_key = capture_guard_key(profile_db, profile_id, scenario_id)
    guarded = needs_guard(scenario, trigger_id)
    for _ in range(ATTEMPTS):
        guard = store.profiles.get(guard_key) if guarded else None
        profile, item = store.load_profile(profile_db, profile_id)
        existing = _instances_of_profile(profile_db, profile_id, scenario_id, guard)
        if any(instance.instance_id == instance_id for instance, _, _ in existing):
            return Captured(instance_id, "duplicate")
        admission = capture(
            scenario,
            profile,
            event,
            instance_id=instance_id,
            now=clock_now(),
            trigger_id=trigger_id,
            node=node,
            existing=[instance for instance, _, _ in existing],
            segments=library,
        )
        if admission.refused is not None:
            return Captured(None, admission.refused)
        before = {instance.instance_id: (instance, rev, seen) for instance, rev, seen in existing}
        commit = Commit(clock_now())
        for step in admission.steps:
            old = before.get(step.instance.instance_id)
            commit.add(
                step,
                old[0] if old else None,
                old[1] if old else None,
                old[2] if old else None,
                stored_profile=item,
            )
            if step.profile is not None:
                item = item or {"fields": step.profile.fields}
        if guarded:
            commit.items.append(_guard_write(guard_key, guard, instance_id))
        try:
            commit.apply()
        except ConditionFailed:
            if store.load_instance(instance_id) is not None:
                return Captured(instance_id, "duplicate")
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


def capture_guard_key(profile_db: str, profile_id: str, scenario_id: str) -> dict[str, str]:
    """The item in the profile's partition that serializes its captures into one scenario."""
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": f"C#{scenario_id}"}


def needs_guard(scenario: CompiledScenario, trigger_id: str | None) -> bool:
    """Whether a capture must be serialized with the profile's other captures: re-entry
    modes and trigger limits decide from the instances that exist, so two captures at
    once must not both decide on the same ones. Only `parallel` without a limit need not."""
    trigger = scenario.triggers.get(trigger_id) if trigger_id else None
    return scenario.model.reentry != "parallel" or getattr(trigger, "limit", None) is not None


def _instances_of_profile(
    profile_db: str, profile_id: str, scenario_id: str, guard: dict[str, Any] | None
) -> list[tuple[Instance, int, list[str]]]:
    """The profile's instances of the scenario. The profile index is eventually consistent,
    so the latest capture, which the guard item names, is read from the table if missing."""
    found = store.instances_of_profile(profile_db, profile_id, scenario_id)
    latest = (guard or {}).get("latest")
    if latest and all(instance.instance_id != latest for instance, _, _ in found):
        loaded = store.load_instance(latest)
        if loaded is not None:
            found.append(loaded)
    return found


def _guard_write(
    key: dict[str, str], guard: dict[str, Any] | None, instance_id: str
) -> dict[str, Any]:
    """Count the capture on the guard item, provided no other capture did since it was read:
    of two captures at once, the second fails its commit and decides again."""
    count = (guard or {}).get("captures", 0)
    item = {**key, "captures": count + 1, "latest": instance_id}
    if guard is None:
        return store.profiles.tx_put(item, "attribute_not_exists(pk)")
    return store.profiles.tx_put(item, "captures = :n", values={":n": count})


def feed(
    instance_id: str, stimulus: Stimulus | None, event_id: str | None = None, resuming: bool = False
) -> bool:
    """Give a stimulus to an instance (None: only bring it onto the current version;
    `resuming`: after reactivation, go on if the wait ran out while it slept).

    True when it moved. Sleeping instances (their scenario stopped with profiles kept)
    do not move: a wake-up leaves the timer in place for the reactivation. An event is
    applied to an instance at most once (`seen_events`). An instance whose scenario has
    a newer version is migrated first, in the same commit.
    """
    for _ in range(ATTEMPTS):
        loaded = store.load_instance(instance_id)
        if loaded is None:
            return False
        instance, rev, seen = loaded
        if not instance.active or (event_id is not None and event_id in seen):
            return False
        meta = store.load_scenario(instance.scenario_id)
        if meta is None or meta.get("status") != "active":
            return False
        profile, item = store.load_profile(instance.profile_db, instance.profile_id)
        now = clock_now()
        current, effects = instance, []
        if instance.version != meta["version"]:  # a live edit this instance has not seen yet
            scenario = store.compiled_version(instance.scenario_id, meta["version"])
            moved = migrate(scenario, current, profile, now, library)
            current, profile, effects = moved.instance, moved.profile or profile, moved.effects
        if resuming and current.active and current.wake_at is not None:
            stimulus = WakeUp(current.step)
        if stimulus is not None and current.active:
            scenario = store.compiled_version(current.scenario_id, current.version)
            step = advance(scenario, current, profile, stimulus, now, library)
            current, profile = step.instance, step.profile or profile
            effects = [*effects, *step.effects]
        if not effects and current == instance:
            return False
        commit = Commit(now)
        commit.add(Step(current, effects, profile), instance, rev, _seen(seen, event_id), item)
        try:
            commit.apply()
        except ConditionFailed:
            continue
        return True
    raise Contention(f"instance {instance_id} kept changing")


def migrate_instance(instance_id: str) -> bool:
    """Move an active instance onto its scenario's current version (SPEC §1.6)."""
    return feed(instance_id, None)


def _seen(seen: list[str], event_id: str | None) -> list[str]:
    return [*seen, event_id] if event_id else seen


def event_triggers(scenario: CompiledScenario, event_type: str) -> list[str]:
    return [
        trigger.id
        for trigger in scenario.triggers.values()
        if isinstance(trigger, EventTrigger) and trigger.event == event_type
    ]
