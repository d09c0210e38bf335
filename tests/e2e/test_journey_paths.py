"""More paths through the running stack: quiet hours (messages held in the outbox until the
window ends), events a journey emits, jumps between scenarios, `wait_for` with a timeout,
and signed webhook triggers."""

from __future__ import annotations

import json
from typing import Any

from harness import Stack, at, email, on_event, person, scenario

from chalicelib.adapters import store
from chalicelib.runtime.commit import epoch
from chalicelib.runtime.hooks import sign


def test_quiet_hours_hold_a_send_until_they_end_in_the_profiles_zone(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario(
            {"hello": email("Hello")},
            [on_event("signup", "hello")],
            quiet_hours={"start": "21:00", "end": "09:00"},
        )
    )
    stack.upsert("ada", person("ada", 1))  # UTC
    stack.upsert("bob", person("bob", 2, timezone="America/New_York"))  # UTC-4 in June

    stack.event("signup", "bob")  # 06:00 in New York: held until 09:00 there, 13:00 UTC
    stack.advance_to(at(10, 22))
    stack.event("signup", "ada")  # 22:00: held until 09:00 the next morning
    stack.advance_to(at(11, 8, 59))
    assert [(m["profile_id"], m["at"]) for m in stack.sent()] == [("bob", "2026-06-10T13:00:00Z")]
    stack.advance_to(at(11, 12))
    assert [(m["profile_id"], m["at"]) for m in stack.sent()] == [
        ("bob", "2026-06-10T13:00:00Z"),
        ("ada", "2026-06-11T09:00:00Z"),
    ]
    assert [stack.instance(n, scenario_id).status for n in ("ada", "bob")] == ["completed"] * 2


def test_a_journeys_own_events_and_jumps_reach_other_scenarios(stack: Stack) -> None:
    onboarding = stack.create(
        scenario({"first": email("First", "second"), "second": email("Second")}, name="Target")
    )
    vip_is_true = {"field": "event.data.fields.vip.new", "op": "eq", "value": True}
    announce = stack.create(
        scenario(
            {"congrats": email("You are a VIP")},
            [on_event("profile.field_changed", "congrats", where=vip_is_true)],
            name="Announce",
        )
    )
    promote = stack.create(
        scenario(
            {
                "promote": {
                    "type": "update_profile",
                    "ops": [{"field": "vip", "op": "set", "value": True}],
                    "next": "move",
                },
                "move": {"type": "jump", "scenario": onboarding, "node": "second"},
            },
            [on_event("signup", "promote")],
            name="Promote",
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()

    assert stack.fields("ada")["vip"] is True
    assert sorted((m["scenario_id"], m["node"]) for m in stack.sent()) == sorted(
        [(announce, "congrats"), (onboarding, "second")]  # not `first`: the jump's target
    )
    jumped = stack.instance("ada", promote)
    assert (jumped.status, jumped.reason) == ("completed", "jump")
    assert stack.instance("ada", onboarding).path[0]["node"] == "second"
    assert stack.instance("ada", announce).status == "completed"
    assert [row for row in store.messages.scan() if "pending_shard" in row] == []

    stack.advance("P1D")  # nothing is re-dispatched: every outbox row was consumed
    assert len(stack.sent()) == 2


def test_wait_for_goes_on_with_the_event_or_after_its_timeout(stack: Stack) -> None:
    nodes: dict[str, Any] = {
        "await": {
            "type": "wait_for",
            "event": "order.created",
            "timeout": "PT2H",
            "next": "thanks",
            "timeout_next": "nudge",
        },
        "thanks": email("Thanks"),
        "nudge": email("Still thinking?"),
    }
    stack.create(scenario(nodes, [on_event("cart.abandoned", "await")]))
    for number, name in enumerate(("ada", "bob")):
        stack.upsert(name, person(name, number))
        stack.event("cart.abandoned", name)
    stack.advance("PT1H")
    stack.event("order.created", "ada")
    stack.advance("PT3H")
    assert [(m["profile_id"], m["node"], m["at"]) for m in stack.sent()] == [
        ("ada", "thanks", "2026-06-10T11:00:00Z"),
        ("bob", "nudge", "2026-06-10T12:00:00Z"),
    ]


def hook(stack: Stack, path: str, body: dict[str, Any], secret: str, **headers: str) -> Any:
    raw = json.dumps(body).encode()
    timestamp = str(epoch(stack.now))
    response = stack.http.request(
        "POST",
        path,
        headers={
            "Content-Type": "application/json",
            "X-Timestamp": timestamp,
            "X-Signature": sign(secret, timestamp, raw),
            **headers,
        },
        body=raw,
    )
    return response.status_code, response.json_body


def test_a_signed_hook_call_captures_once_per_idempotency_key(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario(
            {"hello": email("Hello {{ event.data.plan }}")},
            [{"id": "crm", "type": "webhook", "next": "hello"}],
        )
    )
    secret = stack.get(f"/scenarios/{scenario_id}")["webhook_secret"]
    path = f"/hooks/{scenario_id}/crm"
    call = {"profile_id": "ada", "profile": person("ada"), "data": {"plan": "gold"}}

    assert hook(stack, path, call, "wrong-secret")[0] == 401
    status, first = hook(stack, path, call, secret, **{"Idempotency-Key": "k-1"})
    assert (status, first["captured"]) == (202, True)
    status, again = hook(stack, path, call, secret, **{"Idempotency-Key": "k-1"})
    assert (status, again["instance_id"], again.get("replayed")) == (
        202,
        first["instance_id"],
        True,
    )
    stack.drain()
    assert [m["subject"] for m in stack.sent()] == ["Hello gold"]
    assert len(stack.instances("ada", scenario_id)) == 1


def test_an_address_changed_or_confirmed_starts_the_scenarios_on_it(stack: Stack) -> None:
    was_it_you = stack.create(
        scenario(
            {"ask": email("Was it you?")},
            [on_event("email.changed", "ask")],
            name="Was it you",
            reentry="parallel",
        )
    )
    welcome = stack.create(
        scenario(
            {"hi": email("Confirmed, thanks")},
            [on_event("email.confirmed", "hi")],
            name="Confirmed",
        )
    )
    stack.upsert("ada", {**person("ada"), "email_confirmed": True})  # created confirmed
    stack.upsert("bob", person("bob"))
    stack.drain()
    assert [(m["scenario_id"], m["profile_id"]) for m in stack.sent()] == [(welcome, "ada")]

    stack.upsert("ada", {"email": "ada@new.example"})  # changed
    stack.upsert("bob", {"email": None})  # cleared: no change signal
    stack.upsert("bob", {"email": "bob@again.example"})  # filled again: none either
    stack.drain()
    asked = stack.sent(scenario_id=was_it_you)
    assert [m["profile_id"] for m in asked] == ["ada"]
    (journey,) = stack.instances("ada", was_it_you)
    assert journey.entry.data == {"old": "ada@example.com", "new": "ada@new.example",
                                  "derived": True}  # fmt: skip


def test_a_scenario_renders_its_own_database_s_profile_not_one_a_hash_joins_to_it(
    stack: Stack,
) -> None:
    """Database `a#b` with profile `c`, and database `a` with profile `b#c`: two profiles,
    whatever their names join to (the path's `#` percent-encoded, as a client sends it)."""
    document = scenario({"hello": email("Welcome")}, [on_event("signup", "hello")])
    stack.create({**document, "profile_db": "a#b"})
    stack.put("/profiles/a%23b/c", {"fields": person("c", first_name="Cy")})
    stack.put("/profiles/a/b%23c", {"fields": person("c", first_name="Other")})
    stack.event("signup", "c", db="a#b")
    stack.drain()
    (sent,) = stack.sent()
    assert sent["body"] == "Welcome for Cy"
