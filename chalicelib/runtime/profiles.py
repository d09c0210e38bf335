"""Profiles: upsert and import, announcing what changed as events (SPEC §4)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import event_to_values
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.queues import send_batch
from chalicelib.engine import REMOVED
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

from .scenarios import end_instance

ATTEMPTS = 5
MAX_FIELDS_BYTES = 350_000  # a profile's item holds at most 400 KB: its fields and a little more


class ProfileTooLarge(ValueError):
    """The merged fields would not fit in the profile's item; nothing was written."""


def check_fits(fields: dict[str, Any], path: str = "$.fields") -> None:
    """Raise ProfileTooLarge when `fields` take more than MAX_FIELDS_BYTES as JSON."""
    size = len(json.dumps(fields, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_FIELDS_BYTES:
        raise ProfileTooLarge(
            f"{path}: the profile would hold {size} bytes of fields, at most {MAX_FIELDS_BYTES}"
        )


def upsert(
    profile_db: str, profile_id: str, fields: dict[str, Any], source: str = "api"
) -> dict[str, Any]:
    """Merge fields into a profile (`None` clears one) and emit its events.

    Emits `profile.created` for a new profile, `profile.imported` for every upsert and
    `profile.field_changed` with old and new values when something changed.
    Returns the stored profile.
    """
    key = {"pk": store.profile_partition(profile_db, profile_id), "sk": "P"}
    for _ in range(ATTEMPTS):
        now = clock_now()
        current = store.profiles.get(key)
        old = (current or {}).get("fields") or {}
        merged = {**old, **fields}
        merged = {name: value for name, value in merged.items() if value is not None}
        check_fits(merged)
        changed = {
            name: {"old": old.get(name), "new": merged.get(name)}
            for name in fields
            if old.get(name) != merged.get(name)
        }
        stamp = format_datetime(now)
        item = {
            **(current or {}),  # attributes beside the fields (`invalid` addresses) stay
            **key,
            "profile_db": profile_db,
            "profile_id": profile_id,
            "fields": merged,
            "created_at": (current or {}).get("created_at", stamp),
            "updated_at": stamp,
            "rev": (current or {}).get("rev", 0) + 1,
        }
        try:
            if current is None:
                store.profiles.put(item, "attribute_not_exists(pk)")
            else:
                store.profiles.put(item, "rev = :rev", values={":rev": current.get("rev", 0)})
        except ConditionFailed:
            continue
        events = []
        if current is None:
            events.append(_event("profile.created", now, {"source": source}))
        events.append(_event("profile.imported", now, {"source": source}))
        if changed and current is not None:
            events.append(
                _event("profile.field_changed", now, {"fields": changed, "source": source})
            )
        publish(profile_db, profile_id, events)
        return item
    raise RuntimeError(f"profile {profile_db}/{profile_id} kept changing")


def publish(profile_db: str, profile_id: str, events: list[Event]) -> None:
    """Put events on the events queue for the consumer."""
    send_batch(
        "events",
        [
            ({**event_to_values(e), "profile_db": profile_db, "profile_id": profile_id}, 0)
            for e in events
        ],
    )


def _event(event_type: str, at: datetime, data: dict[str, Any]) -> Event:
    return Event(event_type, at, data, id=str(uuid.uuid4()))


def import_profiles(profile_db: str, rows: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Upsert many profiles in batches (source `import`) and emit their events.

    Reads with BatchGetItem (100 a call) and writes with BatchWriteItem (25 a call), so a
    thousand profiles take about fifty requests; an import races with nothing else.
    """
    now = clock_now()
    stamp = format_datetime(now)
    keys = [{"pk": store.profile_partition(profile_db, pid), "sk": "P"} for pid, _ in rows]
    current = {item["profile_id"]: item for item in store.profiles.batch_get(keys)}
    items, events = [], []
    created = 0
    for index, (profile_id, fields) in enumerate(rows):
        old_item = current.get(profile_id)
        old = (old_item or {}).get("fields") or {}
        merged = {k: v for k, v in {**old, **fields}.items() if v is not None}
        check_fits(merged, f"$.profiles[{index}].fields")
        changed = {
            n: {"old": old.get(n), "new": merged.get(n)}
            for n in fields
            if old.get(n) != merged.get(n)
        }
        items.append(
            {
                **(old_item or {}),  # attributes beside the fields (`invalid` addresses) stay
                "pk": store.profile_partition(profile_db, profile_id),
                "sk": "P",
                "profile_db": profile_db,
                "profile_id": profile_id,
                "fields": merged,
                "updated_at": stamp,
                "created_at": (old_item or {}).get("created_at", stamp),
                "rev": (old_item or {}).get("rev", 0) + 1,
            }
        )
        if old_item is None:
            created += 1
            events.append((profile_id, _event("profile.created", now, {"source": "import"})))
        events.append((profile_id, _event("profile.imported", now, {"source": "import"})))
        if changed and old_item is not None:
            events.append(
                (
                    profile_id,
                    _event("profile.field_changed", now, {"fields": changed, "source": "import"}),
                )
            )
    store.profiles.batch_put(items)
    send_batch(
        "events",
        [
            ({**event_to_values(e), "profile_db": profile_db, "profile_id": pid}, 0)
            for pid, e in events
        ],
    )
    return {"imported": len(rows), "created": created}


def erase(profile_db: str, profile_id: str) -> bool:
    """GDPR erasure: end the profile's journeys, then delete the profile, its history,
    its instances, their timers and its messages. False when there was no such profile."""
    partition = store.profile_partition(profile_db, profile_id)
    history = list(store.profiles.query("pk = :pk", values={":pk": partition}))
    instances = store.instances_of_profile(profile_db, profile_id)
    if not history and not instances:
        return False
    for instance, _, _ in instances:
        if instance.active:
            end_instance(instance.instance_id, REMOVED, "erased")
    for instance, _, _ in instances:
        store.timers.delete({"instance_id": instance.instance_id})
        store.instances.delete({"instance_id": instance.instance_id})
    for item in history:
        if item["sk"].startswith("M#"):
            store.messages.delete({"message_id": item["message_id"]})
    store.profiles.batch_delete([{"pk": partition, "sk": item["sk"]} for item in history])
    return True


def journeys(profile_db: str, profile_id: str) -> list[dict[str, Any]]:
    """The profile's instances, newest first (`GET /profiles/{db}/{id}/journeys`)."""
    found = [instance for instance, _, _ in store.instances_of_profile(profile_db, profile_id)]
    found.sort(key=lambda i: i.entered_at, reverse=True)
    return [
        {
            "instance_id": i.instance_id,
            "scenario_id": i.scenario_id,
            "version": i.version,
            "status": i.status,
            "node": i.node if i.active else None,
            "exit_node": None if i.active else i.node,
            "reason": i.reason,
            "entered_at": format_datetime(i.entered_at),
            "ended_at": format_datetime(i.ended_at) if i.ended_at else None,
            "path": i.path,
        }
        for i in found
    ]
