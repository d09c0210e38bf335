"""The scenario lifecycle (SPEC §1.6): drafts, versions, activation, stop, removal of profiles.

The metadata item holds the status, the latest saved document and the number of the
version in force. Versions are immutable items written on activation and on every
save of an active scenario. Work on many instances (stop, clear, migrate, resume)
fans out as messages on the steps queue, so the API answers at once.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.dynamo import ConditionFailed, encode_token, to_item, transact
from chalicelib.adapters.dynamodb_storage import EXPERIMENT_INDEX
from chalicelib.bootstrap import services
from chalicelib.engine import EXITED, REMOVED, end
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
from .storage import Conflict
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
    or the page has read LIST_SCANS pages of the table. With `groups`, only scenarios of
    those groups (the calling key's scope).

    A Scan (scenarios are few) whose filter DynamoDB applies after reading, so one call may
    find nothing that matches; the page reads on rather than answer empty. A call that
    finds more than the page has room for ends the page at its last match, whose key is
    the next page's start. Attribute names go through placeholders: `status`, `group`
    and `search` are reserved words; the group is read from the document itself."""
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
    if group:
        conditions.append("#document.#group = :group")
        values[":group"], names["#document"], names["#group"] = group, "document", "group"
    if q:
        conditions.append("contains(#search, :q)")
        values[":q"], names["#search"] = q.lower(), "search"
    found: list[dict[str, Any]] = []
    for _ in range(LIST_SCANS):
        items, token = store.scenarios.page(
            "scan",
            LIST_SCAN_ITEMS,
            token,
            filter=" AND ".join(conditions),
            values=values,
            names=names or None,
        )
        room = limit - len(found)
        found.extend(items[:room])
        if len(items) > room:
            last = found[-1]
            return ScenarioPage(
                found, encode_token(to_item({"pk": last["pk"], "sk": last["sk"]})), False
            )
        if len(found) == limit or token is None:
            return ScenarioPage(found, token, False)
    return ScenarioPage(found, token, True)


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
    uow = UnitOfWork()
    for stored in uow.storage.instances_of_profile(db, profile_id, scenario_id):
        if stored.instance.active:
            ended += end_instance(uow, stored.instance.instance_id, REMOVED, "removed")
    return ended


def remove_at_node(scenario_id: str, node: str) -> int:
    """Remove every profile now at a node (fanned out on the steps queue)."""
    get(scenario_id)
    ids = [item["instance_id"] for item in store.instances_at_node(scenario_id, node)]
    _fan_out([End(instance_id=i, status=REMOVED, reason="removed") for i in ids])
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
    scenario = _validated(document)
    old = services().storage.version(scenario_id, meta["version"])
    version = meta["version"] + 1
    _commit(
        [
            _version_item(scenario_id, version, document, now),
            _meta_change(meta, version=version, **_described(document), updated_at=now),
            *_index_changes(CompiledScenario(scenario, scenario_id, version), old),
        ]
    )
    measurement.carry_experiments(
        services().storage, old, services().storage.version(scenario_id, version)
    )
    _fan_out([Migrate(instance_id=i) for i in store.active_instance_ids(scenario_id)])
    return {**store.load_scenario(scenario_id), "problems": []}


def activate(scenario_id: str) -> dict[str, Any]:
    """Validate the whole graph (raising ScenarioInvalid) and start capturing.

    The new version, the status and the trigger and schedule index entries are written in
    one transaction: an activation that fails leaves the scenario as it was."""
    meta = get(scenario_id)
    if meta["status"] == "trashed":
        raise LifecycleError("a trashed scenario cannot be activated; restore it first")
    if meta["status"] == "active":
        return meta
    document = meta["document"]
    scenario = _validated(document)
    now = format_datetime(clock_now())
    version = meta["version"]
    changes = {
        "status": "active",
        "webhook_secret": meta.get("webhook_secret") or secrets.token_hex(32),
        "activated_at": now,
    }
    writes = []
    if (
        version == 0
        or store.scenarios.get(store.version_key(scenario_id, version))["document"] != document
    ):
        version += 1
        writes.append(_version_item(scenario_id, version, document, now))
        changes.update(version=version, updated_at=now)
    compiled = CompiledScenario(scenario, scenario_id, version)
    _commit([*writes, _meta_change(meta, **changes), *_index_changes(compiled, None)])
    # profiles kept asleep while stopped go on (and onto this version)
    _fan_out([Resume(instance_id=i) for i in store.active_instance_ids(scenario_id)])
    return store.load_scenario(scenario_id) or {}


def deactivate(scenario_id: str, keep_profiles: bool | None = None) -> dict[str, Any]:
    """Stop capturing; keep profiles asleep where they are, or let them all exit."""
    meta = get(scenario_id)
    if meta["status"] != "active":
        raise LifecycleError(f"the scenario is {meta['status']}, not active")
    scenario = services().storage.version(scenario_id, meta["version"])
    keep = scenario.model.keep_profiles_on_stop if keep_profiles is None else keep_profiles
    stopped = _meta_change(meta, status="stopped", stopped_at=format_datetime(clock_now()))
    _commit([stopped, *_index_changes(None, scenario)])
    if not keep:
        _fan_out(
            [
                End(instance_id=i, status=EXITED, reason="stopped")
                for i in store.active_instance_ids(scenario_id)
            ]
        )
    return store.load_scenario(scenario_id) or {}


def clear(scenario_id: str) -> int:
    """Remove every profile now in the scenario."""
    get(scenario_id)
    ids = store.active_instance_ids(scenario_id)
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


def _version_item(
    scenario_id: str, version: int, document: dict[str, Any], now: str
) -> dict[str, Any]:
    """The transaction item writing a new version (versions are never overwritten)."""
    item = {
        **store.version_key(scenario_id, version),
        "version": version,
        "document": document,
        "created_at": now,
    }
    return store.scenarios.tx_put(item, "attribute_not_exists(pk)")


def _meta_change(meta: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The transaction item changing the metadata item, provided nobody changed it since
    `meta` was read."""
    names = {f"#n{i}": name for i, name in enumerate(changes)}
    values = {f":v{i}": value for i, value in enumerate(changes.values())}
    values[":seen"] = meta.get("updated_at")
    expression = "SET " + ", ".join(f"#n{i} = :v{i}" for i in range(len(changes)))
    return store.scenarios.tx_update(
        store.scenario_key(meta["scenario_id"]),
        expression,
        "updated_at = :seen",
        names=names,
        values=values,
    )


def _update_meta(meta: dict[str, Any], **changes: Any) -> None:
    _commit([_meta_change(meta, **changes)])


def _commit(writes: list[dict[str, Any]]) -> None:
    """Write a lifecycle change atomically; a condition that fails means a concurrent change."""
    try:
        transact(writes)
    except ConditionFailed:
        raise LifecycleError("the scenario changed meanwhile; read it again and retry") from None


def _index_changes(
    new: CompiledScenario | None, old: CompiledScenario | None
) -> list[dict[str, Any]]:
    """Transaction items making the trigger index (event type → scenario) and the schedule
    index list `new`'s triggers in place of `old`'s (either may be None)."""
    now = clock_now()
    puts = _index_items(new, now) if new is not None else []
    kept = {(item["pk"], item["sk"]) for item in puts}
    gone = [
        {"pk": item["pk"], "sk": item["sk"]}
        for item in (_index_items(old, now) if old is not None else [])
        if (item["pk"], item["sk"]) not in kept
    ]
    return [
        *(store.scenarios.tx_put(item) for item in puts),
        *(store.scenarios.tx_delete(key) for key in gone),
    ]


def _index_items(scenario: CompiledScenario, now: datetime) -> list[dict[str, Any]]:
    events = [{"pk": f"E#{t}", "sk": scenario.scenario_id} for t in sorted(_event_types(scenario))]
    if any(isinstance(node, ExperimentNode) for node in scenario.nodes.values()):
        events.append({"pk": EXPERIMENT_INDEX, "sk": scenario.scenario_id})
    return [*events, *schedule_entries(scenario, now)]


def _event_types(scenario: CompiledScenario) -> set[str]:
    return {t.event for t in scenario.triggers.values() if isinstance(t, EventTrigger)}


def _fan_out(batch: list[End | Migrate | Resume]) -> None:
    services().queues.send("steps", [(message, 0) for message in batch])
