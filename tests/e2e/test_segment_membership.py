"""Segment membership end to end (SPEC §7): `segment.entered` / `segment.exited` after
upserts, by the daily re-evaluation as virtual time passes, when a segment is defined
again or deleted — through the events queue, so they trigger scenarios, once each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from harness import Stack, email, on_event, person, scenario

from chalicelib.runtime import events, membership

BERLINERS = {
    "profile_db": "customers",
    "where": {"field": "profile.city", "op": "eq", "value": "Berlin"},
}
NEW = {
    "profile_db": "customers",
    "where": {"field": "profile.signed_up_at", "op": "gt", "value": {"now": "-P30D"}},
}


def on_segment(stack: Stack, kind: str, segment: str, subject: str) -> str:
    """A scenario that mails the profile when it enters (or leaves) the segment."""
    where = {"field": "event.data.segment", "op": "eq", "value": segment}
    trigger = on_event(f"segment.{kind}", "mail", where=where)
    return stack.create(scenario({"mail": email(subject)}, [trigger], reentry="parallel"))


def subjects(stack: Stack, profile_id: str) -> list[str]:
    return [m["subject"] for m in stack.sent(profile_id=profile_id)]


def test_an_upsert_enters_a_segment_and_a_change_leaves_it(stack: Stack) -> None:
    stack.put("/segments/berliners", BERLINERS)
    welcome = on_segment(stack, "entered", "berliners", "Willkommen")
    on_segment(stack, "exited", "berliners", "Tschüss")
    stack.upsert("ada", person("ada", city="Berlin"))
    stack.upsert("bob", person("bob", 1, city="Rome"))
    stack.drain()
    assert subjects(stack, "ada") == ["Willkommen"]
    assert subjects(stack, "bob") == []
    (journey,) = stack.instances("ada", welcome)
    assert journey.entry.data == {"segment": "berliners", "derived": True}

    stack.upsert("ada", {"first_name": "Ada Lovelace"})  # still in Berlin: nothing
    stack.drain()
    assert subjects(stack, "ada") == ["Willkommen"]
    stack.advance("PT1M")  # messages of one instant are listed in no particular order
    stack.upsert("ada", {"city": "Paris"})
    stack.drain()
    assert subjects(stack, "ada") == ["Willkommen", "Tschüss"]


def test_the_daily_run_takes_a_profile_out_of_a_segment_relative_to_now(stack: Stack) -> None:
    stack.put("/segments/new", NEW)
    on_segment(stack, "entered", "new", "Welcome, newcomer")
    on_segment(stack, "exited", "new", "Settled in?")
    stack.upsert("ada", person("ada", signed_up_at="2026-06-10T09:00:00Z"))
    stack.drain()
    assert subjects(stack, "ada") == ["Welcome, newcomer"]

    stack.advance("P29D")  # no change of ada, still within 30 days
    assert subjects(stack, "ada") == ["Welcome, newcomer"]
    stack.advance("P2D")
    assert subjects(stack, "ada") == ["Welcome, newcomer", "Settled in?"]
    stack.advance("P2D")  # the following days' runs find nothing more to announce
    assert subjects(stack, "ada") == ["Welcome, newcomer", "Settled in?"]


def test_defining_a_segment_again_and_deleting_it_reevaluates_its_members(stack: Stack) -> None:
    on_segment(stack, "entered", "city", "In")
    on_segment(stack, "exited", "city", "Out")
    stack.upsert("ada", person("ada", city="Berlin"))
    stack.upsert("bob", person("bob", 1, city="Rome"))
    stack.drain()
    stack.put("/segments/city", BERLINERS)  # defined after the profiles: a fan-out
    stack.drain()
    assert (subjects(stack, "ada"), subjects(stack, "bob")) == (["In"], [])

    stack.advance("PT1M")  # messages of one instant are listed in no particular order
    rome = {**BERLINERS, "where": {**BERLINERS["where"], "value": "Rome"}}
    stack.put("/segments/city", rome)
    stack.drain()
    assert (subjects(stack, "ada"), subjects(stack, "bob")) == (["In", "Out"], ["In"])

    stack.advance("PT1M")
    stack.delete("/segments/city", status=204)
    stack.drain()
    assert subjects(stack, "bob") == ["In", "Out"]
    stack.delete("/segments/city", status=404)


def crash_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[str]:
    """Make `owner.name` raise once after it did its work (its message is redelivered)."""
    original: Callable[..., Any] = getattr(owner, name)
    crashed: list[str] = []

    def crashing(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not crashed:
            crashed.append(name)
            raise RuntimeError(f"{name} crashed after its work")
        return result

    monkeypatch.setattr(owner, name, crashing)
    return crashed


def test_a_redelivered_cause_announces_a_change_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.put("/segments/berliners", BERLINERS)
    on_segment(stack, "entered", "berliners", "Willkommen")
    on_segment(stack, "exited", "berliners", "Tschüss")
    crashed = crash_after(monkeypatch, events, "process")
    stack.upsert("ada", person("ada", city="Berlin"))
    stack.drain()
    stack.advance("PT20M")  # the redelivery, and the sweeper's look at the outbox
    assert crashed == ["process"]
    assert subjects(stack, "ada") == ["Willkommen"]

    crashed = crash_after(monkeypatch, membership, "process_scan")
    stack.put(
        "/segments/berliners", {**BERLINERS, "where": {**BERLINERS["where"], "value": "Rome"}}
    )
    stack.drain()
    stack.advance("PT20M")
    assert crashed == ["process_scan"]
    assert subjects(stack, "ada") == ["Willkommen", "Tschüss"]
