"""Profile merges end to end: the journey furthest along survives the merge and goes on
with `into`'s fields; events sent for the merged id move it; `profile.merged` starts a
journey like any event."""

from __future__ import annotations

from harness import Stack, email, on_event, person, scenario


def test_a_merged_profiles_journey_goes_on_with_intos_fields_moved_by_its_old_id(
    stack: Stack,
) -> None:
    scenario_id = stack.create(
        scenario(
            {
                "hello": email("Hello", "bought"),
                "bought": {
                    "type": "wait_for",
                    "event": "order.created",
                    "timeout": "P3D",
                    "next": "thanks",
                    "timeout_next": "nudge",
                },
                "thanks": email("Thanks"),
                "nudge": email("Still thinking?"),
            },
            [on_event("signup", "hello")],
        )
    )
    stack.upsert("ada", person("ada", 1, first_name="Ada"))
    stack.event("signup", "ada")
    stack.drain()
    stack.advance("P1D")
    stack.upsert("guest", {"first_name": "Guest", "cart": "shoes"})  # no address yet
    stack.event("signup", "guest")
    stack.drain()
    guest_journey = stack.instance("guest", scenario_id)
    assert guest_journey.node == "bought"  # entered a day after Ada's: it is the one kept

    stack.post("/profiles/customers/merge", {"into": "ada", "from": ["guest"]})
    stack.drain()
    journeys = {i.instance_id: i for i in stack.instances("ada", scenario_id)}
    assert journeys[guest_journey.instance_id].status == "active"
    assert [(i.status, i.reason) for i in journeys.values() if not i.active] == [
        ("exited", "merged")
    ]
    assert stack.fields("ada")["cart"] == "shoes"

    stack.event("order.created", "guest")  # the old id: it applies to Ada
    stack.drain()
    (thanks,) = stack.sent(node="thanks")
    assert (thanks["profile_id"], thanks["to"]) == ("ada", "ada@example.com")
    assert "Thanks for Ada" in thanks["body"]
    statuses = {i.instance_id: i.status for i in stack.instances("ada", scenario_id)}
    assert statuses[guest_journey.instance_id] == "completed"
    stack.advance("P3D")
    assert stack.sent(node="nudge") == []  # the ended one sends nothing more


def test_profile_merged_is_an_event_journeys_can_start_on(stack: Stack) -> None:
    scenario_id = stack.create(
        scenario(
            {"welcome_back": email("All in one")}, [on_event("profile.merged", "welcome_back")]
        )
    )
    stack.upsert("ada", person("ada", 1))
    stack.upsert("bob", person("bob", 2))
    stack.upsert("cy", person("cy", 3))
    answer = stack.post("/profiles/customers/merge", {"into": "ada", "from": ["cy", "bob"]})
    stack.drain()
    stack.post("/profiles/customers/merge", {"into": "ada", "from": ["bob", "cy"]})  # again
    stack.drain()

    assert answer["merged"] == ["bob", "cy"]
    (journey,) = stack.instances("ada", scenario_id)
    assert journey.entry.data == {"merged": ["bob", "cy"], "derived": True}
    assert journey.entry.id == answer["event_id"]
    (sent,) = stack.sent(node="welcome_back")
    assert sent["to"] == "ada@example.com"
