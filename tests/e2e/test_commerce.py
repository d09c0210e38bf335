"""Commerce state end to end (SPEC §6.2): events through the queue keep a profile's lists,
views and cart stage, once however often they are delivered, and the watchers index
finds the profile by product."""

from __future__ import annotations

from harness import Stack, at, email, on_event, person, scenario

from chalicelib.bootstrap import services


def test_list_events_keep_the_cart_with_the_price_seen_and_journeys_still_hear_them(
    stack: Stack,
) -> None:
    welcome = stack.create(
        scenario({"hi": email("Your cart")}, [on_event("cart.item_added", "hi")], name="Cart")
    )
    stack.put("/products/p1", {"price": 100, "regions": {"eu": {"price": 90}}})
    stack.upsert("ada", person("ada", zone="eu"))
    stack.event("cart.item_added", "ada", event_id="a1", data={"product_id": "p1", "quantity": 2})
    stack.event("cart.item_added", "ada", event_id="a1", data={"product_id": "p1"})  # duplicate
    stack.event("product.viewed", "ada", data={"product_id": "p1"})
    stack.drain()
    stack.put("/products/p1", {"regions": {"eu": {"price": 70}}})  # later: not the price seen
    cart = stack.get("/profiles/customers/ada/lists/cart")
    assert cart["items"] == [
        {"product_id": "p1", "quantity": 2, "price": 90, "added_at": "2026-06-10T10:00:00Z"}
    ]
    assert cart["stage"] == "added"
    assert len(stack.sent(scenario_id=welcome)) == 1

    stack.event("checkout.started", "ada")
    stack.event("cart.item_removed", "ada", occurred_at=at(9), data={"product_id": "p1"})  # older
    stack.drain()
    cart = stack.get("/profiles/customers/ada/lists/cart")
    assert (len(cart["items"]), cart["stage"]) == (1, "checkout")

    found, _ = services().storage.watchers("p1", 10)
    watch, viewed = sorted(found, key=lambda w: w.source)
    assert (watch.source, watch.price_seen) == ("cart", 90)
    assert (viewed.source, viewed.price_seen) == ("viewed", 90)

    stack.event("cart.cleared", "ada")
    stack.drain()
    assert stack.get("/profiles/customers/ada/lists/cart")["items"] == []


def test_a_cheaper_favourite_starts_a_journey_once_through_the_fan_out(stack: Stack) -> None:
    cheaper = stack.create(
        scenario(
            {"tell": email("Now cheaper")},
            [
                on_event(
                    "product.price_dropped",
                    "tell",
                    where={"field": "event.data.drop_pct", "op": "gte", "value": 10},
                )
            ],
            name="Cheaper",
        )
    )
    stack.put("/products/p1", {"price": 100})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
        stack.event("favorites.item_added", name, data={"product_id": "p1"})
    stack.event("favorites.item_added", "cy", data={"product_id": "p1", "price": 85})
    stack.drain()
    stack.advance("PT1H")
    stack.put("/products/p1", {"price": 85})
    stack.drain()
    told = sorted(m["profile_id"] for m in stack.sent(scenario_id=cheaper))
    assert told == ["ada", "bob"]  # cy saw 85: nothing dropped for cy
    stack.put("/products/p1", {"price": 86})  # a further change below 100, above 85
    stack.drain()
    told = sorted(m["profile_id"] for m in stack.sent(scenario_id=cheaper))
    assert told == ["ada", "ada", "bob", "bob"]  # fires again for them; cy's price rose
    stack.drain()  # nothing more is queued: each change fanned out once
    assert len(stack.sent(scenario_id=cheaper)) == 4


def test_a_scheduled_price_check_fires_a_drop_still_there_at_the_check_only(
    stack: Stack,
) -> None:
    cheaper = stack.create(
        scenario({"tell": email("Now cheaper")}, [on_event("product.price_dropped", "tell")],
                 name="Cheaper", reentry="parallel")
    )  # fmt: skip
    stack.put("/settings/signals", {"price_check": {"daily": "09:00"}})
    for product_id in ("p1", "p2"):
        stack.put(f"/products/{product_id}", {"price": 100})
    stack.upsert("ada", person("ada"))
    stack.event("favorites.item_added", "ada", data={"product_id": "p1"})
    stack.event("favorites.item_added", "ada", data={"product_id": "p2"})
    stack.advance("PT1M")  # the tick that starts the schedule
    stack.put("/products/p1", {"price": 80})
    stack.put("/products/p2", {"price": 70})
    stack.advance("PT1H")
    stack.put("/products/p2", {"price": 100})  # the drop undone before the check
    stack.advance_to(at(10, 23))
    assert stack.sent(scenario_id=cheaper) == []  # prices are not compared on change
    stack.advance_to(at(11, 9, 1))
    (told,) = stack.sent(scenario_id=cheaper)
    assert told["at"] == "2026-06-11T09:01:00Z"
    (instance,) = stack.instances("ada", cheaper)
    assert (instance.entry.data["product_id"], instance.entry.data["price"]) == ("p1", 80)
    assert instance.entry.occurred_at == at(11, 9)
    stack.advance_to(at(12, 10))
    assert len(stack.sent(scenario_id=cheaper)) == 1  # nothing changed since
