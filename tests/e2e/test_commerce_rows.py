"""Commerce signals end to end (SPEC §6.2, §6.3): a view is kept 60 days and watches the
product only that long; availability and custom-field changes of the feed reach the
journeys of the profiles that have the product on a list or viewed it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from harness import START, Stack, email, on_event, person, scenario

from chalicelib.bootstrap import services


def listen(stack: Stack, event_type: str) -> str:
    """A scenario started by every `event_type` (a separate instance for each)."""
    return stack.create(
        scenario(
            {"tell": email(event_type)},
            [on_event(event_type, "tell")],
            name=event_type,
            reentry="parallel",
        )
    )


def entries(stack: Stack, scenario_id: str, profile_id: str) -> list[dict[str, Any]]:
    """The data of the events that started the profile's instances, oldest first."""
    return [dict(i.entry.data) for i in stack.instances(profile_id, scenario_id)]


def watchers_of(product_id: str) -> list[tuple[str, str]]:
    found, _ = services().storage.watchers(product_id, 100)
    return sorted((w.profile_id, w.source) for w in found)


def test_the_latest_view_of_a_product_is_kept_60_days_then_it_is_gone(stack: Stack) -> None:
    stack.put("/products/p1", {"price": 100})
    stack.put("/products/p2", {"price": 100})
    stack.upsert("ada", person("ada"))
    stack.event("product.viewed", "ada", data={"product_id": "p1"})
    stack.drain()
    stack.advance("P2D")
    stack.event("product.viewed", "ada", data={"product_id": "p2"})
    stack.drain()
    stack.advance("P59D")  # p1 viewed 61 days ago, p2 59 days ago
    kept = services().storage.views("customers", "ada")
    assert [view.product_id for view in kept] == ["p2"]
    assert watchers_of("p1") == []
    assert watchers_of("p2") == [("ada", "viewed")]


def test_a_view_older_than_60_days_receives_no_price_or_stock_signal(stack: Stack) -> None:
    dropped, out = listen(stack, "product.price_dropped"), listen(stack, "product.out_of_stock")
    stack.put("/products/p1", {"price": 100, "available": True})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
    old = START - timedelta(days=61)  # still in the index: the expiry may come late
    stack.event("product.viewed", "ada", occurred_at=old, data={"product_id": "p1"})
    stack.event(
        "product.viewed", "bob", occurred_at=START - timedelta(days=59), data={"product_id": "p1"}
    )
    stack.drain()
    assert watchers_of("p1") == [("ada", "viewed"), ("bob", "viewed")]
    stack.put("/products/p1", {"price": 80, "available": False})
    stack.drain()
    assert [m["profile_id"] for m in stack.sent(scenario_id=dropped)] == ["bob"]
    assert [m["profile_id"] for m in stack.sent(scenario_id=out)] == ["bob"]
    assert stack.instances("ada") == []


def test_availability_transitions_start_a_journey_once_each_for_lists_and_views(
    stack: Stack,
) -> None:
    back, out = listen(stack, "product.back_in_stock"), listen(stack, "product.out_of_stock")
    stack.put("/products/p1", {"price": 100, "available": False})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
    stack.event("favorites.item_added", "ada", data={"product_id": "p1"})
    stack.event("product.viewed", "bob", data={"product_id": "p1"})
    stack.drain()

    stack.advance("PT1H")
    stack.put("/products/p1", {"available": True})
    stack.drain()
    stack.drain()  # nothing queued again: one fan-out per change
    assert [d["source"] for d in entries(stack, back, "ada")] == ["favorites"]
    assert [d["source"] for d in entries(stack, back, "bob")] == ["viewed"]
    (data,) = entries(stack, back, "ada")
    assert (data["product_id"], data["derived"]) == ("p1", True)

    stack.advance("PT1H")
    stack.put("/products/p1", {"available": True, "price": 90})  # still available
    stack.drain()
    assert len(stack.sent(scenario_id=back)) == 2
    assert stack.sent(scenario_id=out) == []

    stack.advance("PT1H")
    stack.put("/products/p1", {"available": False})
    stack.drain()
    assert sorted(m["profile_id"] for m in stack.sent(scenario_id=out)) == ["ada", "bob"]
    assert [d["source"] for d in entries(stack, out, "bob")] == ["viewed"]

    stack.advance("PT1H")
    stack.put("/products/p1", {"available": True})  # every transition fires again
    stack.drain()
    assert sorted(m["profile_id"] for m in stack.sent(scenario_id=back)) == [
        "ada", "ada", "bob", "bob"
    ]  # fmt: skip

    stack.advance("PT1H")
    stack.put("/products/p1", {"available": None})  # cleared: unknown counts as unavailable
    stack.drain()
    assert sorted(m["profile_id"] for m in stack.sent(scenario_id=out)) == [
        "ada", "ada", "bob", "bob"
    ]  # fmt: skip


def test_from_unknown_availability_only_turning_true_fires(stack: Stack) -> None:
    back, out = listen(stack, "product.back_in_stock"), listen(stack, "product.out_of_stock")
    stack.put("/products/p2", {"price": 100})  # availability unknown
    stack.upsert("ada", person("ada"))
    stack.event("favorites.item_added", "ada", data={"product_id": "p2"})
    stack.drain()
    stack.advance("PT1H")
    stack.put("/products/p2", {"available": False})  # unknown → false: nothing
    stack.drain()
    assert stack.sent(scenario_id=out) == []
    stack.put("/products/p2", {"available": None})
    stack.drain()
    stack.advance("PT1H")
    stack.put("/products/p2", {"available": True})  # unknown → true
    stack.drain()
    assert [d["source"] for d in entries(stack, back, "ada")] == ["favorites"]
    assert stack.sent(scenario_id=out) == []


def test_custom_field_changes_start_a_journey_once_per_product_change(stack: Stack) -> None:
    changed = listen(stack, "product.field_changed")
    stack.put("/products/p1", {"price": 100, "fields": {"color": "blue"}})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
    stack.event("favorites.item_added", "ada", data={"product_id": "p1"})
    stack.event("product.viewed", "bob", data={"product_id": "p1"})
    stack.drain()

    stack.advance("PT1H")
    stack.put("/products/p1", {"fields": {"color": "red", "size": "M"}})  # two at once
    stack.drain()
    stack.drain()
    (ada,) = entries(stack, changed, "ada")
    (bob,) = entries(stack, changed, "bob")
    assert (ada["source"], bob["source"]) == ("favorites", "viewed")
    assert ada["fields"] == {
        "color": {"old": "blue", "new": "red"},
        "size": {"old": None, "new": "M"},
    }
    assert ada["product_id"] == "p1"

    stack.advance("PT1H")
    stack.put("/products/p1", {"price": 90})  # no custom field changed
    stack.drain()
    assert len(stack.sent(scenario_id=changed)) == 2

    stack.advance("PT1H")
    stack.put("/products/p1", {"fields": {"size": None}})  # cleared
    stack.drain()
    assert [d["fields"] for d in entries(stack, changed, "ada")][-1] == {
        "size": {"old": "M", "new": None}
    }
    assert len(stack.sent(scenario_id=changed)) == 4


def test_a_derived_price_drop_is_heard_by_exit_on(stack: Stack) -> None:
    reminder = stack.create(
        scenario(
            {
                "wait": {"type": "pause", "duration": "P1D", "next": "nudge"},
                "nudge": email("Nudge"),
            },
            [on_event("signup", "wait")],
            name="Reminder",
            exit_on=[{"event": "product.price_dropped"}],
        )
    )
    stack.put("/products/p1", {"price": 100})
    for name in ("ada", "bob"):
        stack.upsert(name, person(name))
        stack.event("signup", name)
    stack.event("favorites.item_added", "ada", data={"product_id": "p1"})
    stack.drain()
    stack.advance("PT1H")
    stack.put("/products/p1", {"price": 80})
    stack.drain()
    stack.advance("P1D")
    assert [m["profile_id"] for m in stack.sent(scenario_id=reminder)] == ["bob"]
