"""SPEC §1.1's `entry_limit` and `rate_limit` on the local stack, in virtual time."""

from __future__ import annotations

from collections import Counter

from harness import Stack, email, on_event, person, scenario


def test_signups_past_the_entry_limit_wait_for_the_next_day(stack: Stack) -> None:
    document = scenario(
        {"hello": email("Hello")}, [on_event("signup", "hello")],
        entry_limit={"max": 2, "per": "P1D"},
    )  # fmt: skip
    scenario_id = stack.create(document)
    for number, name in enumerate(("ada", "bob", "cy", "dan")):
        stack.upsert(name, person(name, number))
    for name in ("ada", "bob", "cy"):
        stack.event("signup", name)
    stack.drain()
    assert sorted(m["profile_id"] for m in stack.sent(scenario_id=scenario_id)) == ["ada", "bob"]
    assert stack.instances("cy", scenario_id) == []

    stack.advance("P1D")
    stack.event("signup", "dan")
    stack.drain()
    assert stack.instance("dan", scenario_id).status == "completed"
    assert Counter(m["at"][:10] for m in stack.sent(scenario_id=scenario_id)) == {
        "2026-06-10": 2,
        "2026-06-11": 1,
    }
