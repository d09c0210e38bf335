"""Goals, backdated events and actuality, stopping and resuming, live edits, statistics."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.engine import (
    COMPLETED,
    EXITED,
    REMOVED,
    CountStat,
    EventArrived,
    Exit,
    Send,
    SetTimer,
    WakeUp,
    WebhookResult,
    advance,
    end,
    migrate,
    resume,
)

MAIL = {"type": "send", "channel": "email", "template": {"subject": "Hi"}}
LATER = {"type": "send", "channel": "email", "template": {"subject": "Later"}}


# --- exit_on goals ---------------------------------------------------------------------


@pytest.fixture
def pausing(make_scenario, make_profile, enter):
    scenario = make_scenario(
        {"wait": {"type": "pause", "duration": "P3D", "next": "mail"}, "mail": MAIL},
        exit_on=[
            {
                "event": "order.created",
                "where": {"field": "event.data.total", "op": "gte", "value": 100},
            },
            {"event": "unsubscribed"},
        ],
    )
    return scenario, enter(scenario, make_profile()).steps[-1]


def test_a_goal_event_exits_the_profile_at_once(pausing, make_event, now, pick, path_of):
    scenario, step = pausing
    later = now + timedelta(hours=5)

    done = advance(
        scenario,
        step.instance,
        step.profile,
        EventArrived(make_event("unsubscribed", later)),
        later,
    )

    assert (done.instance.status, done.instance.reason) == (EXITED, "goal")
    assert pick(done, Exit) == [Exit("i1", EXITED, "goal", "wait")]
    assert path_of(done) == [("wait", "goal")]
    assert pick(done, Send) == []
    # The pause's timer fires later for nothing.
    woken = advance(
        scenario, done.instance, step.profile, WakeUp(step.instance.step), now + timedelta(days=3)
    )
    assert woken.effects == []


def test_a_goal_exit_is_stamped_when_the_goal_event_arrived(pausing, make_event, now):
    scenario, step = pausing
    later = now + timedelta(hours=5)

    done = advance(
        scenario,
        step.instance,
        step.profile,
        EventArrived(make_event("unsubscribed", later)),
        later,
    )

    assert done.instance.path == [{"at": "2026-06-10T15:00:00Z", "node": "wait", "outcome": "goal"}]
    assert step.instance.path == [  # the instance given stays as it was
        {"at": "2026-06-10T10:00:00Z", "node": "wait", "outcome": "waiting"}
    ]


@pytest.mark.parametrize(("total", "exits"), [(50, False), (100, True), (None, False)])
def test_a_goal_with_where(pausing, make_event, now, total, exits):
    scenario, step = pausing
    data = {} if total is None else {"total": total}
    later = now + timedelta(hours=5)

    done = advance(
        scenario,
        step.instance,
        step.profile,
        EventArrived(make_event("order.created", later, data)),
        later,
    )

    assert done.instance.active is not exits
    assert (done.effects == []) is not exits


def test_a_goal_event_from_before_the_entry_is_ignored(pausing, make_event, now):
    scenario, step = pausing
    old = make_event("unsubscribed", now - timedelta(minutes=1))

    done = advance(scenario, step.instance, step.profile, EventArrived(old), now)

    assert done.instance.active
    assert done.effects == []


def test_a_goal_exits_a_profile_waiting_for_a_webhook(
    make_scenario, make_profile, make_event, enter, now
):
    scenario = make_scenario(
        {"call": {"type": "webhook", "url": "https://crm.example/"}},
        exit_on=[{"event": "unsubscribed"}],
    )
    step = enter(scenario, make_profile()).steps[-1]

    done = advance(
        scenario, step.instance, step.profile, EventArrived(make_event("unsubscribed")), now
    )
    late = advance(
        scenario, done.instance, done.profile, WebhookResult(step.instance.step, True, 200), now
    )

    assert done.instance.reason == "goal"
    assert late.effects == []


# --- backdated events and actuality (SPEC §1.5) ------------------------------------------

ORDER_PLACED = datetime(2026, 6, 6, 20, tzinfo=UTC)
ORDER_ARRIVES = datetime(2026, 6, 10, 10, tzinfo=UTC)


def test_spec_example_without_pause_is_stale(make_scenario, make_profile, make_event, enter, pick):
    scenario = make_scenario({"mail": MAIL}, actuality="P1D")
    order = make_event("order.created", ORDER_PLACED)

    step = enter(scenario, make_profile(), order, now=ORDER_ARRIVES).steps[-1]

    assert pick(step, Send) == []
    assert (step.instance.status, step.instance.reason) == (EXITED, "stale")
    assert pick(step, Exit) == [Exit("i1", EXITED, "stale", "mail")]


def test_spec_example_with_a_p3d_pause_sends_at_once(
    make_scenario, make_profile, make_event, enter, pick, path_of
):
    scenario = make_scenario(
        {"wait": {"type": "pause", "duration": "P3D", "next": "mail"}, "mail": MAIL},
        actuality="P1D",
    )
    order = make_event("order.created", ORDER_PLACED)

    step = enter(scenario, make_profile(), order, now=ORDER_ARRIVES).steps[-1]

    [send] = pick(step, Send)
    assert send.deliver_at is None  # it goes out at once, on June 10 10:00
    assert step.profile.messages[0].statuses["sent"] == ORDER_ARRIVES
    assert path_of(step) == [("wait", "elapsed"), ("mail", "sent")]
    assert step.instance.status == COMPLETED
    assert pick(step, SetTimer) == []


def test_a_pause_ending_too_long_ago_is_stale(make_scenario, make_profile, make_event, enter, pick):
    # The send after a P1D pause was due June 7 20:00: more than a day late.
    scenario = make_scenario(
        {"wait": {"type": "pause", "duration": "P1D", "next": "mail"}, "mail": MAIL},
        actuality="P1D",
    )

    step = enter(scenario, make_profile(), make_event(at=ORDER_PLACED), now=ORDER_ARRIVES).steps[-1]

    assert pick(step, Send) == []
    assert (step.instance.reason, step.instance.node) == ("stale", "mail")


def test_a_backdated_pause_still_running_waits_for_its_end(
    make_scenario, make_profile, make_event, enter, pick
):
    scenario = make_scenario(
        {"wait": {"type": "pause", "duration": "P7D", "next": "mail"}, "mail": MAIL},
        actuality="P1D",
    )

    step = enter(scenario, make_profile(), make_event(at=ORDER_PLACED), now=ORDER_ARRIVES).steps[-1]

    assert [t.wake_at for t in pick(step, SetTimer)] == [ORDER_PLACED + timedelta(days=7)]
    assert step.instance.active


def test_trigger_actuality_overrides_the_scenario(
    make_scenario, make_profile, make_event, enter, pick
):
    trigger = {
        "id": "order",
        "type": "event",
        "event": "order.created",
        "actuality": "P5D",
        "next": "mail",
    }
    scenario = make_scenario({"mail": MAIL}, actuality="P1D", triggers=[trigger])
    order = make_event("order.created", ORDER_PLACED)

    by_trigger = enter(
        scenario, make_profile(), order, now=ORDER_ARRIVES, trigger_id="order"
    ).steps[-1]
    by_default = enter(scenario, make_profile(), order, now=ORDER_ARRIVES).steps[-1]

    assert len(pick(by_trigger, Send)) == 1
    assert by_default.instance.reason == "stale"


def test_without_actuality_a_backdated_send_still_goes(
    make_scenario, make_profile, make_event, enter, pick
):
    scenario = make_scenario({"mail": MAIL})

    step = enter(scenario, make_profile(), make_event(at=ORDER_PLACED), now=ORDER_ARRIVES).steps[-1]

    assert len(pick(step, Send)) == 1


def test_a_wake_up_too_late_for_actuality_is_stale(make_scenario, make_profile, enter, now, pick):
    scenario = make_scenario(
        {"wait": {"type": "pause", "duration": "PT1H", "next": "mail"}, "mail": MAIL},
        actuality="PT6H",
    )
    step = enter(scenario, make_profile()).steps[-1]

    late = advance(
        scenario, step.instance, step.profile, WakeUp(step.instance.step), now + timedelta(hours=8)
    )
    in_time = advance(
        scenario, step.instance, step.profile, WakeUp(step.instance.step), now + timedelta(hours=6)
    )

    assert pick(late, Send) == []
    assert late.instance.reason == "stale"
    assert len(pick(in_time, Send)) == 1


# --- stopping and resuming -------------------------------------------------------------


@pytest.fixture
def sleeping(make_scenario, make_profile, enter):
    scenario = make_scenario(
        {"wait": {"type": "pause", "duration": "P1D", "next": "mail"}, "mail": MAIL},
        keep_profiles_on_stop=False,
    )
    return scenario, enter(scenario, make_profile()).steps[-1]


def test_stop_without_keeping_profiles_exits_them(sleeping, now, pick):
    scenario, step = sleeping

    stopped = end(scenario, step.instance, now + timedelta(hours=1), EXITED, "stopped")

    assert (stopped.instance.status, stopped.instance.reason) == (EXITED, "stopped")
    assert stopped.instance.ended_at == now + timedelta(hours=1)
    assert stopped.instance.wake_at is None
    assert pick(stopped, Exit) == [Exit("i1", EXITED, "stopped", "wait")]
    assert CountStat("node_exited", "wait") in stopped.effects
    assert CountStat("exited") in stopped.effects
    assert step.instance.active  # the given instance is not mutated


def test_end_defaults_to_removed_and_ignores_ended_instances(sleeping, now):
    scenario, step = sleeping

    removed = end(scenario, step.instance, now)
    again = end(scenario, removed.instance, now)

    assert (removed.instance.status, removed.instance.reason) == (REMOVED, "removed")
    assert CountStat("removed") in removed.effects
    assert again.effects == []


def test_resume_after_the_wait_ran_out_goes_on(sleeping, now, pick, path_of):
    scenario, step = sleeping

    resumed = resume(scenario, step.instance, step.profile, now + timedelta(days=2))

    assert len(pick(resumed, Send)) == 1
    assert resumed.instance.status == COMPLETED
    assert path_of(resumed) == [("wait", "waited"), ("mail", "sent")]


def test_resume_before_the_wait_ran_out_keeps_waiting(sleeping, now):
    scenario, step = sleeping

    resumed = resume(scenario, step.instance, step.profile, now + timedelta(hours=2))

    assert resumed.effects == []
    assert resumed.instance == step.instance


def test_resume_a_wait_for_whose_timeout_ran_out(make_scenario, make_profile, enter, now, pick):
    node = {
        "type": "wait_for",
        "event": "paid",
        "timeout": "P1D",
        "next": "mail",
        "timeout_next": "later",
    }
    scenario = make_scenario({"wait": node, "mail": MAIL, "later": LATER})
    step = enter(scenario, make_profile()).steps[-1]

    resumed = resume(scenario, step.instance, step.profile, now + timedelta(days=3))

    assert [s.subject for s in pick(resumed, Send)] == ["Later"]


# --- live edits (migrate) ----------------------------------------------------------------


def versions(make_scenario, first: dict, second: dict):
    v1 = make_scenario({"wait": first, "mail": MAIL, "later": LATER}, version=1)
    v2 = make_scenario({"wait": second, "mail": MAIL, "later": LATER}, version=2)
    return v1, v2


def pause(duration: str, next: str = "mail") -> dict:
    return {"type": "pause", "duration": duration, "next": next}


def test_migrate_exits_a_profile_on_a_removed_node(make_scenario, make_profile, enter, now, pick):
    v1 = make_scenario({"wait": pause("P1D"), "mail": MAIL}, version=1)
    v2 = make_scenario({"mail": MAIL}, version=2)
    step = enter(v1, make_profile()).steps[-1]

    moved = migrate(v2, step.instance, step.profile, now + timedelta(hours=1))

    assert (moved.instance.status, moved.instance.reason) == (EXITED, "node_removed")
    assert moved.instance.version == 2
    assert pick(moved, Exit) == [Exit("i1", EXITED, "node_removed", "wait")]
    assert pick(moved, Send) == []


def test_migrate_keeps_an_unchanged_wait(make_scenario, make_profile, enter, now):
    v1, v2 = versions(make_scenario, pause("P1D"), pause("P1D"))
    step = enter(v1, make_profile()).steps[-1]

    moved = migrate(v2, step.instance, step.profile, now + timedelta(hours=1))

    assert moved.effects == []
    assert moved.instance.version == 2
    assert (moved.instance.step, moved.instance.wake_at) == (
        step.instance.step,
        step.instance.wake_at,
    )


@pytest.mark.parametrize(
    ("new", "wake_in"), [("P3D", timedelta(days=3)), ("PT12H", timedelta(hours=12))]
)
def test_migrate_retimes_a_changed_pause_from_when_the_profile_entered_it(
    make_scenario, make_profile, enter, now, pick, new, wake_in
):
    v1, v2 = versions(make_scenario, pause("P1D"), pause(new))
    step = enter(v1, make_profile()).steps[-1]

    moved = migrate(v2, step.instance, step.profile, now + timedelta(hours=1))

    [timer] = pick(moved, SetTimer)
    assert timer.wake_at == now + wake_in
    assert moved.instance.wake_at == now + wake_in
    # The old timer is stale now; the new one moves the profile on.
    old = advance(
        v2, moved.instance, moved.profile, WakeUp(step.instance.step), now + timedelta(days=1)
    )
    assert old.effects == []
    woken = advance(v2, moved.instance, moved.profile, WakeUp(timer.step), timer.wake_at)
    assert len(pick(woken, Send)) == 1


def test_migrate_a_pause_shortened_into_the_past_wakes_at_once(
    make_scenario, make_profile, enter, now, pick, path_of
):
    v1, v2 = versions(make_scenario, pause("P3D"), pause("PT1H"))
    step = enter(v1, make_profile()).steps[-1]

    moved = migrate(v2, step.instance, step.profile, now + timedelta(hours=2))

    assert len(pick(moved, Send)) == 1
    assert moved.instance.status == COMPLETED
    assert path_of(moved) == [("wait", "waited"), ("mail", "sent")]


def test_migrate_follows_the_new_versions_edges(make_scenario, make_profile, enter, now, pick):
    v1, v2 = versions(make_scenario, pause("P1D"), pause("P1D", next="later"))
    step = enter(v1, make_profile()).steps[-1]
    moved = migrate(v2, step.instance, step.profile, now + timedelta(hours=1))

    woken = advance(
        v2, moved.instance, moved.profile, WakeUp(moved.instance.step), now + timedelta(days=1)
    )

    assert [s.subject for s in pick(woken, Send)] == ["Later"]


def test_migrate_retimes_a_wait_for_timeout(make_scenario, make_profile, enter, now, pick):
    node = {"type": "wait_for", "event": "paid", "timeout": "P1D", "next": "mail"}
    v1, v2 = versions(make_scenario, node, {**node, "timeout": "P2D"})
    step = enter(v1, make_profile()).steps[-1]

    moved = migrate(v2, step.instance, step.profile, now + timedelta(hours=1))

    assert [t.wake_at for t in pick(moved, SetTimer)] == [now + timedelta(days=2)]


def test_migrate_ignores_ended_instances(make_scenario, make_profile, enter, now):
    v1 = make_scenario({"mail": MAIL}, version=1)
    v2 = make_scenario({"other": MAIL}, version=2)
    step = enter(v1, make_profile()).steps[-1]

    moved = migrate(v2, step.instance, step.profile, now)

    assert moved.effects == []
    assert moved.instance.status == COMPLETED


# --- statistics ------------------------------------------------------------------------


def node_counts(*steps) -> dict[str, int]:
    """current = node_entered - node_exited, per node, over the steps' effects."""
    current: Counter[str] = Counter()
    for step in steps:
        for effect in step.effects:
            if isinstance(effect, CountStat) and effect.node is not None:
                current[effect.node] += 1 if effect.name == "node_entered" else -1
    return {node: count for node, count in current.items() if count}


def totals(*steps) -> Counter[str]:
    return Counter(e.name for s in steps for e in s.effects if isinstance(e, CountStat))


def test_node_statistics_balance_at_the_waiting_node(make_scenario, make_profile, enter, now):
    scenario = make_scenario(
        {
            "first": {**MAIL, "next": "check"},
            "check": {
                "type": "condition",
                "if": {"field": "profile.vip", "op": "eq", "value": True},
                "then": "wait",
                "else": "wait",
            },
            "wait": pause("P1D"),
            "mail": MAIL,
        }
    )
    captured = [enter(scenario, make_profile(), instance_id=f"i{n}").steps[-1] for n in range(3)]

    assert node_counts(*captured) == {"wait": 3}
    assert totals(*captured)["entered"] == 3
    assert totals(*captured)["node_entered"] == 9

    woken = advance(
        scenario,
        captured[0].instance,
        captured[0].profile,
        WakeUp(captured[0].instance.step),
        now + timedelta(days=1),
    )
    removed = end(scenario, captured[1].instance, now)

    assert node_counts(*captured, woken, removed) == {"wait": 1}
    assert totals(woken)["completed"] == 1
    assert totals(removed)["removed"] == 1


@pytest.mark.parametrize("how", ["goal", "stale", "jump", "error", "migrate"])
def test_every_way_out_balances_node_statistics(
    make_scenario, make_profile, make_event, enter, now, how
):
    nodes = {
        "wait": pause("P1D", next="out"),
        "out": MAIL,
        "jump": {"type": "jump", "scenario": "s2"},
    }
    nodes["call"] = {"type": "webhook", "url": "https://x.example/"}
    scenario = make_scenario(nodes, exit_on=[{"event": "bought"}], actuality="PT1H")
    entry = {"goal": "wait", "stale": "wait", "jump": "jump", "error": "call", "migrate": "wait"}[
        how
    ]
    first = enter(scenario, make_profile(), node=entry).steps[-1]
    instance, profile, later = first.instance, first.profile, now + timedelta(days=1)

    if how == "goal":
        last = advance(
            scenario, instance, profile, EventArrived(make_event("bought", later)), later
        )
    elif how == "stale":
        last = advance(
            scenario, instance, profile, WakeUp(instance.step), later + timedelta(hours=2)
        )
    elif how == "error":
        last = advance(scenario, instance, profile, WebhookResult(instance.step, False, 500), later)
    elif how == "migrate":
        last = migrate(make_scenario({"out": MAIL}, version=2), instance, profile, later)
    steps = (first,) if how == "jump" else (first, last)
    last = steps[-1]

    assert not last.instance.active
    assert node_counts(*steps) == {}
    assert totals(*steps)["entered"] == 1
    assert sum(totals(*steps)[k] for k in ("completed", "exited", "removed", "errors")) == 1
    assert len([e for s in steps for e in s.effects if isinstance(e, Exit)]) == 1
