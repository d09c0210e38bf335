"""Events: record them on the profile, then capture into scenarios and move journeys.

An event is processed once however often it is delivered: its id is marked `done` in
the idempotency table only after everything it causes has been committed, and each
thing it causes is idempotent on its own (deterministic instance ids, `seen_events`).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import timedelta
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import event_from_values, event_to_values
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.engine import EventArrived
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

from . import revenue
from .commit import epoch
from .journeys import active_version, capture_profile, event_triggers, feed
from .steps import consumed

logger = logging.getLogger(__name__)

EVENT_HISTORY = timedelta(days=400)  # how long a profile keeps its events
DEDUP_WINDOW = timedelta(days=7)  # how long an event id is remembered


def dedup_key(event_id: str) -> dict[str, str]:
    return {"key": f"event#{event_id}"}


def process(values: dict[str, Any]) -> None:
    """Handle one event message: `{"id", "type", "profile_db", "profile_id", "occurred_at", "data"}`,
    or an outbox row's `{"kind": "event", "event": {...}, "row_id"}` for an event a journey
    emitted (`profile.field_changed`, `consent.changed`), whose row is consumed after it."""
    if values.get("kind") == "event":
        process(values["event"])
        consumed(values["row_id"])
        return
    event = event_from_values(values)
    profile_db, profile_id = values["profile_db"], values["profile_id"]
    marker = store.idempotency.get(dedup_key(event.id or ""))
    if marker is not None and marker.get("status") == "done":
        return
    record(profile_db, profile_id, event)
    instances = store.instances_of_profile(profile_db, profile_id)
    revenue.attribute(profile_db, profile_id, event, instances)  # before it moves journeys
    for instance, _, _ in instances:
        if instance.active:
            feed(instance.instance_id, EventArrived(event), event_id=event.id)
    for scenario_id in store.scenarios_for_event(event.type):
        scenario = active_version(scenario_id)
        if scenario is None:
            continue
        for trigger_id in event_triggers(scenario, event.type):
            capture_profile(scenario_id, profile_db, profile_id, event, trigger_id=trigger_id)
    mark(event.id or "", "done")


def record(profile_db: str, profile_id: str, event: Event) -> None:
    """Add the event to the profile's history (idempotent: same id, same item)."""
    store.profiles.put(
        {
            "pk": store.profile_partition(profile_db, profile_id),
            "sk": f"E#{format_datetime(event.occurred_at)}#{event.id}",
            **event_to_values(event),
            "expires_at": epoch(event.occurred_at + EVENT_HISTORY),
        }
    )


def seen(event_ids: list[str]) -> set[str]:
    """The ids among these (each once) whose events are already queued (or processed)."""
    if not event_ids:
        return set()
    return {
        values["key"].removeprefix("event#")
        for values in store.idempotency.batch_get([dedup_key(event_id) for event_id in event_ids])
    }


def mark(event_id: str, status: str) -> None:
    """Remember an event id: `queued` once the API has queued its event (never over a
    `done`), `done` once the consumer has processed it."""
    values = {
        **dedup_key(event_id),
        "status": status,
        "at": format_datetime(clock_now()),
        "expires_at": epoch(clock_now() + DEDUP_WINDOW),
    }
    if status == "done":
        store.idempotency.put(values)
        return
    with suppress(ConditionFailed):  # seen already: by a retry, or processed even
        store.idempotency.put(values, "attribute_not_exists(#k)", names={"#k": "key"})
