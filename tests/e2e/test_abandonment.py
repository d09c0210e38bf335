"""Abandoned carts and browses end to end (SPEC §6.3) on the virtual clock: the built-in
templates start on the derived events, an order in time prevents them, and a change
delivered again emits nothing twice."""

from __future__ import annotations

from typing import Any

from chalice.test import Client
from harness import Stack, at, person

from app import app
from chalicelib import templates
from chalicelib.adapters import store
from chalicelib.adapters.dynamo import to_item


def template(template_id: str) -> dict[str, Any]:
    found = templates.find(template_id)
    assert found is not None
    return {**found.describe()["scenario"], "profile_db": "customers"}


def test_an_abandoned_cart_starts_the_template_and_an_order_before_the_hour_prevents_it(
    stack: Stack,
) -> None:
    cart = stack.create(template("abandoned_cart"))
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
        stack.event(
            "cart.item_added", name, event_id=f"{name}-1",
            data={"product_id": "p1", "quantity": 2, "price": 12.5},
        )  # fmt: skip
    stack.drain()
    stack.advance_to(at(10, 10, 30))
    stack.event("order.created", "bob", data={"order_id": "o1", "status": "placed", "total": 25,
                                              "items": [{"item_id": "1", "product_id": "p1",
                                                         "quantity": 2, "price": 12.5}]})  # fmt: skip
    stack.event("cart.item_added", "ada", event_id="ada-1", data={"product_id": "p1"})  # again
    stack.drain()
    stack.advance_to(at(10, 10, 59))
    assert stack.sent(scenario_id=cart) == []
    stack.advance_to(at(10, 11, 2))
    (reminder,) = stack.sent(scenario_id=cart)
    assert reminder["profile_id"] == "ada"
    assert reminder["subject"] == "You left something in your cart"
    assert "2 × p1" in reminder["body"]
    assert "25" in reminder["body"]
    (instance,) = stack.instances("ada", cart)
    assert instance.entry.data["derived"] is True
    assert stack.instances("bob", cart) == []
    stack.advance_to(at(10, 14))
    assert len(stack.sent(scenario_id=cart)) == 1  # once per change


def test_a_product_viewed_and_left_starts_the_abandoned_browse_template(stack: Stack) -> None:
    browse = stack.create(template("abandoned_browse"))
    stack.put("/products/p1", {"price": 40})
    stack.upsert("ada", person("ada"))
    stack.upsert("bob", person("bob"))
    stack.event("product.viewed", "ada", data={"product_id": "p1"})
    stack.event("product.viewed", "bob", data={"product_id": "p1"})
    stack.drain()
    stack.advance_to(at(10, 10, 20))
    stack.event("cart.item_added", "bob", data={"product_id": "p1"})
    stack.drain()
    stack.advance_to(at(10, 11, 2))
    assert [m["profile_id"] for m in stack.sent(scenario_id=browse)] == ["ada"]


def test_an_abandonment_timer_deleted_by_ttl_wakes_nothing(stack: Stack) -> None:
    stack.upsert("ada", person("ada"))
    stack.event("cart.item_added", "ada", data={"product_id": "p1"})
    stack.drain()
    timer = next(t for t in store.timers.scan() if t.get("kind") == "abandon")
    expired = {
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {
            "Keys": to_item({"instance_id": timer["instance_id"]}),
            "OldImage": to_item(timer),
        },
    }
    assert Client(app).lambda_.invoke("timer_expired", {"Records": [expired]}).payload == {
        "woken": 0
    }
