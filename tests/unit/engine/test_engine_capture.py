"""Capture: triggers (event, schedule, webhook), limits, re-entry modes and duplicates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.engine import ACTIVE, COMPLETED, EXITED, CountStat, Exit, Send, capture
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.model import FieldRule

HELLO = {"type": "send", "channel": "email", "template": {"subject": "Hello {{ event.data.name }}"}}
WAIT = {"type": "pause", "duration": "P1D", "next": "hello"}


def scenario_with(make_scenario, triggers, reentry="when_finished", entry="wait"):
    return make_scenario(
        {"wait": WAIT, "hello": HELLO, "other": HELLO},
        triggers=triggers,
        reentry=reentry,
        entry=entry,
    )


# --- event triggers ------------------------------------------------------------------

BIG_ORDER = {
    "id": "big_order",
    "type": "event",
    "event": "order.created",
    "where": {
        "all": [
            {"field": "event.data.total", "op": "gt", "value": 100},
            {"field": "profile.country", "op": "eq", "value": "DE"},
        ]
    },
    "next": "hello",
}


@pytest.mark.parametrize(
    ("total", "country", "refused"),
    [(150, "DE", None), (50, "DE", "where"), (150, "FR", "where"), (None, "DE", "where")],
)
def test_event_trigger_where_on_event_and_profile(
    make_scenario, make_profile, make_event, enter, total, country, refused
):
    scenario = scenario_with(make_scenario, [BIG_ORDER])
    event = make_event("order.created", data={} if total is None else {"total": total})

    admission = enter(scenario, make_profile(country=country), event, trigger_id="big_order")

    assert admission.refused == refused
    if refused is None:
        instance = admission.instance
        assert instance.trigger_id == "big_order"
        assert instance.entry == event
        assert instance.path[0]["node"] == "hello"  # the trigger's next, not the entry
    else:
        assert admission.steps == []
        assert admission.instance is None


def test_event_trigger_refuses_another_event_type(make_scenario, make_profile, make_event, enter):
    scenario = scenario_with(make_scenario, [BIG_ORDER])

    admission = enter(
        scenario,
        make_profile(country="DE"),
        make_event("order.updated", data={"total": 500}),
        trigger_id="big_order",
    )

    assert admission.refused == "other_event"


def test_unknown_trigger_and_node_and_missing_entry(make_scenario, make_profile, enter):
    scenario = scenario_with(make_scenario, [BIG_ORDER])
    no_entry = make_scenario({"hello": HELLO}, entry=None)

    assert enter(scenario, make_profile(), trigger_id="nope").refused == "unknown_trigger"
    assert enter(scenario, make_profile(), node="nope").refused == "unknown_node"
    assert enter(no_entry, make_profile()).refused == "no_entry"


def test_default_capture_enters_at_entry_or_at_a_given_node(make_scenario, make_profile, enter):
    scenario = scenario_with(make_scenario, [BIG_ORDER])

    at_entry = enter(scenario, make_profile()).instance
    at_node = enter(scenario, make_profile(), node="other").instance

    assert at_entry.node == "wait"
    assert at_entry.trigger_id is None
    assert at_node.path[0]["node"] == "other"


def test_limit_once_per_profile(make_scenario, make_profile, make_event, enter, now):
    trigger = {**BIG_ORDER, "where": None, "limit": {"max": 1}}
    scenario = scenario_with(make_scenario, [trigger])
    first = enter(scenario, make_profile(), make_event("order.created"), trigger_id="big_order")
    assert first.instance.status == COMPLETED

    later = make_event("order.created", now + timedelta(days=30))
    again = enter(
        scenario, make_profile(), later, trigger_id="big_order", existing=[first.instance]
    )

    assert again.refused == "limit"


def test_limit_within_a_window(make_scenario, make_profile, make_event, enter, now):
    trigger = {**BIG_ORDER, "where": None, "limit": {"max": 1, "within": "P1D"}}
    scenario = scenario_with(make_scenario, [trigger])
    first = enter(scenario, make_profile(), make_event("order.created"), trigger_id="big_order")
    existing = [first.instance]

    soon = enter(
        scenario,
        make_profile(),
        make_event("order.created", now + timedelta(hours=2)),
        now=now + timedelta(hours=2),
        trigger_id="big_order",
        existing=existing,
    )
    next_day = enter(
        scenario,
        make_profile(),
        make_event("order.created", now + timedelta(hours=25)),
        now=now + timedelta(hours=25),
        trigger_id="big_order",
        existing=existing,
    )

    assert soon.refused == "limit"
    assert next_day.refused is None


def test_limit_per_event_path(make_scenario, make_profile, make_event, enter):
    trigger = {**BIG_ORDER, "where": None, "limit": {"max": 2, "per": "event.data.order_id"}}
    scenario = scenario_with(make_scenario, [trigger], reentry="parallel")
    existing = []

    def order(order_id):
        admission = enter(
            scenario,
            make_profile(),
            make_event("order.created", data={"order_id": order_id}),
            trigger_id="big_order",
            instance_id=f"i{len(existing) + 1}",
            existing=list(existing),
        )
        if admission.instance is not None:
            existing.append(admission.instance)
        return admission.refused

    assert [order("A1"), order("A1"), order("A1"), order("A2"), order("A2"), order("A2")] == [
        None,
        None,
        "limit",
        None,
        None,
        "limit",
    ]
    assert {i.limit_key for i in existing} == {"A1", "A2"}


# --- schedule triggers ---------------------------------------------------------------


def schedule(**fields):
    return {"id": "daily", "type": "schedule", "daily": "10:00", "next": "hello", **fields}


def test_schedule_sample_is_a_stable_share_of_profiles(
    make_scenario, make_profile, make_event, enter
):
    first_half = scenario_with(make_scenario, [schedule(sample={"from": 0, "to": 50})])
    second_half = scenario_with(make_scenario, [schedule(sample={"from": 50, "to": 100})])
    profiles = [make_profile(f"profile-{n}") for n in range(1000)]
    tick = make_event("schedule")

    def sampled(scenario):
        return {
            p.profile_id
            for p in profiles
            if enter(scenario, p, tick, trigger_id="daily").refused is None
        }

    first, second = sampled(first_half), sampled(second_half)
    assert 400 <= len(first) <= 600
    assert first.isdisjoint(second)
    assert len(first | second) == 1000
    assert sampled(first_half) == first  # stable run after run
    outsider = next(p for p in profiles if p.profile_id not in first)
    refusal = enter(first_half, outsider, tick, trigger_id="daily").refused
    assert refusal == "not_in_sample"


def test_schedule_segment_condition(make_scenario, make_profile, make_event, enter):
    scenario = scenario_with(
        make_scenario, [schedule(segment={"field": "profile.city", "op": "eq", "value": "Berlin"})]
    )

    inside = enter(
        scenario, make_profile(city="Berlin"), make_event("schedule"), trigger_id="daily"
    )
    outside = enter(
        scenario, make_profile(city="Paris"), make_event("schedule"), trigger_id="daily"
    )

    assert inside.refused is None
    assert inside.instance.trigger_id == "daily"
    assert outside.refused == "where"


def test_schedule_segment_ref(make_scenario, make_profile, make_event, enter):
    scenario = scenario_with(make_scenario, [schedule(segment={"ref": "vips"})])
    rule = FieldRule.model_validate({"field": "profile.vip", "op": "eq", "value": True})
    vips = {"vips": compile_condition(rule)}

    member = enter(
        scenario, make_profile(vip=True), make_event("schedule"), trigger_id="daily", segments=vips
    )
    other = enter(
        scenario, make_profile(vip=False), make_event("schedule"), trigger_id="daily", segments=vips
    )
    unknown = enter(scenario, make_profile(vip=True), make_event("schedule"), trigger_id="daily")

    assert member.refused is None
    assert other.refused == "where"
    assert unknown.refused == "where"  # a segment nobody defined has no members


# --- webhook trigger -------------------------------------------------------------------


def test_webhook_trigger_captures_with_its_data(
    make_scenario, make_profile, make_event, enter, pick
):
    scenario = scenario_with(make_scenario, [{"id": "hook", "type": "webhook", "next": "hello"}])

    admission = enter(
        scenario, make_profile(), make_event("webhook", data={"name": "Ada"}), trigger_id="hook"
    )

    assert admission.refused is None
    assert admission.instance.trigger_id == "hook"
    assert [s.subject for s in pick(admission.steps[-1], Send)] == ["Hello Ada"]


# --- re-entry --------------------------------------------------------------------------


def captured_twice(make_scenario, make_profile, make_event, reentry, now, finished=False):
    scenario = scenario_with(
        make_scenario, [], reentry=reentry, entry="hello" if finished else "wait"
    )
    first = capture(scenario, make_profile(), make_event(), instance_id="i1", now=now)
    later = now + timedelta(hours=1)
    second = capture(
        scenario,
        make_profile(),
        make_event(at=later),
        instance_id="i2",
        now=later,
        existing=[first.instance],
    )
    return first, second


@pytest.mark.parametrize("finished", [False, True])
def test_reentry_never(make_scenario, make_profile, make_event, now, finished):
    first, second = captured_twice(make_scenario, make_profile, make_event, "never", now, finished)

    assert first.instance.status == (COMPLETED if finished else ACTIVE)
    assert second.refused == "reentry"
    assert second.steps == []


def test_reentry_when_finished(make_scenario, make_profile, make_event, now):
    _, while_in = captured_twice(make_scenario, make_profile, make_event, "when_finished", now)
    _, after = captured_twice(make_scenario, make_profile, make_event, "when_finished", now, True)

    assert while_in.refused == "already_in"
    assert after.refused is None
    assert after.instance.instance_id == "i2"


def test_reentry_restart_ends_the_active_instance(
    make_scenario, make_profile, make_event, now, pick
):
    first, second = captured_twice(make_scenario, make_profile, make_event, "restart", now)

    assert second.refused is None
    ended, started = second.steps
    assert ended.instance.instance_id == "i1"
    assert (ended.instance.status, ended.instance.reason) == (EXITED, "restart")
    assert pick(ended, Exit) == [Exit("i1", EXITED, "restart", "wait")]
    assert CountStat("node_exited", "wait") in ended.effects
    assert started.instance.instance_id == "i2"
    assert started.instance.status == ACTIVE
    assert second.instance is started.instance
    assert first.instance.status == ACTIVE  # the caller's copy is not mutated


def test_reentry_parallel_starts_another_instance(make_scenario, make_profile, make_event, now):
    first, second = captured_twice(make_scenario, make_profile, make_event, "parallel", now)

    assert second.refused is None
    assert len(second.steps) == 1
    assert second.instance.instance_id == "i2"
    assert first.instance.active
    assert second.instance.active


@pytest.mark.parametrize("reentry", ["parallel", "restart", "when_finished"])
def test_a_duplicate_event_id_is_refused(make_scenario, make_profile, make_event, now, reentry):
    scenario = scenario_with(make_scenario, [], reentry=reentry, entry="hello")
    event = make_event(id="order-1")
    first = capture(scenario, make_profile(), event, instance_id="i1", now=now)

    again = capture(
        scenario,
        make_profile(),
        make_event(id="order-1"),
        instance_id="i2",
        now=now,
        existing=[first.instance],
    )
    other = capture(
        scenario,
        make_profile(),
        make_event(id="order-2"),
        instance_id="i2",
        now=now,
        existing=[first.instance],
    )

    assert again.refused == "duplicate"
    assert other.refused is None
