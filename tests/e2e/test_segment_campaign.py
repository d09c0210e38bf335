"""Segment campaigns: a daily schedule trigger over a segment, fired by the minute tick as
virtual time passes, and `send-segment`."""

from __future__ import annotations

from harness import Stack, at, email, person, scenario

GOLD = {"field": "profile.plan", "op": "eq", "value": "gold"}


def test_a_daily_run_captures_each_member_of_the_segment_once(stack: Stack) -> None:
    trigger = {
        "id": "evening",
        "type": "schedule",
        "daily": "19:30",
        "segment": GOLD,
        "next": "offer",
    }
    scenario_id = stack.create(scenario({"offer": email("Tonight only")}, [trigger]))
    for number, (name, plan) in enumerate(
        [("ada", "gold"), ("bob", "gold"), ("carol", "gold"), ("dave", "silver"), ("eve", None)]
    ):
        stack.upsert(name, person(name, number, plan=plan))
    stack.upsert("erin", person("erin", plan="gold"), db="partners")  # another database

    stack.advance_to(at(10, 19, 29))
    assert not stack.sent()
    stack.advance_to(at(10, 19, 31))
    first = stack.sent()
    assert sorted(m["profile_id"] for m in first) == ["ada", "bob", "carol"]
    assert {m["at"] for m in first} == {"2026-06-10T19:30:00Z"}

    stack.upsert("dave", {"plan": "gold"})  # the segment is recomputed at every run
    stack.upsert("bob", {"plan": "silver"})
    stack.advance_to(at(11, 19))
    assert len(stack.sent()) == 3  # no run in between, however many ticks fired
    stack.advance_to(at(11, 21))
    second = [m for m in stack.sent() if m["at"] == "2026-06-11T19:30:00Z"]
    assert sorted(m["profile_id"] for m in second) == ["ada", "carol", "dave"]
    assert len(stack.sent()) == 6
    assert [len(stack.instances(n, scenario_id)) for n in ("ada", "bob", "carol", "dave")] == [
        2,
        1,
        2,
        1,
    ]
    assert stack.stats(scenario_id)["entered"] == 6


def test_send_segment_puts_every_member_in_now(stack: Stack) -> None:
    scenario_id = stack.create(scenario({"news": email("News")}))
    stack.put("/segments/gold", {"profile_db": "customers", "where": GOLD})
    for number, (name, plan) in enumerate([("ada", "gold"), ("bob", "silver"), ("carol", "gold")]):
        stack.upsert(name, person(name, number, plan=plan))

    run = stack.post(f"/scenarios/{scenario_id}/send-segment", {"segment": "gold"}, status=202)
    assert run["run_id"]
    stack.drain()
    assert sorted(m["profile_id"] for m in stack.sent()) == ["ada", "carol"]
    stack.drain()
    assert len(stack.sent()) == 2
