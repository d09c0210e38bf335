"""Backdated events and actuality (SPEC §1.5): the journey clock starts at the event's
`occurred_at`, and a step overdue by more than `actuality` is not run."""

from __future__ import annotations

from harness import Stack, at, email, on_event, pause, person, scenario

ORDER_PLACED = at(6, 20)  # June 6 20:00; the stack's clock says June 10 10:00


def test_a_late_order_is_stale_right_away_but_fresh_after_a_long_pause(stack: Stack) -> None:
    at_once = stack.create(
        scenario(
            {"thanks": email("Thanks")},
            [on_event("order.created", "thanks", actuality="P1D")],
            name="At once",
        )
    )
    after_pause = stack.create(
        scenario(
            {"wait": pause("P3D", "review"), "review": email("Review")},
            [on_event("order.created", "wait")],
            actuality="P1D",  # the scenario's default for every trigger
            name="After a pause",
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("order.created", "ada", occurred_at=ORDER_PLACED, data={"total": 30})
    stack.drain()

    stale = stack.instance("ada", at_once)
    assert (stale.status, stale.reason, stale.node) == ("exited", "stale", "thanks")
    assert not stack.sent(scenario_id=at_once)

    (review,) = stack.sent(scenario_id=after_pause)  # due June 9 20:00: within a day
    assert (review["node"], review["at"]) == ("review", "2026-06-10T10:00:00Z")
    fresh = stack.instance("ada", after_pause)
    assert fresh.status == "completed"
    assert fresh.path[0]["node"] == "wait"
    assert fresh.entered_at == ORDER_PLACED


def test_a_recent_order_is_not_stale(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario(
            {"thanks": email("Thanks")}, [on_event("order.created", "thanks", actuality="P1D")]
        )
    )
    stack.upsert("bob", person("bob"))
    stack.event("order.created", "bob", occurred_at=at(9, 20))  # 14 hours ago
    stack.drain()
    assert [m["at"] for m in stack.sent(scenario_id=scenario_id)] == ["2026-06-10T10:00:00Z"]
    assert stack.instance("bob", scenario_id).status == "completed"
