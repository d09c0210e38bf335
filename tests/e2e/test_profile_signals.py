"""The profile and loyalty signals of SPEC §7 through the running stack: each one caused as
a user causes it (an upsert, an event, a promo code taken or redeemed, time passing), and
heard by the three things that listen to events — a trigger, a `wait_for` and `exit_on`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client
from harness import Stack, at, email, on_event, pause, person, scenario

from app import app
from chalicelib.adapters import store
from chalicelib.adapters.dynamo import to_item
from chalicelib.bootstrap import services
from chalicelib.runtime.messages import EventBody, EventMessage
from chalicelib.scenarios.durations import format_datetime


@dataclass(frozen=True)
class Listeners:
    """Three scenarios on one signal: it triggers `on`, ends `waiting`'s wait_for (`got`,
    else `late` after 30 days) and is `goal`'s exit_on."""

    signal: str
    on: str
    waiting: str
    goal: str


def listen(stack: Stack, signal: str) -> Listeners:
    on = stack.create(
        scenario({"hi": email(f"Heard {signal}")}, [on_event(signal, "hi")],
                 name=f"On {signal}", reentry="parallel")
    )  # fmt: skip
    wait_for = {"type": "wait_for", "event": signal, "timeout": "P30D", "next": "got",
                "timeout_next": "late"}  # fmt: skip
    waiting = stack.create(
        scenario({"wait": wait_for, "got": email("Got it"), "late": email("Too late")},
                 name=f"Wait for {signal}")
    )  # fmt: skip
    goal = stack.create(
        scenario({"wait": pause("P30D", "late"), "late": email("Still here")},
                 name=f"Exit on {signal}", exit_on=[{"event": signal}])
    )  # fmt: skip
    return Listeners(signal, on, waiting, goal)


def enter(stack: Stack, listeners: Listeners, profile_id: str) -> None:
    """Put the profile into the wait_for and exit_on scenarios (the default capture)."""
    for scenario_id in (listeners.waiting, listeners.goal):
        stack.post(f"/scenarios/{scenario_id}/profiles", {"profile_id": profile_id})
    stack.drain()


def heard(stack: Stack, listeners: Listeners, profile_id: str) -> tuple[int, str, str]:
    """(journeys the trigger started, where the wait_for went, how the exit_on journey is)."""
    stack.drain()
    triggered = len(stack.instances(profile_id, listeners.on))
    waited = stack.instance(profile_id, listeners.waiting)
    goal = stack.instance(profile_id, listeners.goal)
    return triggered, waited.path[-1]["node"], f"{goal.status} {goal.reason or ''}".strip()


HEARD = (1, "got", "exited goal")
NOT_HEARD = (0, "wait", "active")


def signal_data(stack: Stack, listeners: Listeners, profile_id: str) -> list[dict[str, Any]]:
    """The data of each signal that started the trigger's journeys, oldest first."""
    return [journey.entry.data for journey in stack.instances(profile_id, listeners.on)]


@pytest.mark.parametrize(("address", "first", "new"), [
    ("email", "bob@example.com", "bob@new.example"), ("phone", "+14155550101", "+14155550199"),
])  # fmt: skip
def test_an_address_changed_is_heard_only_when_it_goes_from_one_value_to_another(
    stack: Stack, address: str, first: str, new: str
) -> None:
    listeners = listen(stack, f"{address}.changed")
    stack.upsert("ada", person("ada"))  # created with the address: not a change
    stack.drain()
    assert stack.instances("ada", listeners.on) == []  # (only a trigger can hear a creation)

    stack.upsert("bob", {**person("bob"), address: None})  # created without it
    enter(stack, listeners, "bob")
    stack.upsert("bob", {address: first})  # first filled
    stack.upsert("bob", {address: None})  # cleared
    stack.upsert("bob", {address: first})  # filled again
    stack.upsert("bob", {address: first})  # the same value again
    assert heard(stack, listeners, "bob") == NOT_HEARD

    stack.upsert("bob", {address: new})
    assert heard(stack, listeners, "bob") == HEARD
    assert signal_data(stack, listeners, "bob") == [{"old": first, "new": new, "derived": True}]


@pytest.mark.parametrize("address", ["email", "phone"])
def test_every_confirmation_is_heard_at_creation_when_set_and_when_sent(
    stack: Stack, address: str
) -> None:
    listeners = listen(stack, f"{address}.confirmed")
    confirmed = f"{address}_confirmed"

    stack.upsert("ada", {**person("ada"), confirmed: True})  # created confirmed
    stack.drain()
    assert len(stack.instances("ada", listeners.on)) == 1  # (only a trigger hears a creation)

    stack.upsert("bob", person("bob"))
    enter(stack, listeners, "bob")
    stack.upsert("bob", {confirmed: False})
    assert heard(stack, listeners, "bob") == NOT_HEARD
    stack.upsert("bob", {confirmed: True})  # set true
    stack.upsert("bob", {"first_name": "Robert"})  # still true: no new confirmation
    assert heard(stack, listeners, "bob") == HEARD
    assert signal_data(stack, listeners, "bob") == [
        {address: person("bob")[address], "derived": True}
    ]

    stack.upsert("cy", person("cy"))
    enter(stack, listeners, "cy")
    stack.event(f"{address}.confirmed", "cy", data={address: person("cy")[address]})  # sent
    assert heard(stack, listeners, "cy") == HEARD


def test_a_negative_balance_is_heard_after_every_change_that_leaves_it_below_zero(
    stack: Stack,
) -> None:
    listeners = listen(stack, "balance.negative")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    stack.event("balance.changed", "ada", data={"balance": 10, "delta": 10})
    stack.event("balance.changed", "ada", data={"balance": 0, "delta": -10})
    assert heard(stack, listeners, "ada") == NOT_HEARD

    stack.event("balance.changed", "ada", data={"balance": -5, "delta": -5})
    assert heard(stack, listeners, "ada") == HEARD
    stack.event("balance.changed", "ada", data={"balance": -8, "delta": -3})  # still below
    stack.drain()
    stack.event("balance.changed", "ada", data={"balance": 2, "delta": 10})
    stack.drain()
    assert sorted(d["balance"] for d in signal_data(stack, listeners, "ada")) == [-8, -5]
    assert all(d["derived"] for d in signal_data(stack, listeners, "ada"))
    assert stack.fields("ada")["balance"] == 2


def accrue(stack: Stack, profile_id: str, points: int, available_at: Any, **options: Any) -> Any:
    data = {"balance": 100, "delta": 0, "pending": points,
            "available_at": format_datetime(available_at)}  # fmt: skip
    return stack.event("balance.changed", profile_id, data=data, **options)


def test_points_pending_become_available_at_their_moment_through_a_timer(stack: Stack) -> None:
    listeners = listen(stack, "points.available")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    accrue(stack, "ada", 40, at(12, 9, 30), event_id="accrual-1")
    stack.drain()
    assert [t["instance_id"] for t in store.timers.scan() if t.get("kind") == "event"] == [
        "accrual-1:points.available"
    ]

    stack.advance_to(at(12, 9, 29))
    assert heard(stack, listeners, "ada") == NOT_HEARD
    stack.advance_to(at(12, 12))
    assert heard(stack, listeners, "ada") == HEARD
    (hi,) = stack.sent(scenario_id=listeners.on)
    assert (hi["subject"], hi["at"]) == ("Heard points.available", "2026-06-12T09:30:00Z")
    (journey,) = stack.instances("ada", listeners.on)
    assert journey.entry.id == "accrual-1:points.available"
    assert journey.entry.occurred_at == at(12, 9, 30)
    assert journey.entry.data == {
        "points": 40, "available_at": "2026-06-12T09:30:00Z", "derived": True,
    }  # fmt: skip
    assert [t for t in store.timers.scan() if t.get("kind") == "event"] == []
    assert stack.fields("ada")["balance"] == 100


def test_points_whose_moment_is_past_or_now_are_available_at_once(stack: Stack) -> None:
    listeners = listen(stack, "points.available")
    for profile_id, moment in (("ada", at(9)), ("bob", stack.now)):
        stack.upsert(profile_id, person(profile_id))
        enter(stack, listeners, profile_id)
        accrue(stack, profile_id, 25, moment)
        assert heard(stack, listeners, profile_id) == HEARD
    (past,) = stack.instances("ada", listeners.on)
    assert past.entry.occurred_at == stack.now  # accrued now: not available before that
    assert [t for t in store.timers.scan() if t.get("kind") == "event"] == []


def test_points_accrued_without_a_pending_amount_or_a_moment_make_no_signal(stack: Stack) -> None:
    listeners = listen(stack, "points.available")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    stack.event("balance.changed", "ada", data={"balance": 5, "pending": 10})
    stack.event("balance.changed", "ada", data={"balance": 5, "pending": 0,
                                                "available_at": "2026-06-11T10:00:00Z"})  # fmt: skip
    stack.advance("P2D")
    assert heard(stack, listeners, "ada") == NOT_HEARD


def test_points_are_available_once_however_often_the_cause_or_the_wake_up_comes(
    stack: Stack,
) -> None:
    listeners = listen(stack, "points.available")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    cause = EventMessage(
        profile_db="customers", profile_id="ada",
        event=EventBody(
            id="accrual-2", type="balance.changed", occurred_at=format_datetime(stack.now),
            data={"balance": 60, "pending": 15, "available_at": "2026-06-11T10:00:00Z"},
        ),
    )  # fmt: skip
    services().queues.send("events", [(cause, 0), (cause, 0)])  # SQS delivers at least once
    stack.drain()
    (timer,) = [t for t in store.timers.scan() if t.get("kind") == "event"]

    stack.advance("P1D")
    assert heard(stack, listeners, "ada") == HEARD
    services().queues.send("events", [(cause, 0)])  # the cause once more, after the fact
    removal = {  # and the timer's TTL deletion reaching the backstop after the sweeper fired
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"Keys": to_item({"instance_id": timer["instance_id"]}),
                     "OldImage": to_item(timer)},
    }  # fmt: skip
    assert Client(app).lambda_.invoke("timer_expired", {"Records": [removal]}).payload == {
        "woken": 1
    }
    stack.advance("PT1H")
    assert heard(stack, listeners, "ada") == HEARD
    assert len(stack.sent(scenario_id=listeners.on)) == 1


def test_a_points_timer_the_sweeper_missed_is_fired_by_its_ttl_expiry(stack: Stack) -> None:
    listeners = listen(stack, "points.available")
    stack.upsert("ada", person("ada"))
    enter(stack, listeners, "ada")
    accrue(stack, "ada", 30, stack.now + timedelta(hours=1), event_id="accrual-3")
    stack.drain()
    # out of the sweeper's due-time index (a sparse index): only TTL can fire it
    key = {"instance_id": "accrual-3:points.available"}
    store.timers.update(key, "REMOVE #s", names={"#s": "shard"})
    stack.advance("PT1H")
    assert heard(stack, listeners, "ada") == NOT_HEARD
    stack.advance("PT1H")  # the local stack reaps expired items every 15 minutes
    assert store.timers.get(key) is None
    assert heard(stack, listeners, "ada") == HEARD


def test_a_promo_code_issued_and_redeemed_is_heard(stack: Stack) -> None:
    stack.put("/promo-pools/SPRING", {"codes": ["A"]})
    stack.create(
        scenario({"code": {"type": "promo_code", "pool": "SPRING", "next": "mail"},
                  "mail": email("Your code {{ vars.promo_code }}")},
                 [on_event("give_code", "code")], name="Give a code")
    )  # fmt: skip
    issued, redeemed = listen(stack, "promo_code.issued"), listen(stack, "promo_code.redeemed")
    stack.upsert("ada", person("ada"))
    enter(stack, issued, "ada")
    enter(stack, redeemed, "ada")

    stack.event("give_code", "ada")
    assert heard(stack, issued, "ada") == HEARD
    assert heard(stack, redeemed, "ada") == NOT_HEARD
    (data,) = signal_data(stack, issued, "ada")
    assert (data["pool"], data["code"]) == ("SPRING", "A")

    redemption = {"code": "A", "profile_db": "customers", "profile_id": "ada"}
    stack.post("/promo-pools/SPRING/redeem", redemption)
    stack.post("/promo-pools/SPRING/redeem", redemption, status=409)  # once per code
    assert heard(stack, redeemed, "ada") == HEARD
    assert signal_data(stack, redeemed, "ada") == [{"pool": "SPRING", "code": "A", "derived": True}]
