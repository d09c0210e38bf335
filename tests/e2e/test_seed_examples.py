"""The commerce examples of `examples/` end to end (SPEC §6): each started by the signal
the stack derives from real shop events and the product feed, not by a timeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from harness import START, Stack, at, email, on_event, person, scenario


def subjects(stack: Stack, profile_id: str) -> list[str]:
    return [m["subject"] for m in stack.sent(to=f"{profile_id}@example.com")]


def line(item_id: str, status: str, product_id: str = "p9") -> dict[str, Any]:
    return {"item_id": item_id, "product_id": product_id, "quantity": 1, "price": 50,
            "status": status}  # fmt: skip


def test_the_price_drop_example_takes_big_drops_on_favourites_and_recent_views_only(
    stack: Stack,
) -> None:
    stack.create(stack.example("price_drop"))
    stack.put("/products/p1", {"price": 100, "available": True})
    for name in ("ada", "bob", "cy", "dan"):
        stack.upsert(name, person(name))
    stack.event("favorites.item_added", "ada", data={"product_id": "p1", "quantity": 1})
    stack.event("product.viewed", "bob", occurred_at=START - timedelta(days=40),
                data={"product_id": "p1"})  # fmt: skip
    stack.event("product.viewed", "cy", data={"product_id": "p1"})
    stack.event("favorites.item_added", "dan", data={"product_id": "p1", "quantity": 1})
    stack.event("order.created", "dan", occurred_at=START - timedelta(days=10),
                data={"order_id": "o-1", "status": "placed", "total": 100,
                      "items": [line("1", "placed", "p1")]})  # fmt: skip
    stack.drain()

    stack.put("/products/p1", {"price": 95})  # 5 %, 5 units: too small
    stack.drain()
    assert [subjects(stack, name) for name in ("ada", "bob", "cy", "dan")] == [[], [], [], []]

    stack.advance("PT1H")
    stack.put("/products/p1", {"price": 85})  # 15 % and 15 under the price seen
    stack.drain()
    assert subjects(stack, "ada") == ["p1 is 15 % cheaper"]  # favourite
    assert subjects(stack, "cy") == ["p1 is 15 % cheaper"]  # viewed today
    assert subjects(stack, "bob") == []  # viewed 40 days ago
    assert subjects(stack, "dan") == []  # ordered it 10 days ago


def test_the_abandoned_cart_example_sends_three_mails_and_stops_on_an_order(
    stack: Stack,
) -> None:
    stack.create(stack.example("abandoned_cart"))
    stack.put("/promo-pools/CART10", {"codes": ["C1", "C2"]})
    stack.put("/products/p1", {"price": 20, "available": True})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
        stack.event("cart.item_added", name, data={"product_id": "p1", "quantity": 2})
    stack.drain()
    stack.advance("PT61M")
    assert subjects(stack, "ada") == subjects(stack, "bob") == ["You left something in your cart"]

    stack.event("order.created", "bob", data={"order_id": "o-2", "status": "placed", "total": 40,
                                              "items": [line("1", "placed", "p1")]})  # fmt: skip
    stack.drain()
    stack.advance("P4D")
    assert subjects(stack, "ada") == [
        "You left something in your cart",
        "Can we help with your order?",
        "10 % off what is in your cart",
    ]
    assert subjects(stack, "bob") == ["You left something in your cart"]


def test_the_back_in_stock_example_is_for_the_favourites_list(stack: Stack) -> None:
    stack.create(stack.example("back_in_stock"))
    stack.put("/products/p1", {"price": 20, "available": False})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
    stack.event("favorites.item_added", "ada", data={"product_id": "p1", "quantity": 1})
    stack.event("product.viewed", "bob", data={"product_id": "p1"})
    stack.drain()

    stack.put("/products/p1", {"available": True})
    stack.drain()
    assert subjects(stack, "ada") == ["It is back: p1"]
    assert subjects(stack, "bob") == []  # viewed it, not a favourite
    stack.advance("P2DT1H")
    assert subjects(stack, "ada") == ["It is back: p1", "Still in stock, for now"]


def test_the_nps_example_asks_three_days_after_every_item_was_delivered(stack: Stack) -> None:
    stack.create(stack.example("nps_after_delivery"))
    stack.upsert("ada", person("ada"))
    order = {"order_id": "o-1", "status": "placed", "total": 100}
    stack.event("order.created", "ada", event_id="c1",
                data={**order, "items": [line("1", "placed"), line("2", "placed")]})  # fmt: skip
    stack.drain()
    stack.event("order.updated", "ada", event_id="u1",
                data={**order, "items": [line("1", "delivered"), line("2", "placed")]})  # fmt: skip
    stack.drain()
    stack.advance("PT1H")
    assert subjects(stack, "ada") == []  # one item still on its way
    stack.event("order.updated", "ada", event_id="u2",
                data={**order, "items": [line("1", "delivered"), line("2", "delivered")]})  # fmt: skip
    stack.drain()
    stack.advance_to(at(14, 9, 59))  # delivered on the 10th at 11:00: three days, then 10:00
    assert subjects(stack, "ada") == []
    stack.advance_to(at(14, 10, 1))
    assert subjects(stack, "ada") == ["How likely are you to recommend us?"]


# --- derived commerce events in the history, and their time -------------------------------


def test_derived_commerce_events_count_in_conditions_on_the_history(stack: Stack) -> None:
    asks = {
        "type": "condition",
        "if": {"event_count": {"type": "product.price_dropped", "since": "P7D"},
               "op": "gte", "value": 1},
        "then": "saw_drop",
        "else": "no_drop",
    }  # fmt: skip
    later = stack.create(
        scenario(
            {"asks": asks, "saw_drop": email("You saw a drop"), "no_drop": email("None")},
            [on_event("newsletter.asked", "asks")],
        )
    )
    stack.put("/products/p1", {"price": 100, "available": True})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
    stack.event("favorites.item_added", "ada", data={"product_id": "p1", "quantity": 1})
    stack.drain()
    stack.put("/products/p1", {"price": 80})
    stack.drain()
    stack.advance("PT1H")
    for name in ("ada", "bob"):
        stack.event("newsletter.asked", name)
    stack.drain()
    assert [stack.instance(name, later).path[-1]["node"] for name in ("ada", "bob")] == [
        "saw_drop",
        "no_drop",
    ]


def test_an_order_signal_takes_the_time_of_the_order_event_that_caused_it(stack: Stack) -> None:
    delivered = stack.create(
        scenario({"hi": email("Delivered")}, [on_event("order.item_delivered", "hi")])
    )
    stack.upsert("ada", person("ada"))
    backdated = START - timedelta(hours=2)
    stack.event("order.created", "ada", occurred_at=backdated,
                data={"order_id": "o-1", "status": "placed", "total": 50,
                      "items": [line("1", "delivered")]})  # fmt: skip
    stack.drain()
    (journey,) = stack.instances("ada", delivered)
    assert journey.entry.occurred_at == backdated
    assert journey.entry.data["derived"] is True
