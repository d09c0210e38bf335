"""`cart.abandoned` and `browse.abandoned` (SPEC §6.3), checked when their time is up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.engine.commerce import browse_abandoned, cart_abandoned

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
ITEMS = [
    {"product_id": "p1", "quantity": 2, "price": 10.5},
    {"product_id": "p2", "quantity": 1, "price": None},
]


def test_a_cart_unchanged_since_its_last_change_is_abandoned_once_per_change() -> None:
    event = cart_abandoned(ITEMS, T0, T0, "checkout", T0 + HOUR, "customers#ada")
    assert event is not None
    assert (event.type, event.occurred_at) == ("cart.abandoned", T0 + HOUR)
    assert event.data == {
        "items": ITEMS, "total": 21.0, "last_change_at": "2026-06-10T10:00:00Z",
        "stage": "checkout", "derived": True,
    }  # fmt: skip
    again = cart_abandoned(ITEMS, T0, T0, "checkout", T0 + HOUR, "customers#ada")
    assert again is not None
    assert again.id == event.id
    other = cart_abandoned(ITEMS, T0 + HOUR, T0 + HOUR, None, T0 + 2 * HOUR, "customers#ada")
    assert other is not None
    assert other.id != event.id
    assert other.data["stage"] == "added"  # a cart neither viewed nor checked out


def test_an_empty_cart_a_later_change_or_an_order_abandons_nothing() -> None:
    assert cart_abandoned([], T0, T0, None, T0 + HOUR, "customers#ada") is None
    later = T0 + timedelta(minutes=5)  # a later change of the cart, or an order
    assert cart_abandoned(ITEMS, T0, later, None, T0 + HOUR, "customers#ada") is None


def test_a_view_neither_followed_by_the_cart_nor_an_order_is_abandoned_once() -> None:
    event = browse_abandoned("p1", T0, T0, 99, False, None, T0 + HOUR, "customers#ada")
    assert event is not None
    assert (event.type, event.occurred_at) == ("browse.abandoned", T0 + HOUR)
    assert event.data == {
        "product_id": "p1", "viewed_at": "2026-06-10T10:00:00Z", "price": 99, "derived": True
    }  # fmt: skip
    earlier_order = T0 - timedelta(days=3)
    again = browse_abandoned("p1", T0, T0, 99, False, earlier_order, T0 + HOUR, "customers#ada")
    assert again is not None
    assert again.id == event.id


def test_a_view_in_the_cart_ordered_or_viewed_again_abandons_nothing() -> None:
    later = T0 + timedelta(minutes=5)
    assert browse_abandoned("p1", T0, T0, 99, True, None, T0 + HOUR, "k") is None
    assert browse_abandoned("p1", T0, T0, 99, False, later, T0 + HOUR, "k") is None
    assert browse_abandoned("p1", T0, later, 99, False, None, T0 + HOUR, "k") is None
    assert browse_abandoned("p1", T0, None, 99, False, None, T0 + HOUR, "k") is None
