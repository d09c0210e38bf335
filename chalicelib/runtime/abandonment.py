"""Abandoned carts and browses (SPEC §6.3): `cart.abandoned` and `browse.abandoned`.

Every change of a profile's cart sets the cart's abandonment timer to
`signals.cart_abandoned_after` after it; every view of a product sets that product's
timer to `signals.browse_abandoned_after` after the view. An `order.created` ends the
cart's timer and those of the products it holds; putting a product in the cart ends its
view's. A timer is kept for its change and only a later change sets it again, so an older
event delivered late arms nothing. The sweeper sends the due ones to the steps queue
(`AbandonCheck`) and `check` looks again when the time is up (the cart unchanged and
holding items, no order since; the view still the latest, the product neither in the
cart nor ordered since) before it emits the event (`chalicelib/engine/commerce.py`) as a
pending outbox row of the events queue, then takes the timer out of the due ones. The
event's id is the profile's and the change's, so a change is abandoned once however often
its timer fires.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from chalicelib.adapters.codec import profile_key
from chalicelib.engine.commerce import browse_abandoned, cart_abandoned
from chalicelib.scenarios.durations import format_datetime, parse_datetime, parse_duration

from .messages import AbandonCheck
from .orders import pending_events
from .storage import AbandonTimer, Changes, Conflict, Storage
from .unit_of_work import UnitOfWork

CART = "cart"


def cart_changed(uow: UnitOfWork, profile_db: str, profile_id: str, at: datetime) -> None:
    """The profile's cart changed at `at`: its abandonment is due the configured time after."""
    after = parse_duration(uow.signal_settings().cart_abandoned_after)
    uow.storage.set_abandon_timer(AbandonTimer(profile_db, profile_id, None, at, at + after))


def viewed(
    uow: UnitOfWork, profile_db: str, profile_id: str, product_id: str, at: datetime
) -> None:
    """The profile viewed the product at `at`: its abandonment is due the configured time after."""
    after = parse_duration(uow.signal_settings().browse_abandoned_after)
    uow.storage.set_abandon_timer(AbandonTimer(profile_db, profile_id, product_id, at, at + after))


def ended(
    storage: Storage, profile_db: str, profile_id: str, product_id: str | None, at: datetime
) -> None:
    """Nothing is abandoned for the cart (`product_id` None) or the product's view before
    `at`: an order came, or the product went into the cart."""
    storage.set_abandon_timer(AbandonTimer(profile_db, profile_id, product_id, at, None))


def due(storage: Storage, now: datetime) -> Iterable[AbandonCheck]:
    """A check for every abandonment timer due by `now`."""
    for timer in storage.due_abandon_timers(now):
        yield AbandonCheck(
            profile_db=timer.profile_db, profile_id=timer.profile_id,
            product_id=timer.product_id, changed_at=format_datetime(timer.changed_at),
        )  # fmt: skip


def check(uow: UnitOfWork, message: AbandonCheck) -> None:
    """Emit the abandonment a due timer stands for, if it still holds; a stale or repeated
    check changes nothing."""
    storage = uow.storage
    db, profile_id, product_id = message.profile_db, message.profile_id, message.product_id
    kept = storage.abandon_timer(db, profile_id, product_id)
    if kept is None or kept.due_at is None or kept.changed_at != parse_datetime(message.changed_at):
        return
    key = profile_key(db, profile_id)
    cart = storage.list_lines(db, profile_id, CART)
    if product_id is None:
        stage = storage.cart_stage(db, profile_id)
        items = [
            {"product_id": line.product_id, "quantity": line.quantity, "price": line.price}
            for line in cart
        ]
        latest = max([kept.changed_at, *(line.at for line in cart)])
        event = cart_abandoned(
            items, kept.changed_at, latest, stage.stage if stage else None, kept.due_at, key
        )
    else:
        view = next((v for v in storage.views(db, profile_id) if v.product_id == product_id), None)
        event = browse_abandoned(
            product_id, kept.changed_at, view.viewed_at if view else None,
            view.price if view else None, any(line.product_id == product_id for line in cart),
            storage.last_ordered_at(db, profile_id, product_id), kept.due_at, key,
        )  # fmt: skip
    if event is not None:
        rows, queued = pending_events(db, profile_id, [event])
        try:
            storage.commit(Changes(rows=rows))
        except Conflict:
            pass  # an earlier check wrote it: its outbox row is dispatched, or the sweeper's
        else:
            uow.send("events", queued)
    storage.disarm_abandon_timer(kept)
