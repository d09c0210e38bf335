"""Re-entry modes (SPEC §1.1) through repeated events: four scenarios, one per mode, all
triggered by the same events — one while the profile is in them, one after it finished."""

from __future__ import annotations

from harness import Stack, at, email, on_event, pause, person, scenario

EXPECTED = {
    # mode: ([(status, reason, entry event) of each instance], [nodes of the messages sent])
    "never": ([("completed", None, "visit-1")], ["hello", "bye"]),
    "when_finished": (
        [("completed", None, "visit-1"), ("active", None, "visit-3")],
        ["hello", "bye", "hello"],
    ),
    "restart": (
        [
            ("exited", "restart", "visit-1"),
            ("completed", None, "visit-2"),
            ("active", None, "visit-3"),
        ],
        ["hello", "hello", "bye", "hello"],
    ),
    "parallel": (
        [
            ("completed", None, "visit-1"),
            ("completed", None, "visit-2"),
            ("active", None, "visit-3"),
        ],
        ["hello", "hello", "bye", "bye", "hello"],
    ),
}


def test_a_profile_captured_again_follows_each_reentry_mode(stack: Stack) -> None:
    nodes = {"hello": email("Hello", "wait"), "wait": pause("P1D", "bye"), "bye": email("Bye")}
    scenarios = {
        mode: stack.create(scenario(nodes, [on_event("visit", "hello")], reentry=mode, name=mode))
        for mode in EXPECTED
    }
    stack.upsert("ada", person("ada"))

    stack.event("visit", "ada", event_id="visit-1")
    stack.advance_to(at(10, 12))
    stack.event("visit", "ada", event_id="visit-2")  # while the first journey waits
    stack.advance_to(at(11, 13))  # every journey so far has finished by now
    stack.event("visit", "ada", event_id="visit-3")
    stack.drain()

    for mode, scenario_id in scenarios.items():
        instances, sent = EXPECTED[mode]
        journeys = stack.instances("ada", scenario_id)
        assert [(j.status, j.reason, j.entry.id) for j in journeys] == instances, mode
        assert [m["node"] for m in stack.sent(scenario_id=scenario_id)] == sent, mode
        stats = stack.stats(scenario_id)
        assert (stats["entered"], stats["active"]) == (len(instances), int(mode != "never")), mode


def test_per_key_keeps_one_journey_per_cart_at_a_time(stack: Stack) -> None:
    nodes = {"hello": email("Your cart", "wait"), "wait": pause("P1D", "bye"), "bye": email("Bye")}
    scenario_id = stack.create(
        scenario(nodes, [on_event("cart.updated", "hello")], reentry="per_key",
                 reentry_key="event.data.cart_id")
    )  # fmt: skip
    stack.upsert("ada", person("ada"))
    stack.event("cart.updated", "ada", event_id="c1-a", data={"cart_id": "c1"})
    stack.event("cart.updated", "ada", event_id="c2-a", data={"cart_id": "c2"})  # another cart
    stack.event("cart.updated", "ada", event_id="c1-b", data={"cart_id": "c1"})  # c1 is in
    stack.advance_to(at(11, 12))  # both journeys finished
    stack.event("cart.updated", "ada", event_id="c1-c", data={"cart_id": "c1"})  # c1 again
    stack.drain()
    journeys = stack.instances("ada", scenario_id)
    # the three entries share one instant of the virtual clock: compare them by entry id
    assert sorted((j.entry.id, j.reentry_key, j.status) for j in journeys) == [
        ("c1-a", "c1", "completed"),
        ("c1-c", "c1", "active"),
        ("c2-a", "c2", "completed"),
    ]
