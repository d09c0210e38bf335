"""The order rules (SPEC §6.3): an order's state from its events, and what each change derives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.engine.orders import OrderState, apply
from chalicelib.scenarios.facts import Event

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)


def item(item_id: str, status: str = "placed", **values: Any) -> dict[str, Any]:
    return {"item_id": item_id, "product_id": f"sku-{item_id}", "quantity": 1, "price": 10.0,
            "status": status, **values}  # fmt: skip


def order_event(
    kind: str, event_id: str, hours: float = 0, items: list[dict[str, Any]] | None = None,
    **data: Any,
) -> Event:  # fmt: skip
    body = {"order_id": "o-1", **data}
    if items is not None:
        body["items"] = items
    return Event(f"order.{kind}", T0 + timedelta(hours=hours), body, event_id)


def run(*events: Event) -> tuple[OrderState | None, list[list[Event]]]:
    """Apply the events in turn: the final state and what each one derived ([] when it
    was not applied)."""
    state: OrderState | None = None
    derived = []
    for event in events:
        change = apply(state, event)
        derived.append(change.derived if change else [])
        if change is not None:
            state = change.state
    return state, derived


def announced(events: list[Event]) -> list[tuple[str, ...]]:
    """(type, scope, status, item) of each derived event, briefly."""
    return [
        (e.type, e.data.get("scope", ""), e.data.get("status", ""), e.data.get("item_id", ""))
        for e in events
    ]


CREATED = order_event("created", "e1", items=[item("1"), item("2")], status="placed", total=20)


def test_a_created_order_announces_its_status_for_the_order_each_item_and_all_items() -> None:
    state, (derived,) = run(CREATED)
    assert announced(derived) == [
        ("order.status_changed", "order", "placed", ""),
        ("order.status_changed", "any_item", "placed", "1"),
        ("order.status_changed", "any_item", "placed", "2"),
        ("order.status_changed", "all_items", "placed", ""),
    ]
    assert state is not None
    assert (state.status, state.values["total"], state.created_items) == ("placed", 20, ("1", "2"))
    first = derived[0]
    assert first.occurred_at == T0
    assert first.id == "e1:order.status_changed:order:placed"
    assert first.data == {
        "order_id": "o-1", "status": "placed", "scope": "order", "derived": True,
        "items": [item("1"), item("2")],
    }  # fmt: skip
    assert derived[1].data["item_id"] == "1"


def test_the_order_status_is_announced_when_it_changes_and_not_when_it_stays() -> None:
    _, (_, shipped, again) = run(
        CREATED,
        order_event("updated", "e2", 1, status="shipped"),
        order_event("updated", "e3", 2, status="shipped", total=25),
    )
    assert announced(shipped) == [("order.status_changed", "order", "shipped", "")]
    assert again == []


def test_all_items_is_announced_once_every_item_reached_the_status_over_several_updates() -> None:
    _, (_, first, second, later) = run(
        CREATED,
        order_event("updated", "e2", 1, items=[item("1", "delivered")]),
        order_event("updated", "e3", 2, items=[item("2", "delivered")]),
        order_event("updated", "e4", 3, items=[item("1", "returned"), item("2", "delivered")]),
    )
    assert announced(first) == [
        ("order.status_changed", "any_item", "delivered", "1"),
        ("order.item_delivered", "", "", "1"),
    ]
    assert announced(second) == [
        ("order.status_changed", "any_item", "delivered", "2"),
        ("order.status_changed", "all_items", "delivered", ""),
        ("order.item_delivered", "", "", "2"),
    ]
    assert second[1].id == "e3:order.status_changed:all_items:delivered"
    assert announced(later) == [("order.status_changed", "any_item", "returned", "1")]


def test_an_item_reached_a_status_once_even_if_it_left_it_and_came_back() -> None:
    _, (_, _, _, back) = run(
        CREATED,
        order_event("updated", "e2", 1, items=[item("1", "shipped")]),
        order_event("updated", "e3", 2, items=[item("1", "placed")]),
        order_event("updated", "e4", 3, items=[item("1", "shipped")]),
    )
    assert back == []


def test_an_item_cancelled_meanwhile_means_all_items_never_comes_but_for_cancelled() -> None:
    _, (_, _, delivered, cancelled) = run(
        CREATED,
        order_event("updated", "e2", 1, items=[item("2", "cancelled")]),
        order_event("updated", "e3", 2, items=[item("1", "delivered"), item("2", "delivered")]),
        order_event("updated", "e4", 3, items=[item("1", "cancelled")]),
    )
    assert ("order.status_changed", "all_items", "delivered", "") not in announced(delivered)
    assert ("order.status_changed", "all_items", "cancelled", "") in announced(cancelled)


def test_all_items_counts_only_the_items_the_order_was_created_with() -> None:
    _, (_, added, delivered) = run(
        CREATED,
        order_event("updated", "e2", 1, items=[item("3", "placed")]),
        order_event("updated", "e3", 2, items=[item("1", "delivered"), item("2", "delivered")]),
    )
    assert announced(added) == [("order.status_changed", "any_item", "placed", "3")]
    assert ("order.status_changed", "all_items", "delivered", "") in announced(delivered)


def test_an_item_delivered_is_announced_when_it_came_so_and_again_when_it_changes() -> None:
    created = order_event("created", "e1", items=[item("1", "delivered")], status="delivered")
    state, (came, repriced, same) = run(
        created,
        order_event("updated", "e2", 1, items=[item("1", "delivered", price=8.0)]),
        order_event("updated", "e3", 2, items=[item("1", "delivered", price=8.0)]),
    )
    assert ("order.item_delivered", "", "", "1") in announced(came)
    (delivered,) = repriced
    assert delivered.id == "e2:order.item_delivered:1"
    assert delivered.data == {"order_id": "o-1", "item_id": "1", "product_id": "sku-1",
                              "quantity": 1, "price": 8.0, "derived": True}  # fmt: skip
    assert same == []
    assert state is not None
    assert state.items[0].values["price"] == 8.0


def test_a_change_of_an_item_not_delivered_announces_no_delivery() -> None:
    _, (_, changed) = run(CREATED, order_event("updated", "e2", 1, items=[item("1", quantity=3)]))
    assert changed == []


def test_an_update_older_than_the_latest_change_is_not_applied_and_derives_nothing() -> None:
    state, (_, _, stale) = run(
        CREATED,
        order_event("updated", "e2", 2, status="shipped"),
        order_event("updated", "e3", 1, status="cancelled", items=[item("1", "cancelled")]),
    )
    assert stale == []
    assert state is not None
    assert (state.status, state.items[0].status) == ("shipped", "placed")


def test_an_update_at_the_same_moment_as_the_latest_change_is_applied() -> None:
    _, (_, same_time) = run(CREATED, order_event("updated", "e2", 0, status="paid"))
    assert announced(same_time) == [("order.status_changed", "order", "paid", "")]


def test_an_event_applied_already_is_not_applied_again() -> None:
    state, _ = run(CREATED, order_event("updated", "e2", 1, status="shipped"))
    assert apply(state, order_event("updated", "e2", 1, status="shipped")) is None
    assert apply(state, CREATED) is None


def test_an_update_of_an_order_never_seen_is_its_creation() -> None:
    state, (derived,) = run(order_event("updated", "e1", items=[item("1", "shipped")]))
    assert announced(derived) == [
        ("order.status_changed", "any_item", "shipped", "1"),
        ("order.status_changed", "all_items", "shipped", ""),
    ]
    assert state is not None
    assert state.created_items == ("1",)


def test_new_products_are_ordered_at_the_events_time() -> None:
    change = apply(None, CREATED)
    assert change is not None
    assert change.ordered == ["sku-1", "sku-2"]
    more = apply(change.state, order_event("updated", "e2", 1, items=[item("1", "shipped"),
                                                                     item("3")]))  # fmt: skip
    assert more is not None
    assert more.ordered == ["sku-3"]


def test_events_that_are_not_about_an_order_change_nothing() -> None:
    assert apply(None, Event("order.created", T0, {"items": [item("1")]}, "e1")) is None
    assert apply(None, Event("order.status_changed", T0, {"order_id": "o-1"}, "e1")) is None
    state, _ = run(CREATED)
    other = Event("order.updated", T0 + timedelta(hours=1), {"order_id": "o-2"}, "e2")
    assert apply(state, other) is None
