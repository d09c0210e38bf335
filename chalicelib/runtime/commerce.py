"""Commerce state (SPEC §6.1, §6.2): the catalogue, the profiles' product lists, their
latest views and how far their cart got.

The catalogue is changed by `PUT /products/{id}` and the import: each change stores the
merged document at the next version with the document before it, so a later derivation
compares old and new effective values from the product alone. Lists, views and the cart's
stage are kept by the events consumer (`keep`) and `PUT /profiles/{db}/{id}/lists/{list}`:
each write is conditioned on the moment of the line's latest change, so a redelivered
event writes the same line again and an older one delivered late changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.engine.commerce import (
    effective,
    further_stage,
    merge_product,
    prices_differ,
    product_signals,
    zone_of,
)
from chalicelib.scenarios.durations import format_datetime, parse_datetime
from chalicelib.scenarios.model import ScheduleTrigger
from chalicelib.scenarios.schedules import due_runs

from . import abandonment
from .commit import REDISPATCH_AFTER
from .messages import EventBody, EventMessage, WatchersPage
from .storage import (
    VIEW_KEPT,
    CartStage,
    Conflict,
    Dispatch,
    ListLine,
    OutboxRow,
    ProductView,
    SignalSettings,
    Storage,
    StoredProduct,
    Watch,
)
from .unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

LIST_ACTIONS = ("item_added", "item_removed", "updated")
NOT_LISTS = frozenset({"order"})  # `order.updated` is an order's change, not a list's
CART = "cart"
WATCHERS_PAGE = 100  # watchers evaluated per queue message


# --- the catalogue ----------------------------------------------------------------------


def put_product(
    uow: UnitOfWork, product_id: str, given: dict[str, Any], at: datetime
) -> StoredProduct:
    """Merge an update into the product (creating it) at its next version; a change of
    a product that was there fans out over its watchers (`evaluate_watchers`)."""
    storage = uow.storage
    for _ in range(10):
        stored = storage.product(product_id)
        before = stored.document if stored else {}
        product = StoredProduct(
            product_id, merge_product(before, given), at,
            (stored.version if stored else 0) + 1, before,
        )  # fmt: skip
        fan_out = None
        if stored is not None and product.document != before:
            prices = uow.signal_settings().price_check == "on_change"
            fan_out = _fan_out_row(_first_page(product, prices))
        try:
            storage.put_product(product, fan_out)
        except Conflict:
            continue  # another change came first: merge into it
        if fan_out is not None and fan_out.dispatch is not None:
            if not prices:  # compared at the scheduled check instead
                storage.mark_price_change(product_id, before, product.version)
            uow.send("segments", [fan_out.dispatch.message])
        return product
    raise Conflict(f"product {product_id!r} kept changing")


def _fan_out_row(page: WatchersPage) -> OutboxRow:
    """The change's first page as a pending outbox row, written with the product: a crash
    before it is queued leaves it to the sweeper, and its consumer takes it out."""
    row_id = f"watchers-{page.product_id}-{page.version}"
    now = clock_now()
    dispatch = Dispatch("segments", page.with_row(row_id), now, now + REDISPATCH_AFTER)
    return OutboxRow(row_id, "watchers", now, "", "", dispatch=dispatch)


def check_prices(now: datetime, uow: UnitOfWork | None = None) -> int:
    """The scheduled price check (`signals.price_check` a schedule), at the minute tick:
    when a moment of the schedule has come since the last check, every product changed
    since then whose prices differ from that check's fans out over its watchers for price
    signals only, against the price seen, at that moment. A drop undone before the check
    fires nothing. Answers the products fanned out."""
    uow = uow or UnitOfWork()
    storage = uow.storage
    schedule = storage.signal_settings().price_check
    if not isinstance(schedule, dict):
        return 0
    last = storage.last_price_check()
    if last is None:  # the first tick on a schedule: checks start from now
        storage.mark_price_check(now)
        return 0
    trigger = ScheduleTrigger.model_validate(
        {"id": "price_check", "type": "schedule", "next": "check", **schedule}
    )
    due = due_runs(trigger, last, now)
    if not due:
        return 0
    moment, checked = due[-1], 0
    for change in storage.price_changes():
        product = storage.product(change.product_id)
        if product is None:
            continue
        if prices_differ(change.base, product.document):
            page = WatchersPage(
                product_id=product.product_id, version=product.version,
                changed_at=format_datetime(moment), before=change.base,
                after=product.document, others=False,
            )  # fmt: skip
            uow.send("segments", [page])
            checked += 1
        storage.settle_price_change(product.product_id, product.version, product.document)
    storage.mark_price_check(moment)  # after the fan-out: a crash before checks again
    return checked


def _first_page(product: StoredProduct, prices: bool) -> WatchersPage:
    return WatchersPage(
        product_id=product.product_id, version=product.version,
        changed_at=format_datetime(product.updated_at), before=product.previous,
        after=product.document, prices=prices,
    )  # fmt: skip


def evaluate_watchers(page: WatchersPage, uow: UnitOfWork | None = None) -> int:
    """Derive a product change's signals for one page of its watchers, after queueing the
    next page: each watcher's events have ids made of the product, its version, the
    profile, the source and the type, so a page delivered again emits nothing twice.
    Answers the watchers evaluated."""
    uow = uow or UnitOfWork()
    watches, following = uow.storage.watchers(page.product_id, WATCHERS_PAGE, page.token)
    if following is not None:
        uow.send("segments", [page.model_copy(update={"token": following, "row_id": None})])
    changed_at = parse_datetime(page.changed_at)
    assert changed_at is not None
    derived = []
    for watch in watches:
        if watch.source == "viewed" and watch.seen_at < changed_at - VIEW_KEPT:
            continue  # a view older than 60 days no longer watches (TTL may be late)
        zone = zone_of(uow.profile(watch.profile_db, watch.profile_id, history=False).view.fields)
        for event_type, data in product_signals(
            page.before, page.after, zone, watch.price_seen, page.prices, page.others
        ):
            if event_type.startswith("product.price_"):
                data = {**data, **_seen(uow, watch)}
            event_id = ":".join(
                (event_type, page.product_id, str(page.version), watch.profile_db,
                 watch.profile_id, watch.source)
            )  # fmt: skip
            body = EventBody(
                id=event_id, type=event_type, occurred_at=page.changed_at,
                data={"product_id": page.product_id, "source": watch.source, **data,
                      "derived": True},
            )  # fmt: skip
            derived.append(
                EventMessage(profile_db=watch.profile_db, profile_id=watch.profile_id, event=body)
            )
    uow.send("events", derived)
    if page.row_id is not None:  # the first page: its outbox row is handled
        uow.consume_row(page.row_id)
    return len(watches)


def _seen(uow: UnitOfWork, watch: Watch) -> dict[str, str]:
    """When the watcher saw the price, and when it last ordered the product (if it did)."""
    seen = {"seen_at": format_datetime(watch.seen_at)}
    ordered = uow.storage.last_ordered_at(watch.profile_db, watch.profile_id, watch.product_id)
    if ordered is not None:
        seen["last_ordered_at"] = format_datetime(ordered)
    return seen


# --- lists, views and the cart's stage --------------------------------------------------


def list_event(event_type: str) -> tuple[str, str] | None:
    """(list, action) of a `<list>.item_added` / `.item_removed` / `.updated` event."""
    name, _, action = event_type.rpartition(".")
    if name and action in LIST_ACTIONS and name not in NOT_LISTS:
        return name, action
    return None


def keep(uow: UnitOfWork, message: EventMessage) -> None:
    """Apply a commerce event to the profile's lists, views or cart stage."""
    event = message.event
    at = event.event().occurred_at
    db, profile_id, data = message.profile_db, message.profile_id, event.data
    storage = uow.storage
    if event.type == "product.viewed":
        product_id = _product_id(data)
        if product_id is not None:
            price = _price(data.get("price"))
            if price is None:
                price = _effective_price(uow, db, profile_id, product_id)
            if storage.record_view(db, profile_id, ProductView(product_id, price, at)):
                abandonment.viewed(uow, db, profile_id, product_id, at)
        return
    if event.type == "order.created":
        abandonment.ended(storage, db, profile_id, None, at)
        for item in data.get("items") or []:
            ordered = _product_id(item) if isinstance(item, dict) else None
            if ordered is not None:
                abandonment.ended(storage, db, profile_id, ordered, at)
        return
    if event.type == "cart.viewed":
        _reach_stage(storage, db, profile_id, "viewed_cart", at)
        return
    if event.type == "checkout.started":
        _reach_stage(storage, db, profile_id, "checkout", at)
        return
    if event.type == "cart.cleared":
        replace_list(uow, db, profile_id, CART, [], at)
        storage.set_cart_stage(db, profile_id, CartStage(None, at))
        return
    found = list_event(event.type)
    if found is None:
        return
    list_name, action = found
    if action == "updated":
        items = data.get("items")
        if isinstance(items, list):
            replace_list(
                uow, db, profile_id, list_name, [i for i in items if isinstance(i, dict)], at
            )
        return
    product_id = _product_id(data)
    if product_id is None:
        return
    if action == "item_removed":
        changed = storage.remove_line(db, profile_id, list_name, product_id, at)
    else:
        changed = storage.put_line(db, profile_id, list_name, _line(uow, db, profile_id, data, at))
    if changed and list_name == CART:
        _cart_changed(uow, db, profile_id, [product_id] if action != "item_removed" else [], at)


def replace_list(
    uow: UnitOfWork,
    db: str,
    profile_id: str,
    list_name: str,
    items: list[dict[str, Any]],
    at: datetime,
) -> None:
    """The whole list becomes `items` (each `{product_id, quantity, price}`): lines not
    among them are taken off."""
    wanted = {}
    for item in items:
        product_id = _product_id(item)
        if product_id is not None:
            wanted[product_id] = _line(uow, db, profile_id, item, at)
    changed = False
    for line in uow.storage.list_lines(db, profile_id, list_name):
        if line.product_id not in wanted:
            changed |= uow.storage.remove_line(db, profile_id, list_name, line.product_id, at)
    for line in wanted.values():
        changed |= uow.storage.put_line(db, profile_id, list_name, line)
    if changed and list_name == CART:
        _cart_changed(uow, db, profile_id, list(wanted), at)


def read_list(storage: Storage, db: str, profile_id: str, list_name: str) -> dict[str, Any]:
    """A list as the API answers it; a cart with its stage."""
    lines = storage.list_lines(db, profile_id, list_name)
    document: dict[str, Any] = {
        "profile_db": db,
        "profile_id": profile_id,
        "list": list_name,
        "items": [
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "price": line.price,
                "added_at": format_datetime(line.added_at),
            }
            for line in lines
        ],
    }
    if list_name == CART:
        stage = storage.cart_stage(db, profile_id)
        document["stage"] = (stage.stage if stage else None) or ("added" if lines else None)
    return document


def set_signal_settings(storage: Storage, given: dict[str, Any], at: datetime) -> SignalSettings:
    """Set the keys given (`None`: back to the default), keep the others."""
    defaults = SignalSettings()
    current = storage.signal_settings()
    chosen = SignalSettings(
        **{
            name: (given[name] if given[name] is not None else getattr(defaults, name))
            if name in given
            else getattr(current, name)
            for name in SignalSettings.__dataclass_fields__
        }
    )
    storage.set_signal_settings(chosen, at)
    return chosen


def _cart_changed(
    uow: UnitOfWork, db: str, profile_id: str, added: list[str], at: datetime
) -> None:
    """The cart changed at `at`, putting `added` in it: its abandonment is timed from
    now, and those products' views are no longer abandoned."""
    abandonment.cart_changed(uow, db, profile_id, at)
    for product_id in added:
        abandonment.ended(uow.storage, db, profile_id, product_id, at)


def _reach_stage(storage: Storage, db: str, profile_id: str, stage: str, at: datetime) -> None:
    current = storage.cart_stage(db, profile_id)
    reached = further_stage(current.stage if current else None, stage)
    storage.set_cart_stage(db, profile_id, CartStage(reached, at))


def _line(
    uow: UnitOfWork, db: str, profile_id: str, item: dict[str, Any], at: datetime
) -> ListLine:
    product_id = item["product_id"]
    quantity = item.get("quantity")
    price = _price(item.get("price"))
    if price is None:
        price = _effective_price(uow, db, profile_id, product_id)
    return ListLine(
        product_id, quantity if _is_number(quantity) and quantity > 0 else 1, price, at, at
    )


def _effective_price(uow: UnitOfWork, db: str, profile_id: str, product_id: str) -> Any:
    """The product's effective price for the profile now (None: none known)."""
    stored = uow.storage.product(product_id)
    if stored is None:
        return None
    zone = zone_of(uow.profile(db, profile_id, history=False).view.fields)
    price = effective(stored.document, zone, "price")
    return price if _is_number(price) else None


def _product_id(data: dict[str, Any]) -> str | None:
    product_id = data.get("product_id")
    if isinstance(product_id, int) and not isinstance(product_id, bool):
        product_id = str(product_id)
    return product_id if isinstance(product_id, str) and 0 < len(product_id) <= 200 else None


def _price(value: Any) -> Any:
    return value if _is_number(value) and value >= 0 else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
