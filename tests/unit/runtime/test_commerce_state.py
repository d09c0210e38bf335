"""Commerce state kept by the events consumer on the in-memory storage (SPEC §6.2):
lists, views and the cart's stage, idempotent under redelivery and deaf to older news."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.clock import VirtualClock, use_clock
from chalicelib.adapters.memory_storage import MemoryQueues, MemoryStorage
from chalicelib.bootstrap import bootstrap
from chalicelib.runtime import commerce, events, sweeper
from chalicelib.runtime.messages import EventBody, EventMessage, WatchersPage
from chalicelib.runtime.storage import CartStage, Changes, ListLine, ProductOrdered, ProductView
from chalicelib.runtime.unit_of_work import UnitOfWork
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)


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
    commerce.put_product(UnitOfWork(), "p1", {"price": 100, "regions": {"eu": {"price": 90}}}, T0)
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
    commerce.put_product(UnitOfWork(), "p1", {"price": 100}, T0)
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
    commerce.put_product(UnitOfWork(), "p1", {"price": 100, "fields": {"color": "red"}}, T0)
    later = T0 + timedelta(hours=1)
    changed = commerce.put_product(UnitOfWork(), "p1", {"price": 80}, later)
    assert (changed.version, changed.updated_at) == (2, later)
    assert changed.previous == {"price": 100, "fields": {"color": "red"}}
    assert changed.document == {"price": 80, "fields": {"color": "red"}}
    assert storage.product("p1") == changed


def watch(profile_id: str, list_name: str, price: float, zone: str | None = None) -> None:
    fields = {"zone": zone} if zone else {}
    storage = UnitOfWork().storage
    assert isinstance(storage, MemoryStorage)
    storage.put_profile("customers", profile_id, fields)
    storage.put_line("customers", profile_id, list_name, ListLine("p1", 1, price, T0, T0))


def fan_out() -> list[EventMessage]:
    """Deliver the segments queue (pages of watchers) until empty; the derived events."""
    while pages := QUEUES.take("segments"):
        for page in pages:
            assert isinstance(page, WatchersPage)
            commerce.evaluate_watchers(page)
    derived = QUEUES.take("events")
    assert all(isinstance(m, EventMessage) for m in derived)
    return derived  # type: ignore[return-value]


def test_a_price_change_reaches_every_watcher_in_pages_once_per_source(
    storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commerce, "WATCHERS_PAGE", 2)
    commerce.put_product(UnitOfWork(), "p1", {"price": 100, "regions": {"eu": {}}}, T0)
    assert QUEUES.take("segments") == []  # a new product: nothing changed for anyone
    for number in range(5):
        watch(f"w{number}", "favorites", 100, zone="eu")
    watch("w0", "cart", 80, zone="eu")  # saw it cheaper: now above that
    watch("us", "cart", 100, zone="us")  # the product has no data for that zone
    later = T0 + timedelta(hours=1)
    commerce.put_product(UnitOfWork(), "p1", {"price": 90}, later)
    (page,) = QUEUES.sent["segments"]
    derived = fan_out()
    drops = [m for m in derived if m.event.type == "product.price_dropped"]
    assert sorted(m.profile_id for m in drops) == [f"w{n}" for n in range(5)]
    assert drops[0].event.data == {
        "product_id": "p1", "source": "favorites", "price_seen": 100, "price": 90,
        "drop_abs": 10, "drop_pct": 10.0, "seen_at": "2026-06-10T10:00:00Z", "derived": True,
    }  # fmt: skip
    assert drops[0].event.occurred_at == "2026-06-10T11:00:00Z"
    (rise,) = [m for m in derived if m.event.type == "product.price_increased"]
    assert (rise.profile_id, rise.event.data["source"], rise.event.data["rise_abs"]) == (
        "w0", "cart", 10,
    )  # fmt: skip
    assert len(derived) == 6
    commerce.evaluate_watchers(page[0])  # the first page again: the same ids
    again = fan_out()
    assert {m.event.id for m in again} == {m.event.id for m in derived}


def test_stock_and_field_changes_fire_for_the_watchers_zone(storage: MemoryStorage) -> None:
    commerce.put_product(UnitOfWork(), "p1", {"price": 10, "available": False}, T0)
    watch("ada", "favorites", 10)
    commerce.put_product(UnitOfWork(), "p1", {"available": True, "fields": {"color": "red"}}, T0)
    derived = fan_out()
    assert [(m.event.type, m.event.data.get("fields")) for m in derived] == [
        ("product.back_in_stock", None),
        ("product.field_changed", {"color": {"old": None, "new": "red"}}),
    ]
    commerce.put_product(UnitOfWork(), "p1", {"fields": {"color": "red"}}, T0)  # no change
    assert QUEUES.take("segments") == []


def test_a_price_signal_says_when_the_watcher_last_ordered_the_product(
    storage: MemoryStorage,
) -> None:
    commerce.put_product(UnitOfWork(), "p1", {"price": 100}, T0)
    watch("ada", "favorites", 100)
    watch("bob", "favorites", 100)
    ordered = T0 - timedelta(days=30)
    storage.commit(Changes(ordered=[ProductOrdered("customers", "ada", "p1", ordered)]))
    commerce.put_product(UnitOfWork(), "p1", {"price": 80}, T0 + timedelta(hours=1))
    drops = {m.profile_id: m.event.data for m in fan_out()}
    assert drops["ada"]["last_ordered_at"] == "2026-05-11T10:00:00Z"
    assert "last_ordered_at" not in drops["bob"]  # never ordered it: absent


def test_a_change_whose_fan_out_was_never_queued_is_fanned_out_by_the_sweeper(
    storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    commerce.put_product(UnitOfWork(), "p1", {"price": 100}, T0)
    watch("ada", "favorites", 100)
    clock = VirtualClock(T0 + timedelta(hours=1))
    previous = use_clock(clock)
    try:
        monkeypatch.setattr(UnitOfWork, "send", lambda *_: None)  # the function dies here
        commerce.put_product(UnitOfWork(), "p1", {"price": 80}, clock.now())
        monkeypatch.undo()
        assert QUEUES.take("segments") == []
        clock.advance(timedelta(minutes=16))
        sweeper.sweep(clock.now())  # the change's first page is still pending: sent again
        (drop,) = fan_out()
        assert (drop.profile_id, drop.event.type) == ("ada", "product.price_dropped")
        clock.advance(timedelta(minutes=16))
        sweeper.sweep(clock.now())  # handled: taken out of the outbox
        assert QUEUES.take("segments") == []
    finally:
        use_clock(previous)


def test_a_scheduled_price_check_compares_prices_only_at_its_moments(
    storage: MemoryStorage,
) -> None:
    commerce.set_signal_settings(storage, {"price_check": {"daily": "09:00"}}, T0)
    for product_id in ("p1", "p2"):
        commerce.put_product(UnitOfWork(), product_id, {"price": 100}, T0)
    watch("ada", "favorites", 100)
    storage.put_line("customers", "ada", "favorites", ListLine("p2", 1, 100, T0, T0))
    assert commerce.check_prices(T0) == 0  # the first tick: checks start from now
    hour = timedelta(hours=1)
    commerce.put_product(UnitOfWork(), "p1", {"price": 90}, T0 + hour)
    commerce.put_product(UnitOfWork(), "p1", {"price": 80, "available": True}, T0 + 2 * hour)
    commerce.put_product(UnitOfWork(), "p2", {"price": 70}, T0 + hour)
    commerce.put_product(UnitOfWork(), "p2", {"price": 100}, T0 + 2 * hour)  # undone
    assert [m.event.type for m in fan_out()] == ["product.back_in_stock"]  # no price yet
    assert commerce.check_prices(T0 + 22 * hour) == 0  # 08:00 the next day: not yet

    next_check = datetime(2026, 6, 11, 9, tzinfo=UTC)
    assert commerce.check_prices(next_check + timedelta(minutes=1)) == 1  # p1 only
    (drop,) = fan_out()
    assert (drop.event.type, drop.event.occurred_at) == (
        "product.price_dropped", "2026-06-11T09:00:00Z",
    )  # fmt: skip
    assert (drop.event.data["price_seen"], drop.event.data["price"]) == (100, 80)
    assert commerce.check_prices(next_check + timedelta(minutes=2)) == 0  # that check is done
    commerce.put_product(UnitOfWork(), "p1", {"price": 85}, next_check + hour)
    assert commerce.check_prices(next_check + timedelta(days=1)) == 1  # from 80 at the check
    (drop,) = fan_out()
    assert drop.event.data["price"] == 85
