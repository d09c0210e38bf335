"""Properties of the catalogue's price and stock signals (SPEC §6.1, §6.3).

Random sequences of product updates (main price and availability, regional prices and
availability for a few zones, each possibly missing or cleared with `null`) are folded
through `merge_product`, and each change (before → after, as the runtime fans it out)
through `product_signals` for a watcher in a zone (or none) that saw a price (or none).
The signals are compared with a simple model written here:

- the effective value follows the four rules of §6.1;
- `product.price_dropped` fires exactly when the new effective price is below the price
  seen and differs from the previous effective price, never when the previous one was
  unknown (a first fill); `product.price_increased` likewise above; with the drop / rise
  from the price seen, absolute and in percent;
- `product.back_in_stock` fires exactly when the effective availability turns true from
  false or unknown, `product.out_of_stock` when it turns from true to false or unknown
  (unknown counts as unavailable);
- a scheduled check compares only the prices at the checks: a drop undone between two
  checks fires nothing, and it derives no stock signal.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.engine.commerce import merge_product, prices_differ, product_signals

ZONES = ("eu", "us", "uk")
MISSING = object()  # a key left out of an update

prices = st.integers(min_value=0, max_value=2000).map(lambda cents: cents / 100)
availability = st.sampled_from([True, False, None])


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value, `null` (clears) or MISSING (left out)."""
    return st.one_of(st.just(MISSING), st.none(), values)


def _entry(price: Any, available: Any) -> dict[str, Any]:
    return {
        key: value
        for key, value in (("price", price), ("available", available))
        if value is not MISSING
    }


regions_update = st.one_of(
    st.just(MISSING),
    st.none(),
    st.dictionaries(
        st.sampled_from(ZONES),
        st.one_of(st.none(), st.builds(_entry, _maybe(prices), _maybe(availability))),
        max_size=3,
    ),
)


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    update = _entry(draw(_maybe(prices)), draw(_maybe(availability)))
    regions = draw(regions_update)
    if regions is not MISSING:
        update["regions"] = regions
    return update


watchers = st.tuples(st.one_of(st.none(), st.sampled_from(ZONES)), st.one_of(st.none(), prices))


# --- the model ----------------------------------------------------------------------


class Model:
    """A product as the main feed's values and each zone's values; None is unknown."""

    def __init__(self) -> None:
        self.main: dict[str, Any] = {"price": None, "available": None}
        self.regions: dict[str, dict[str, Any]] = {}

    def apply(self, update: dict[str, Any]) -> None:
        for key in ("price", "available"):
            if key in update:
                self.main[key] = update[key]
        if "regions" in update:
            if update["regions"] is None:
                self.regions = {}
            for zone, entry in (update["regions"] or {}).items():
                if entry is None:
                    self.regions.pop(zone, None)
                else:
                    values = self.regions.setdefault(zone, {"price": None, "available": None})
                    values.update(entry)

    def effective(self, zone: str | None, key: str) -> Any:
        if zone is None or not self.regions:
            return self.main[key]  # no zone, or no regional data: the main feed
        if zone not in self.regions:
            return None  # regional data, none for the zone: nothing
        regional = self.regions[zone][key]
        return regional if regional is not None else self.main[key]


def expected_price(old: Any, new: Any, seen: Any) -> list[tuple[str, dict[str, Any]]]:
    if old is None or new is None or seen is None or new in (old, seen):
        return []
    pct = round(100 * abs(new - seen) / seen, 2) if seen else None
    if new < seen:
        data = {"drop_abs": seen - new, "drop_pct": pct}
        return [("product.price_dropped", {**data, "price_seen": seen, "price": new})]
    data = {"rise_abs": new - seen, "rise_pct": pct}
    return [("product.price_increased", {**data, "price_seen": seen, "price": new})]


def expected_stock(old: Any, new: Any) -> list[tuple[str, dict[str, Any]]]:
    if new is True and old in (False, None):
        return [("product.back_in_stock", {})]
    if old is True and new in (False, None):
        return [("product.out_of_stock", {})]
    return []


def stock_and_prices(signals: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    return [(kind, data) for kind, data in signals if kind != "product.field_changed"]


# --- the properties -----------------------------------------------------------------


@settings(max_examples=150)
@given(first=updates(), changes=st.lists(updates(), max_size=8), watcher=watchers)
def test_each_change_fires_what_the_model_says(
    first: dict[str, Any], changes: list[dict[str, Any]], watcher: tuple[Any, Any]
) -> None:
    zone, seen = watcher
    model = Model()
    model.apply(first)
    product = merge_product({}, first)  # creating the product derives nothing
    for update in changes:
        before = product
        old_price, old_stock = model.effective(zone, "price"), model.effective(zone, "available")
        product = merge_product(before, update)
        model.apply(update)
        if product == before:
            continue  # an update that changes nothing does not fan out
        new_price, new_stock = model.effective(zone, "price"), model.effective(zone, "available")
        signals = stock_and_prices(product_signals(before, product, zone, seen))
        assert signals == expected_price(old_price, new_price, seen) + expected_stock(
            old_stock, new_stock
        )


@settings(max_examples=100)
@given(
    first=updates(),
    changes=st.lists(st.tuples(updates(), st.booleans()), max_size=8),
    watcher=watchers,
)
def test_a_scheduled_check_compares_only_the_prices_at_the_checks(
    first: dict[str, Any], changes: list[tuple[dict[str, Any], bool]], watcher: tuple[Any, Any]
) -> None:
    zone, seen = watcher
    model = Model()
    model.apply(first)
    product = checked = merge_product({}, first)
    checked_price = model.effective(zone, "price")
    for update, check in changes:
        product = merge_product(product, update)
        model.apply(update)
        if not check:
            continue
        price = model.effective(zone, "price")
        signals = (
            product_signals(checked, product, zone, seen, others=False)
            if prices_differ(checked, product)
            else []
        )
        assert signals == expected_price(checked_price, price, seen)
        checked, checked_price = product, price
