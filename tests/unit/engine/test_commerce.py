"""The catalogue's rules (SPEC §6.1): merging updates, and effective values by zone."""

from __future__ import annotations

from chalicelib.engine.commerce import (
    effective,
    effective_fields,
    further_stage,
    merge_product,
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
