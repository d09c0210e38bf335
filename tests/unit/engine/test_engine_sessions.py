"""Web sessions (SPEC §6.3): when `session.ended` comes and what it says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.engine.sessions import SessionState, is_activity, on_event, on_timeout
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)
TIMEOUT = timedelta(minutes=30)


def at(minutes: float, event_type: str = "page.visited", **data: Any) -> Event:
    return Event(event_type, T0 + timedelta(minutes=minutes), data, f"e{minutes}")


def run(*events: Event) -> tuple[SessionState | None, list[Event]]:
    state: SessionState | None = None
    ended = []
    for event in events:
        change = on_event(state, event, TIMEOUT, "customers#ada")
        if change is not None:
            state = change.state
            ended.extend([change.ended] if change.ended else [])
    return state, ended


def test_web_activity_is_pages_products_lists_pixels_carts_and_checkouts() -> None:
    for kind in ("page.visited", "product.viewed", "cart.item_added", "wishlist.item_removed",
                 "favorites.updated", "cart.cleared", "pixel.fired", "cart.viewed",
                 "checkout.started"):  # fmt: skip
        assert is_activity(kind), kind
    for kind in ("order.updated", "order.created", "signup", "session.close", "message.opened"):
        assert not is_activity(kind), kind


def test_a_session_ends_when_its_time_without_activity_is_up() -> None:
    state, ended = run(at(0), at(5, "product.viewed", product_id="a"),
                       at(10, "product.viewed", product_id="a"), at(20, "order.created"))  # fmt: skip
    assert ended == []
    assert on_timeout(state, T0 + timedelta(minutes=39), TIMEOUT, "customers#ada") is None
    end = on_timeout(state, T0 + timedelta(minutes=41), TIMEOUT, "customers#ada")
    assert end is not None
    assert end.type == "session.ended"
    assert end.occurred_at == T0 + timedelta(minutes=40)
    assert end.id == "session.ended:customers#ada:2026-06-10T10:00:00Z"
    assert end.data == {"started_at": "2026-06-10T10:00:00Z", "ended_at": "2026-06-10T10:10:00Z",
                        "pages": 1, "products_viewed": 1, "ordered": True, "derived": True}  # fmt: skip


def test_an_order_is_not_activity_and_a_close_ends_the_session_at_once() -> None:
    state, ended = run(at(0), at(25, "order.created"), at(28, "session.close"))
    assert state is None
    (end,) = ended
    assert (end.occurred_at, end.data["ended_at"]) == (at(28).occurred_at, "2026-06-10T10:28:00Z")
    assert on_event(None, at(29, "session.close"), TIMEOUT, "customers#ada") is None


def test_activity_after_the_timeout_ends_the_old_session_and_starts_a_new_one() -> None:
    state, (end,) = run(at(0), at(31))
    assert end.occurred_at == T0 + timedelta(minutes=30)
    assert state == SessionState(at(31).occurred_at, at(31).occurred_at, pages=1)


def test_the_same_session_ends_as_the_same_event_however_its_end_is_noticed() -> None:
    state, _ = run(at(0))
    by_timer = on_timeout(state, T0 + timedelta(hours=1), TIMEOUT, "customers#ada")
    _, (by_activity,) = run(at(0), at(45))
    assert by_timer == by_activity


def test_an_earlier_activity_arriving_late_counts_but_does_not_move_the_end_back() -> None:
    state, _ = run(at(0), at(20), at(10))
    assert state is not None
    assert (state.pages, state.last_at) == (3, at(20).occurred_at)
