"""The local stack expires items as DynamoDB's TTL does, through its clock: a timer the
sweeper missed is deleted and its deletion, through the timers' stream, wakes the
instance; expired idempotency records go."""

from __future__ import annotations

from chalicelib.adapters import store
from tests.e2e.harness import Stack, email, on_event, person, scenario


def test_a_timer_the_sweeper_misses_is_expired_and_still_wakes_its_instance(
    stack: Stack,
) -> None:
    stack.create(
        scenario(
            {"wait": {"type": "pause", "duration": "PT1H", "next": "hello"}, "hello": email("Hi")},
            [on_event("signup", "wait")],
        )
    )
    stack.upsert("ada", person("ada"))
    stack.event("signup", "ada")
    stack.drain()
    instance_id = stack.instance("ada").instance_id
    # out of the sweeper's due-time index (a sparse index): only TTL can end this pause
    store.timers.update({"instance_id": instance_id}, "REMOVE #s", names={"#s": "shard"})

    stack.advance("PT2H")

    assert store.timers.get({"instance_id": instance_id}) is None
    assert [m["subject"] for m in stack.sent(profile_id="ada")] == ["Hi"]


def test_event_ids_are_forgotten_after_their_window(stack: Stack) -> None:
    stack.upsert("ada", person("ada"))
    assert stack.event("signup", "ada", event_id="e1")["accepted"] == 1
    assert stack.event("signup", "ada", event_id="e1")["duplicates"] == 1
    remembered = len(list(store.idempotency.scan()))

    stack.advance("P8D")  # the dedup window is 7 days

    assert len(list(store.idempotency.scan())) < remembered
