"""Loyalty signals the events consumer derives (SPEC §7): the balance a profile keeps, and
points becoming available.

`balance.changed` carries the caller's balance (`data.balance`, with `delta`, `pending`
and `available_at` as the caller's ledger has them): the stack keeps it as the
profile's `balance` field, so conditions and templates can use `profile.balance`, and
emits `balance.negative` after every change that leaves it below zero. An event without
a numeric `balance` changes no field.

The same event with `pending` > 0 and an `available_at` (RFC 3339) accrues points that
become available then: `points.available` `{points, available_at, derived: true}` is
emitted at `available_at` through a timer of the timers table (the sweeper, or the TTL
backstop, sends it), at once when `available_at` is now or past. It occurs at
`available_at`, or at its cause's `occurred_at` when that is later (points cannot become
available before they were accrued). Without `pending` > 0 or a valid `available_at`
nothing is derived.

All of it is idempotent: the same event again sets the same value, and each derived
event's id is its cause's with its type (`<cause id>:points.available`), so a
redelivered cause or a timer fired twice makes one event.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.scenarios.durations import format_datetime, parse_datetime

from .messages import EventBody, EventMessage
from .storage import EventTimer
from .unit_of_work import UnitOfWork


def keep_balance(uow: UnitOfWork, message: EventMessage) -> None:
    event = message.event
    if event.type != "balance.changed":
        return
    balance = event.data.get("balance")
    if _is_number(balance):
        occurred = message.event.event().occurred_at
        uow.set_fields(message.profile_db, message.profile_id, {"balance": balance}, occurred)
        if balance < 0:
            data = {"balance": balance, "derived": True}
            uow.send("events", [_derived(message, "balance.negative", event.occurred_at, data)])
    accrue_points(uow, message)


def accrue_points(uow: UnitOfWork, message: EventMessage) -> None:
    """Points pending until `available_at`: `points.available` then (or now, if past)."""
    pending = message.event.data.get("pending")
    available_at = parse_datetime(message.event.data.get("available_at"))
    if not _is_number(pending) or pending <= 0 or available_at is None:
        return
    occurred_at = max(available_at, message.event.event().occurred_at)
    data = {"points": pending, "available_at": format_datetime(available_at), "derived": True}
    available = _derived(message, "points.available", format_datetime(occurred_at), data)
    if available_at <= clock_now():
        uow.send("events", [available])
    else:
        assert available.event.id is not None
        uow.storage.set_event_timer(EventTimer(available.event.id, available_at, available))


def _derived(
    cause: EventMessage, event_type: str, occurred_at: str, data: dict[str, Any]
) -> EventMessage:
    event = EventBody(
        id=f"{cause.event.id}:{event_type}", type=event_type, occurred_at=occurred_at, data=data
    )
    return EventMessage(profile_db=cause.profile_db, profile_id=cause.profile_id, event=event)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
