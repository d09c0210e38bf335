"""Profiles: upsert and import, announcing what changed as events (SPEC §4)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.engine import REMOVED
from chalicelib.engine.signals import contact_signals
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

from . import merges
from .messages import EventBody, EventMessage
from .scenarios import end_instance
from .storage import Dispatch, Merged, OutboxRow, merged_fields
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

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
    `profile.field_changed` with old and new values when something changed. The merge is
    one UpdateItem of the given fields, so concurrent upserts and journey updates of one
    profile all land. Returns the stored profile.
    """
    storage = services().storage
    current = storage.profile_item(profile_db, profile_id)
    if current is not None and current.get("merged_into"):  # a merged profile: its `into`
        profile_id = merges.resolve(UnitOfWork(), profile_db, profile_id)
        current = storage.profile_item(profile_db, profile_id)
    check_fits(merged_fields((current or {}).get("fields"), fields))
    now = clock_now()
    result = storage.merge_profile(
        profile_db, profile_id, fields, format_datetime(now), exists=current is not None
    )
    publish(profile_db, [(profile_id, e) for e in _events(result, fields, now, source)])
    return result.after


def set_consent(
    profile_db: str, profile_id: str, channel: str, granted: bool, source: str = "api"
) -> None:
    """Grant or withdraw one channel's consent of an existing profile, announced like an
    upsert of `consents` (nothing when it was so already, or the profile is gone)."""
    now = clock_now()
    result = services().storage.set_profile_consent(
        profile_db, profile_id, channel, granted, format_datetime(now)
    )
    if result is None or result.before is None:
        return
    old = (result.before.get("fields") or {}).get("consents")
    if isinstance(old, dict) and old.get(channel) is granted:
        return
    changes = {"consents": result.after["fields"]["consents"]}
    publish(profile_db, [(profile_id, e) for e in _events(result, changes, now, source)])


def _events(result: Merged, fields: dict[str, Any], now: datetime, source: str) -> list[Event]:
    """What one merge announces, from the profile exactly as it was before it."""
    new = result.after["fields"]
    if result.before is None:
        events = [
            _event("profile.created", now, {"source": source}),
            _event("profile.imported", now, {"source": source}),
        ]
        old = None
    else:
        old = result.before.get("fields") or {}
        changed = {
            name: {"old": old.get(name), "new": new.get(name)}
            for name in fields
            if old.get(name) != new.get(name)
        }
        events = [_event("profile.imported", now, {"source": source})]
        if changed:
            data = {"fields": changed, "source": source}
            events.append(_event("profile.field_changed", now, data))
    events.extend(_event(kind, now, data) for kind, data in contact_signals(old, new))
    return events


def publish(profile_db: str, events: list[tuple[str, Event]]) -> None:
    """Put (profile id, event) on the events queue for the consumer.

    The profile they describe is already written, so they must not be lost: when the
    queue refuses them they are kept as pending outbox rows instead, which the sweeper
    sends within a minute (the consumer drops an event id it already processed).
    """
    wired = services()
    batch = [
        EventMessage(profile_db=profile_db, profile_id=profile_id, event=EventBody.of(event))
        for profile_id, event in events
    ]
    try:
        wired.queues.send("events", [(message, 0) for message in batch])
    except Exception:
        logger.warning("events queue refused profile events: kept in the outbox", exc_info=True)
        now = clock_now()
        wired.storage.keep_pending([_pending_event(message, now) for message in batch])


def _pending_event(message: EventMessage, now: datetime) -> OutboxRow:
    """An event as an outbox row due now, for the sweeper to send to the events queue."""
    row_id = f"profile-event-{message.event.id}"
    dispatch = Dispatch("events", message.with_row(row_id), now, now)
    return OutboxRow(
        row_id, "event", now, message.profile_db, message.profile_id, dispatch=dispatch
    )


def _event(event_type: str, at: datetime, data: dict[str, Any]) -> Event:
    return Event(event_type, at, data, id=str(uuid.uuid4()))


def import_profiles(profile_db: str, rows: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Upsert many profiles (source `import`) and emit their events.

    Every profile is checked against its stored fields first (one BatchGetItem per 100),
    so a profile that would not fit refuses the whole import before anything is written.
    Then each is merged with an UpdateItem of its fields, like an upsert: an import that
    runs beside upserts and journeys of the same profiles loses none of their fields.
    A profile given more than once is imported once, its entries' fields merged in their
    order (a later value wins, as successive upserts would leave it); `imported` counts
    profiles.
    """
    combined: dict[str, dict[str, Any]] = {}
    first: dict[str, int] = {}  # where a profile is named first, for the error's path
    for index, (profile_id, fields) in enumerate(rows):
        first.setdefault(profile_id, index)
        combined[profile_id] = {**combined.get(profile_id, {}), **fields}
    storage = services().storage
    current = storage.profile_items(profile_db, list(combined))
    merged = [profile_id for profile_id, item in current.items() if item.get("merged_into")]
    if merged:  # rows of merged profiles are imported into the profiles they merged into
        uow = UnitOfWork()
        for profile_id in merged:
            into = merges.resolve(uow, profile_db, profile_id)
            combined[into] = {**combined.get(into, {}), **combined.pop(profile_id)}
            first.setdefault(into, first[profile_id])
        current = storage.profile_items(profile_db, list(combined))
    for profile_id, fields in combined.items():
        old = (current.get(profile_id) or {}).get("fields")
        check_fits(merged_fields(old, fields), f"$.profiles[{first[profile_id]}].fields")
    now = clock_now()
    stamp = format_datetime(now)
    events: list[tuple[str, Event]] = []
    created = 0
    for profile_id, fields in combined.items():
        result = storage.merge_profile(
            profile_db, profile_id, fields, stamp, exists=profile_id in current
        )
        created += result.before is None
        events.extend((profile_id, e) for e in _events(result, fields, now, "import"))
    publish(profile_db, events)
    return {"imported": len(combined), "created": created}


def read(profile_db: str, profile_id: str) -> dict[str, Any] | None:
    """The profile's item (a merged profile's: that of the profile it was merged into)."""
    storage = services().storage
    item = storage.profile_item(profile_db, profile_id)
    if item is not None and item.get("merged_into"):
        item = storage.profile_item(
            profile_db, merges.resolve(UnitOfWork(), profile_db, profile_id)
        )
    return item


def erase(profile_db: str, profile_id: str) -> bool:
    """GDPR erasure: end the profile's journeys, then delete the profile, its history,
    its instances, their timers and its messages. False when there was no such profile."""
    uow = UnitOfWork()
    instances = [s.instance for s in uow.storage.instances_of_profile(profile_db, profile_id)]
    for instance in instances:
        if instance.active:
            end_instance(uow, instance.instance_id, REMOVED, "erased")
    return uow.storage.erase_profile(profile_db, profile_id, [i.instance_id for i in instances])


def journeys(profile_db: str, profile_id: str) -> list[dict[str, Any]]:
    """The profile's instances, newest first (`GET /profiles/{db}/{id}/journeys`)."""
    storage = services().storage
    profile_id = merges.resolve(UnitOfWork(), profile_db, profile_id)
    found = [s.instance for s in storage.instances_of_profile(profile_db, profile_id)]
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
