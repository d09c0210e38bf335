"""Orders the events consumer keeps (SPEC §6.3), and the order signals they derive.

An `order.created` or `order.updated` is folded into the order's state by the engine's
rules (`chalicelib/engine/orders.py`). The new state, the profile's last order of each
product it newly holds and the derived events — as pending outbox rows of the events
queue — are one commit, conditioned on the order's revision read: of two updates of
one order at once, the second fails its commit and is applied again on a fresh read, so
neither is lost. After the commit the derived events go to the events queue like any
other event (triggers, `wait_for`, `exit_on`, history); a crash before that leaves
them to the sweeper, and a redelivered cause finds its id among the order's applied
ones and derives nothing again.
"""

from __future__ import annotations

import hashlib

from chalicelib.adapters.clock import now as clock_now
from chalicelib.engine import orders
from chalicelib.scenarios.facts import Event

from .commit import REDISPATCH_AFTER
from .messages import EventBody, EventMessage, QueueMessage
from .storage import (
    Changes,
    Conflict,
    Dispatch,
    OrderWrite,
    OutboxRow,
    ProductOrdered,
    StoredOrder,
)
from .unit_of_work import UnitOfWork

ATTEMPTS = 10  # commits tried against concurrent updates of one order


def keep_order(uow: UnitOfWork, message: EventMessage) -> None:
    """Apply an order event to its order and send what it derives (nothing when it is
    not an order event, is older than the order's latest change or was applied)."""
    event = message.event.event()
    order_id = orders.order_id_of(event)
    if order_id is None:
        return
    profile_db, profile_id = message.profile_db, message.profile_id
    storage = uow.storage
    for _ in range(ATTEMPTS):
        stored = storage.order(profile_db, profile_id, order_id)
        change = orders.apply(stored.state if stored else None, event)
        if change is None:
            return
        rev = stored.rev if stored else None
        ordered = [
            ProductOrdered(profile_db, profile_id, product_id, event.occurred_at)
            for product_id in change.ordered
            if (last := storage.last_ordered_at(profile_db, profile_id, product_id)) is None
            or last < event.occurred_at
        ]
        rows, derived = pending_events(profile_db, profile_id, change.derived)
        write = OrderWrite(profile_db, profile_id, StoredOrder(change.state, (rev or 0) + 1), rev)
        try:
            storage.commit(Changes(rows=rows, orders=[write], ordered=ordered))
        except Conflict:
            continue
        uow.send("events", derived)
        return
    raise Conflict(f"order {order_id!r} of {profile_id!r} kept changing")


def pending_events(
    profile_db: str, profile_id: str, derived: list[Event]
) -> tuple[list[OutboxRow], list[QueueMessage]]:
    """Derived events as pending outbox rows of the events queue (written with their
    cause's commit), and their messages to send once it is written."""
    now = clock_now()
    rows, queued = [], []
    for event in derived:
        cause = f"{profile_db}\0{profile_id}\0{event.id}".encode()
        row_id = "derived-event-" + hashlib.blake2b(cause, digest_size=16).hexdigest()
        message = EventMessage(
            profile_db=profile_db, profile_id=profile_id, event=EventBody.of(event)
        ).with_row(row_id)
        queued.append(message)
        dispatch = Dispatch("events", message, now, now + REDISPATCH_AFTER)
        rows.append(OutboxRow(row_id, "event", now, profile_db, profile_id, dispatch=dispatch))
    return rows, queued
