"""Commerce state kept by the events consumer on the in-memory storage (SPEC §6.2):
lists, views and the cart's stage, idempotent under redelivery and deaf to older news."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory_storage import MemoryQueues, MemoryStorage
from chalicelib.bootstrap import bootstrap
from chalicelib.runtime import commerce, events
from chalicelib.runtime.messages import EventBody, EventMessage
from chalicelib.runtime.storage import CartStage, ListLine, ProductView
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)


@pytest.fixture
def storage() -> Iterator[MemoryStorage]:
    storage = MemoryStorage()
    bootstrap(storage, MemoryQueues())
    try:
        yield storage
    finally:
        bootstrap()


def deliver(
    event_type: str, at: datetime, event_id: str | None = None, **data: Any
) -> EventMessage:
    event = Event(event_type, at, data, id=event_id or f"{event_type}@{at.isoformat()}")
    message = EventMessage(profile_db="customers", profile_id="ada", event=EventBody.of(event))
    events.process(message)
    return message


def lines(storage: MemoryStorage, list_name: str = "cart") -> list[ListLine]:
    return storage.list_lines("customers", "ada", list_name)


def test_an_added_line_keeps_the_given_price_else_the_effective_one_for_the_zone(
    storage: MemoryStorage,
) -> None:
    commerce.put_product(storage, "p1", {"price": 100, "regions": {"eu": {"price": 90}}}, T0)
    storage.put_profile("customers", "ada", {"zone": "eu"})
    deliver("cart.item_added", T0, product_id="p1", quantity=2)
    deliver("favorites.item_added", T0, product_id="p1", price=85)
    deliver("wishlist.item_added", T0, product_id="p9")  # no such product: no price known
    assert lines(storage) == [ListLine("p1", 2, 90, T0, T0)]
    assert lines(storage, "favorites") == [ListLine("p1", 1, 85, T0, T0)]
    assert lines(storage, "wishlist") == [ListLine("p9", 1, None, T0, T0)]


def test_a_redelivered_event_changes_nothing_and_an_older_one_does_not_overwrite(
    storage: MemoryStorage,
) -> None:
    later = T0 + timedelta(minutes=10)
    added = deliver("cart.item_added", later, product_id="p1", quantity=3, price=10)
    events.process(added)
    deliver("cart.item_added", T0, product_id="p1", quantity=1, price=5)  # older, late
    assert lines(storage) == [ListLine("p1", 3, 10, later, later)]
    deliver("cart.item_removed", T0 + timedelta(minutes=5), product_id="p1")  # older
    assert len(lines(storage)) == 1
    deliver("cart.item_removed", later + timedelta(minutes=1), product_id="p1")
    assert lines(storage) == []
    deliver("cart.item_added", later, product_id="p1")  # the old addition again: still off
    assert lines(storage) == []


def test_an_updated_list_replaces_its_lines_and_cleared_empties_the_cart(
    storage: MemoryStorage,
) -> None:
    deliver("cart.item_added", T0, product_id="p1", price=10)
    deliver("cart.item_added", T0, product_id="p2", price=20)
    later = T0 + timedelta(minutes=1)
    deliver(
        "cart.updated", later,
        items=[{"product_id": "p2", "quantity": 4, "price": 25}, {"product_id": "p3"}],
    )  # fmt: skip
    assert lines(storage) == [
        ListLine("p2", 4, 20, T0, later),
        ListLine("p3", 1, None, later, later),
    ]
    deliver("cart.viewed", later)
    assert commerce.read_list(storage, "customers", "ada", "cart")["stage"] == "viewed_cart"
    deliver("cart.cleared", later + timedelta(minutes=1))
    assert lines(storage) == []
    assert commerce.read_list(storage, "customers", "ada", "cart")["stage"] is None


def test_order_updated_is_no_list(storage: MemoryStorage) -> None:
    deliver("order.updated", T0, order_id="o1", items=[{"item_id": "i1", "product_id": "p1"}])
    assert lines(storage, "order") == []


def test_the_latest_view_keeps_the_price_seen(storage: MemoryStorage) -> None:
    commerce.put_product(storage, "p1", {"price": 100}, T0)
    deliver("product.viewed", T0, product_id="p1")
    later = T0 + timedelta(hours=1)
    deliver("product.viewed", later, product_id="p1", price=95)
    deliver("product.viewed", T0 + timedelta(minutes=1), product_id="p1", price=1)  # older
    assert storage.views("customers", "ada") == [ProductView("p1", 95, later)]


def test_a_cart_marks_how_far_it_got_and_never_goes_back(storage: MemoryStorage) -> None:
    deliver("cart.item_added", T0, product_id="p1", price=10)
    assert commerce.read_list(storage, "customers", "ada", "cart")["stage"] == "added"
    deliver("checkout.started", T0 + timedelta(minutes=2))
    deliver("cart.viewed", T0 + timedelta(minutes=3))
    assert storage.cart_stage("customers", "ada") == CartStage(
        "checkout", T0 + timedelta(minutes=3)
    )
    deliver("cart.viewed", T0 + timedelta(minutes=1), event_id="late")  # older: ignored
    assert storage.cart_stage("customers", "ada") == CartStage(
        "checkout", T0 + timedelta(minutes=3)
    )


def test_a_product_change_is_stored_at_the_next_version_with_the_document_before(
    storage: MemoryStorage,
) -> None:
    commerce.put_product(storage, "p1", {"price": 100, "fields": {"color": "red"}}, T0)
    later = T0 + timedelta(hours=1)
    changed = commerce.put_product(storage, "p1", {"price": 80}, later)
    assert (changed.version, changed.updated_at) == (2, later)
    assert changed.previous == {"price": 100, "fields": {"color": "red"}}
    assert changed.document == {"price": 80, "fields": {"color": "red"}}
    assert storage.product("p1") == changed
