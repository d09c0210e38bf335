"""The catalogue, product lists and signal settings over HTTP (SPEC §6.1, §6.2, §6.3)."""

from __future__ import annotations

from tests.e2e.harness import Stack
from tests.http.support import assert_problem, send


def test_a_product_is_merged_key_by_key_and_null_clears(stack: Stack) -> None:
    first = stack.put(
        "/products/p1",
        {"price": 100, "available": True, "fields": {"color": "red", "size": "M"},
         "regions": {"eu": {"price": 90}}},
    )  # fmt: skip
    assert first["updated_at"] == stack.get("/products/p1")["updated_at"]
    stack.advance("PT1M")
    changed = stack.put(
        "/products/p1", {"price": 80, "fields": {"size": None}, "regions": {"uk": {}}}
    )
    assert changed == {
        "product_id": "p1",
        "price": 80,
        "available": True,
        "fields": {"color": "red"},
        "regions": {
            "eu": {"price": 90, "available": None, "fields": {}},
            "uk": {"price": None, "available": None, "fields": {}},
        },
        "updated_at": changed["updated_at"],
    }
    assert changed["updated_at"] > first["updated_at"]
    assert stack.get("/products/p1") == changed
    cleared = stack.put("/products/p1", {"available": None, "regions": None})
    assert (cleared["available"], cleared["regions"]) == (None, {})


def test_an_unknown_product_is_a_404(stack: Stack) -> None:
    assert_problem(send(stack, "GET", "/products/nope"), 404, "nope")


def test_the_feed_import_stores_the_valid_products_and_lists_the_others(stack: Stack) -> None:
    answer = stack.post(
        "/products/import",
        {
            "products": [
                {"product_id": "a", "price": 10},
                {"product_id": "b", "price": "ten"},
                {"price": 3},
                {"product_id": "c", "available": False, "fields": {"brand": "X"}},
            ]
        },
    )
    assert answer["accepted"] == 2
    assert [r["index"] for r in answer["rejected"]] == [1, 2]
    assert "price" in answer["rejected"][0]["detail"]
    assert "product_id" in answer["rejected"][1]["detail"]
    assert stack.get("/products/a")["price"] == 10
    assert stack.get("/products/c")["fields"] == {"brand": "X"}
    assert_problem(send(stack, "GET", "/products/b"), 404)


def test_signal_settings_have_defaults_and_keep_what_is_not_given(stack: Stack) -> None:
    defaults = {
        "cart_abandoned_after": "PT1H",
        "browse_abandoned_after": "PT1H",
        "session_timeout": "PT30M",
        "price_check": "on_change",
    }
    assert stack.get("/settings/signals") == defaults
    daily = {"daily": "09:00", "timezone": "Europe/Berlin"}
    stack.put("/settings/signals", {"cart_abandoned_after": "PT2H", "price_check": daily})
    answer = stack.put("/settings/signals", {"session_timeout": "PT15M"})
    assert answer == {**defaults, "cart_abandoned_after": "PT2H", "session_timeout": "PT15M",
                      "price_check": daily}  # fmt: skip
    assert stack.get("/settings/signals") == answer
    back = stack.put("/settings/signals", {"cart_abandoned_after": None, "price_check": None})
    assert back == {**defaults, "session_timeout": "PT15M"}


def test_a_list_put_as_a_whole_keeps_the_price_seen_of_lines_already_there(stack: Stack) -> None:
    stack.put("/products/p1", {"price": 100, "regions": {"eu": {"price": 90}}})
    stack.upsert("ada", {"zone": "eu"})
    put = stack.put(
        "/profiles/customers/ada/lists/favorites",
        {"items": [{"product_id": "p1"}, {"product_id": "p2", "quantity": 2, "price": 5}]},
    )
    added_at = put["items"][0]["added_at"]
    assert put == {
        "profile_db": "customers",
        "profile_id": "ada",
        "list": "favorites",
        "items": [
            {"product_id": "p1", "quantity": 1, "price": 90, "added_at": added_at},  # eu price
            {"product_id": "p2", "quantity": 2, "price": 5, "added_at": added_at},
        ],
    }
    stack.advance("PT1M")
    stack.put("/products/p1", {"regions": {"eu": {"price": 70}}})
    again = stack.put(
        "/profiles/customers/ada/lists/favorites", {"items": [{"product_id": "p1", "quantity": 3}]}
    )
    assert again["items"] == [
        {"product_id": "p1", "quantity": 3, "price": 90, "added_at": added_at}
    ]
    assert stack.get("/profiles/customers/ada/lists/favorites") == again
    assert stack.get("/profiles/customers/ada/lists/cart")["items"] == []
