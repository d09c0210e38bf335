"""Scenario validation (SPEC §1, §1.6): every problem, each with its JSON path, in one call."""

import copy
from typing import Any

import pytest

from chalicelib.scenarios.model import Scenario, scenario_json_schema
from chalicelib.scenarios.validation import (
    Problem,
    ScenarioInvalid,
    check_scenario,
    json_path,
    validate_scenario,
)

# The example of SPEC §1, verbatim.
WELCOME_SERIES: dict[str, Any] = {
    "name": "Welcome series",
    "description": "From sign-up to first purchase",
    "tags": ["onboarding"],
    "group": "marketing",
    "profile_db": "customers",
    "reentry": "never",
    "exit_on": [{"event": "order.created"}],
    "keep_profiles_on_stop": True,
    "quiet_hours": {"start": "21:00", "end": "09:00"},
    "frequency_cap": {"max": 3, "per": "P1D", "on_cap": "delay"},
    "entry": "welcome_email",
    "triggers": [
        {"id": "signup", "type": "event", "event": "profile.imported", "next": "welcome_email"}
    ],
    "nodes": {
        "welcome_email": {
            "type": "send",
            "channel": "email",
            "template": {"subject": "Welcome, {{ profile.first_name }}", "body": "..."},
            "next": "wait_day",
        },
        "wait_day": {"type": "pause", "duration": "P1D", "next": "confirmed"},
        "confirmed": {
            "type": "condition",
            "if": {
                "event_count": {"type": "subscription.confirmed", "since": "entry"},
                "op": "gte",
                "value": 1,
            },
            "then": "bonus",
            "else": "sms_sent",
        },
        "bonus": {
            "type": "update_profile",
            "ops": [{"field": "loyalty_points", "op": "increment", "value": 100}],
            "next": "code",
        },
        "code": {"type": "promo_code", "pool": "WELCOME10", "next": "promo_email"},
        "promo_email": {
            "type": "send",
            "channel": "email",
            "template": {"subject": "Your code", "body": "Use {{ vars.promo_code }}"},
        },
        "sms_sent": {
            "type": "condition",
            "if": {
                "message": {"channel": "sms", "status": "sent", "since": "entry"},
                "exists": True,
            },
            "then": "call_center",
            "else": "reminder_sms",
        },
        "call_center": {
            "type": "webhook",
            "method": "POST",
            "url": "https://crm.example/api/callback",
            "body": '{"phone": "{{ profile.phone }}"}',
        },
        "reminder_sms": {
            "type": "send",
            "channel": "sms",
            "template": {"body": "Confirm your e-mail"},
            "next": "wait_sms",
        },
        "wait_sms": {"type": "pause", "duration": "P1D", "next": "sms_sent"},
    },
}


def scenario(**changes: Any) -> dict[str, Any]:
    """A copy of the welcome series with top-level keys replaced."""
    document = copy.deepcopy(WELCOME_SERIES)
    document.update(changes)
    return document


def with_nodes(**nodes: Any) -> dict[str, Any]:
    """The welcome series plus (or with replaced) nodes."""
    document = copy.deepcopy(WELCOME_SERIES)
    document["nodes"].update(nodes)
    return document


def problems_of(document: Any) -> dict[str, str]:
    """Problems as {path: message}; two problems at one path are joined with ' | '."""
    parsed, problems = check_scenario(document)
    assert parsed is None if problems else isinstance(parsed, Scenario)
    assert len(problems) == len(set(problems)), problems
    found: dict[str, str] = {}
    for problem in problems:
        found[problem.path] = " | ".join(filter(None, [found.get(problem.path), problem.message]))
    return found


def only_problem(document: Any) -> tuple[str, str]:
    found = problems_of(document)
    assert len(found) == 1, found
    return next(iter(found.items()))


def cond(condition: Any, **links: str) -> dict[str, Any]:
    return {"type": "condition", "if": condition, **links}


SMS_OK = {"consent": "sms"}


# --- the clean example -------------------------------------------------------------------


def test_spec_example_validates_clean() -> None:
    parsed, problems = check_scenario(copy.deepcopy(WELCOME_SERIES))
    assert problems == []
    assert isinstance(parsed, Scenario)
    assert parsed.name == "Welcome series"
    assert parsed.reentry == "never"
    assert set(parsed.nodes) == set(WELCOME_SERIES["nodes"])
    assert parsed.triggers[0].id == "signup"


def test_validate_scenario_returns_the_model() -> None:
    parsed = validate_scenario(copy.deepcopy(WELCOME_SERIES))
    assert isinstance(parsed, Scenario)
    assert parsed.frequency_cap is not None
    assert parsed.frequency_cap.on_cap == "delay"


def test_defaults_of_a_minimal_scenario() -> None:
    parsed = validate_scenario({"name": "Minimal"})
    assert parsed.profile_db == "default"
    assert parsed.reentry == "when_finished"
    assert parsed.keep_profiles_on_stop is True
    assert parsed.triggers == []
    assert parsed.nodes == {}


def test_validate_scenario_raises_with_every_problem() -> None:
    document = with_nodes(wait_day={"type": "pause", "duration": "P1M", "next": "nowhere"})
    with pytest.raises(ScenarioInvalid) as caught:
        validate_scenario(document)
    error = caught.value
    assert isinstance(error, ValueError)
    assert {p.path for p in error.problems} == {
        "$.nodes.wait_day.duration",
        "$.nodes.wait_day.next",
    }
    assert all(isinstance(p, Problem) for p in error.problems)
    assert str(error).startswith("2 problem(s):")
    assert "$.nodes.wait_day.next" in str(error)


def test_scenario_invalid_message_is_capped_at_five() -> None:
    error = ScenarioInvalid([Problem(f"$.nodes.n{i}", "bad") for i in range(7)])
    assert len(error.problems) == 7
    assert "(and 2 more)" in str(error)
    assert "$.nodes.n5" not in str(error)


def test_problem_as_dict() -> None:
    assert Problem("$.entry", "missing").as_dict() == {"path": "$.entry", "message": "missing"}


@pytest.mark.parametrize("document", [[], "scenario", None, 42, [{"name": "x"}]])
def test_non_object_document(document: Any) -> None:
    assert check_scenario(document) == (None, [Problem("$", "a scenario is a JSON object")])
    with pytest.raises(ScenarioInvalid) as caught:
        validate_scenario(document)
    assert [p.path for p in caught.value.problems] == ["$"]


def test_name_is_required() -> None:
    document = scenario()
    del document["name"]
    assert only_problem(document)[0] == "$.name"


# --- dangling references -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"type": "exit", "next": "ghost"}, None),  # exit has no next: an unknown field
        (
            {
                "type": "send",
                "channel": "email",
                "template": {"body": "b"},
                "next": "ghost",
            },
            "$.nodes.x.next",
        ),
        (cond(SMS_OK, then="ghost", **{"else": "bonus"}), "$.nodes.x.then"),
        (cond(SMS_OK, then="bonus", **{"else": "ghost"}), "$.nodes.x.else"),
        (
            {"type": "split", "branches": [{"if": SMS_OK, "next": "bonus"}], "else": "ghost"},
            "$.nodes.x.else",
        ),
        (
            {
                "type": "split",
                "branches": [{"if": SMS_OK, "next": "bonus"}, {"if": SMS_OK, "next": "ghost"}],
            },
            "$.nodes.x.branches[1].next",
        ),
        (
            {"type": "ab_split", "branches": [{"percent": 30, "next": "ghost"}, {"percent": 70}]},
            "$.nodes.x.branches[0].next",
        ),
        (
            {"type": "webhook", "url": "https://x.example", "on_error": "ghost"},
            "$.nodes.x.on_error",
        ),
        (
            {"type": "wait_for", "event": "e", "timeout": "P1D", "timeout_next": "ghost"},
            "$.nodes.x.timeout_next",
        ),
        ({"type": "promo_code", "pool": "P", "on_empty": "ghost"}, "$.nodes.x.on_empty"),
        ({"type": "pause", "duration": "P1D", "next": "ghost"}, "$.nodes.x.next"),
    ],
)
def test_dangling_node_link(node: dict[str, Any], path: str | None) -> None:
    found = problems_of(with_nodes(x=node))
    if path is None:  # both problems are reported at the same path
        assert found == {"$.nodes.x.next": "unknown field | 'ghost' is not a node of this scenario"}
    else:
        assert found == {path: "'ghost' is not a node of this scenario"}


def test_dangling_entry_and_trigger_next() -> None:
    document = scenario(
        entry="ghost_entry",
        triggers=[{"id": "signup", "type": "event", "event": "e", "next": "ghost_trigger"}],
    )
    assert problems_of(document) == {
        "$.entry": "'ghost_entry' is not a node of this scenario",
        "$.triggers[0].next": "'ghost_trigger' is not a node of this scenario",
    }


def test_every_dangling_link_in_one_call() -> None:
    document = {
        "name": "x",
        "entry": "e0",
        "triggers": [{"id": "t", "type": "webhook", "next": "e1"}],
        "nodes": {
            "c": cond(SMS_OK, then="e2", **{"else": "e3"}),
            "s": {"type": "split", "branches": [{"if": SMS_OK, "next": "e4"}], "else": "e5"},
            "w": {"type": "webhook", "url": "https://x.example", "next": "e6", "on_error": "e7"},
            "f": {"type": "wait_for", "event": "e", "next": "e8", "timeout_next": "e9"},
            "p": {"type": "promo_code", "pool": "P", "next": "e10", "on_empty": "e11"},
        },
    }
    assert set(problems_of(document)) == {
        "$.entry",
        "$.triggers[0].next",
        "$.nodes.c.then",
        "$.nodes.c.else",
        "$.nodes.s.branches[0].next",
        "$.nodes.s.else",
        "$.nodes.w.next",
        "$.nodes.w.on_error",
        "$.nodes.f.next",
        "$.nodes.f.timeout_next",
        "$.nodes.p.next",
        "$.nodes.p.on_empty",
    }


def test_links_to_existing_nodes_are_fine() -> None:
    document = with_nodes(
        x={"type": "split", "branches": [{"if": SMS_OK, "next": "bonus"}], "else": "code"},
        y={"type": "ab_split", "branches": [{"percent": 50, "next": "code"}, {"percent": 50}]},
    )
    assert problems_of(document) == {}


# --- counts and sums ---------------------------------------------------------------------


def _webhook_trigger(i: int) -> dict[str, Any]:
    return {"id": f"t{i}", "type": "webhook", "next": "welcome_email"}


def test_ten_triggers_are_allowed_eleven_are_not() -> None:
    assert problems_of(scenario(triggers=[_webhook_trigger(i) for i in range(10)])) == {}
    path, message = only_problem(scenario(triggers=[_webhook_trigger(i) for i in range(11)]))
    assert path == "$.triggers"
    assert "10" in message


def test_ten_split_branches_are_allowed_eleven_are_not() -> None:
    branch = {"if": SMS_OK, "next": "bonus"}
    assert problems_of(with_nodes(x={"type": "split", "branches": [branch] * 10})) == {}
    path, message = only_problem(with_nodes(x={"type": "split", "branches": [branch] * 11}))
    assert path == "$.nodes.x.branches"
    assert "10" in message


def test_split_needs_a_branch() -> None:
    assert only_problem(with_nodes(x={"type": "split", "branches": []}))[0] == "$.nodes.x.branches"


@pytest.mark.parametrize("percents", [[50, 40], [50, 60], [100, 1], [0]])
def test_ab_split_must_sum_to_100(percents: list[int]) -> None:
    node = {"type": "ab_split", "branches": [{"percent": p, "next": "bonus"} for p in percents]}
    path, message = only_problem(with_nodes(x=node))
    assert path == "$.nodes.x.branches"
    assert f"sum to {sum(percents)}, not 100" in message


@pytest.mark.parametrize("percents", [[100], [50, 50], [10, 20, 30, 40], [0, 100]])
def test_ab_split_summing_to_100_is_fine(percents: list[int]) -> None:
    node = {"type": "ab_split", "branches": [{"percent": p, "next": "bonus"} for p in percents]}
    assert problems_of(with_nodes(x=node)) == {}


def test_ab_split_percent_out_of_range() -> None:
    node = {"type": "ab_split", "branches": [{"percent": 150}, {"percent": -50}]}
    found = problems_of(with_nodes(x=node))
    assert "$.nodes.x.branches[0].percent" in found
    assert "$.nodes.x.branches[1].percent" in found


# --- push ttl ------------------------------------------------------------------------------


def _push(ttl: str, channel: str = "push") -> dict[str, Any]:
    return {"type": "send", "channel": channel, "template": {"title": "Hi"}, "ttl": ttl}


@pytest.mark.parametrize("ttl", ["PT1H", "PT72H", "P3D", "P1DT12H"])
def test_push_ttl_up_to_72_hours(ttl: str) -> None:
    assert problems_of(with_nodes(x=_push(ttl))) == {}


@pytest.mark.parametrize("ttl", ["PT72H1S", "PT73H", "P4D", "P1W", "PT0S", "-PT1H"])
def test_push_ttl_over_72_hours_or_not_positive(ttl: str) -> None:
    path, message = only_problem(with_nodes(x=_push(ttl)))
    assert path == "$.nodes.x.ttl"
    assert "at most PT72H" in message


def _call(timeout: str) -> dict[str, Any]:
    return {"type": "webhook", "url": "https://crm.example/", "timeout": timeout}


@pytest.mark.parametrize("timeout", ["PT1S", "PT10S", "PT25S"])
def test_webhook_timeout_up_to_25_seconds(timeout: str) -> None:
    assert problems_of(with_nodes(x=_call(timeout))) == {}


@pytest.mark.parametrize("timeout", ["PT26S", "PT1M", "PT0S"])
def test_webhook_timeout_over_25_seconds_or_not_positive(timeout: str) -> None:
    path, message = only_problem(with_nodes(x=_call(timeout)))
    assert path == "$.nodes.x.timeout"
    assert "at most PT25S" in message


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_ttl_on_a_non_push_send(channel: str) -> None:
    path, message = only_problem(with_nodes(x=_push("PT1H", channel)))
    assert path == "$.nodes.x.ttl"
    assert "push sends only" in message


def test_push_ttl_in_months_is_a_duration_problem() -> None:
    path, message = only_problem(with_nodes(x=_push("P1M")))
    assert path == "$.nodes.x.ttl"
    assert "months" in message


# --- cycles --------------------------------------------------------------------------------


def test_cycle_without_waiting_node() -> None:
    document = with_nodes(
        loop_a=cond(SMS_OK, then="loop_b", **{"else": "bonus"}),
        loop_b={"type": "update_profile", "ops": [{"field": "n", "op": "now"}], "next": "loop_a"},
    )
    path, message = only_problem(document)
    assert path in ("$.nodes.loop_a", "$.nodes.loop_b")
    assert "passes through no waiting node" in message
    assert "loop_a" in message
    assert "loop_b" in message


def test_self_loop_is_a_cycle() -> None:
    path, message = only_problem(with_nodes(x=cond(SMS_OK, then="x")))
    assert path == "$.nodes.x"
    assert "x → x" in message


def test_cycle_through_split_branch() -> None:
    document = with_nodes(
        a={"type": "split", "branches": [{"if": SMS_OK, "next": "b"}], "else": "bonus"},
        b={"type": "send", "channel": "email", "template": {"body": "x"}, "next": "a"},
    )
    assert "passes through no waiting node" in only_problem(document)[1]


def test_cycle_is_reported_once() -> None:
    # Two entry points into the same loop: still one problem.
    document = with_nodes(
        a=cond(SMS_OK, then="b", **{"else": "c"}),
        b=cond(SMS_OK, then="c"),
        c=cond(SMS_OK, then="b"),
    )
    found = problems_of(document)
    assert len(found) == 1
    assert "b" in next(iter(found.values()))


@pytest.mark.parametrize(
    "waiting",
    [
        {"type": "pause", "duration": "P1D", "next": "a"},
        {"type": "best_time", "next": "a"},
        {"type": "wait_for", "event": "e", "timeout": "P1D", "next": "a", "timeout_next": "a"},
    ],
)
def test_cycle_through_a_waiting_node_is_fine(waiting: dict[str, Any]) -> None:
    document = with_nodes(a=cond(SMS_OK, then="w", **{"else": "bonus"}), w=waiting)
    assert problems_of(document) == {}


def test_spec_example_loop_through_pause_is_fine() -> None:
    # sms_sent → reminder_sms → wait_sms → sms_sent is a loop, through a pause.
    nodes = WELCOME_SERIES["nodes"]
    assert nodes["wait_sms"]["next"] == "sms_sent"
    assert problems_of(copy.deepcopy(WELCOME_SERIES)) == {}


# --- element problems ----------------------------------------------------------------------


def test_template_that_does_not_compile() -> None:
    node = {
        "type": "send",
        "channel": "email",
        "template": {"subject": "Hi {{ profile.name ", "body": "ok\n{% if %}"},
    }
    found = problems_of(with_nodes(x=node))
    assert set(found) == {"$.nodes.x.template.subject", "$.nodes.x.template.body"}
    assert found["$.nodes.x.template.subject"].startswith("template does not compile (line 1)")
    assert found["$.nodes.x.template.body"].startswith("template does not compile (line 2)")


def test_webhook_templates_are_checked() -> None:
    node = {
        "type": "webhook",
        "url": "https://x.example/{{ profile.id",
        "headers": {"X-Token": "{% end %}"},
        "body": "{{ }}",
    }
    found = problems_of(with_nodes(x=node))
    assert set(found) == {"$.nodes.x.url", "$.nodes.x.headers['X-Token']", "$.nodes.x.body"}


@pytest.mark.parametrize(
    ("duration", "fragment"),
    [("P1M", "months"), ("P1Y", "months"), ("3 days", "not an ISO 8601 duration"), ("", "ISO")],
)
def test_bad_pause_duration(duration: str, fragment: str) -> None:
    path, message = only_problem(
        with_nodes(wait_day={"type": "pause", "duration": duration, "next": "confirmed"})
    )
    assert path == "$.nodes.wait_day.duration"
    assert fragment in message


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"frequency_cap": {"max": 1, "per": "P1M"}}, "$.frequency_cap.per"),
        ({"actuality": "P1Y"}, "$.actuality"),
        ({"quiet_hours": {"start": "21:00", "end": "25:00"}}, "$.quiet_hours.end"),
        ({"quiet_hours": {"start": "9:00", "end": "10:00"}}, "$.quiet_hours.start"),
        ({"timezone": "Mars/Olympus"}, "$.timezone"),
        ({"timezone": "America"}, "$.timezone"),
        ({"reentry": "sometimes"}, "$.reentry"),
        ({"name": ""}, "$.name"),
    ],
)
def test_bad_scenario_settings(changes: dict[str, Any], path: str) -> None:
    assert only_problem(scenario(**changes))[0] == path


def _schedule(**timing: Any) -> dict[str, Any]:
    return {"id": "sched", "type": "schedule", "next": "welcome_email", **timing}


@pytest.mark.parametrize(
    ("timing", "path"),
    [
        ({"cron": "61 * * * *"}, "$.triggers[0].cron"),
        ({"cron": "0 10 * *"}, "$.triggers[0].cron"),
        ({"cron": "0 0 10 * * mon"}, "$.triggers[0].cron"),
        ({"cron": "every day"}, "$.triggers[0].cron"),
        ({"daily": "25:00"}, "$.triggers[0].daily"),
        ({"weekly": {"days": ["mon"], "at": "25:00"}}, "$.triggers[0].weekly.at"),
        ({"weekly": {"days": ["monday"], "at": "10:00"}}, "$.triggers[0].weekly.days[0]"),
        ({"weekly": {"days": [], "at": "10:00"}}, "$.triggers[0].weekly.days"),
        ({"monthly": {"day": 32, "at": "09:00"}}, "$.triggers[0].monthly.day"),
        ({"once": "2026-06-10T10:00:00"}, "$.triggers[0].once"),
        ({"daily": "10:00", "timezone": "Nowhere/Land"}, "$.triggers[0].timezone"),
        ({"daily": "10:00", "sample": {"from": 50, "to": 50}}, "$.triggers[0].sample"),
        ({"daily": "10:00", "sample": {"from": 0, "to": 101}}, "$.triggers[0].sample.to"),
    ],
)
def test_bad_schedule_trigger(timing: dict[str, Any], path: str) -> None:
    assert only_problem(scenario(triggers=[_schedule(**timing)]))[0] == path


@pytest.mark.parametrize("timing", [{}, {"daily": "10:00", "cron": "0 10 * * *"}])
def test_schedule_has_exactly_one_timing(timing: dict[str, Any]) -> None:
    path, message = only_problem(scenario(triggers=[_schedule(**timing)]))
    assert path == "$.triggers[0]"
    assert "exactly one of" in message


@pytest.mark.parametrize(
    "timing",
    [
        {"cron": "0 10 * * mon"},
        {"daily": "19:30", "timezone": "Europe/Berlin"},
        {"weekly": {"days": ["mon", "fri"], "at": "10:00"}},
        {"monthly": {"day": 1, "at": "09:00"}},
        {"once": "2026-06-10T10:00:00Z", "until": "2026-07-01T00:00:00+02:00"},
        {"daily": "10:00", "segment": {"ref": "vip"}, "sample": {"from": 0, "to": 50}},
        {"daily": "10:00", "segment": {"field": "profile.city", "op": "eq", "value": "Berlin"}},
    ],
)
def test_good_schedule_triggers(timing: dict[str, Any]) -> None:
    assert problems_of(scenario(triggers=[_schedule(**timing)])) == {}


def test_schedule_segment_ref_is_a_membership_condition() -> None:
    parsed = validate_scenario(
        scenario(triggers=[_schedule(daily="10:00", segment={"ref": "vip"})])
    )
    segment = parsed.triggers[0].segment  # type: ignore[union-attr]
    assert segment.segment == "vip"  # type: ignore[union-attr]
    assert segment.member is True  # type: ignore[union-attr]


def test_unknown_condition_operator() -> None:
    node = cond({"not": {"all": [{"field": "profile.x", "op": "like", "value": 1}]}}, then="bonus")
    path, message = only_problem(with_nodes(x=node))
    assert path == "$.nodes.x.if.not.all[0].op"
    assert "'eq'" in message
    assert "'on_day'" in message


def test_unknown_operator_in_trigger_where() -> None:
    trigger = {
        "id": "t",
        "type": "event",
        "event": "order.created",
        "where": {"any": [{"field": "event.data.total", "op": "bigger", "value": 1}]},
        "next": "welcome_email",
    }
    assert only_problem(scenario(triggers=[trigger]))[0] == "$.triggers[0].where.any[0].op"


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({"bogus": 1}, "$.nodes.x.if"),
        ({"field": "prof.x", "op": "eq", "value": 1}, "$.nodes.x.if.field"),
        ({"field": "profile", "op": "eq", "value": 1}, "$.nodes.x.if.field"),
        ({"field": "instance.started_at", "op": "exists"}, "$.nodes.x.if.field"),
        ({"field": "profile.x", "op": "in", "value": 1}, "$.nodes.x.if"),
        ({"field": "profile.x", "op": "between", "value": [1]}, "$.nodes.x.if"),
        ({"field": "profile.x", "op": "eq"}, "$.nodes.x.if"),
        ({"field": "profile.x", "op": "gt", "value": {"now": "P1M"}}, "$.nodes.x.if.value"),
        ({"field": "profile.x", "op": "on_day", "value": {"today": 1.5}}, "$.nodes.x.if.value"),
        ({"field": "profile.x", "op": "eq", "value": {"ref": "order.id"}}, "$.nodes.x.if.value"),
        ({"all": []}, "$.nodes.x.if.all"),
        ({"consent": "fax"}, "$.nodes.x.if.consent"),
        ({"segment": "", "member": True}, "$.nodes.x.if.segment"),
        (
            {"message": {"status": "read", "since": "entry"}, "exists": True},
            "$.nodes.x.if.message.status",
        ),
        (
            {"event_count": {"type": "e", "since": "P1M"}, "op": "gte", "value": 1},
            "$.nodes.x.if.event_count.since",
        ),
        (
            {"event_count": {"type": "e"}, "op": "contains", "value": 1},
            "$.nodes.x.if.op",
        ),
        (
            {"field": "profile.x", "op": "eq", "value": 1, "vaule": 2},
            "$.nodes.x.if.vaule",
        ),
    ],
)
def test_bad_condition(condition: dict[str, Any], path: str) -> None:
    assert only_problem(with_nodes(x=cond(condition, then="bonus")))[0] == path


@pytest.mark.parametrize(
    "value",
    [
        {"now": ["P1D"]},
        {"now": 5},
        {"ref": 5},
        [{"now": "P1M"}, {"now": "P1D"}],
        [{"today": "soon"}, {"today": 1}],
    ],
)
def test_bad_computed_values_are_problems_not_crashes(value: Any) -> None:
    op = "between" if isinstance(value, list) else "gt"
    node = cond({"field": "profile.x", "op": op, "value": value}, then="bonus")
    assert only_problem(with_nodes(x=node))[0] == "$.nodes.x.if.value"


def test_unknown_node_type() -> None:
    path, message = only_problem(with_nodes(x={"type": "teleport", "next": "bonus"}))
    assert path == "$.nodes.x"
    assert "unknown type 'teleport'" in message
    assert "'send'" in message


def test_node_without_type() -> None:
    assert only_problem(with_nodes(x={"next": "bonus"}))[0] == "$.nodes.x"


def test_unknown_trigger_type() -> None:
    trigger = {"id": "t", "type": "cron", "next": "welcome_email"}
    path, message = only_problem(scenario(triggers=[trigger]))
    assert path == "$.triggers[0]"
    assert "unknown type 'cron'" in message


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (scenario(descripton="typo"), "$.descripton"),
        (with_nodes(wait_day={"type": "pause", "duraton": "P1D"}), "$.nodes.wait_day.duraton"),
        (
            with_nodes(
                x={"type": "send", "channel": "sms", "template": {"body": "x", "sujbect": "y"}}
            ),
            "$.nodes.x.template.sujbect",
        ),
        (
            with_nodes(x=cond({"consent": "sms", "granted": True, "grnated": 1})),
            "$.nodes.x.if.grnated",
        ),
        (
            scenario(triggers=[{"id": "t", "type": "webhook", "next": "bonus", "nxt": "code"}]),
            "$.triggers[0].nxt",
        ),
    ],
)
def test_unknown_field_is_reported_by_name(document: dict[str, Any], path: str) -> None:
    found = problems_of(document)
    assert found.get(path) == "unknown field", found


def test_pause_typo_is_the_only_problem_reported() -> None:
    # The node-level "needs duration, until, ..." rule does not pile on top of the typo.
    document = with_nodes(wait_day={"type": "pause", "duraton": "P1D", "next": "confirmed"})
    assert problems_of(document) == {"$.nodes.wait_day.duraton": "unknown field"}


def test_duplicate_trigger_ids() -> None:
    triggers = [_webhook_trigger(1), _webhook_trigger(2), _webhook_trigger(1), _webhook_trigger(1)]
    found = problems_of(scenario(triggers=triggers))
    assert set(found) == {"$.triggers[2].id", "$.triggers[3].id"}
    assert found["$.triggers[2].id"] == "trigger id 't1' is already used by triggers[0]"
    assert found["$.triggers[3].id"] == "trigger id 't1' is already used by triggers[0]"


def test_bad_node_id() -> None:
    document = with_nodes(**{"a b": {"type": "exit"}})
    assert only_problem(document)[0] == "$.nodes['a b']"


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"type": "pause", "next": "confirmed"}, "$.nodes.x"),
        ({"type": "pause", "duration": "P1D", "until": "2026-06-10T10:00:00Z"}, "$.nodes.x"),
        ({"type": "pause", "duration": "P1D", "offset": "P1D"}, "$.nodes.x"),
        ({"type": "pause", "duration": "P1D", "at": "24:00"}, "$.nodes.x.at"),
        ({"type": "pause", "days": ["funday"]}, "$.nodes.x.days[0]"),
        ({"type": "pause", "until_field": "delivery_date"}, "$.nodes.x.until_field"),
        ({"type": "wait_for", "timeout": "P1D"}, "$.nodes.x"),
        ({"type": "wait_for", "condition": SMS_OK, "where": SMS_OK}, "$.nodes.x"),
        ({"type": "best_time", "fallback": "7pm"}, "$.nodes.x.fallback"),
        ({"type": "webhook", "url": "https://x.example", "timeout": "P1M"}, "$.nodes.x.timeout"),
        ({"type": "webhook", "url": "https://x.example", "method": "TRACE"}, "$.nodes.x.method"),
        ({"type": "send", "channel": "fax", "template": {"body": "x"}}, "$.nodes.x.channel"),
        ({"type": "update_profile", "ops": []}, "$.nodes.x.ops"),
        (
            {"type": "update_profile", "ops": [{"field": "n", "op": "increment", "value": "1"}]},
            "$.nodes.x.ops[0]",
        ),
        ({"type": "update_profile", "ops": [{"field": "n", "op": "set"}]}, "$.nodes.x.ops[0]"),
        (
            {"type": "update_profile", "ops": [{"consent": "sms", "op": "maybe"}]},
            "$.nodes.x.ops[0].op",
        ),
        ({"type": "promo_code", "pool": ""}, "$.nodes.x.pool"),
        ({"type": "jump"}, "$.nodes.x.scenario"),
    ],
)
def test_bad_node_fields(node: dict[str, Any], path: str) -> None:
    assert only_problem(with_nodes(x=node))[0] == path


@pytest.mark.parametrize(
    "node",
    [
        {"type": "pause", "until_field": "event.data.delivery_date", "offset": "-P1D"},
        {"type": "pause", "at": "10:00", "days": ["mon", "tue"]},
        {"type": "pause", "until": "2026-06-10T10:00:00+02:00"},
        {"type": "wait_for", "condition": SMS_OK, "timeout": "P1D"},
        {
            "type": "wait_for",
            "event": "order.paid",
            "where": {
                "field": "event.data.order_id",
                "op": "eq",
                "value": {"ref": "entry.data.order_id"},
            },
        },
        {"type": "best_time"},
        {"type": "update_profile", "ops": [{"consent": "sms", "op": "grant"}]},
        {"type": "update_profile", "ops": [{"field": "n", "op": "increment"}]},
        {"type": "jump", "scenario": "other", "node": "start"},
        {"type": "send", "channel": "push", "template": {"title": "t", "url": "{{ vars.link }}"}},
    ],
)
def test_good_nodes(node: dict[str, Any]) -> None:
    assert problems_of(with_nodes(x=node)) == {}


# --- all problems together -------------------------------------------------------------------


def test_all_problems_of_one_document_in_one_call() -> None:
    document = {
        "name": "Everything wrong",
        "timezone": "Mars/Olympus",
        "entry": "nowhere",
        "frequencycap": {"max": 1},
        "triggers": [
            {"id": "t", "type": "schedule", "cron": "61 * * * *", "next": "a"},
            {"id": "t", "type": "schedule", "daily": "25:00", "next": "ghost"},
        ],
        "nodes": {
            "a": {
                "type": "send",
                "channel": "email",
                "template": {"subject": "{{ oops "},
                "ttl": "PT1H",
                "next": "b",
            },
            "b": {"type": "pause", "duration": "P1M", "next": "c"},
            "c": cond({"field": "profile.x", "op": "like", "value": 1}, then="d", **{"else": "e"}),
            "d": {"type": "teleport"},
            "e": {"type": "ab_split", "branches": [{"percent": 60, "next": "f"}, {"percent": 60}]},
            "f": {"type": "update_profile", "ops": [{"field": "n", "op": "now"}], "next": "g"},
            "g": cond(SMS_OK, then="f", **{"else": "missing"}),
        },
    }
    with pytest.raises(ScenarioInvalid) as caught:
        validate_scenario(document)
    paths = [p.path for p in caught.value.problems]
    assert len(paths) == len(set(paths))
    expected = {
        "$.timezone",
        "$.entry",
        "$.frequencycap",
        "$.triggers[0].cron",
        "$.triggers[1].daily",
        "$.triggers[1].next",
        "$.triggers[1].id",
        "$.nodes.a.template.subject",
        "$.nodes.a.ttl",
        "$.nodes.b.duration",
        "$.nodes.c.if.op",
        "$.nodes.d",
        "$.nodes.e.branches",
        "$.nodes.g.else",
    }
    assert expected <= set(paths)
    cycles = [p for p in caught.value.problems if "no waiting node" in p.message]
    assert len(cycles) == 1
    assert cycles[0].path in ("$.nodes.f", "$.nodes.g")
    assert set(paths) == expected | {cycles[0].path}
    # check_scenario agrees with validate_scenario.
    parsed, problems = check_scenario(document)
    assert parsed is None
    assert problems == caught.value.problems


def test_graph_problems_still_reported_when_nodes_do_not_parse() -> None:
    document = {
        "name": "x",
        "nodes": {
            "a": {"type": "teleport", "next": "ghost"},
            "b": {"type": "pause", "duration": "soon", "next": "a"},
        },
    }
    assert set(problems_of(document)) == {"$.nodes.a", "$.nodes.a.next", "$.nodes.b.duration"}


def test_structurally_wrong_containers_do_not_crash() -> None:
    found = problems_of({"name": "x", "nodes": ["a"], "triggers": {"id": "t"}, "entry": 5})
    assert set(found) == {"$.nodes", "$.triggers", "$.entry"}


# --- helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([], "$"),
        (["nodes", "a", "branches", 0, "next"], "$.nodes.a.branches[0].next"),
        (["nodes", "a b"], "$.nodes['a b']"),
        (["nodes", "step-1"], "$.nodes['step-1']"),
        (["triggers", 3], "$.triggers[3]"),
    ],
)
def test_json_path(parts: list[Any], expected: str) -> None:
    assert json_path(parts) == expected


def test_json_schema_is_published_with_aliases() -> None:
    schema = scenario_json_schema()
    assert schema["title"] == "Scenario"
    assert "name" in schema["required"]
    text = str(schema)
    assert "'if'" in text
    assert "'else'" in text
    assert "if_" not in text
