"""SPEC §1's welcome series (examples/welcome.json) over four virtual days, through the
HTTP API, the queues and the real handlers: Ada confirms her address, Bob does not."""

from __future__ import annotations

from harness import Stack, at, person

CODES = ["WELCOME10-A", "WELCOME10-B", "WELCOME10-C"]


def test_the_welcome_series_over_four_days(stack: Stack) -> None:
    scenario_id = stack.create(stack.example("welcome"))
    added = stack.put("/promo-pools/WELCOME10", {"codes": CODES})
    assert added == {"pool": "WELCOME10", "added": 3, "left": 3}

    stack.upsert("ada", person("ada", 1, loyalty_points=5))
    stack.upsert("bob", person("bob", 2))
    stack.drain()
    welcome = sorted(stack.sent(node="welcome_email"), key=lambda m: m["profile_id"])
    assert [(m["profile_id"], m["to"], m["subject"], m["at"]) for m in welcome] == [
        ("ada", "ada@example.com", "Welcome, Ada", "2026-06-10T10:00:00Z"),
        ("bob", "bob@example.com", "Welcome, Bob", "2026-06-10T10:00:00Z"),
    ]

    stack.advance("PT2H")
    assert stack.event("subscription.confirmed", "ada")["accepted"] == 1
    stack.upsert("ada", {"first_name": "Ada"})  # profile.imported again: re-entry `never`
    stack.advance("P1D")  # the day's pause ends June 11 10:00

    # Ada confirmed: 100 bonus points, a code from the pool, the promo e-mail with it
    assert stack.fields("ada")["loyalty_points"] == 105
    (promo,) = stack.sent(node="promo_email")
    code = promo["body"].removeprefix("Use ")
    assert code in CODES
    assert (promo["profile_id"], promo["subject"], promo["at"]) == (
        "ada",
        "Your code",
        "2026-06-11T10:00:00Z",
    )
    assert stack.get("/promo-pools/WELCOME10")["left"] == 2
    ada = stack.instance("ada", scenario_id)
    assert (ada.status, ada.node, ada.vars["promo_code"]) == ("completed", "promo_email", code)
    assert [step["node"] for step in ada.path] == [
        "welcome_email",
        "wait_day",
        "confirmed",
        "bonus",
        "code",
        "promo_email",
    ]

    # Bob did not: the reminder SMS now, the call center a day later
    (sms,) = stack.sent(channel="sms")
    assert (sms["profile_id"], sms["to"], sms["body"], sms["at"]) == (
        "bob",
        "+14155550002",
        "Confirm your e-mail",
        "2026-06-11T10:00:00Z",
    )
    assert not stack.sent(channel="webhook")
    assert stack.instance("bob", scenario_id).node == "wait_sms"

    stack.advance_to(at(13, 11))
    (call,) = stack.sent(channel="webhook")
    assert (call["profile_id"], call["node"], call["to"], call["body"], call["at"]) == (
        "bob",
        "call_center",
        f"{stack.crm.url}/api/callback",
        '{"phone": "+14155550002"}',
        "2026-06-12T10:00:00Z",
    )
    bob = stack.instance("bob", scenario_id)
    assert (bob.status, bob.node) == ("completed", "call_center")
    assert "loyalty_points" not in stack.fields("bob")

    # nothing twice: one journey each, one code taken, every node left again
    assert [m["node"] for m in stack.sent(profile_id="ada")] == ["welcome_email", "promo_email"]
    assert len(stack.sent(profile_id="bob")) == 3
    assert len(stack.instances("ada", scenario_id)) == 1
    assert stack.get("/promo-pools/WELCOME10")["left"] == 2
    stats = stack.stats(scenario_id)
    assert (stats["entered"], stats["completed"], stats["active"]) == (2, 2, 0)
    assert (
        stats["nodes"]["welcome_email"]["entered"] == stats["nodes"]["welcome_email"]["exited"] == 2
    )
    assert stats["channels"]["email"]["sent"] == 3  # two welcomes, one promo
    assert stats["nodes"]["sms_sent"]["entered"] == 2  # Bob passed it twice
    assert stats["nodes"]["bonus"]["entered"] == 1
    assert all(node["current"] == 0 for node in stats["nodes"].values())
