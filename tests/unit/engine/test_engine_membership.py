"""SPEC §7's segment membership rule: which defined segments a profile belongs to after
a change, which it entered and left, and the events that announces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.engine.membership import (
    MembershipChange,
    counted_events,
    evaluate_membership,
    membership_events,
    needs_history,
    time_relative,
)
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.facts import Event, Predicate, Profile
from chalicelib.scenarios.model import Segment

NOW = datetime(2026, 6, 10, 10, tzinfo=UTC)

SEGMENTS = {
    "berliners": {"field": "profile.city", "op": "eq", "value": "Berlin"},
    "new": {"field": "profile.signed_up_at", "op": "gt", "value": {"now": "-P30D"}},
    "buyers": {
        "event_count": {"type": "order.created", "since": "P7D"},
        "op": "gte",
        "value": 2,
    },
}


def where(document: dict[str, Any]) -> Segment:
    return Segment.model_validate({"where": document})


def predicates(**documents: dict[str, Any]) -> dict[str, Predicate]:
    return {sid: compile_condition(where(d).where) for sid, d in documents.items()}


ALL = predicates(**SEGMENTS)


def ada(**fields: Any) -> Profile:
    return Profile("ada", fields, profile_db="customers")


def test_a_profile_enters_the_segments_it_now_matches() -> None:
    change = evaluate_membership(ada(city="Berlin"), [], ALL, NOW)
    assert change == MembershipChange(("berliners",), entered=("berliners",))


def test_a_change_of_a_field_leaves_one_segment_and_enters_another() -> None:
    profile = ada(city="Paris", signed_up_at="2026-06-09T10:00:00Z")
    change = evaluate_membership(profile, ["berliners"], ALL, NOW)
    assert change == MembershipChange(("new",), entered=("new",), exited=("berliners",))


def test_nothing_changes_when_the_membership_is_the_same() -> None:
    change = evaluate_membership(ada(city="Berlin"), ["berliners"], ALL, NOW)
    assert not change
    assert change.members == ("berliners",)


def test_a_segment_relative_to_now_is_left_with_time_alone() -> None:
    profile = ada(signed_up_at="2026-06-09T10:00:00Z")
    assert evaluate_membership(profile, [], ALL, NOW).entered == ("new",)
    a_month_later = NOW + timedelta(days=31)
    change = evaluate_membership(profile, ["new"], ALL, a_month_later)
    assert change == MembershipChange((), exited=("new",))


def test_events_counted_over_a_window_enter_and_leave() -> None:
    orders = [Event("order.created", NOW - timedelta(days=d), id=f"o{d}") for d in (1, 2)]
    profile = Profile("ada", {}, events=orders, profile_db="customers")
    assert evaluate_membership(profile, [], ALL, NOW).entered == ("buyers",)
    assert evaluate_membership(profile, ["buyers"], ALL, NOW + timedelta(days=6)).exited == (
        "buyers",
    )


def test_a_segment_no_longer_defined_is_left() -> None:
    change = evaluate_membership(ada(city="Berlin"), ["berliners", "gone"], ALL, NOW)
    assert change == MembershipChange(("berliners",), exited=("gone",))


def test_only_the_segments_named_are_evaluated() -> None:
    profile = ada(city="Paris", signed_up_at="2026-06-09T10:00:00Z")
    change = evaluate_membership(profile, ["berliners"], ALL, NOW, only=["new"])
    assert change == MembershipChange(("berliners", "new"), entered=("new",))


def test_a_segment_of_segments_sees_the_others() -> None:
    segments = {**ALL, **predicates(not_berlin={"segment": "berliners", "member": False})}
    assert evaluate_membership(ada(city="Paris"), [], segments, NOW).entered == ("not_berlin",)


def test_today_is_the_profiles_own_day() -> None:
    birthday = predicates(today={"field": "profile.day", "op": "eq", "value": {"today": 0}})
    late = NOW.replace(hour=23)  # the 11th in Tokyo, still the 10th in UTC
    tokyo = ada(day="2026-06-11", timezone="Asia/Tokyo")
    assert evaluate_membership(tokyo, [], birthday, late).entered == ("today",)
    assert not evaluate_membership(ada(day="2026-06-11"), [], birthday, late)


def test_the_events_are_derived_and_their_ids_come_from_segment_and_cause() -> None:
    change = MembershipChange(("new",), entered=("new",), exited=("berliners",))
    events = membership_events(change, "e1", NOW)
    assert [(e.type, e.id, e.data) for e in events] == [
        (
            "segment.exited",
            "segment.exited:berliners:e1",
            {"segment": "berliners", "derived": True},
        ),
        ("segment.entered", "segment.entered:new:e1", {"segment": "new", "derived": True}),
    ]
    assert membership_events(change, "e1", NOW + timedelta(hours=1))[0].id == events[0].id


def test_what_a_condition_depends_on() -> None:
    berliners, new, buyers = (where(SEGMENTS[s]).where for s in ("berliners", "new", "buyers"))
    nested = where({"all": [SEGMENTS["berliners"], {"not": SEGMENTS["new"]}]}).where
    ever = where({"event_count": {"type": "signup"}, "op": "gt", "value": 0}).where
    assert [time_relative(c) for c in (berliners, new, buyers, nested, ever)] == [
        False, True, True, True, False,
    ]  # fmt: skip
    assert counted_events(buyers) == {"order.created"}
    assert counted_events(new) == set()
    assert needs_history(buyers)
    assert needs_history(ever)
    assert not needs_history(nested)
