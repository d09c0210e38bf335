"""Orders end to end (SPEC §6.3): real order events kept by the stack, the order signals
it derives reaching triggers and `wait_for`, once each however often their cause comes."""

from __future__ import annotations

import json
from typing import Any

from harness import Stack, at, email, on_event, person, scenario

from chalicelib.adapters.aws import client
from chalicelib.adapters.queues import queue_url, send


def line(item_id: str, status: str) -> dict[str, Any]:
    return {"item_id": item_id, "product_id": f"sku-{item_id}", "quantity": 1, "price": 29.5,
            "status": status}  # fmt: skip


def order(items: list[dict[str, Any]], status: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"order_id": "o-1", "items": items}
    if status is not None:
        data.update(status=status, total=59.0)
    return data


def test_the_nps_template_asks_three_days_after_every_item_of_the_order_is_delivered(
    stack: Stack,
) -> None:
    made = stack.post("/scenarios", {"template": "order_follow_up"}, status=201)
    stack.post(f"/scenarios/{made['id']}/activate")
    db = stack.get(f"/scenarios/{made['id']}")["scenario"].get("profile_db", "default")
    stack.upsert("ada", person("ada"), db=db)
    stack.event("order.created", "ada", db=db, event_id="c1",
                data=order([line("1", "placed"), line("2", "placed")], "placed"))  # fmt: skip
    stack.drain()
    assert [m["subject"] for m in stack.sent()] == ["Order o-1 confirmed"]

    stack.advance_to(at(11))
    stack.event("order.updated", "ada", db=db, event_id="u1", data=order([line("1", "delivered")]))
    stack.advance_to(at(12))
    stack.event("order.updated", "ada", db=db, event_id="u2", data=order([line("2", "delivered")]))
    stack.drain()
    assert stack.instances("ada", made["id"], db=db)[0].node == "wait_3_days"

    stack.advance_to(at(15, 9, 59))
    assert len(stack.sent()) == 1
    stack.advance_to(at(15, 10, 1))
    assert sorted(m["subject"] for m in stack.sent()) == [
        "How likely are you to recommend us?", "Order o-1 confirmed"
    ]  # fmt: skip


def status_mail(**trigger: Any) -> dict[str, Any]:
    return scenario(
        {"mail": email("Order {{ event.data.order_id }} is {{ event.data.status }}")},
        [on_event("order.status_changed", "mail", **trigger)],
        reentry="parallel",
    )


def test_a_backdated_update_older_than_the_latest_change_derives_nothing(stack: Stack) -> None:
    stack.create(status_mail(where={"field": "event.data.scope", "op": "eq", "value": "order"}))
    stack.upsert("ada", person("ada"))
    stack.event("order.created", "ada", event_id="c1", data=order([line("1", "placed")], "placed"))
    stack.event("order.updated", "ada", event_id="u2", occurred_at=at(10, 12),
                data=order([line("1", "shipped")], "shipped"))  # fmt: skip
    stack.drain()
    stack.event("order.updated", "ada", event_id="u1", occurred_at=at(10, 11),
                data=order([line("1", "cancelled")], "cancelled"))  # fmt: skip
    stack.drain()
    assert sorted(m["subject"] for m in stack.sent()) == [
        "Order o-1 is placed", "Order o-1 is shipped"
    ]  # fmt: skip


def test_an_order_event_delivered_again_derives_its_signals_once(stack: Stack) -> None:
    scenario_id = stack.create(status_mail())
    stack.upsert("ada", person("ada"))
    stack.drain()
    stack.event("order.created", "ada", event_id="c1", data=order([line("1", "delivered")]))
    (queued,) = client("sqs").receive_message(QueueUrl=queue_url("events"), VisibilityTimeout=0)[
        "Messages"
    ]
    stack.drain()
    send("events", json.loads(queued["Body"]))  # the raw SQS message, delivered again
    stack.drain()
    subjects = [m["subject"] for m in stack.sent()]
    assert subjects == ["Order o-1 is delivered"] * 2  # any_item and all_items, once each
    assert len(stack.instances("ada", scenario_id)) == 2


def test_a_trigger_limited_per_order_fires_once_for_an_order_of_many_items(stack: Stack) -> None:
    stack.create(status_mail(
        where={"field": "event.data.scope", "op": "eq", "value": "any_item"},
        limit={"max": 1, "per": "event.data.order_id"},
    ))  # fmt: skip
    stack.upsert("ada", person("ada"))
    stack.event("order.created", "ada", event_id="c1",
                data=order([line("1", "shipped"), line("2", "shipped")]))  # fmt: skip
    stack.drain()
    stack.event("order.updated", "ada", event_id="u1", occurred_at=at(10, 11),
                data=order([line("1", "delivered"), line("2", "delivered")]))  # fmt: skip
    other = {**order([line("9", "shipped")]), "order_id": "o-2"}
    stack.event("order.created", "ada", event_id="c2", data=other)
    stack.drain()
    assert sorted(m["subject"] for m in stack.sent()) == ["Order o-1 is shipped",
                                                          "Order o-2 is shipped"]  # fmt: skip


def test_a_session_ends_after_thirty_minutes_without_web_activity_or_on_close(
    stack: Stack,
) -> None:
    stack.create(
        scenario(
            {"mail": email("{{ event.data.pages }} pages, ordered {{ event.data.ordered }}")},
            [on_event("session.ended", "mail")],
            reentry="parallel",
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("page.visited", "ada", event_id="p1", data={"url": "/"})
    stack.drain()
    stack.advance_to(at(10, 10, 20))
    stack.event("product.viewed", "ada", event_id="v1", data={"product_id": "sku-1"})
    stack.event("page.visited", "ada", event_id="p2", data={"url": "/sku-1"})
    stack.drain()
    stack.advance_to(at(10, 10, 49))
    assert stack.sent() == []  # 29 minutes since the last activity
    stack.advance_to(at(10, 10, 52))
    assert [m["subject"] for m in stack.sent()] == ["2 pages, ordered False"]

    stack.event("page.visited", "ada", event_id="p3", data={"url": "/"})
    stack.event("order.created", "ada", event_id="c1", data=order([line("1", "placed")]))
    stack.event("session.close", "ada", event_id="x1")
    stack.drain()
    assert sorted(m["subject"] for m in stack.sent()) == [
        "1 pages, ordered True", "2 pages, ordered False"
    ]  # fmt: skip
    stack.advance("PT1H")
    assert len(stack.sent()) == 2
