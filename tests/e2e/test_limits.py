"""SPEC §1.1's `entry_limit` and `rate_limit` on the local stack, in virtual time."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from harness import START, Stack, email, on_event, person, scenario

from chalicelib.adapters import store
from chalicelib.scenarios.durations import parse_datetime


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


def paced(stack: Stack, count: int, per_minute: int) -> str:
    """A scenario e-mailing every imported profile under a rate limit, and `count` imported."""
    document = scenario(
        {"hello": email("Hello")}, [on_event("profile.imported", "hello")],
        rate_limit={"max": per_minute, "per": "PT1M"},
    )  # fmt: skip
    scenario_id = stack.create(document)
    for first in range(0, count, 500):
        batch = [
            {"profile_id": f"p{n:04d}", "fields": person(f"p{n:04d}", n)}
            for n in range(first, min(count, first + 500))
        ]
        stack.post("/profiles/customers/import", {"profiles": batch})
    return scenario_id


def test_sends_past_the_rate_wait_for_their_slot_in_order_and_none_is_an_attempt(
    stack: Stack,
) -> None:
    scenario_id = paced(stack, 5, per_minute=2)
    stack.drain()
    (first,) = stack.sent(scenario_id=scenario_id)
    assert first["at"] == "2026-06-10T10:00:00Z"
    waiting = [
        row
        for row in store.messages.scan()
        if row.get("scenario_id") == scenario_id and row["status"] == "queued"
    ]
    assert len(waiting) == 4
    assert sorted(row["paced_at"] for row in waiting) == [
        "2026-06-10T10:00:30Z", "2026-06-10T10:01:00Z", "2026-06-10T10:01:30Z",
        "2026-06-10T10:02:00Z",
    ]  # fmt: skip
    assert all(row.get("attempts", 0) == 0 for row in waiting)

    stack.advance("PT1M")
    assert len(stack.sent(scenario_id=scenario_id)) == 3
    stack.advance("PT1M")
    sent = stack.sent(scenario_id=scenario_id)
    assert [m["at"] for m in sent] == [
        "2026-06-10T10:00:00Z", "2026-06-10T10:00:30Z", "2026-06-10T10:01:00Z",
        "2026-06-10T10:01:30Z", "2026-06-10T10:02:00Z",
    ]  # fmt: skip
    slots = {row["message_id"]: row["paced_at"] for row in waiting}
    assert all(slots.get(m["message_id"], m["at"]) == m["at"] for m in sent)  # none early


SENDS = 100  # 1,000 real sends through moto take over 5 minutes; see docs/channels.md


def test_a_rate_limit_spreads_ten_minutes_of_sends_over_ten_minutes(stack: Stack) -> None:
    per_minute = SENDS // 10
    scenario_id = paced(stack, SENDS, per_minute)
    stack.advance("PT15M")
    sent = stack.sent(scenario_id=scenario_id)
    assert len({m["message_id"] for m in sent}) == SENDS  # none lost, none twice
    assert len(sent) == SENDS
    minutes = Counter(m["at"][:16] for m in sent)
    assert minutes == {f"2026-06-10T10:0{minute}": per_minute for minute in range(10)}
    spacing = timedelta(minutes=1) / per_minute
    times = sorted(parse_datetime(m["at"]) for m in sent)
    assert all(at >= START + n * spacing for n, at in enumerate(times))  # none early
