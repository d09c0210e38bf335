"""The catalogue's rules (SPEC §6.1): merging updates, and effective values by zone."""

from __future__ import annotations

from typing import Any

from chalicelib.engine.commerce import (
    effective,
    effective_fields,
    further_stage,
    merge_product,
    prices_differ,
    product_signals,
    zone_of,
)

REGIONAL = {
    "price": 100,
    "available": True,
    "fields": {"color": "red", "size": "M"},
    "regions": {
        "eu": {"price": 90, "available": False, "fields": {"color": "blue"}},
        "uk": {},
    },
}


def test_a_filled_regional_value_is_the_effective_one() -> None:
    assert effective(REGIONAL, "eu", "price") == 90
    assert effective(REGIONAL, "eu", "available") is False
    assert effective_fields(REGIONAL, "eu") == {"color": "blue", "size": "M"}


def test_regional_data_without_the_zone_gives_nothing() -> None:
    assert effective(REGIONAL, "us", "price") is None
    assert effective(REGIONAL, "us", "available") is None
    assert effective_fields(REGIONAL, "us") is None


def test_an_entry_for_the_zone_without_the_value_falls_back_to_the_main_feed() -> None:
    assert effective(REGIONAL, "uk", "price") == 100
    assert effective(REGIONAL, "uk", "available") is True
    assert effective_fields(REGIONAL, "uk") == {"color": "red", "size": "M"}


def test_without_regional_data_or_without_a_zone_the_main_feed_counts() -> None:
    plain = {"price": 100, "fields": {"color": "red"}}
    assert effective(plain, "eu", "price") == 100
    assert effective(plain, "eu", "available") is None  # never given: unknown
    assert effective(REGIONAL, None, "price") == 100
    assert effective_fields(REGIONAL, None) == {"color": "red", "size": "M"}
    assert effective(None, "eu", "price") is None


def test_an_update_merges_the_keys_given_and_null_clears() -> None:
    stored = {"price": 100, "available": True, "fields": {"color": "red", "size": "M"}}
    merged = merge_product(stored, {"price": 80, "fields": {"size": None, "brand": "X"}})
    assert merged == {"price": 80, "available": True, "fields": {"color": "red", "brand": "X"}}
    assert merge_product(merged, {"available": None, "fields": None}) == {"price": 80}


def test_regions_merge_zone_by_zone_and_an_empty_entry_is_kept() -> None:
    merged = merge_product(REGIONAL, {"regions": {"eu": {"price": None}, "uk": None, "fr": {}}})
    assert merged["regions"] == {
        "eu": {"available": False, "fields": {"color": "blue"}},
        "fr": {},
    }
    assert "regions" not in merge_product(REGIONAL, {"regions": None})


def test_a_profiles_zone_is_its_zone_field() -> None:
    assert zone_of({"zone": "eu"}) == "eu"
    assert zone_of({"zone": 3}) is None
    assert zone_of({}) is None


def test_a_cart_stage_never_goes_back() -> None:
    assert further_stage(None, "viewed_cart") == "viewed_cart"
    assert further_stage("checkout", "viewed_cart") == "checkout"
    assert further_stage("viewed_cart", "checkout") == "checkout"


def kinds(
    before: dict[str, Any], after: dict[str, Any], zone: str | None = None, seen: float | None = 100
) -> list[str]:
    return [kind for kind, _ in product_signals(before, after, zone, seen)]


def test_a_price_below_or_above_the_price_seen_fires_at_every_change() -> None:
    assert kinds({"price": 100}, {"price": 90}) == ["product.price_dropped"]
    assert kinds({"price": 90}, {"price": 80}) == ["product.price_dropped"]  # a further drop
    assert kinds({"price": 90}, {"price": 120}) == ["product.price_increased"]
    assert kinds({"price": 120}, {"price": 95}) == ["product.price_dropped"]  # after a rise
    assert kinds({"price": 90}, {"price": 100}) == []  # back at the price seen
    assert kinds({}, {"price": 50}) == []  # first filled
    assert kinds({"price": 100}, {"price": 90}, seen=None) == []  # nothing seen
    assert product_signals({"price": 100}, {"price": 90}, None, 100, prices=False) == []
    ((_, data),) = product_signals({"price": 100}, {"price": 75}, None, 100)
    assert data == {"drop_abs": 25, "drop_pct": 25.0, "price_seen": 100, "price": 75}


def test_availability_fires_on_every_transition_and_unknown_counts_as_unavailable() -> None:
    assert kinds({"available": False}, {"available": True}) == ["product.back_in_stock"]
    assert kinds({}, {"available": True}) == ["product.back_in_stock"]  # from unknown
    assert kinds({"available": True}, {"available": False}) == ["product.out_of_stock"]
    assert kinds({"available": True}, {"available": None}) == ["product.out_of_stock"]
    assert kinds({"available": True}, {}) == ["product.out_of_stock"]  # cleared
    assert kinds({}, {"available": False}) == []  # unknown to false: unavailable all along
    assert kinds({"available": True}, {"available": True, "price": 1}) == []


def test_fields_changed_at_once_fire_once_and_the_zone_decides() -> None:
    signals = product_signals(
        {"fields": {"a": 1, "b": 2}}, {"fields": {"a": 3, "c": 4}}, None, None
    )
    assert signals == [
        (
            "product.field_changed",
            {"fields": {"a": {"old": 1, "new": 3}, "b": {"old": 2, "new": None},
                        "c": {"old": None, "new": 4}}},
        )
    ]  # fmt: skip
    regional = {"price": 100, "regions": {"eu": {"price": 100}}}
    cheaper_at_home = {"price": 80, "regions": {"eu": {"price": 100}}}
    assert kinds(regional, cheaper_at_home, zone="eu") == []
    assert kinds(regional, cheaper_at_home, zone="us") == []  # nothing for that zone
    assert kinds(regional, cheaper_at_home) == ["product.price_dropped"]  # no zone: main feed


def test_a_scheduled_price_check_compares_prices_only() -> None:
    before = {"price": 100, "available": False, "fields": {"a": 1}}
    after = {"price": 90, "available": True, "fields": {"a": 2}}
    signals = product_signals(before, after, None, 100, others=False)
    assert [kind for kind, _ in signals] == ["product.price_dropped"]


def test_prices_differ_for_the_main_price_a_regional_one_or_the_regions() -> None:
    assert not prices_differ({"price": 10, "available": True}, {"price": 10, "fields": {"a": 1}})
    assert prices_differ({"price": 10}, {"price": 11})
    assert prices_differ({"regions": {"eu": {"price": 9}}}, {"regions": {"eu": {"price": 8}}})
    assert prices_differ({"price": 10}, {"price": 10, "regions": {"eu": {}}})
