"""Loyalty signals the events consumer derives (SPEC §7): the balance a profile keeps.

`balance.changed` carries the caller's balance (`data.balance`, with `delta`, `pending`
and `available_at` as the caller's ledger has them): the stack keeps it as the
profile's `balance` field, so conditions and templates can use `profile.balance`, and
emits `balance.negative` after every change that leaves it below zero. An event without
a numeric `balance` changes no field. Both are idempotent: the same event again sets the
same value, and the derived event's id is its cause's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .messages import EventBody, EventMessage
from .unit_of_work import UnitOfWork


def keep_balance(uow: UnitOfWork, message: EventMessage) -> None:
    event = message.event
    if event.type != "balance.changed":
        return
    balance = event.data.get("balance")
    if not _is_number(balance):
        return
    occurred = message.event.event().occurred_at
    uow.set_fields(message.profile_db, message.profile_id, {"balance": balance}, occurred)
    if balance < 0:
        negative = EventBody(
            id=f"{event.id}:balance.negative", type="balance.negative",
            occurred_at=event.occurred_at, data={"balance": balance, "derived": True},
        )  # fmt: skip
        derived = EventMessage(
            profile_db=message.profile_db, profile_id=message.profile_id, event=negative
        )
        uow.send("events", [derived])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
