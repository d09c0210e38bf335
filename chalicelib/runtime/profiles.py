"""Profiles: upsert and import, announcing what changed as events (SPEC §4)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import event_to_values
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.queues import send_batch
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

ATTEMPTS = 5


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
        changed = {
            name: {"old": old.get(name), "new": merged.get(name)}
            for name in fields
            if old.get(name) != merged.get(name)
        }
        stamp = format_datetime(now)
        item = {
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
