"""Instant and external nodes: webhook, condition, split, ab_split, update_profile,
promo_code, jump and exit."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from chalicelib.engine import (
    ACTIVE,
    COMPLETED,
    ERROR,
    CallWebhook,
    EmitEvent,
    Exit,
    Jump,
    PromoCodeResult,
    Send,
    SendSkipped,
    SetTimer,
    TakePromoCode,
    UpdateProfile,
    WakeUp,
    WebhookResult,
    advance,
)
from chalicelib.engine.state import PROMO_CODE, WEBHOOK
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.validation import ScenarioInvalid


def mail(subject: str, next: str | None = None) -> dict:
    return {"type": "send", "channel": "email", "template": {"subject": subject}, "next": next}


# --- webhook ---------------------------------------------------------------------------

WEBHOOK_NODE = {
    "type": "webhook",
    "method": "PUT",
    "url": "https://crm.example/api/{{ profile.profile_id }}",
    "headers": {"X-Name": "{{ profile.first_name }}"},
    "body": '{"email": "{{ profile.email }}"}',
    "save_as": "crm",
    "next": "after",
    "on_error": "failed",
}


@pytest.fixture
def calling(make_scenario, make_profile, enter):
    scenario = make_scenario(
        {
            "call": WEBHOOK_NODE,
            "after": mail("Your manager is {{ vars.crm.manager }}"),
            "failed": mail("Sorry"),
        }
    )
    return scenario, enter(scenario, make_profile()).steps[-1]


def test_webhook_node_calls_the_rendered_request_and_waits(calling, pick):
    _, step = calling

    [call] = pick(step, CallWebhook)
    assert call.method == "PUT"
    assert call.url == "https://crm.example/api/ada"
    assert call.headers == {"X-Name": "Ada"}
    assert call.body == '{"email": "ada@example.com"}'
    assert call.timeout == timedelta(seconds=10)
    assert call.step == step.instance.step
    assert call.node == "call"
    assert step.instance.status == ACTIVE
    assert step.instance.waiting == WEBHOOK
    assert pick(step, Send) == []


def test_webhook_ok_saves_the_response_and_goes_on(calling, now, pick, path_of):
    scenario, step = calling
    result = WebhookResult(step.instance.step, ok=True, status=200, body={"manager": "Bob"})

    done = advance(scenario, step.instance, step.profile, result, now)

    assert done.instance.vars["crm"] == {"manager": "Bob"}
    assert [s.subject for s in pick(done, Send)] == ["Your manager is Bob"]
    assert path_of(done) == [("call", "ok"), ("after", "sent")]


@pytest.mark.parametrize(("status", "outcome"), [(500, "error 500"), (None, "error timeout")])
def test_webhook_error_goes_to_on_error(calling, now, pick, path_of, status, outcome):
    scenario, step = calling
    result = WebhookResult(step.instance.step, ok=False, status=status)

    done = advance(scenario, step.instance, step.profile, result, now)

    assert [s.subject for s in pick(done, Send)] == ["Sorry"]
    assert path_of(done)[0] == ("call", outcome)
    assert "crm" not in done.instance.vars


def test_webhook_error_without_on_error_ends_with_an_error(
    make_scenario, make_profile, enter, now, pick
):
    node = {**WEBHOOK_NODE, "on_error": None, "next": None}
    scenario = make_scenario({"call": node})
    step = enter(scenario, make_profile()).steps[-1]

    done = advance(
        scenario, step.instance, step.profile, WebhookResult(step.instance.step, False, 503), now
    )

    assert done.instance.status == ERROR
    assert [(e.status, e.node) for e in pick(done, Exit)] == [(ERROR, "call")]


def test_a_webhook_that_renders_too_much_takes_on_error_without_calling(
    make_scenario, make_profile, enter, pick, path_of
):
    node = {**WEBHOOK_NODE, "body": "{{ profile.bio }}", "headers": {"X-Bio": "{{ profile.bio }}"}}
    scenario = make_scenario({"call": node, "after": mail("Done"), "failed": mail("Sorry")})

    step = enter(scenario, make_profile(bio="x" * 150_000)).steps[-1]

    assert pick(step, CallWebhook) == []
    assert [s.subject for s in pick(step, Send)] == ["Sorry"]
    (call, outcome), after = path_of(step)
    assert call == "call"
    assert outcome.startswith("error: the call renders 300")
    assert after == ("failed", "sent")
    assert step.instance.status == COMPLETED


def test_a_webhook_that_renders_too_much_without_on_error_ends_with_an_error(
    make_scenario, make_profile, enter, pick
):
    node = {**WEBHOOK_NODE, "body": "{{ profile.bio * 2 }}", "on_error": None, "next": None}
    scenario = make_scenario({"call": node})

    step = enter(scenario, make_profile(bio="x" * 150_000)).steps[-1]

    assert pick(step, CallWebhook) == []
    assert pick(step, Exit) == [Exit("i1", ERROR, "render_limit", "call")]


def test_a_webhook_result_for_another_step_is_ignored(calling, now):
    scenario, step = calling

    stale = WebhookResult(step.instance.step - 1, ok=True, status=200, body={})
    result = advance(scenario, step.instance, step.profile, stale, now)

    assert result.effects == []
    assert result.instance.waiting == WEBHOOK


def test_webhook_timeout_setting(make_scenario, make_profile, enter, pick):
    scenario = make_scenario(
        {"call": {**WEBHOOK_NODE, "timeout": "PT20S", "on_error": None, "next": None}}
    )

    [call] = pick(enter(scenario, make_profile()).steps[-1], CallWebhook)

    assert call.timeout == timedelta(seconds=20)


# --- condition and split -----------------------------------------------------------------

VIP = {"field": "profile.tier", "op": "eq", "value": "vip"}


@pytest.mark.parametrize(
    ("tier", "subject"), [("vip", "Hello VIP"), ("basic", "Hello"), (None, "Hello")]
)
def test_condition_branches_once(make_scenario, make_profile, enter, pick, path_of, tier, subject):
    scenario = make_scenario(
        {
            "check": {"type": "condition", "if": VIP, "then": "vip", "else": "other"},
            "vip": mail("Hello VIP"),
            "other": mail("Hello"),
        }
    )

    step = enter(scenario, make_profile(tier=tier)).steps[-1]

    assert [s.subject for s in pick(step, Send)] == [subject]
    assert path_of(step)[0] == ("check", "then" if tier == "vip" else "else")


def test_condition_without_a_branch_completes(make_scenario, make_profile, enter, pick):
    scenario = make_scenario(
        {"check": {"type": "condition", "if": VIP, "then": "vip"}, "vip": mail("x")}
    )

    step = enter(scenario, make_profile(tier="basic")).steps[-1]

    assert step.instance.status == COMPLETED
    assert pick(step, Send) == []


SPLIT = {
    "type": "split",
    "branches": [
        {
            "name": "big spenders",
            "if": {"field": "profile.spent", "op": "gte", "value": 1000},
            "next": "big",
        },
        {
            "name": "spenders",
            "if": {"field": "profile.spent", "op": "gte", "value": 100},
            "next": "mid",
        },
        {"if": {"field": "profile.city", "op": "eq", "value": "Berlin"}, "next": "berlin"},
    ],
    "else": "rest",
}


@pytest.mark.parametrize(
    ("fields", "subject", "outcome"),
    [
        ({"spent": 5000, "city": "Berlin"}, "big", "big spenders"),  # the first match wins
        ({"spent": 500}, "mid", "spenders"),
        ({"spent": 5, "city": "Berlin"}, "berlin", "branch 3"),
        ({"spent": 5, "city": "Paris"}, "rest", "else"),
        ({}, "rest", "else"),
    ],
)
def test_split_takes_the_first_matching_branch(
    make_scenario, make_profile, enter, pick, path_of, fields, subject, outcome
):
    scenario = make_scenario(
        {"split": SPLIT, **{name: mail(name) for name in ("big", "mid", "berlin", "rest")}}
    )

    step = enter(scenario, make_profile(**fields)).steps[-1]

    assert [s.subject for s in pick(step, Send)] == [subject]
    assert path_of(step)[0] == ("split", outcome)


def test_split_allows_at_most_ten_branches(make_scenario):
    branch = {"if": VIP, "next": "x"}
    make_scenario({"split": {"type": "split", "branches": [branch] * 10}, "x": mail("x")})

    with pytest.raises(ScenarioInvalid, match="branches"):
        make_scenario({"split": {"type": "split", "branches": [branch] * 11}, "x": mail("x")})


# --- ab_split --------------------------------------------------------------------------


def ab_scenario(make_scenario, *percents: int):
    names = [f"v{i}" for i in range(len(percents))]
    branches = [{"percent": p, "next": n} for p, n in zip(percents, names, strict=True)]
    return make_scenario(
        {"ab": {"type": "ab_split", "branches": branches}, **{n: mail(n) for n in names}}
    )


def branch_taken(step) -> str:
    return step.instance.path[-1]["node"]


def test_ab_split_is_stable_per_instance(make_scenario, make_profile, enter):
    scenario = ab_scenario(make_scenario, 50, 50)
    profile = make_profile()

    for instance_id in ("i1", "i2", "i3", "abc"):
        first = branch_taken(enter(scenario, profile, instance_id=instance_id).steps[-1])
        again = branch_taken(enter(scenario, profile, instance_id=instance_id).steps[-1])
        assert first == again


@pytest.mark.parametrize("percents", [(50, 50), (20, 30, 50), (10, 0, 90)])
def test_ab_split_is_roughly_proportional(make_scenario, make_profile, enter, percents):
    scenario = ab_scenario(make_scenario, *percents)
    profile = make_profile()

    taken = Counter(
        branch_taken(enter(scenario, profile, instance_id=f"instance-{n}").steps[-1])
        for n in range(2000)
    )

    for index, percent in enumerate(percents):
        expected = 2000 * percent / 100
        assert abs(taken[f"v{index}"] - expected) <= 0.2 * expected, (taken, percents)


def test_ab_split_percents_must_sum_to_100(make_scenario):
    with pytest.raises(ScenarioInvalid, match="sum to 90"):
        ab_scenario(make_scenario, 50, 40)


# --- update_profile --------------------------------------------------------------------


def test_update_profile_ops_and_their_effect(make_scenario, make_profile, enter, now, pick):
    node = {
        "type": "update_profile",
        "ops": [
            {"field": "tier", "op": "set", "value": "gold"},
            {"field": "city", "op": "set", "value": "Berlin"},  # unchanged
            {"field": "coupon", "op": "clear"},
            {"field": "last_seen", "op": "now"},
            {"field": "points", "op": "increment", "value": 100},
            {"field": "credits", "op": "decrement", "value": 2},
            {"field": "visits", "op": "decrement"},  # by one
        ],
        "next": "check",
    }
    check = {
        "type": "condition",
        "if": {"field": "profile.tier", "op": "eq", "value": "gold"},
        "then": "gold",
    }
    scenario = make_scenario({"update": node, "check": check, "gold": mail("Gold")})
    profile = make_profile(
        tier="silver", city="Berlin", coupon="X1", points=50, credits=5, visits=3
    )

    step = enter(scenario, profile).steps[-1]

    [update] = pick(step, UpdateProfile)
    assert (update.profile_db, update.profile_id) == ("default", "ada")
    assert update.set == {"tier": "gold", "city": "Berlin", "last_seen": format_datetime(now)}
    assert update.remove == ("coupon",)
    assert update.add == {"points": 100, "credits": -2, "visits": -1}
    assert update.consents == {}
    fields = step.profile.fields
    assert fields["tier"] == "gold"
    assert "coupon" not in fields
    assert (fields["points"], fields["credits"], fields["visits"]) == (150, 3, 2)
    assert fields["last_seen"] == "2026-06-10T10:00:00Z"
    # The next node sees the updated profile; the caller's profile is untouched.
    assert [s.subject for s in pick(step, Send)] == ["Gold"]
    assert profile.fields["tier"] == "silver"

    [changed] = [e.event for e in pick(step, EmitEvent) if e.event.type == "profile.field_changed"]
    assert changed.data["fields"] == {
        "tier": {"old": "silver", "new": "gold"},
        "coupon": {"old": "X1", "new": None},
        "last_seen": {"old": None, "new": "2026-06-10T10:00:00Z"},
        "points": {"old": 50, "new": 150},
        "credits": {"old": 5, "new": 3},
        "visits": {"old": 3, "new": 2},
    }
    assert changed.occurred_at == now


def test_increment_of_a_missing_field_starts_from_zero(make_scenario, make_profile, enter, pick):
    node = {"type": "update_profile", "ops": [{"field": "points", "op": "increment", "value": 10}]}
    scenario = make_scenario({"update": node})

    step = enter(scenario, make_profile()).steps[-1]

    assert step.profile.fields["points"] == 10
    assert pick(step, UpdateProfile)[0].add == {"points": 10}


def test_update_profile_without_a_change_emits_no_field_changed(
    make_scenario, make_profile, enter, pick
):
    node = {"type": "update_profile", "ops": [{"field": "tier", "op": "set", "value": "gold"}]}
    scenario = make_scenario({"update": node})

    step = enter(scenario, make_profile(tier="gold")).steps[-1]

    assert pick(step, EmitEvent) == []


def test_set_then_increment_in_one_node_is_one_value(make_scenario, make_profile, enter, pick):
    node = {
        "type": "update_profile",
        "ops": [
            {"field": "points", "op": "set", "value": 10},
            {"field": "points", "op": "increment", "value": 5},
        ],
    }
    scenario = make_scenario({"update": node})

    step = enter(scenario, make_profile(points=100)).steps[-1]

    [update] = pick(step, UpdateProfile)
    assert (update.set, update.add) == ({"points": 15}, {})
    assert step.profile.fields["points"] == 15


def test_clear_then_increment_in_one_node_is_one_value(make_scenario, make_profile, enter, pick):
    node = {
        "type": "update_profile",
        "ops": [
            {"field": "points", "op": "clear"},
            {"field": "points", "op": "increment", "value": 5},
        ],
    }
    scenario = make_scenario({"update": node})

    step = enter(scenario, make_profile(points=100)).steps[-1]

    [update] = pick(step, UpdateProfile)
    # Whatever order the runtime applies set/remove/add in, the field ends as 5.
    assert (update.set, update.remove, update.add) == ({"points": 5}, (), {})
    assert step.profile.fields["points"] == 5
    [changed] = pick(step, EmitEvent)
    assert changed.event.data["fields"] == {"points": {"old": 100, "new": 5}}


def test_field_changed_reports_the_value_before_the_node(make_scenario, make_profile, enter, pick):
    node = {
        "type": "update_profile",
        "ops": [
            {"field": "tier", "op": "set", "value": "gold"},
            {"field": "tier", "op": "set", "value": "platinum"},
            {"field": "city", "op": "set", "value": "Paris"},
            {"field": "city", "op": "set", "value": "Berlin"},  # back to where it was
        ],
    }
    scenario = make_scenario({"update": node})

    step = enter(scenario, make_profile(tier="silver", city="Berlin")).steps[-1]

    [changed] = pick(step, EmitEvent)
    assert changed.event.data["fields"] == {"tier": {"old": "silver", "new": "platinum"}}


def test_consent_grant_and_revoke(make_scenario, make_profile, enter, pick):
    node = {
        "type": "update_profile",
        "ops": [
            {"consent": "sms", "op": "revoke"},
            {"consent": "push", "op": "grant"},
            {"consent": "email", "op": "grant"},  # already granted: no change
        ],
        "next": "sms",
    }
    sms = {"type": "send", "channel": "sms", "template": {"body": "Hi"}}
    scenario = make_scenario({"update": node, "sms": sms})
    profile = make_profile(consents={"email": True, "sms": True})

    step = enter(scenario, profile).steps[-1]

    [update] = pick(step, UpdateProfile)
    assert update.consents == {"sms": False, "push": True}
    assert step.profile.consent("push")
    assert not step.profile.consent("sms")
    assert profile.consent("sms")  # the caller's view is unchanged
    events = [e.event for e in pick(step, EmitEvent)]
    assert [(e.type, e.data) for e in events] == [
        ("consent.changed", {"channel": "sms", "granted": False}),
        ("consent.changed", {"channel": "push", "granted": True}),
    ]
    # Every emitted event has its own id: the runtime drops an id it has seen.
    assert len({e.id for e in events}) == 2
    # The send right after sees the revoked consent.
    assert pick(step, Send) == []
    assert [s.reason for s in pick(step, SendSkipped)] == ["no_consent"]


def test_emitted_event_ids_are_deterministic(make_scenario, make_profile, make_event, enter, pick):
    node = {"type": "update_profile", "ops": [{"field": "tier", "op": "set", "value": "gold"}]}
    scenario = make_scenario({"update": node})
    event = make_event(id="fixed")

    first = pick(enter(scenario, make_profile(), event).steps[-1], EmitEvent)
    again = pick(enter(scenario, make_profile(), event).steps[-1], EmitEvent)

    assert [e.event.id for e in first] == [e.event.id for e in again]


# --- promo_code ------------------------------------------------------------------------

PROMO = {"type": "promo_code", "pool": "WELCOME10", "next": "promo_email", "on_empty": "sorry"}
PROMO_EMAIL = mail("Your code {{ vars.promo_code }}")


@pytest.fixture
def taking(make_scenario, make_profile, enter):
    scenario = make_scenario(
        {"code": PROMO, "promo_email": PROMO_EMAIL, "sorry": mail("No codes left")}
    )
    return scenario, enter(scenario, make_profile()).steps[-1]


def test_promo_code_takes_one_code_from_the_pool(taking, pick):
    _, step = taking

    [take] = pick(step, TakePromoCode)
    assert (take.pool, take.node, take.step) == ("WELCOME10", "code", step.instance.step)
    assert step.instance.waiting == PROMO_CODE
    assert pick(step, Send) == []


def test_promo_code_is_saved_in_vars(taking, now, pick, path_of):
    scenario, step = taking

    done = advance(
        scenario, step.instance, step.profile, PromoCodeResult(step.instance.step, "W10-ABC"), now
    )

    assert done.instance.vars["promo_code"] == "W10-ABC"
    assert [s.subject for s in pick(done, Send)] == ["Your code W10-ABC"]
    assert path_of(done)[0] == ("code", "code")
    (issued,) = [e.event for e in pick(done, EmitEvent) if e.event.type == "promo_code.issued"]
    assert issued.data == {"pool": "WELCOME10", "code": "W10-ABC", "derived": True}


def test_an_empty_pool_issues_no_code(taking, now, pick):
    scenario, step = taking
    done = advance(
        scenario, step.instance, step.profile, PromoCodeResult(step.instance.step, None), now
    )
    assert [e for e in pick(done, EmitEvent) if e.event.type == "promo_code.issued"] == []


def test_promo_code_custom_save_as(make_scenario, make_profile, enter, now, pick):
    scenario = make_scenario(
        {
            "code": {**PROMO, "save_as": "coupon", "on_empty": None},
            "promo_email": mail("{{ vars.coupon }}"),
        }
    )
    step = enter(scenario, make_profile()).steps[-1]

    done = advance(
        scenario, step.instance, step.profile, PromoCodeResult(step.instance.step, "C-1"), now
    )

    assert [s.subject for s in pick(done, Send)] == ["C-1"]


def test_an_empty_pool_goes_to_on_empty(taking, now, pick, path_of):
    scenario, step = taking

    done = advance(
        scenario, step.instance, step.profile, PromoCodeResult(step.instance.step, None), now
    )

    assert [s.subject for s in pick(done, Send)] == ["No codes left"]
    assert path_of(done)[0] == ("code", "empty")


def test_an_empty_pool_without_on_empty_ends_the_journey(
    make_scenario, make_profile, enter, now, pick
):
    scenario = make_scenario({"code": {**PROMO, "on_empty": None}, "promo_email": PROMO_EMAIL})
    step = enter(scenario, make_profile()).steps[-1]

    done = advance(
        scenario, step.instance, step.profile, PromoCodeResult(step.instance.step, None), now
    )

    assert not done.instance.active
    assert pick(done, Send) == []


def test_a_promo_code_result_for_another_step_is_ignored(taking, now):
    scenario, step = taking

    result = advance(
        scenario, step.instance, step.profile, PromoCodeResult(step.instance.step + 1, "X"), now
    )

    assert result.effects == []
    assert result.instance.waiting == PROMO_CODE


def test_promo_code_is_taken_once_per_instance_when_looping_back(
    make_scenario, make_profile, enter, now, pick
):
    scenario = make_scenario(
        {
            "code": PROMO,
            "promo_email": {**PROMO_EMAIL, "next": "later"},
            "later": {"type": "pause", "duration": "P7D", "next": "code"},
            "sorry": mail("No codes left"),
        }
    )
    step = enter(scenario, make_profile()).steps[-1]
    step = advance(
        scenario, step.instance, step.profile, PromoCodeResult(step.instance.step, "W10-ABC"), now
    )
    [timer] = pick(step, SetTimer)

    again = advance(scenario, step.instance, step.profile, WakeUp(timer.step), timer.wake_at)

    assert pick(again, TakePromoCode) == []
    assert [s.subject for s in pick(again, Send)] == ["Your code W10-ABC"]
    assert again.instance.node == "later"


# --- jump and exit ---------------------------------------------------------------------


def test_jump_moves_the_profile_into_another_scenario(
    make_scenario, make_profile, make_event, enter, now, pick
):
    scenario = make_scenario({"go": {"type": "jump", "scenario": "s2", "node": "start_here"}})
    entry = make_event("order.created", data={"order_id": "A1"})

    step = enter(scenario, make_profile(), entry).steps[-1]

    [jump] = pick(step, Jump)
    assert (jump.scenario_id, jump.node, jump.profile_id, jump.profile_db) == (
        "s2",
        "start_here",
        "ada",
        "default",
    )
    assert jump.event.data == {"order_id": "A1"}
    assert jump.event.occurred_at == now
    assert jump.event.id
    assert step.instance.status == COMPLETED
    assert step.instance.reason == "jump"
    assert [(e.status, e.reason, e.node) for e in pick(step, Exit)] == [(COMPLETED, "jump", "go")]


def test_jump_without_node_goes_to_the_entry(make_scenario, make_profile, enter, pick):
    scenario = make_scenario({"go": {"type": "jump", "scenario": "s2"}})

    [jump] = pick(enter(scenario, make_profile()).steps[-1], Jump)

    assert jump.node is None


def test_exit_node_ends_the_journey(make_scenario, make_profile, enter, pick, path_of):
    scenario = make_scenario(
        {"first": mail("one", next="stop"), "stop": {"type": "exit"}, "never": mail("two")}
    )

    step = enter(scenario, make_profile()).steps[-1]

    assert [s.subject for s in pick(step, Send)] == ["one"]
    assert step.instance.status == COMPLETED
    assert step.instance.node == "stop"
    assert [(e.status, e.node) for e in pick(step, Exit)] == [(COMPLETED, "stop")]
    assert path_of(step) == [("first", "sent"), ("stop", "exit")]


def test_a_node_without_next_completes_the_journey(make_scenario, make_profile, enter, pick):
    step = enter(make_scenario({"only": mail("one")}), make_profile()).steps[-1]

    assert step.instance.status == COMPLETED
    assert step.instance.reason is None
    assert not step.instance.active
    assert step.instance.ended_at is not None
    assert [e.status for e in pick(step, Exit)] == [COMPLETED]


def test_ended_instances_ignore_every_stimulus(make_scenario, make_profile, make_event, enter, now):
    scenario = make_scenario({"only": mail("one")})
    step = enter(scenario, make_profile()).steps[-1]
    assert step.instance.status == COMPLETED

    for stimulus in (
        WakeUp(step.instance.step),
        WebhookResult(step.instance.step, True),
        PromoCodeResult(step.instance.step, "X"),
    ):
        result = advance(scenario, step.instance, step.profile, stimulus, now + timedelta(days=1))
        assert result.effects == []
        assert result.instance.status == COMPLETED


def test_update_profile_of_an_address_emits_its_contact_signals(
    make_scenario, make_profile, enter, pick
):
    ops = [
        {"field": "email", "op": "set", "value": "ada@new.example"},
        {"field": "email_confirmed", "op": "set", "value": True},
    ]
    scenario = make_scenario({"update": {"type": "update_profile", "ops": ops}})

    step = enter(scenario, make_profile(email="ada@example.com")).steps[-1]

    emitted = {effect.event.type: effect.event for effect in pick(step, EmitEvent)}
    assert set(emitted) == {"profile.field_changed", "email.changed", "email.confirmed"}
    assert emitted["email.changed"].data == {
        "old": "ada@example.com", "new": "ada@new.example", "derived": True
    }  # fmt: skip
    assert emitted["email.confirmed"].data == {"email": "ada@new.example", "derived": True}
    assert len({event.id for event in emitted.values()}) == 3  # each its own id
