"""Revenue (SPEC §3.3): `order.created` totals of profiles in a scenario, or within 7 days
of its last send to them, in `GET /scenarios/{id}/stats` — once per event and scenario."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.runtime import events
from chalicelib.runtime.messages import EventBody, EventMessage
from tests.e2e.harness import Stack, email, pause, person, scenario


def with_ada(stack: Stack, nodes: dict[str, Any], name: str = "Revenue") -> str:
    """An active scenario of `nodes` that Ada (reachable) is put into now; its id."""
    scenario_id = stack.create(scenario(nodes, name=name))
    stack.upsert("ada", person("ada"))
    stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": "ada"}, status=201)
    stack.drain()
    return scenario_id


def order(stack: Stack, total: Any, event_id: str | None = None) -> None:
    stack.event("order.created", "ada", event_id=event_id, data={"total": total})
    stack.drain()


def revenue(stack: Stack, scenario_id: str) -> Any:
    return stack.stats(scenario_id)["revenue"]


WAITING = {"hello": email("Hello", "wait"), "wait": pause("P14D")}
ONE_SEND = {"hello": email("Hello")}


def test_an_order_while_in_the_scenario_counts_on_its_day_and_version(stack: Stack) -> None:
    scenario_id = with_ada(stack, WAITING)
    stack.advance("P10D")  # long after the send, still in the scenario
    order(stack, 19.99)
    order(stack, 5)
    assert revenue(stack, scenario_id) == pytest.approx(24.99)
    day = stack.now.date().isoformat()
    assert stack.get(f"/scenarios/{scenario_id}/stats?from={day}&to={day}")["revenue"] == 24.99
    assert stack.get(f"/scenarios/{scenario_id}/stats?version=1")["revenue"] == 24.99
    assert stack.get(f"/scenarios/{scenario_id}/stats?to=2026-06-10")["revenue"] == 0


def test_an_order_within_seven_days_of_the_last_send_counts(stack: Stack) -> None:
    scenario_id = with_ada(stack, ONE_SEND)
    assert stack.instance("ada", scenario_id).status == "completed"
    stack.advance("P6DT23H")
    order(stack, 40)
    assert revenue(stack, scenario_id) == 40.0


def test_an_order_after_the_window_does_not_count(stack: Stack) -> None:
    scenario_id = with_ada(stack, ONE_SEND)
    stack.advance("P7DT1M")
    order(stack, 40)
    assert revenue(stack, scenario_id) == 0.0


def test_an_order_counts_for_every_scenario_that_earned_it_once(stack: Stack) -> None:
    waiting = with_ada(stack, WAITING, "Waiting")
    sent = with_ada(stack, {"hi": email("Hi"), "more": email("More")}, "Sent twice")
    elsewhere = stack.create(scenario(ONE_SEND, name="Never met Ada"))
    stack.advance("P1D")
    order(stack, 12.5)
    assert (revenue(stack, waiting), revenue(stack, sent), revenue(stack, elsewhere)) == (
        12.5,
        12.5,
        0.0,
    )


def test_only_orders_with_a_numeric_total_count(stack: Stack) -> None:
    scenario_id = with_ada(stack, WAITING)
    for total in ("12.50", None, True, {"amount": 3}):
        order(stack, total)
    stack.event("order.updated", "ada", data={"total": 99})
    stack.drain()
    assert revenue(stack, scenario_id) == 0.0


def test_an_order_redelivered_after_a_crash_counts_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario_id = with_ada(stack, WAITING)
    order = EventBody(
        id="order-1", type="order.created", occurred_at="2026-06-10T12:00:00Z",
        data={"total": 30},
    )  # fmt: skip
    body = EventMessage(profile_db="customers", profile_id="ada", event=order)
    real_attribute = events.revenue.attribute

    def crash(*args: Any, **kwargs: Any) -> None:
        real_attribute(*args, **kwargs)
        raise RuntimeError("the function crashed after counting the revenue")

    monkeypatch.setattr(events.revenue, "attribute", crash)
    with pytest.raises(RuntimeError):
        events.process(body)
    monkeypatch.setattr(events.revenue, "attribute", real_attribute)
    events.process(body)  # the queue delivers it again
    events.process(body)  # and once more, after it was done
    assert revenue(stack, scenario_id) == 30.0
