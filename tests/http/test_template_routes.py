"""SPEC §9 "Templates" through the HTTP API: the library is listed and filtered, a draft is
made from each template, each activates as it stands, and two of them — one on an event
the stack will derive, one on a schedule — walk their path on the stack itself."""

from __future__ import annotations

from typing import Any

from chalicelib import templates
from tests.e2e.harness import Stack, person
from tests.http.support import assert_problem, send
from tests.http.test_bad_input_changes_nothing import snapshot


def test_the_library_is_listed_and_filtered(stack: Stack) -> None:
    listed = stack.get("/templates")["templates"]
    assert [t["category"] for t in listed] == list(templates.CATEGORIES)
    cart = stack.get("/templates/abandoned_cart")
    assert cart in listed
    assert set(cart) == {"id", "name", "category", "description", "scenario", "timeline"}
    (only,) = stack.get("/templates?category=price_drop")["templates"]
    assert only["id"] == "price_drop"
    assert_problem(send(stack, "GET", "/templates?category=nope"), 400, "category")
    assert_problem(send(stack, "GET", "/templates/nope"), 404, "nope")


def test_a_draft_from_every_template_activates_as_it_stands(stack: Stack) -> None:
    for template in stack.get("/templates")["templates"]:
        made = stack.post("/scenarios", {"template": template["id"]}, status=201)
        assert (made["status"], made["problems"]) == ("draft", [])
        assert made["scenario"] == template["scenario"]
        activated = stack.post(f"/scenarios/{made['id']}/activate")
        assert (activated["status"], activated["version"]) == ("active", 1)


def test_a_template_draft_takes_a_name_and_a_group(stack: Stack) -> None:
    made = stack.post(
        "/scenarios", {"template": "win_back", "name": "Come back", "group": "crm"}, status=201
    )
    assert (made["name"], made["scenario"]["group"]) == ("Come back", "crm")
    assert made["scenario"]["nodes"] == templates.catalogue()["win_back"].scenario["nodes"]


def test_a_bad_template_request_is_a_4xx_that_makes_nothing(stack: Stack) -> None:
    before = snapshot(stack)
    for body, status, named in (
        ({"template": "nope"}, 404, "$.template"),
        ({"template": "birthday", "nodes": {}}, 400, "$.nodes"),
        ({"template": "birthday", "name": ""}, 400, "$.name"),
        ({"template": 7}, 400, "$.template"),
    ):
        assert_problem(send(stack, "POST", "/scenarios", body), status, named)
    assert snapshot(stack) == before


def test_the_abandoned_cart_on_the_stack_stops_on_an_order(stack: Stack) -> None:
    """cart.abandoned is derived by the stack (SPEC §6.3); sent as an event it is the same."""
    scenario_id = stack.create(
        stack.post("/scenarios", {"template": "abandoned_cart"}, status=201)["scenario"]
    )
    stack.put("/promo-pools/CART10", {"codes": ["CART10-A"]})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name), db="default")
    items = [{"product_id": "sku-1", "quantity": 2, "price": 19.5}]
    for name in ("ada", "bob"):
        stack.event("cart.abandoned", name, db="default", data={"items": items, "total": 39})
    stack.drain()
    stack.advance("PT2H")
    stack.event("order.created", "bob", db="default", data={"order_id": "o-1", "total": 39})
    stack.advance("P3D")

    def sent(profile_id: str) -> list[tuple[str, Any]]:
        return [(m["node"], m["subject"]) for m in stack.sent(profile_id=profile_id)]

    assert sent("ada") == [
        ("reminder_email", "You left something in your cart"),
        ("help_email", "Can we help with your order?"),
        ("promo_email", "10 % off what is in your cart"),
    ]
    (promo,) = stack.sent(node="promo_email")
    assert "CART10-A" in promo["body"]
    assert sent("bob") == [("reminder_email", "You left something in your cart")]
    (bobs,) = stack.instances("bob", scenario_id, db="default")
    assert (bobs.status, bobs.reason) == ("exited", "goal")


def test_the_birthday_schedule_captures_two_weeks_before(stack: Stack) -> None:
    stack.create(stack.post("/scenarios", {"template": "birthday"}, status=201)["scenario"])
    stack.put("/promo-pools/BIRTHDAY", {"codes": ["BDAY-1"]})
    # the schedule runs daily at 10:00; the next run is June 11th, 14 days before the 25th
    stack.upsert("ada", person("ada", next_birthday="2026-06-25"), db="default")
    stack.upsert("bob", person("bob", next_birthday="2026-06-26"), db="default")
    stack.advance("P1D")
    (gift,) = stack.sent(node="gift_email")
    assert (gift["profile_id"], gift["at"]) == ("ada", "2026-06-11T10:00:00Z")
    assert "BDAY-1" in gift["body"]
