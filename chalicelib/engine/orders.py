"""Orders (SPEC §6.3): the state an order's events describe, and the signals derived from it.

`order.created` and `order.updated` carry `{"order_id", "status", "total", "items":
[{"item_id", "product_id", "quantity", "price", "status", ...}]}`. `apply` folds one of
them into the order's state as last kept and answers the new state with the events the
change derives, or None when the event is not applied:

- an event whose `occurred_at` is older than the order's latest applied change (which
  is never older than any of its items' changes), or one already applied (its id among
  the last ones the order kept), changes nothing and derives nothing;
- an update's keys replace the kept ones; an item is merged by `item_id` (items not
  named stay as they were, a new one is added); an update of an order never seen is
  taken as its creation.

Derived, each with the causing event's `occurred_at`, `data.derived: true` and an id
made of the cause's id and what it announces:

- `order.status_changed` scope `order`: the order's status became `status` (also when
  it came with it);
- scope `any_item`: an item reached a status for the first time (also when it came
  with it), one event per item and status;
- scope `all_items`: every item the order came with (its first applied event) has
  reached `status`, once per status. An item of those that reached `cancelled` (or
  `canceled`) means never, for any status but the cancellation itself;
- `order.item_delivered`: an item's status became `delivered` (also when it came so),
  and again whenever an item that is delivered changes (price, quantity, any field).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

ORDER_EVENTS = ("order.created", "order.updated")
CANCELLED = frozenset({"cancelled", "canceled"})
DELIVERED = "delivered"
SEEN_KEPT = 20  # the ids of the last events an order applied, so a redelivery is known


@dataclass(frozen=True)
class Item:
    """One item of an order: its values as the events gave them (without `item_id`),
    when they last changed and every status it has reached, in order."""

    item_id: str
    values: dict[str, Any]
    changed_at: datetime
    reached: tuple[str, ...] = ()

    @property
    def status(self) -> str | None:
        status = self.values.get("status")
        return status if isinstance(status, str) else None

    def described(self) -> dict[str, Any]:
        return {"item_id": self.item_id, **self.values}


@dataclass(frozen=True)
class OrderState:
    """An order as its applied events left it."""

    order_id: str
    values: dict[str, Any]  # the order's own keys: `status`, `total`, any other
    items: tuple[Item, ...]
    changed_at: datetime  # the latest applied event's `occurred_at`
    created_items: tuple[str, ...] = ()  # the items it came with
    all_reached: tuple[str, ...] = ()  # statuses announced with scope `all_items`
    seen: tuple[str, ...] = ()  # ids of the last events applied

    @property
    def status(self) -> str | None:
        status = self.values.get("status")
        return status if isinstance(status, str) else None

    def item(self, item_id: str) -> Item | None:
        return next((item for item in self.items if item.item_id == item_id), None)


@dataclass(frozen=True)
class OrderChange:
    """What an applied event made of the order: its new state, the events it derives and
    the products it newly holds (for the profile's last order of each)."""

    state: OrderState
    derived: list[Event] = field(default_factory=list)
    ordered: list[str] = field(default_factory=list)


def order_id_of(event: Event) -> str | None:
    """The order an order event is about (None: not an order event, or no `order_id`)."""
    if event.type not in ORDER_EVENTS:
        return None
    order_id = event.data.get("order_id")
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        order_id = str(order_id)
    return order_id if isinstance(order_id, str) and order_id else None


def apply(state: OrderState | None, event: Event) -> OrderChange | None:
    """The order after the event, or None when it is not applied (see the module)."""
    order_id = order_id_of(event)
    if order_id is None or (state is not None and state.order_id != order_id):
        return None
    at = event.occurred_at
    if state is not None and (event.id in state.seen or at < state.changed_at):
        return None
    before = state or OrderState(order_id, {}, (), at)
    items, ordered = _merged_items(before, _given_items(event.data.get("items")), at)
    values = {
        **before.values,
        **{k: v for k, v in event.data.items() if k not in ("order_id", "items", "derived")},
    }
    after = replace(
        before, values=values, items=items, changed_at=at,
        created_items=before.created_items if state else tuple(i.item_id for i in items),
        seen=(*before.seen, *([event.id] if event.id else []))[-SEEN_KEPT:],
    )  # fmt: skip
    derived: list[Event] = []
    cause = event.id or f"{order_id}@{format_datetime(at)}"

    def announce(kind: str, key: str, data: dict[str, Any]) -> None:
        derived.append(Event(kind, at, {**data, "derived": True}, f"{cause}:{kind}:{key}"))

    listed = [item.described() for item in items]
    if after.status is not None and after.status != (state.status if state else None):
        announce(
            "order.status_changed", f"order:{after.status}",
            {"order_id": order_id, "status": after.status, "scope": "order", "items": listed},
        )  # fmt: skip
    reached_now: list[str] = []
    for item in items:
        old = before.item(item.item_id)
        for status in item.reached[len(old.reached) if old else 0 :]:
            reached_now.append(status)
            announce(
                "order.status_changed", f"any_item:{status}:{item.item_id}",
                {"order_id": order_id, "status": status, "scope": "any_item",
                 "item_id": item.item_id, "items": listed},
            )  # fmt: skip
    all_reached = list(after.all_reached)
    for status in dict.fromkeys(reached_now):
        if status not in all_reached and _all_items_reached(after, status):
            all_reached.append(status)
            announce(
                "order.status_changed", f"all_items:{status}",
                {"order_id": order_id, "status": status, "scope": "all_items", "items": listed},
            )  # fmt: skip
    for item in items:
        old = before.item(item.item_id)
        if item.status == DELIVERED and (
            old is None or old.status != DELIVERED or old.values != item.values
        ):
            announce(
                "order.item_delivered", item.item_id,
                {"order_id": order_id, "item_id": item.item_id,
                 **{key: item.values.get(key) for key in ("product_id", "quantity", "price")}},
            )  # fmt: skip
    return OrderChange(replace(after, all_reached=tuple(all_reached)), derived, ordered)


def _given_items(items: Any) -> list[tuple[str, dict[str, Any]]]:
    """The event's items that name an `item_id`, as (id, the other values)."""
    given = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        item_id = item.get("item_id")
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if isinstance(item_id, str) and item_id:
            given.append((item_id, {k: v for k, v in item.items() if k != "item_id"}))
    return given


def _merged_items(
    before: OrderState, given: list[tuple[str, dict[str, Any]]], at: datetime
) -> tuple[tuple[Item, ...], list[str]]:
    """The order's items with the given ones merged in, and the products newly ordered."""
    items = {item.item_id: item for item in before.items}
    ordered: list[str] = []
    for item_id, values in given:
        old = items.get(item_id)
        merged = {**(old.values if old else {}), **values}
        if old is not None and merged == old.values:
            continue
        item = Item(item_id, merged, at, old.reached if old else ())
        if item.status is not None and item.status not in item.reached:
            item = replace(item, reached=(*item.reached, item.status))
        items[item_id] = item
        product = merged.get("product_id")
        if old is None and isinstance(product, str) and product and product not in ordered:
            ordered.append(product)
    return tuple(items.values()), ordered


def _all_items_reached(order: OrderState, status: str) -> bool:
    created = [order.item(item_id) for item_id in order.created_items]
    kept = [item for item in created if item is not None]
    if not kept:
        return False
    if status not in CANCELLED and any(CANCELLED & set(item.reached) for item in kept):
        return False
    return all(status in item.reached for item in kept)
