"""The profile and loyalty examples (examples/vip_welcome.json, points_available.json,
email_changed.json) on the stack, started by the signals the stack derives itself — a
profile entering the segment, points becoming available, an address changed — rather
than by events a timeline hands them."""

from __future__ import annotations

from harness import Stack, at, person

from chalicelib.scenarios.durations import format_datetime

VIP = {"profile_db": "customers", "where": {"field": "profile.tier", "op": "eq", "value": "vip"}}


def test_the_vip_welcome_starts_when_a_profile_enters_the_vip_segment(stack: Stack) -> None:
    stack.put("/segments/vip", VIP)
    stack.put("/promo-pools/VIP", {"codes": ["VIP-1"]})
    scenario_id = stack.create(stack.example("vip_welcome"))
    stack.upsert("ada", person("ada", 1, tier="gold"))
    stack.upsert("bob", person("bob", 2, tier="gold"))
    stack.drain()
    assert stack.sent(scenario_id=scenario_id) == []

    stack.upsert("ada", {"tier": "vip"})
    stack.drain()
    (welcome,) = stack.sent(scenario_id=scenario_id)
    assert (welcome["to"], welcome["subject"]) == ("ada@example.com", "Welcome to VIP, Ada")
    assert "VIP-1 for 15 % off" in welcome["body"]

    stack.advance("PT1H")
    stack.upsert("bob", {"tier": "vip"})
    stack.drain()
    stack.advance("PT1H")
    stack.upsert("bob", {"tier": "gold"})  # left the segment: the journey's exit_on
    stack.advance("P3D")

    perks = stack.sent(scenario_id=scenario_id, node="perks_email")
    assert [m["profile_id"] for m in perks] == ["ada"]
    bob = stack.instance("bob", scenario_id)
    assert (bob.status, bob.reason) == ("exited", "goal")


def test_points_available_tells_the_profile_when_its_pending_points_become_available(
    stack: Stack,
) -> None:
    scenario_id = stack.create(stack.example("points_available"))
    stack.upsert("ada", person("ada"))
    accrual = {"balance": 150, "delta": 0, "pending": 150,
               "available_at": format_datetime(at(12, 11))}  # fmt: skip
    stack.event("balance.changed", "ada", data=accrual)
    stack.drain()
    stack.advance_to(at(12, 10, 59))
    assert stack.sent(scenario_id=scenario_id) == []

    stack.advance_to(at(17, 12))
    sent = [(m["subject"], m["at"]) for m in stack.sent(scenario_id=scenario_id)]
    assert sent == [
        ("150 points are ready to spend", "2026-06-12T11:00:00Z"),
        ("Your 150 points are waiting", "2026-06-17T11:00:00Z"),
    ]
    (available,) = stack.sent(node="available_email")
    assert "Your balance is 150 points, Ada." in available["body"]


def test_an_email_changed_asks_the_old_address_and_a_confirmation_ends_the_reminders(
    stack: Stack,
) -> None:
    scenario_id = stack.create(stack.example("email_changed"))
    stack.upsert("ada", person("ada", 1))
    stack.upsert("bob", person("bob", 2))
    stack.drain()
    assert stack.sent(scenario_id=scenario_id) == []  # created with an address: no change

    stack.upsert("ada", {"email": "ada@new.example"})
    stack.upsert("bob", {"email": "bob@new.example"})
    stack.drain()
    asked = sorted((m["profile_id"], m["node"], m["to"]) for m in stack.sent())
    assert asked == [
        ("ada", "confirm_email", "ada@new.example"), ("ada", "was_it_you", "ada@example.com"),
        ("bob", "confirm_email", "bob@new.example"), ("bob", "was_it_you", "bob@example.com"),
    ]  # fmt: skip

    stack.advance("PT3H")
    stack.upsert("ada", {"email_confirmed": True})  # email.confirmed ends ada's wait
    stack.advance("P2D")
    reminded = stack.sent(scenario_id=scenario_id, node="confirm_reminder")
    assert [(m["profile_id"], m["to"]) for m in reminded] == [("bob", "bob@new.example")]
    assert stack.instance("ada", scenario_id).status == "completed"
