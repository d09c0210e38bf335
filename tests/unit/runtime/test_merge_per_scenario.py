"""A merge keeps one active instance in each scenario, not one for the profile: every
scenario is decided on its own, and a journey only a merged profile was on goes on."""

from __future__ import annotations

from datetime import timedelta

from test_use_cases import Stack, email

from chalicelib.runtime import merges

ADA = {"first_name": "Ada", "email": "ada@example.com", "consents": {"email": True}}
BOB = {"first_name": "Bob", "email": "bob@example.com", "consents": {"email": True}}


def on(event_type: str) -> list[dict[str, str]]:
    return [{"id": event_type, "type": "event", "event": event_type, "next": "hello"}]


def test_each_scenario_keeps_its_own_survivor_and_a_lone_journey_goes_on(stack: Stack) -> None:
    nodes = {"hello": email("Hello", "wait"), "wait": {"type": "pause", "duration": "P3D"}}
    first = stack.scenario(nodes, triggers=on("signup"))
    second = stack.scenario(nodes, triggers=on("visited"))
    lone = stack.scenario(nodes, triggers=on("joined"))
    stack.storage.put_profile("customers", "ada", ADA)
    stack.storage.put_profile("customers", "bob", BOB)
    stack.event("signup", "ada")  # first: ada, then bob an hour later
    stack.advance(timedelta(hours=1))
    stack.event("signup", "bob")
    stack.event("visited", "bob")  # second: bob, then ada an hour later
    stack.advance(timedelta(hours=1))
    stack.event("visited", "ada")
    stack.event("joined", "bob")  # lone: bob only
    stack.drain()
    ids = {(i.profile_id, i.scenario_id): i.instance_id for i in stack.instances("ada")}
    ids |= {(i.profile_id, i.scenario_id): i.instance_id for i in stack.instances("bob")}

    merges.merge("customers", "ada", ["bob"])
    stack.drain()

    outcome = {i.instance_id: (i.scenario_id, i.status, i.reason) for i in stack.instances("ada")}
    assert outcome == {
        ids[("bob", first)]: (first, "active", None),
        ids[("ada", first)]: (first, "exited", "merged"),
        ids[("ada", second)]: (second, "active", None),
        ids[("bob", second)]: (second, "exited", "merged"),
        ids[("bob", lone)]: (lone, "active", None),
    }
    assert all(i.profile_id == "ada" for i in stack.instances("ada"))
    stack.advance(timedelta(days=3))
    assert {i.status for i in stack.instances("ada") if i.reason != "merged"} == {"completed"}
