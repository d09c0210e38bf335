"""Waiting nodes: pause, best_time and wait_for, and the wake-ups that end them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.engine import (
    ACTIVE,
    COMPLETED,
    EventArrived,
    Send,
    SetTimer,
    WakeUp,
    advance,
)
from chalicelib.engine.state import EVENT, TIMER
from chalicelib.scenarios.facts import Message

MAIL = {"type": "send", "channel": "email", "template": {"subject": "Hi"}}


def pause(**fields):
    return {"type": "pause", "next": "mail", **fields}


# --- pause -----------------------------------------------------------------------------


def test_pause_waits_for_its_duration_then_goes_on(
    make_scenario, make_profile, enter, now, pick, path_of
):
    scenario = make_scenario({"wait": pause(duration="PT2H"), "mail": MAIL})

    step = enter(scenario, make_profile()).steps[-1]

    instance = step.instance
    assert instance.status == ACTIVE
    assert (instance.node, instance.waiting, instance.wake_at) == (
        "wait",
        TIMER,
        now + timedelta(hours=2),
    )
    assert pick(step, SetTimer) == [SetTimer("i1", instance.step, now + timedelta(hours=2))]
    assert pick(step, Send) == []
    assert path_of(step) == [("wait", "waiting")]

    woken = advance(
        scenario, instance, step.profile, WakeUp(instance.step), now + timedelta(hours=2)
    )

    assert len(pick(woken, Send)) == 1
    assert woken.instance.status == COMPLETED
    assert path_of(woken) == [("wait", "waited"), ("mail", "sent")]


def test_the_next_node_is_due_when_the_pause_ended_not_when_the_timer_fired(
    make_scenario, make_profile, enter, now
):
    scenario = make_scenario(
        {
            "wait": pause(duration="PT2H", next="wait2"),
            "wait2": pause(duration="PT2H"),
            "mail": MAIL,
        }
    )
    step = enter(scenario, make_profile()).steps[-1]

    late = now + timedelta(hours=3)
    woken = advance(scenario, step.instance, step.profile, WakeUp(step.instance.step), late)

    # The second pause counts from 12:00, when the first one ended, not from 13:00.
    assert woken.instance.node == "wait2"
    assert woken.instance.node_entered_at == now + timedelta(hours=2)
    assert woken.instance.wake_at == now + timedelta(hours=4)


def test_advancing_leaves_the_given_instance_and_profile_as_they_were(
    make_scenario, make_profile, enter, now
):
    scenario = make_scenario({"wait": pause(duration="PT2H"), "mail": MAIL})
    step = enter(scenario, make_profile()).steps[-1]
    instance, profile = step.instance, step.profile
    before = (copy.deepcopy(instance), copy.deepcopy(profile))

    woken = advance(scenario, instance, profile, WakeUp(instance.step), now + timedelta(hours=2))

    assert woken.instance.status == COMPLETED
    assert (instance, profile) == before  # path entries included


def test_early_and_stale_wake_ups_change_nothing(make_scenario, make_profile, enter, now):
    scenario = make_scenario({"wait": pause(duration="PT2H"), "mail": MAIL})
    step = enter(scenario, make_profile()).steps[-1]
    instance = step.instance

    early = advance(
        scenario, instance, step.profile, WakeUp(instance.step), now + timedelta(hours=1)
    )
    stale = advance(
        scenario, instance, step.profile, WakeUp(instance.step - 1), now + timedelta(hours=3)
    )

    for result in (early, stale):
        assert result.effects == []
        assert result.instance == instance
        assert result.instance is not instance  # a copy; the given one is never mutated


def test_pause_until_a_fixed_datetime(make_scenario, make_profile, enter, pick):
    scenario = make_scenario({"wait": pause(until="2026-06-12T08:30:00+02:00"), "mail": MAIL})

    [timer] = pick(enter(scenario, make_profile()).steps[-1], SetTimer)

    assert timer.wake_at == datetime(2026, 6, 12, 6, 30, tzinfo=UTC)


def test_pause_until_a_datetime_already_past_goes_on_at_once(
    make_scenario, make_profile, enter, pick, path_of
):
    scenario = make_scenario({"wait": pause(until="2026-06-01T00:00:00Z"), "mail": MAIL})

    step = enter(scenario, make_profile()).steps[-1]

    assert pick(step, SetTimer) == []
    assert len(pick(step, Send)) == 1
    assert path_of(step)[0] == ("wait", "elapsed")


@pytest.mark.parametrize(
    ("field", "data", "fields", "offset", "wake_at"),
    [
        (
            "event.data.delivery_date",
            {"delivery_date": "2026-06-15T12:00:00Z"},
            {},
            "-P1D",
            datetime(2026, 6, 14, 12, tzinfo=UTC),
        ),
        (
            "event.data.delivery_date",
            {"delivery_date": "2026-06-15"},
            {},
            "PT9H",
            datetime(2026, 6, 15, 9, tzinfo=UTC),
        ),
        (
            "profile.renewal",
            {},
            {"renewal": "2026-07-01T10:00:00+02:00"},
            None,
            datetime(2026, 7, 1, 8, tzinfo=UTC),
        ),
    ],
)
def test_pause_until_a_date_field_with_offset(
    make_scenario, make_profile, make_event, enter, pick, field, data, fields, offset, wake_at
):
    node = pause(until_field=field, **({"offset": offset} if offset else {}))
    scenario = make_scenario({"wait": node, "mail": MAIL})

    step = enter(scenario, make_profile(**fields), make_event("order.created", data=data)).steps[-1]

    assert [t.wake_at for t in pick(step, SetTimer)] == [wake_at]


@pytest.mark.parametrize("data", [{}, {"delivery_date": "soon"}, {"delivery_date": None}])
def test_pause_on_a_missing_date_goes_on(
    make_scenario, make_profile, make_event, enter, pick, path_of, data
):
    node = pause(until_field="event.data.delivery_date", offset="-P1D")
    scenario = make_scenario({"wait": node, "mail": MAIL})

    step = enter(scenario, make_profile(), make_event(data=data)).steps[-1]

    assert pick(step, SetTimer) == []
    assert len(pick(step, Send)) == 1
    assert path_of(step)[0] == ("wait", "no date")


def test_pause_at_a_local_time_of_the_profile(make_scenario, make_profile, enter, pick):
    # 10:00Z is 12:00 in Berlin: the next 10:00 there is tomorrow, 08:00Z.
    scenario = make_scenario({"wait": pause(at="10:00"), "mail": MAIL})

    [timer] = pick(enter(scenario, make_profile(timezone="Europe/Berlin")).steps[-1], SetTimer)

    assert timer.wake_at == datetime(2026, 6, 11, 8, tzinfo=UTC)


def test_pause_duration_then_at_uses_the_same_day_when_still_ahead(
    make_scenario, make_profile, enter, pick
):
    # 10:00Z + 1h = 07:00 in New York; 09:30 there is 13:30Z the same day.
    scenario = make_scenario({"wait": pause(duration="PT1H", at="09:30"), "mail": MAIL})

    [timer] = pick(enter(scenario, make_profile(timezone="America/New_York")).steps[-1], SetTimer)

    assert timer.wake_at == datetime(2026, 6, 10, 13, 30, tzinfo=UTC)


def test_pause_at_and_days_in_the_scenario_time_zone(make_scenario, make_profile, enter, pick):
    # Wednesday 10 June 06:00 in New York: the next Monday at 09:00 there is 15 June 13:00Z.
    scenario = make_scenario(
        {"wait": pause(at="09:00", days=["mon"]), "mail": MAIL}, timezone="America/New_York"
    )

    [timer] = pick(enter(scenario, make_profile()).steps[-1], SetTimer)

    assert timer.wake_at == datetime(2026, 6, 15, 13, tzinfo=UTC)


def test_pause_days_keeps_the_time_and_takes_today_when_allowed(
    make_scenario, make_profile, enter, now, pick
):
    scenario = make_scenario({"wait": pause(duration="PT1H", days=["wed", "fri"]), "mail": MAIL})
    weekend = make_scenario({"wait": pause(duration="PT1H", days=["sat", "sun"]), "mail": MAIL})

    [today] = pick(enter(scenario, make_profile()).steps[-1], SetTimer)
    [saturday] = pick(enter(weekend, make_profile()).steps[-1], SetTimer)

    assert today.wake_at == now + timedelta(hours=1)
    assert saturday.wake_at == datetime(2026, 6, 13, 11, tzinfo=UTC)


def test_a_pause_already_elapsed_for_a_backdated_event_runs_at_once(
    make_scenario, make_profile, make_event, enter, now, pick, path_of
):
    scenario = make_scenario({"wait": pause(duration="P1D"), "mail": MAIL})
    event = make_event(at=now - timedelta(days=3))

    step = enter(scenario, make_profile(), event).steps[-1]

    assert pick(step, SetTimer) == []
    assert len(pick(step, Send)) == 1
    assert path_of(step) == [("wait", "elapsed"), ("mail", "sent")]
    # The send was due when the pause ended, a day after the event.
    assert step.instance.node_entered_at == event.occurred_at + timedelta(days=1)


def test_a_backdated_pause_not_yet_over_counts_from_the_event(
    make_scenario, make_profile, make_event, enter, now, pick
):
    scenario = make_scenario({"wait": pause(duration="P7D"), "mail": MAIL})
    event = make_event(at=now - timedelta(days=3))

    [timer] = pick(enter(scenario, make_profile(), event).steps[-1], SetTimer)

    assert timer.wake_at == event.occurred_at + timedelta(days=7)


# --- best_time -------------------------------------------------------------------------


def engaged(*hours: int, status: str = "opened") -> list[Message]:
    """Messages the profile engaged with at these UTC hours, on past days."""
    return [
        Message(
            f"m{i}",
            "s0",
            "n",
            "email",
            datetime(2026, 5, 1 + i, 0, tzinfo=UTC),
            {
                "sent": datetime(2026, 5, 1 + i, 0, tzinfo=UTC),
                status: datetime(2026, 5, 1 + i, hour, 20, tzinfo=UTC),
            },
        )
        for i, hour in enumerate(hours)
    ]


def best_time_scenario(make_scenario, **fields):
    return make_scenario({"best": {"type": "best_time", "next": "mail", **fields}, "mail": MAIL})


@pytest.mark.parametrize(
    ("messages", "wake_at"),
    [
        # Mostly at 18:00: today at 18:00.
        (engaged(18, 18, 7) + engaged(18, status="clicked"), datetime(2026, 6, 10, 18, tzinfo=UTC)),
        # Mostly at 08:00, already past today: tomorrow at 08:00, still within P1D.
        (engaged(8, 8, 18) + engaged(8, status="clicked"), datetime(2026, 6, 11, 8, tzinfo=UTC)),
        # A tie goes to the earlier hour.
        (engaged(19, 15), datetime(2026, 6, 10, 15, tzinfo=UTC)),
    ],
)
def test_best_time_waits_for_the_usual_engagement_hour(
    make_scenario, make_profile, enter, pick, messages, wake_at
):
    scenario = best_time_scenario(make_scenario)

    step = enter(scenario, make_profile(messages=messages)).steps[-1]

    assert [t.wake_at for t in pick(step, SetTimer)] == [wake_at]
    assert step.instance.waiting == TIMER


def test_best_time_hour_is_local_to_the_profile(make_scenario, make_profile, enter, pick):
    # Opens at 16:20Z are 18:20 in Berlin (summer): the best hour is 18:00 local, 16:00Z.
    scenario = best_time_scenario(make_scenario)

    step = enter(scenario, make_profile(timezone="Europe/Berlin", messages=engaged(16, 16))).steps[
        -1
    ]

    assert [t.wake_at for t in pick(step, SetTimer)] == [datetime(2026, 6, 10, 16, tzinfo=UTC)]


def test_best_time_ignores_sent_and_delivered(make_scenario, make_profile, enter, pick):
    scenario = best_time_scenario(make_scenario, fallback="15:00")
    messages = engaged(3, 3, status="delivered")

    step = enter(scenario, make_profile(messages=messages)).steps[-1]

    assert [t.wake_at for t in pick(step, SetTimer)] == [datetime(2026, 6, 10, 15, tzinfo=UTC)]


def test_best_time_falls_back_to_the_fallback_time(
    make_scenario, make_profile, make_event, enter, pick
):
    scenario = best_time_scenario(make_scenario)
    at = datetime(2026, 6, 10, 11, tzinfo=UTC)

    step = enter(scenario, make_profile(), make_event(at=at), now=at).steps[-1]

    # The default fallback 10:00 has passed today: tomorrow 10:00, within the default P1D.
    assert [t.wake_at for t in pick(step, SetTimer)] == [datetime(2026, 6, 11, 10, tzinfo=UTC)]


def test_best_time_outside_the_window_waits_for_its_end(make_scenario, make_profile, enter, pick):
    scenario = best_time_scenario(make_scenario, within="PT2H", fallback="20:00")

    step = enter(scenario, make_profile(messages=engaged(18))).steps[-1]

    assert [t.wake_at for t in pick(step, SetTimer)] == [datetime(2026, 6, 10, 12, tzinfo=UTC)]


def test_best_time_wakes_into_the_next_node(make_scenario, make_profile, enter, pick):
    scenario = best_time_scenario(make_scenario)
    step = enter(scenario, make_profile(messages=engaged(18))).steps[-1]
    [timer] = pick(step, SetTimer)

    woken = advance(scenario, step.instance, step.profile, WakeUp(timer.step), timer.wake_at)

    assert len(pick(woken, Send)) == 1
    assert woken.instance.status == COMPLETED


# --- wait_for --------------------------------------------------------------------------

WAIT_PAYMENT = {
    "type": "wait_for",
    "event": "order.paid",
    "where": {"field": "event.data.order_id", "op": "eq", "value": {"ref": "entry.data.order_id"}},
    "timeout": "P2D",
    "next": "thanks",
    "timeout_next": "remind",
}
THANKS = {"type": "send", "channel": "email", "template": {"subject": "Thanks"}}
REMIND = {"type": "send", "channel": "email", "template": {"subject": "Please pay"}}


@pytest.fixture
def waiting_for_payment(make_scenario, make_profile, make_event, enter):
    scenario = make_scenario({"wait": WAIT_PAYMENT, "thanks": THANKS, "remind": REMIND})
    entry = make_event("order.created", data={"order_id": "A1"})
    step = enter(scenario, make_profile(), entry).steps[-1]
    return scenario, step


def test_wait_for_waits_with_a_timeout(waiting_for_payment, now, pick, path_of):
    _, step = waiting_for_payment

    assert step.instance.waiting == EVENT
    assert step.instance.wake_at == now + timedelta(days=2)
    assert [t.wake_at for t in pick(step, SetTimer)] == [now + timedelta(days=2)]
    assert path_of(step) == [("wait", "waiting")]


def test_wait_for_goes_on_when_the_matching_event_arrives(
    waiting_for_payment, make_event, now, pick, path_of
):
    scenario, step = waiting_for_payment
    later = now + timedelta(hours=3)

    other_order = advance(
        scenario,
        step.instance,
        step.profile,
        EventArrived(make_event("order.paid", later, {"order_id": "A2"})),
        later,
    )
    other_type = advance(
        scenario,
        step.instance,
        step.profile,
        EventArrived(make_event("order.shipped", later, {"order_id": "A1"})),
        later,
    )
    paid = advance(
        scenario,
        step.instance,
        step.profile,
        EventArrived(make_event("order.paid", later, {"order_id": "A1"})),
        later,
    )

    for ignored in (other_order, other_type):
        assert ignored.effects == []
        assert ignored.instance.waiting == EVENT
    [send] = pick(paid, Send)
    assert send.subject == "Thanks"
    assert path_of(paid) == [("wait", "event"), ("thanks", "sent")]
    assert paid.instance.status == COMPLETED


def test_after_a_wait_for_event_the_journey_clock_is_the_events_time(
    make_scenario, make_profile, make_event, enter, now, pick
):
    node = {"type": "wait_for", "event": "order.paid", "next": "cool_off"}
    cool_off = {"type": "pause", "duration": "PT1H", "next": "thanks"}
    scenario = make_scenario(
        {"wait": node, "cool_off": cool_off, "thanks": THANKS}, actuality="PT2H"
    )
    step = enter(scenario, make_profile()).steps[-1]
    paid_at = now + timedelta(hours=5)

    paid = advance(
        scenario,
        step.instance,
        step.profile,
        EventArrived(make_event("order.paid", paid_at)),
        paid_at,
    )

    # Waiting longer than the actuality is fine: the next step is due when the event came.
    assert paid.instance.node == "cool_off"
    assert paid.instance.node_entered_at == paid_at
    assert [t.wake_at for t in pick(paid, SetTimer)] == [paid_at + timedelta(hours=1)]


def test_wait_for_ignores_events_from_before_it_began(waiting_for_payment, make_event, now):
    scenario, step = waiting_for_payment
    old = make_event("order.paid", now - timedelta(minutes=5), {"order_id": "A1"})

    result = advance(scenario, step.instance, step.profile, EventArrived(old), now)

    assert result.effects == []
    assert result.instance.waiting == EVENT


def test_wait_for_times_out_to_timeout_next(waiting_for_payment, now, pick, path_of):
    scenario, step = waiting_for_payment
    instance = step.instance

    early = advance(
        scenario, instance, step.profile, WakeUp(instance.step), now + timedelta(days=1)
    )
    stale = advance(
        scenario, instance, step.profile, WakeUp(instance.step + 1), now + timedelta(days=3)
    )
    timed_out = advance(
        scenario, instance, step.profile, WakeUp(instance.step), now + timedelta(days=2)
    )

    assert early.effects == []
    assert early.instance == instance
    assert stale.effects == []
    assert stale.instance == instance
    [send] = pick(timed_out, Send)
    assert send.subject == "Please pay"
    assert path_of(timed_out) == [("wait", "timeout"), ("remind", "sent")]


def test_wait_for_without_timeout_next_times_out_to_next(
    make_scenario, make_profile, enter, now, pick
):
    node = {**WAIT_PAYMENT, "timeout_next": None}
    scenario = make_scenario({"wait": node, "thanks": THANKS})
    step = enter(scenario, make_profile()).steps[-1]

    woken = advance(
        scenario, step.instance, step.profile, WakeUp(step.instance.step), now + timedelta(days=2)
    )

    assert [s.subject for s in pick(woken, Send)] == ["Thanks"]


def test_wait_for_without_timeout_sets_no_timer(make_scenario, make_profile, enter, pick):
    node = {"type": "wait_for", "event": "order.paid", "next": "thanks"}
    scenario = make_scenario({"wait": node, "thanks": THANKS})

    step = enter(scenario, make_profile()).steps[-1]

    assert pick(step, SetTimer) == []
    assert step.instance.waiting == EVENT
    assert step.instance.wake_at is None


CONFIRMED = {"field": "profile.confirmed", "op": "eq", "value": True}


def test_wait_for_a_condition_goes_on_when_it_holds(
    make_scenario, make_profile, make_event, enter, now, pick, path_of
):
    node = {"type": "wait_for", "condition": CONFIRMED, "timeout": "P1D", "next": "thanks"}
    scenario = make_scenario({"wait": node, "thanks": THANKS})
    step = enter(scenario, make_profile(confirmed=False)).steps[-1]
    assert step.instance.waiting == EVENT
    later = now + timedelta(hours=1)
    change = EventArrived(make_event("profile.field_changed", later))

    still = advance(scenario, step.instance, make_profile(confirmed=False), change, later)
    holds = advance(scenario, step.instance, make_profile(confirmed=True), change, later)

    assert still.effects == []
    assert len(pick(holds, Send)) == 1
    assert path_of(holds)[0] == ("wait", "condition")


def test_wait_for_a_condition_already_true_goes_on_at_once(
    make_scenario, make_profile, enter, pick, path_of
):
    node = {"type": "wait_for", "condition": CONFIRMED, "timeout": "P1D", "next": "thanks"}
    scenario = make_scenario({"wait": node, "thanks": THANKS})

    step = enter(scenario, make_profile(confirmed=True)).steps[-1]

    assert pick(step, SetTimer) == []
    assert path_of(step) == [("wait", "condition"), ("thanks", "sent")]


def test_a_backdated_wait_for_whose_timeout_passed_takes_the_timeout_path(
    make_scenario, make_profile, make_event, enter, now, pick, path_of
):
    scenario = make_scenario({"wait": WAIT_PAYMENT, "thanks": THANKS, "remind": REMIND})
    entry = make_event("order.created", now - timedelta(days=3), {"order_id": "A1"})

    step = enter(scenario, make_profile(), entry).steps[-1]

    assert pick(step, SetTimer) == []
    assert path_of(step) == [("wait", "timeout"), ("remind", "sent")]
