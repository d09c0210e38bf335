"""The catalogue's rules (SPEC §6.1), as pure functions: merging a product update and
a profile's effective price, availability and fields.

A product is a plain document: `price`, `available`, `fields` and `regions`
(`{zone: {"price", "available", "fields"}}`). A value that is not there is `None`
("unknown"): no price, availability not known, a field not filled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event

KEYS = ("price", "available")  # the values a region may fill in, besides its fields
CART_STAGES = ("added", "viewed_cart", "checkout")  # how far a cart got, in order
CART_ABANDONED = "cart.abandoned"
BROWSE_ABANDONED = "browse.abandoned"


def merge_product(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`stored` with the keys of `given` merged in: `null` clears a value, a field, a
    region or a region's value; `fields` and `regions` merge key by key."""
    merged = _merged(stored, given, KEYS)
    if "regions" in given:
        regions = dict(stored.get("regions") or {})
        for zone, region in (given["regions"] or {}).items():
            if region is None:
                regions.pop(zone, None)
            else:
                regions[zone] = _merged(regions.get(zone) or {}, region, KEYS)
        if given["regions"] is None:
            regions = {}
        merged["regions"] = regions
    if not merged.get("regions"):
        merged.pop("regions", None)
    return merged


def _merged(stored: dict[str, Any], given: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    merged = dict(stored)
    for key in keys:
        if key in given:
            merged[key] = given[key]
    if "fields" in given:
        fields = dict(stored.get("fields") or {}) if given["fields"] is not None else {}
        for name, value in (given["fields"] or {}).items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        merged["fields"] = fields
    if not merged.get("fields"):
        merged.pop("fields", None)
    return {key: value for key, value in merged.items() if value is not None}


class NoZoneData(Exception):
    """The product has regional data, none for the profile's zone: nothing is effective."""


def _source(product: dict[str, Any], zone: str | None) -> dict[str, Any] | None:
    """The regional entry a value is looked up in first (None: the main feed's only).
    Raises NoZoneData when the product has regions but none for the zone."""
    regions = product.get("regions") or {}
    if zone is None or not regions:
        return None
    if zone not in regions:
        raise NoZoneData(zone)
    region: dict[str, Any] = regions[zone]
    return region


def effective(product: dict[str, Any] | None, zone: str | None, key: str) -> Any:
    """The effective `price` or `available` of a product for a profile in `zone`
    (None: not known, or nothing for that zone), by the four rules of SPEC §6.1:
    a regional value filled for the zone wins; regional data without that zone gives
    nothing; an entry for the zone without the value, or no regional data at all, or a
    profile without a zone, gives the main feed's value."""
    if product is None:
        return None
    try:
        region = _source(product, zone)
    except NoZoneData:
        return None
    if region is not None and region.get(key) is not None:
        return region[key]
    return product.get(key)


def effective_fields(product: dict[str, Any] | None, zone: str | None) -> dict[str, Any] | None:
    """The product's custom fields for a profile in `zone`, each by the same rules as
    `effective` (None: the product has nothing for that zone)."""
    if product is None:
        return {}
    try:
        region = _source(product, zone)
    except NoZoneData:
        return None
    fields = dict(product.get("fields") or {})
    if region is not None:
        fields.update({k: v for k, v in (region.get("fields") or {}).items() if v is not None})
    return fields


def zone_of(profile_fields: dict[str, Any]) -> str | None:
    """A profile's zone (its `zone` field, when it is a string)."""
    zone = profile_fields.get("zone")
    return zone if isinstance(zone, str) and zone else None


def further_stage(current: str | None, reached: str) -> str:
    """The stage a cart is at once it reached `reached`: it never goes back."""
    if current in CART_STAGES and CART_STAGES.index(current) > CART_STAGES.index(reached):
        return current
    return reached


def product_signals(
    before: dict[str, Any],
    after: dict[str, Any],
    zone: str | None,
    price_seen: Any,
    prices: bool = True,
    others: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    """The signals one product change derives for one watcher (SPEC §6.3): (event type,
    data) for a profile in `zone` that saw `price_seen` (None: not known).

    - `product.price_dropped` / `product.price_increased`: the effective price changed
      and is now below / above the price seen (not when it is first filled); only when
      `prices` (the stack compares prices on change).
    - `product.back_in_stock` / `product.out_of_stock`: the effective availability
      turned true / stopped being true; unknown counts as unavailable, so true → unknown
      is out of stock and unknown → false is no change.
    - `product.field_changed`: custom fields filled, changed or cleared, all in one.
    The last two only when `others` (not for a scheduled price check). Nothing where the
    product has nothing for the zone."""
    signals: list[tuple[str, dict[str, Any]]] = []
    old_price, new_price = effective(before, zone, "price"), effective(after, zone, "price")
    moved = _number(old_price) and _number(new_price) and new_price != old_price
    if prices and moved and _number(price_seen) and new_price != price_seen:
        change = abs(new_price - price_seen)
        pct = round(100 * change / price_seen, 2) if price_seen else None
        if new_price < price_seen:
            signals.append(("product.price_dropped", {"drop_abs": change, "drop_pct": pct}))
        else:
            signals.append(("product.price_increased", {"rise_abs": change, "rise_pct": pct}))
        signals[-1][1].update(price_seen=price_seen, price=new_price)
    if not others:
        return signals
    was_in_stock = effective(before, zone, "available") is True
    in_stock = effective(after, zone, "available") is True
    if in_stock and not was_in_stock:
        signals.append(("product.back_in_stock", {}))
    elif was_in_stock and not in_stock:
        signals.append(("product.out_of_stock", {}))
    old_fields, new_fields = effective_fields(before, zone), effective_fields(after, zone)
    if old_fields is not None and new_fields is not None:
        changed = {
            name: {"old": old_fields.get(name), "new": new_fields.get(name)}
            for name in sorted(set(old_fields) | set(new_fields))
            if old_fields.get(name) != new_fields.get(name)
        }
        if changed:
            signals.append(("product.field_changed", {"fields": changed}))
    return signals


def prices_differ(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a product's price may be effective differently for some zone: its main
    price, a region's price or its set of regions differ."""

    def prices(product: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        regions = product.get("regions") or {}
        return product.get("price"), {zone: region.get("price") for zone, region in regions.items()}

    return prices(before) != prices(after)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cart_abandoned(
    items: list[dict[str, Any]],
    changed_at: datetime,
    latest: datetime,
    stage: str | None,
    at: datetime,
    profile_key: str,
) -> Event | None:
    """`cart.abandoned` for the cart change at `changed_at`, checked when its time is up
    (`at`, when it occurs): the cart holds `items` (each `product_id`, `quantity`,
    `price`) and `latest`, its latest change or order, is still that change. Its id is
    the profile's and the change's, so a change is abandoned once."""
    if not items or latest > changed_at:
        return None
    priced = [item for item in items if _number(item.get("price"))]
    data = {
        "items": items,
        "total": round(sum(item["price"] * item["quantity"] for item in priced), 2),
        "last_change_at": format_datetime(changed_at),
        "stage": stage if stage in CART_STAGES else "added",
        "derived": True,
    }
    event_id = f"{CART_ABANDONED}:{profile_key}:{format_datetime(changed_at)}"
    return Event(CART_ABANDONED, at, data, event_id)


def browse_abandoned(
    product_id: str,
    viewed_at: datetime,
    latest_view: datetime | None,
    price: Any,
    in_cart: bool,
    ordered_at: datetime | None,
    at: datetime,
    profile_key: str,
) -> Event | None:
    """`browse.abandoned` for the view of `product_id` at `viewed_at`, checked when its
    time is up (`at`, when it occurs): it is still the latest view (`latest_view`), the
    product is not in the cart and was not ordered since. Its id is the profile's, the
    product's and the view's, so a view is abandoned once."""
    if latest_view != viewed_at or in_cart or (ordered_at is not None and ordered_at >= viewed_at):
        return None
    data = {
        "product_id": product_id,
        "viewed_at": format_datetime(viewed_at),
        "price": price,
        "derived": True,
    }
    event_id = f"{BROWSE_ABANDONED}:{profile_key}:{product_id}:{format_datetime(viewed_at)}"
    return Event(BROWSE_ABANDONED, at, data, event_id)
