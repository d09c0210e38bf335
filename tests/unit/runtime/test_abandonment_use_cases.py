"""Abandoned carts and browses on the in-memory storage (SPEC §6.3): timed from the
latest change, re-checked when due, emitted once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory_storage import MemoryQueues, MemoryStorage
from chalicelib.bootstrap import bootstrap
from chalicelib.runtime import commerce, events, steps, sweeper
from chalicelib.runtime.messages import AbandonCheck, EventBody, EventMessage
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)
MINUTES = timedelta(minutes=1)

QUEUES = MemoryQueues()


@pytest.fixture
def storage() -> Iterator[MemoryStorage]:
    storage = MemoryStorage()
    QUEUES.sent.clear()
    bootstrap(storage, QUEUES)
    try:
        yield storage
    finally:
        bootstrap()


def deliver(event_type: str, at: datetime, **data: Any) -> EventMessage:
    event = Event(event_type, at, data, id=f"{event_type}@{at.isoformat()}")
    message = EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(event))
    events.process(message)
    return message


def checks(now: datetime) -> list[AbandonCheck]:
    """What the sweeper sends for abandonment at `now` (other steps are dropped)."""
    QUEUES.take("steps")
    sweeper.sweep(now)
    return [m for m in QUEUES.take("steps") if isinstance(m, AbandonCheck)]


def abandoned(now: datetime) -> list[Event]:
    """Run the checks due at `now`; the abandonment events they emitted."""
    QUEUES.take("events")
    for check in checks(now):
        steps.process(check)
    return [
        m.event.event()
        for m in QUEUES.take("events")
        if isinstance(m, EventMessage) and m.event.type.endswith(".abandoned")
    ]


def test_a_cart_left_for_an_hour_after_its_last_change_is_abandoned_once(
    storage: MemoryStorage,
) -> None:
    deliver("cart.item_added", T0, product_id="p1", quantity=2, price=10)
    deliver("cart.item_added", T0 + 20 * MINUTES, product_id="p2", price=5.5)
    deliver("checkout.started", T0 + 25 * MINUTES)
    assert abandoned(T0 + 79 * MINUTES) == []  # an hour after the first change: not the last
    (event,) = abandoned(T0 + 80 * MINUTES)
    assert event.type == "cart.abandoned"
    assert event.occurred_at == T0 + 80 * MINUTES
    assert event.data == {
        "items": [
            {"product_id": "p1", "quantity": 2, "price": 10},
            {"product_id": "p2", "quantity": 1, "price": 5.5},
        ],
        "total": 25.5, "last_change_at": "2026-06-10T10:20:00Z", "stage": "checkout",
        "derived": True,
    }  # fmt: skip
    assert event.id == "cart.abandoned:customers#ada:2026-06-10T10:20:00Z"
    assert checks(T0 + 3 * 60 * MINUTES) == []  # fired: the sweeper sends it no more


def test_a_repeated_check_or_a_redelivered_change_emits_nothing_again(
    storage: MemoryStorage,
) -> None:
    added = deliver("cart.item_added", T0, product_id="p1", price=10)
    (check,) = checks(T0 + 60 * MINUTES)
    steps.process(check)
    QUEUES.take("events")
    steps.process(check)  # delivered again
    events.process(added)  # the change again: it does not arm the timer again
    assert QUEUES.take("events") == []
    assert abandoned(T0 + 3 * 60 * MINUTES) == []


def test_a_check_cut_short_before_its_timer_left_the_due_ones_emits_once(
    storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver("cart.item_added", T0, product_id="p1", price=10)
    (check,) = checks(T0 + 60 * MINUTES)
    with monkeypatch.context() as crash:
        crash.setattr(storage, "disarm_abandon_timer", lambda timer: None)
        steps.process(check)
    (first,) = QUEUES.take("events")
    (again,) = checks(T0 + 61 * MINUTES)
    steps.process(again)
    assert QUEUES.take("events") == []  # its outbox row is there already
    assert checks(T0 + 62 * MINUTES) == []
    assert isinstance(first, EventMessage)
    assert first.event.type == "cart.abandoned"


def test_an_order_or_an_emptied_cart_before_the_hour_prevents_it(storage: MemoryStorage) -> None:
    deliver("cart.item_added", T0, product_id="p1", price=10)
    deliver("order.created", T0 + 30 * MINUTES, order_id="o1", items=[{"product_id": "p1"}])
    assert abandoned(T0 + 2 * 60 * MINUTES) == []
    deliver("cart.item_added", T0 + 3 * 60 * MINUTES, product_id="p2", price=1)
    deliver("cart.cleared", T0 + 3 * 60 * MINUTES + 10 * MINUTES)
    assert abandoned(T0 + 6 * 60 * MINUTES) == []
    deliver("cart.item_added", T0 + 20 * MINUTES, product_id="p3")  # older than the order
    assert abandoned(T0 + 7 * 60 * MINUTES) == []


def test_a_cart_put_through_the_api_is_timed_by_the_configured_delay(
    storage: MemoryStorage,
) -> None:
    commerce.set_signal_settings(storage, {"cart_abandoned_after": "PT2H"}, T0)
    commerce.replace_list(
        UnitOfWork(), "customers", "ada", "cart", [{"product_id": "p1", "price": 3}], T0
    )
    assert abandoned(T0 + 119 * MINUTES) == []
    (event,) = abandoned(T0 + 120 * MINUTES)
    assert (event.occurred_at, event.data["stage"]) == (T0 + 120 * MINUTES, "added")


def test_a_product_viewed_and_neither_put_in_the_cart_nor_ordered_is_abandoned(
    storage: MemoryStorage,
) -> None:
    deliver("product.viewed", T0, product_id="p1", price=99)
    deliver("product.viewed", T0, product_id="p2", price=5)
    deliver("product.viewed", T0, product_id="p3", price=7)
    deliver("cart.item_added", T0 + 10 * MINUTES, product_id="p2")
    deliver("cart.item_removed", T0 + 15 * MINUTES, product_id="p2")  # it went into the cart
    deliver("order.created", T0 + 20 * MINUTES, order_id="o1", items=[{"product_id": "p3"}])
    deliver("product.viewed", T0 + 30 * MINUTES, product_id="p1", price=95)  # viewed again
    assert abandoned(T0 + 60 * MINUTES) == []  # p1 was viewed again at 10:30
    (event,) = abandoned(T0 + 90 * MINUTES)
    assert event.type == "browse.abandoned"
    assert event.occurred_at == T0 + 90 * MINUTES
    assert event.data == {
        "product_id": "p1", "viewed_at": "2026-06-10T10:30:00Z", "price": 95, "derived": True
    }  # fmt: skip
    assert abandoned(T0 + 5 * 60 * MINUTES) == []
