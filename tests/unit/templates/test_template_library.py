"""The built-in scenario templates (SPEC §9): each validates as it stands, covers its
category, and its timeline walks the intended path through `simulate`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib import templates
from chalicelib.engine import CompiledScenario, Simulation, simulate
from chalicelib.scenarios.validation import check_scenario

START = datetime(2026, 6, 1, 10, tzinfo=UTC)  # a Monday, 10:00 UTC: outside quiet hours

# per template: the node ids the timeline's profile walks, and (node, subject) of each send
INTENDED: dict[str, tuple[list[str], list[tuple[str, str]]]] = {
    "welcome_series": (
        [
            "welcome_email",
            "wait_2_days",
            "tips_email",
            "wait_3_days",
            "first_order_code",
            "code_email",
        ],
        [
            ("welcome_email", "Welcome, Ada"),
            ("tips_email", "Three things to try first"),
            ("code_email", "10 % off your first order"),
        ],
    ),
    "abandoned_cart": (
        ["reminder_email", "wait_1_day", "help_email", "wait_2_days", "cart_code", "promo_email"],
        [
            ("reminder_email", "You left something in your cart"),
            ("help_email", "Can we help with your order?"),
            ("promo_email", "10 % off what is in your cart"),
        ],
    ),
    "abandoned_browse": (
        ["browse_email", "wait_3_days", "viewed_again", "second_email"],
        [("browse_email", "Still thinking about it?"), ("second_email", "Back for another look?")],
    ),
    "price_drop": (
        ["by_source", "favourite_email"],
        [("favourite_email", "A favourite of yours is 25 % cheaper")],
    ),
    "back_in_stock": (
        ["back_email", "wait_2_days", "reminder_email"],
        [("back_email", "It is back: sku-5"), ("reminder_email", "Still in stock, for now")],
    ),
    "order_follow_up": (
        ["confirmation_email", "record_order", "wait_delivery", "wait_3_days", "nps_email"],
        [
            ("confirmation_email", "Order o-1 confirmed"),
            ("nps_email", "How likely are you to recommend us?"),
        ],
    ),
    "birthday": (
        ["gift_code", "gift_email", "wait_14_days", "birthday_email"],
        [
            ("gift_email", "A birthday gift, two weeks early"),
            ("birthday_email", "Happy birthday, Ada!"),
        ],
    ),
    "win_back": (
        ["comeback_code", "miss_you_email", "wait_7_days", "last_chance_email"],
        [("miss_you_email", "We miss you, Ada"), ("last_chance_email", "Your 15 % ends soon")],
    ),
    "points_available": (
        ["points_email", "wait_7_days", "ordered", "reminder_email"],
        [
            ("points_email", "150 points are yours to spend"),
            ("reminder_email", "Your points are waiting"),
        ],
    ),
}


def run(template_id: str, **changes: Any) -> dict[str, Any]:
    """Simulate a template with its own timeline, `changes` replacing keys of it."""
    template = templates.find(template_id)
    assert template is not None
    scenario = CompiledScenario.from_document(template.scenario, template_id)
    timeline = {**template.timeline, **changes}
    return simulate(scenario, Simulation.model_validate(timeline), START)


def test_the_library_covers_every_category_of_the_spec() -> None:
    found = templates.catalogue()
    assert sorted(found) == sorted(INTENDED)
    assert sorted(t.category for t in found.values()) == sorted(templates.CATEGORIES)
    for template in found.values():
        assert template.description
        assert template.name == template.scenario["name"]


@pytest.mark.parametrize("template_id", sorted(INTENDED))
def test_each_template_activates_as_it_stands(template_id: str) -> None:
    template = templates.find(template_id)
    assert template is not None
    assert check_scenario(template.scenario)[1] == []


@pytest.mark.parametrize("template_id", sorted(INTENDED))
def test_each_template_walks_its_intended_path(template_id: str) -> None:
    path, sends = INTENDED[template_id]
    report = run(template_id)
    assert [entry["node"] for entry in report["path"]] == path
    assert [(send["node"], send["subject"]) for send in report["sends"]] == sends
    assert all(send["to"] == "ada@example.com" for send in report["sends"])
    assert report["skipped"] == []
    assert (report["status"], report["reason"]) == ("completed", None)


def test_a_template_is_read_as_a_copy() -> None:
    template = templates.find("welcome_series")
    assert template is not None
    template.describe()["scenario"]["name"] = "changed"
    assert template.scenario["name"] == "Welcome series"


def test_the_abandoned_cart_lists_the_items_and_stops_on_an_order() -> None:
    template = templates.find("abandoned_cart")
    assert template is not None
    (abandoned,) = template.timeline["events"]
    order = {"at": "PT6H", "type": "order.created", "data": {"order_id": "o-1", "total": 39.0}}
    report = run("abandoned_cart", events=[abandoned, order])
    assert [send["node"] for send in report["sends"]] == ["reminder_email"]
    assert report["sends"][0]["body"] == "Still yours: 2 × sku-1 (39.0)."
    assert (report["status"], report["reason"]) == ("exited", "goal")


def test_the_abandoned_browse_sends_once_when_the_product_was_not_viewed_again() -> None:
    template = templates.find("abandoned_browse")
    assert template is not None
    abandoned, _ = template.timeline["events"]
    other = {"at": "P1D", "type": "product.viewed", "data": {"product_id": "sku-8"}}
    report = run("abandoned_browse", events=[abandoned, other])
    assert [send["node"] for send in report["sends"]] == ["browse_email"]
    added = {"at": "PT1H", "type": "cart.item_added", "data": {"product_id": "sku-7"}}
    assert run("abandoned_browse", events=[abandoned, added])["reason"] == "goal"


def price_drop(source: str, drop_pct: float) -> dict[str, Any]:
    return {
        "at": "PT0S",
        "type": "product.price_dropped",
        "data": {"product_id": "sku-3", "source": source, "price_seen": 80.0, "price": 60.0,
                 "drop_abs": 20.0, "drop_pct": drop_pct, "derived": True},
    }  # fmt: skip


def test_the_price_drop_speaks_of_a_viewed_product_and_ignores_small_drops_and_carts() -> None:
    viewed = run("price_drop", events=[price_drop("viewed", 10.0)])
    assert [(s["node"], s["subject"]) for s in viewed["sends"]] == [
        ("viewed_email", "Price drop on something you looked at")
    ]
    assert run("price_drop", events=[price_drop("favorites", 3.0)])["status"] == "not_captured"
    assert run("price_drop", events=[price_drop("cart", 30.0)])["status"] == "not_captured"


def test_the_nps_survey_waits_for_this_order_delivered_whole() -> None:
    template = templates.find("order_follow_up")
    assert template is not None
    created, delivered = template.timeline["events"]
    other_order = json.loads(json.dumps(delivered))
    other_order["data"]["order_id"] = "o-2"
    one_item = json.loads(json.dumps(delivered))
    one_item["data"]["scope"] = "any_item"
    report = run("order_follow_up", events=[created, other_order, one_item], until="P40D")
    assert [send["node"] for send in report["sends"]] == ["confirmation_email"]
    assert [entry["node"] for entry in report["path"]][-2:] == ["wait_delivery", "not_delivered"]
    assert report["path"][-1]["at"] == "2026-07-01T10:00:00Z"  # 30 days on: no survey


def test_the_birthday_and_win_back_segments_pick_the_right_day() -> None:
    """Their schedule triggers capture by a segment; the simulation enters at `entry`, so
    the segments are checked here, as the schedule tick evaluates them."""
    from chalicelib.scenarios.conditions import compile_condition
    from chalicelib.scenarios.facts import Facts, Profile

    def segment(template_id: str) -> Any:
        template = templates.find(template_id)
        assert template is not None
        return (
            CompiledScenario.from_document(template.scenario)
            .triggers[template.scenario["triggers"][0]["id"]]
            .segment
        )

    def matches(template_id: str, **fields: Any) -> bool:
        predicate = compile_condition(segment(template_id))
        return bool(predicate(Facts(Profile("ada", fields), START, ZoneInfo("UTC"))))

    birthday = (START + timedelta(days=14)).date().isoformat()
    assert matches("birthday", next_birthday=birthday)
    assert not matches("birthday", next_birthday=(START + timedelta(days=13)).date().isoformat())
    ninety_days_ago = (START - timedelta(days=90)).isoformat()
    assert matches("win_back", last_order_at=ninety_days_ago)
    assert not matches("win_back", last_order_at=(START - timedelta(days=89)).isoformat())
