"""The scenario lifecycle (SPEC §1.6): drafts, versions, activation, stop, removal of profiles.

The metadata (`ScenarioRecord`) holds the status, the latest saved document and the
number of the version in force. Versions are immutable, written on activation and on
every save of an active scenario. Each change is one `Storage.save_scenario`, which
writes the metadata, a new version and the trigger and schedule index entries at once,
and answers the metadata it wrote. Work on many instances (stop, clear, migrate,
resume) fans out as messages on the steps queue, so the API answers at once.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.engine import EXITED, REMOVED, end, listened_types
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.model import EventTrigger, ExperimentNode, Scenario
from chalicelib.scenarios.validation import (
    Problem,
    ScenarioInvalid,
    check_scenario,
    validate_scenario,
)

from . import measurement
from .commit import Commit
from .journeys import Contention, feed
from .messages import End, Migrate, Resume
from .schedules import schedule_entries
from .storage import (
    Conflict,
    ScenarioChange,
    ScenarioFilter,
    ScenarioRecord,
    TriggerIndex,
    VersionRecord,
)
from .unit_of_work import UnitOfWork

ATTEMPTS = 5
LIST_SCAN_ITEMS = 1_000  # items one Scan of the scenario list reads (or 1 MB, if less)
LIST_SCANS = 10  # Scans one page of the list makes at most before it answers what it found
MAX_EVENT_TYPE = 200  # characters, as `POST /events` takes a type: the trigger index keys on it


class LifecycleError(Exception):
    """A lifecycle change that the scenario's status does not allow."""


class NotFound(LookupError):
    pass


def create(document: dict[str, Any]) -> dict[str, Any]:
    """Save a new scenario as a draft; returns its metadata with the draft's problems."""
    now = clock_now()
    _, problems = check_scenario(document)
    record = ScenarioRecord(uuid.uuid4().hex[:12], "draft", 0, document, now, now)
    meta = _save(ScenarioChange(record, seen=None))
    return {**meta, "problems": [p.as_dict() for p in problems]}


class ScenarioPage(NamedTuple):
    """A page of the scenario list. `partial`: it holds fewer than `limit` scenarios only
    because the page read as much of the table as one page may (`next_token` goes on)."""

    scenarios: list[dict[str, Any]]
    next_token: str | None
    partial: bool


def list_page(
    limit: int,
    token: str | None,
    *,
    status: str | None = None,
    tag: str | None = None,
    group: str | None = None,
    q: str | None = None,
    groups: tuple[str, ...] = (),
) -> ScenarioPage:
    """One page of scenarios matching the filters: `limit` of them, unless the list ends
    or the page has read LIST_SCANS times LIST_SCAN_ITEMS items. With `groups`, only
    scenarios of those groups (the calling key's scope).

    One read may find nothing that matches (the filter applies after reading), so the
    page reads on rather than answer empty. A read that finds more than the page has room
    for ends the page at its last match, after which the next page starts."""
    storage = services().storage
    where = ScenarioFilter(status, tag, group, q, groups)
    found: list[ScenarioRecord] = []
    for _ in range(LIST_SCANS):
        records, token = storage.scenario_page(where, LIST_SCAN_ITEMS, token)
        room = limit - len(found)
        found.extend(records[:room])
        if len(records) > room:
            return ScenarioPage([_meta(r) for r in found], storage.token_after(found[-1]), False)
        if len(found) == limit or token is None:
            return ScenarioPage([_meta(r) for r in found], token, False)
    return ScenarioPage([_meta(r) for r in found], token, True)


def clone(scenario_id: str) -> dict[str, Any]:
    """Copy a scenario's latest document as a new draft."""
    document = dict(_record(scenario_id).document)
    document["name"] = f"{document.get('name', 'Scenario')} (copy)"
    return create(document)


def trash(scenario_id: str) -> dict[str, Any]:
    record = _record(scenario_id)
    if record.status not in ("draft", "stopped"):
        raise LifecycleError(f"a {record.status} scenario cannot be trashed; deactivate it first")
    trashed = dataclasses.replace(
        record, status="trashed", status_before_trash=record.status, updated_at=clock_now()
    )
    return _save(ScenarioChange(trashed, record.updated_at))


def restore(scenario_id: str) -> dict[str, Any]:
    record = _record(scenario_id)
    if record.status != "trashed":
        raise LifecycleError(f"the scenario is {record.status}, not trashed")
    restored = dataclasses.replace(
        record, status=record.status_before_trash or "draft", updated_at=clock_now()
    )
    return _save(ScenarioChange(restored, record.updated_at))


def versions(
    scenario_id: str, limit: int, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    _record(scenario_id)
    found, next_token = services().storage.versions_page(scenario_id, limit, token)
    listed = [{"version": v.version, "created_at": format_datetime(v.created_at)} for v in found]
    return listed, next_token


def remove_profile(scenario_id: str, profile_id: str) -> int:
    """End that profile's instances of the scenario now (status removed)."""
    db = str(_record(scenario_id).document.get("profile_db") or "default")
    ended = 0
    uow = UnitOfWork()
    for stored in uow.storage.instances_of_profile(db, profile_id, scenario_id):
        if stored.instance.active:
            ended += end_instance(uow, stored.instance.instance_id, REMOVED, "removed")
    return ended


def remove_at_node(scenario_id: str, node: str) -> int:
    """Remove every profile now at a node (fanned out on the steps queue)."""
    _record(scenario_id)
    ids = services().storage.instances_at_node(scenario_id, node)
    _fan_out([End(instance_id=i, status=REMOVED, reason="removed") for i in ids])
    return len(ids)


def find(scenario_id: str) -> dict[str, Any] | None:
    """The scenario's metadata: status, current version, latest document, secret."""
    record = services().storage.scenario_record(scenario_id)
    return _meta(record) if record is not None else None


def get(scenario_id: str) -> dict[str, Any]:
    """`find`, for a scenario that must exist (else NotFound)."""
    return _meta(_record(scenario_id))


def replace(scenario_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """Save a new document. On an active scenario it must be valid and becomes a new
    version that profiles in flight follow."""
    record = _record(scenario_id)
    if record.status == "trashed":
        raise LifecycleError("a trashed scenario cannot be edited; restore it first")
    now = clock_now()
    if record.status != "active":
        _, problems = check_scenario(document)
        draft = dataclasses.replace(record, document=document, updated_at=now)
        meta = _save(ScenarioChange(draft, record.updated_at))
        return {**meta, "problems": [p.as_dict() for p in problems]}
    scenario = _validated(document)
    storage = services().storage
    old = storage.version(scenario_id, record.version)
    version = record.version + 1
    new = CompiledScenario(scenario, scenario_id, version)
    edited = dataclasses.replace(record, version=version, document=document, updated_at=now)
    meta = _save(
        ScenarioChange(
            edited,
            record.updated_at,
            VersionRecord(scenario_id, version, document, now),
            listed=_index(new, now),
            unlisted=_index(old, now),
        )
    )
    measurement.carry_experiments(storage, old, new)
    _fan_out([Migrate(instance_id=i) for i in storage.active_instance_ids(scenario_id)])
    return {**meta, "problems": []}


def activate(scenario_id: str) -> dict[str, Any]:
    """Validate the whole graph (raising ScenarioInvalid) and start capturing.

    The new version, the status and the trigger and schedule index entries are written in
    one transaction: an activation that fails leaves the scenario as it was."""
    record = _record(scenario_id)
    if record.status == "trashed":
        raise LifecycleError("a trashed scenario cannot be activated; restore it first")
    if record.status == "active":
        return _meta(record)
    document = record.document
    scenario = _validated(document)
    now = clock_now()
    storage = services().storage
    version = record.version
    active = dataclasses.replace(
        record,
        status="active",
        webhook_secret=record.webhook_secret or secrets.token_hex(32),
        activated_at=now,
    )
    written = None
    if version == 0 or storage.version_document(scenario_id, version) != document:
        version += 1
        written = VersionRecord(scenario_id, version, document, now)
        active = dataclasses.replace(active, version=version, updated_at=now)
    listed = _index(CompiledScenario(scenario, scenario_id, version), now)
    meta = _save(ScenarioChange(active, record.updated_at, written, listed=listed))
    # profiles kept asleep while stopped go on (and onto this version)
    _fan_out([Resume(instance_id=i) for i in storage.active_instance_ids(scenario_id)])
    return meta


def deactivate(scenario_id: str, keep_profiles: bool | None = None) -> dict[str, Any]:
    """Stop capturing; keep profiles asleep where they are, or let them all exit."""
    record = _record(scenario_id)
    if record.status != "active":
        raise LifecycleError(f"the scenario is {record.status}, not active")
    storage = services().storage
    scenario = storage.version(scenario_id, record.version)
    keep = scenario.model.keep_profiles_on_stop if keep_profiles is None else keep_profiles
    now = clock_now()
    stopped = dataclasses.replace(record, status="stopped", stopped_at=now)
    meta = _save(ScenarioChange(stopped, record.updated_at, unlisted=_index(scenario, now)))
    if not keep:
        _fan_out(
            [
                End(instance_id=i, status=EXITED, reason="stopped")
                for i in storage.active_instance_ids(scenario_id)
            ]
        )
    return meta


def clear(scenario_id: str) -> int:
    """Remove every profile now in the scenario."""
    _record(scenario_id)
    ids = services().storage.active_instance_ids(scenario_id)
    _fan_out([End(instance_id=i, status=REMOVED, reason="removed") for i in ids])
    return len(ids)


def end_instance(uow: UnitOfWork, instance_id: str, status: str, reason: str) -> bool:
    """End one active instance whatever its scenario's status (stop, removal, erasure)."""
    for _ in range(ATTEMPTS):
        stored = uow.instance(instance_id)
        if stored is None or not stored.instance.active:
            return False
        instance = stored.instance
        scenario = uow.version(instance.scenario_id, instance.version)
        commit = Commit(clock_now())
        commit.add(end(scenario, instance, clock_now(), status, reason), stored)
        try:
            uow.commit(commit)
        except Conflict:
            continue
        return True
    raise Contention(f"instance {instance_id} kept changing")


def resume_instance(uow: UnitOfWork, instance_id: str) -> bool:
    """After reactivation: onto the current version, and on if its wait ran out meanwhile."""
    return feed(uow, instance_id, None, resuming=True)


# --- internals -------------------------------------------------------------------------


def _validated(document: dict[str, Any]) -> Scenario:
    """`validate_scenario`, and what the stack's keys add, checked before anything is
    written: an event trigger's type is part of a DynamoDB key (the trigger index)."""
    scenario = validate_scenario(document)
    too_long = [
        Problem(f"$.triggers[{index}].event", f"at most {MAX_EVENT_TYPE} characters")
        for index, trigger in enumerate(scenario.triggers)
        if isinstance(trigger, EventTrigger) and len(trigger.event) > MAX_EVENT_TYPE
    ]
    if too_long:
        raise ScenarioInvalid(too_long)
    return scenario


def _record(scenario_id: str) -> ScenarioRecord:
    record = services().storage.scenario_record(scenario_id)
    if record is None:
        raise NotFound(f"no scenario {scenario_id!r}")
    return record


def _meta(record: ScenarioRecord) -> dict[str, Any]:
    """The metadata as the routes and the CLI read it (times as RFC 3339 text)."""
    return {
        "scenario_id": record.scenario_id,
        "status": record.status,
        "version": record.version,
        "document": record.document,
        "name": record.name,
        "tags": record.tags,
        "webhook_secret": record.webhook_secret,
        "created_at": format_datetime(record.created_at),
        "updated_at": format_datetime(record.updated_at),
    }


def _save(change: ScenarioChange) -> dict[str, Any]:
    """Write a lifecycle change atomically (a conflict means a concurrent change); the
    metadata as it now is."""
    try:
        services().storage.save_scenario(change)
    except Conflict:
        raise LifecycleError("the scenario changed meanwhile; read it again and retry") from None
    return _meta(change.record)


def _index(scenario: CompiledScenario, now: datetime) -> TriggerIndex:
    """Where the version is listed: its event types, experiments and schedule triggers,
    and the event types its journeys listen to."""
    return TriggerIndex(
        scenario.scenario_id,
        tuple(sorted(_event_types(scenario))),
        any(isinstance(node, ExperimentNode) for node in scenario.nodes.values()),
        tuple(schedule_entries(scenario, now)),
        tuple(sorted(listened_types(scenario))),
    )


def list_listeners() -> int:
    """Once per stack: list the event types that the journeys of the scenarios saved so
    far listen to (every version of each), and those that the active ones' event triggers
    take, for a stack whose scenarios predate the lists; from then on activations, live
    edits and stops keep them. Returns the scenarios listed.

    A scenario stopped while it is listed may stay among those its types trigger: a
    capture finds it inactive and passes it by, until it is activated and stopped again."""
    storage = services().storage
    listeners, triggers = not storage.listeners_listed(), not storage.triggers_listed()
    if not (listeners or triggers):
        return 0
    listed, token = 0, None
    while True:
        records, token = storage.scenario_page(ScenarioFilter(), 100, token)
        for record in records:
            if listeners:
                types: set[str] = set()
                for version in range(1, record.version + 1):
                    types |= listened_types(storage.version(record.scenario_id, version))
                storage.add_listeners(record.scenario_id, types)
            if triggers and record.status == "active":
                current = storage.version(record.scenario_id, record.version)
                storage.add_triggers(record.scenario_id, _event_types(current))
            listed += 1
        if token is None:
            break
    if listeners:
        storage.mark_listeners_listed()
    if triggers:
        storage.mark_triggers_listed()
    return listed


def _event_types(scenario: CompiledScenario) -> set[str]:
    return {t.event for t in scenario.triggers.values() if isinstance(t, EventTrigger)}


def _fan_out(batch: list[End | Migrate | Resume]) -> None:
    services().queues.send("steps", [(message, 0) for message in batch])
