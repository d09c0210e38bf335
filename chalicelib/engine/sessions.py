"""Web sessions (SPEC §6.3): `session.ended` after a time without web activity, or on
`session.close`.

Web activity is `page.visited`, `product.viewed`, a list's events (`<list>.item_added`,
`<list>.item_removed`, `<list>.updated`, `<list>.cleared`), `pixel.fired`,
`cart.viewed` and `checkout.started`. The first one opens a session; each one keeps it
open until `timeout` after the latest. The session ends when that time passes (a
timer), when `session.close` comes, or when activity comes later than that (the old
session ended before the new one starts, even if its timer has not fired yet).

`session.ended` has `started_at` (the first activity), `ended_at` (the last activity, or
the `session.close`), `pages` (`page.visited` events), `products_viewed` (distinct
products of `product.viewed`), `ordered` (an `order.created` came in the session) and
`data.derived: true`. It occurs at the end (the close, or the last activity + timeout)
and its id is the profile's and the session's start: however the end is noticed, and
however often, it is the same event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

ACTIVITY = frozenset({"page.visited", "product.viewed", "pixel.fired", "cart.viewed",
                      "checkout.started"})  # fmt: skip
LIST_EVENTS = (".item_added", ".item_removed", ".updated", ".cleared")
NOT_LISTS = frozenset({"order.updated"})
CLOSE = "session.close"
ENDED = "session.ended"


@dataclass(frozen=True)
class SessionState:
    """An open session of a profile."""

    started_at: datetime
    last_at: datetime  # the latest activity
    pages: int = 0
    products: tuple[str, ...] = ()  # viewed, each once
    ordered: bool = False

    def ends_at(self, timeout: timedelta) -> datetime:
        return self.last_at + timeout


@dataclass(frozen=True)
class SessionChange:
    """The session after an event (None: none is open) and the `session.ended` it caused."""

    state: SessionState | None
    ended: Event | None = None


def is_activity(event_type: str) -> bool:
    return event_type in ACTIVITY or (
        event_type.endswith(LIST_EVENTS) and event_type not in NOT_LISTS
    )


def on_event(
    state: SessionState | None, event: Event, timeout: timedelta, profile_key: str
) -> SessionChange | None:
    """The session after one of the profile's events (None: the event does not touch it)."""
    at = event.occurred_at
    if event.type == CLOSE:
        return SessionChange(None, ended(state, at, at, profile_key)) if state else None
    if event.type == "order.created":
        return SessionChange(replace(state, ordered=True)) if state and not state.ordered else None
    if not is_activity(event.type):
        return None
    closed = None
    if state is not None and at > state.ends_at(timeout):
        closed = ended(state, state.last_at, state.ends_at(timeout), profile_key)
        state = None
    session = state or SessionState(at, at)
    product = event.data.get("product_id")
    products = session.products
    if event.type == "product.viewed" and isinstance(product, str) and product not in products:
        products = (*products, product)
    session = replace(
        session, last_at=max(session.last_at, at), products=products,
        pages=session.pages + (event.type == "page.visited"),
    )  # fmt: skip
    return SessionChange(session, closed)


def on_timeout(
    state: SessionState | None, now: datetime, timeout: timedelta, profile_key: str
) -> Event | None:
    """`session.ended` when the open session's time is up by `now`."""
    if state is None or state.ends_at(timeout) > now:
        return None
    return ended(state, state.last_at, state.ends_at(timeout), profile_key)


def ended(state: SessionState, ended_at: datetime, at: datetime, profile_key: str) -> Event:
    data = {
        "started_at": format_datetime(state.started_at),
        "ended_at": format_datetime(ended_at),
        "pages": state.pages,
        "products_viewed": len(state.products),
        "ordered": state.ordered,
        "derived": True,
    }
    return Event(ENDED, at, data, f"{ENDED}:{profile_key}:{format_datetime(state.started_at)}")
