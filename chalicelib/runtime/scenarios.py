"""The scenario lifecycle (SPEC §1.6): drafts, versions, activation, stop, removal of profiles.

The metadata item holds the status, the latest saved document and the number of the
version in force. Versions are immutable items written on activation and on every
save of an active scenario. Work on many instances (stop, clear, migrate, resume)
fans out as messages on the steps queue, so the API answers at once.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.queues import send_batch
from chalicelib.engine import EXITED, REMOVED, end
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.model import EventTrigger, Scenario
from chalicelib.scenarios.validation import (
    Problem,
    ScenarioInvalid,
    check_scenario,
    validate_scenario,
)

from .commit import Commit
from .journeys import Contention, feed
from .schedules import index_schedules, unindex_schedules

ATTEMPTS = 5
MAX_EVENT_TYPE = 200  # characters, as `POST /events` takes a type: the trigger index keys on it


class LifecycleError(Exception):
    """A lifecycle change that the scenario's status does not allow."""


class NotFound(LookupError):
    pass


def create(document: dict[str, Any]) -> dict[str, Any]:
    """Save a new scenario as a draft; returns its metadata with the draft's problems."""
    scenario_id = uuid.uuid4().hex[:12]
    now = format_datetime(clock_now())
    _, problems = check_scenario(document)
    meta = {
        **store.scenario_key(scenario_id),
        "scenario_id": scenario_id,
        "status": "draft",
        "version": 0,
        **_described(document),
        "created_at": now,
        "updated_at": now,
    }
    store.scenarios.put(meta, "attribute_not_exists(pk)")
    return {**meta, "problems": [p.as_dict() for p in problems]}


def _described(document: dict[str, Any]) -> dict[str, Any]:
    """The metadata kept beside a document: name and tags to list, text that `q` searches."""
    search = f"{document.get('name') or ''}\n{document.get('description') or ''}".lower()
    return {
        "document": document,
        "name": document.get("name"),
        "tags": document.get("tags") or [],
        "search": search,
    }


def list_page(
    status: str | None,
    tag: str | None,
    q: str | None,
    limit: int,
    token: str | None,
    groups: tuple[str, ...] = (),
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of scenarios matching the filters (a Scan: scenarios are few); with
    `groups`, only scenarios of those groups (the calling key's scope).

    Attribute names go through placeholders: `status` and `search` are reserved words."""
    conditions, values, names = ["sk = :meta"], {":meta": "meta"}, {}
    if groups:
        scope = ", ".join(f":scope{index}" for index in range(len(groups)))
        conditions.append(f"#document.#group IN ({scope})")
        values.update({f":scope{index}": group for index, group in enumerate(groups)})
        names.update({"#document": "document", "#group": "group"})
    if status:
        conditions.append("#status = :status")
        values[":status"], names["#status"] = status, "status"
    if tag:
        conditions.append("contains(#tags, :tag)")
        values[":tag"], names["#tags"] = tag, "tags"
    if q:
        conditions.append("contains(#search, :q)")
        values[":q"], names["#search"] = q.lower(), "search"
    return store.scenarios.page(
        "scan", limit, token, filter=" AND ".join(conditions), values=values, names=names or None
    )


def clone(scenario_id: str) -> dict[str, Any]:
    """Copy a scenario's latest document as a new draft."""
    document = dict(get(scenario_id)["document"])
    document["name"] = f"{document.get('name', 'Scenario')} (copy)"
    return create(document)


def trash(scenario_id: str) -> dict[str, Any]:
    meta = get(scenario_id)
    if meta["status"] not in ("draft", "stopped"):
        raise LifecycleError(f"a {meta['status']} scenario cannot be trashed; deactivate it first")
    _update_meta(
        meta,
        status="trashed",
        status_before_trash=meta["status"],
        updated_at=format_datetime(clock_now()),
    )
    return get(scenario_id)


def restore(scenario_id: str) -> dict[str, Any]:
    meta = get(scenario_id)
    if meta["status"] != "trashed":
        raise LifecycleError(f"the scenario is {meta['status']}, not trashed")
    _update_meta(
        meta,
        status=meta.get("status_before_trash", "draft"),
        updated_at=format_datetime(clock_now()),
    )
    return get(scenario_id)


def versions(
    scenario_id: str, limit: int, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    get(scenario_id)
    items, next_token = store.scenarios.page(
        "query",
        limit,
        token,
        key_condition="pk = :pk AND begins_with(sk, :v)",
        values={":pk": f"S#{scenario_id}", ":v": "V#"},
    )
    return [{"version": i["version"], "created_at": i["created_at"]} for i in items], next_token


def remove_profile(scenario_id: str, profile_id: str) -> int:
    """End that profile's instances of the scenario now (status removed)."""
    meta = get(scenario_id)
    db = _profile_db(meta)
    ended = 0
    for instance, _, _ in store.instances_of_profile(db, profile_id, scenario_id):
        if instance.active:
            ended += end_instance(instance.instance_id, REMOVED, "removed")
    return ended


def remove_at_node(scenario_id: str, node: str) -> int:
    """Remove every profile now at a node (fanned out on the steps queue)."""
    get(scenario_id)
    ids = [item["instance_id"] for item in store.instances_at_node(scenario_id, node)]
    _fan_out(ids, {"kind": "end", "status": REMOVED, "reason": "removed"})
    return len(ids)


def _profile_db(meta: dict[str, Any]) -> str:
    document = meta.get("document") or {}
    return str(document.get("profile_db") or "default")


def get(scenario_id: str) -> dict[str, Any]:
    meta = store.load_scenario(scenario_id)
    if meta is None:
        raise NotFound(f"no scenario {scenario_id!r}")
    return meta


def replace(scenario_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """Save a new document. On an active scenario it must be valid and becomes a new
    version that profiles in flight follow."""
    meta = get(scenario_id)
    if meta["status"] == "trashed":
        raise LifecycleError("a trashed scenario cannot be edited; restore it first")
    now = format_datetime(clock_now())
    if meta["status"] != "active":
        _, problems = check_scenario(document)
        _update_meta(meta, **_described(document), updated_at=now)
        return {**store.load_scenario(scenario_id), "problems": [p.as_dict() for p in problems]}
    _validated(document)
    old = store.compiled_version(scenario_id, meta["version"])
    version = _write_version(scenario_id, meta, document)
    new = store.compiled_version(scenario_id, version)
    _index_event_triggers(new, old)
    unindex_schedules(old)
    index_schedules(new, clock_now())
    _fan_out(store.active_instance_ids(scenario_id), {"kind": "migrate"})
    return {**store.load_scenario(scenario_id), "problems": []}


def activate(scenario_id: str) -> dict[str, Any]:
    """Validate the whole graph (raising ScenarioInvalid) and start capturing."""
    meta = get(scenario_id)
    if meta["status"] == "trashed":
        raise LifecycleError("a trashed scenario cannot be activated; restore it first")
    if meta["status"] == "active":
        return meta
    _validated(meta["document"])
    version = meta["version"]
    if (
        version == 0
        or store.scenarios.get(store.version_key(scenario_id, version))["document"]
        != meta["document"]
    ):
        version = _write_version(scenario_id, meta, meta["document"])
    secret = meta.get("webhook_secret") or secrets.token_hex(32)
    _update_meta(
        store.load_scenario(scenario_id),
        status="active",
        webhook_secret=secret,
        activated_at=format_datetime(clock_now()),
    )
    scenario = store.compiled_version(scenario_id, version)
    _index_event_triggers(scenario, None)
    index_schedules(scenario, clock_now())
    # profiles kept asleep while stopped go on (and onto this version)
    _fan_out(store.active_instance_ids(scenario_id), {"kind": "resume"})
    return store.load_scenario(scenario_id) or {}


def deactivate(scenario_id: str, keep_profiles: bool | None = None) -> dict[str, Any]:
    """Stop capturing; keep profiles asleep where they are, or let them all exit."""
    meta = get(scenario_id)
    if meta["status"] != "active":
        raise LifecycleError(f"the scenario is {meta['status']}, not active")
    scenario = store.compiled_version(scenario_id, meta["version"])
    keep = scenario.model.keep_profiles_on_stop if keep_profiles is None else keep_profiles
    _update_meta(meta, status="stopped", stopped_at=format_datetime(clock_now()))
    _unindex_event_triggers(scenario)
    unindex_schedules(scenario)
    if not keep:
        _fan_out(
            store.active_instance_ids(scenario_id),
            {"kind": "end", "status": EXITED, "reason": "stopped"},
        )
    return store.load_scenario(scenario_id) or {}


def clear(scenario_id: str) -> int:
    """Remove every profile now in the scenario."""
    get(scenario_id)
    ids = store.active_instance_ids(scenario_id)
    _fan_out(ids, {"kind": "end", "status": REMOVED, "reason": "removed"})
    return len(ids)


def end_instance(instance_id: str, status: str, reason: str) -> bool:
    """End one active instance whatever its scenario's status (stop, removal, erasure)."""
    for _ in range(ATTEMPTS):
        loaded = store.load_instance(instance_id)
        if loaded is None or not loaded[0].active:
            return False
        instance, rev, seen = loaded
        scenario = store.compiled_version(instance.scenario_id, instance.version)
        commit = Commit(clock_now())
        commit.add(end(scenario, instance, clock_now(), status, reason), instance, rev, seen)
        try:
            commit.apply()
        except ConditionFailed:
            continue
        return True
    raise Contention(f"instance {instance_id} kept changing")


def resume_instance(instance_id: str) -> bool:
    """After reactivation: onto the current version, and on if its wait ran out meanwhile."""
    return feed(instance_id, None, resuming=True)


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


def _write_version(scenario_id: str, meta: dict[str, Any], document: dict[str, Any]) -> int:
    version = meta["version"] + 1
    now = format_datetime(clock_now())
    store.scenarios.put(
        {
            **store.version_key(scenario_id, version),
            "version": version,
            "document": document,
            "created_at": now,
        },
        "attribute_not_exists(pk)",
    )
    _update_meta(meta, version=version, **_described(document), updated_at=now)
    return version


def _update_meta(meta: dict[str, Any], **changes: Any) -> None:
    """Change the metadata item, provided nobody changed it since `meta` was read."""
    names = {f"#n{i}": name for i, name in enumerate(changes)}
    values = {f":v{i}": value for i, value in enumerate(changes.values())}
    values[":seen"] = meta.get("updated_at")
    expression = "SET " + ", ".join(f"#n{i} = :v{i}" for i in range(len(changes)))
    try:
        store.scenarios.update(
            store.scenario_key(meta["scenario_id"]),
            expression,
            "updated_at = :seen",
            names=names,
            values=values,
        )
    except ConditionFailed:
        raise LifecycleError("the scenario changed meanwhile; read it again and retry") from None


def _index_event_triggers(new: CompiledScenario, old: CompiledScenario | None) -> None:
    if old is not None:
        _unindex_event_triggers(old)
    for event_type in _event_types(new):
        store.scenarios.put({"pk": f"E#{event_type}", "sk": new.scenario_id})


def _unindex_event_triggers(scenario: CompiledScenario) -> None:
    for event_type in _event_types(scenario):
        store.scenarios.delete({"pk": f"E#{event_type}", "sk": scenario.scenario_id})


def _event_types(scenario: CompiledScenario) -> set[str]:
    return {t.event for t in scenario.triggers.values() if isinstance(t, EventTrigger)}


def _fan_out(instance_ids: list[str], message: dict[str, Any]) -> None:
    send_batch(
        "steps", [({**message, "instance_id": instance_id}, 0) for instance_id in instance_ids]
    )
