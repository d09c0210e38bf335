"""The SPEC §1 welcome series (examples/welcome.json) run through `simulate`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.engine import COMPLETED, EXITED, CompiledScenario, Simulation, simulate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
START = datetime(2026, 6, 1, 9, tzinfo=UTC)  # 10:00 in London: outside quiet hours
ADA = {
    "profile_id": "ada",
    "first_name": "Ada",
    "email": "ada@example.com",
    "phone": "+14155550100",
    "timezone": "Europe/London",
    "consents": {"email": True, "sms": True},
}
SIGNUP = {"at": "PT0S", "type": "profile.imported", "data": {"source": "form"}}


@pytest.fixture(scope="module")
def welcome() -> CompiledScenario:
    document = json.loads((EXAMPLES / "welcome.json").read_text())
    return CompiledScenario.from_document(document, scenario_id="welcome")


def run(scenario: CompiledScenario, *events: dict, until: str = "P7D") -> dict:
    request = Simulation.model_validate(
        {"profile": ADA, "events": [SIGNUP, *events], "until": until}
    )
    return simulate(scenario, request, START)


def nodes(report: dict) -> list[tuple[str, str]]:
    return [(entry["node"], entry["outcome"]) for entry in report["path"]]


def test_a_profile_that_confirms_gets_the_promo_code(welcome):
    report = run(welcome, {"at": "PT2H", "type": "subscription.confirmed"})

    assert nodes(report) == [
        ("welcome_email", "sent"),
        ("wait_day", "waited"),
        ("confirmed", "then"),
        ("bonus", "updated"),
        ("code", "code"),
        ("promo_email", "sent"),
    ]
    welcome_email, promo_email = report["sends"]
    assert welcome_email == {
        "at": "2026-06-01T09:00:00Z",
        "node": "welcome_email",
        "channel": "email",
        "to": "ada@example.com",
        "subject": "Welcome, Ada",
        "body": "Glad to have you, Ada.",
        "variant": None,
    }
    assert promo_email["node"] == "promo_email"
    assert promo_email["at"] == "2026-06-02T09:00:00Z"
    assert promo_email["body"] == "Use WELCOME10-SIMULATED"
    assert (report["status"], report["reason"], report["exit_node"]) == (
        COMPLETED,
        None,
        "promo_email",
    )
    assert report["skipped"] == []


def test_a_profile_that_does_not_confirm_gets_a_reminder_then_a_call(welcome):
    report = run(welcome)

    assert nodes(report) == [
        ("welcome_email", "sent"),
        ("wait_day", "waited"),
        ("confirmed", "else"),
        ("sms_sent", "else"),
        ("reminder_sms", "sent"),
        ("wait_sms", "waited"),
        ("sms_sent", "then"),
        ("call_center", "ok"),
    ]
    assert [(s["node"], s["channel"], s["to"], s["at"]) for s in report["sends"]] == [
        ("welcome_email", "email", "ada@example.com", "2026-06-01T09:00:00Z"),
        ("reminder_sms", "sms", "+14155550100", "2026-06-02T09:00:00Z"),
    ]
    assert report["sends"][1]["body"] == "Confirm your e-mail"
    call_center = report["path"][-1]
    assert call_center["at"] == "2026-06-03T09:00:00Z"  # a day after the reminder
    assert (report["status"], report["exit_node"]) == (COMPLETED, "call_center")


def test_an_order_exits_the_welcome_series(welcome):
    report = run(welcome, {"at": "PT5H", "type": "order.created", "data": {"total": 30}})

    assert (report["status"], report["reason"]) == (EXITED, "goal")
    assert nodes(report) == [("welcome_email", "sent"), ("wait_day", "goal")]
    assert report["path"][-1]["at"] == "2026-06-01T14:00:00Z"  # when the order came
    assert [s["node"] for s in report["sends"]] == ["welcome_email"]


def test_the_welcome_series_is_entered_once(welcome):
    report = run(welcome, {"at": "P5D", "type": "profile.imported", "data": {"source": "import"}})

    assert [s["node"] for s in report["sends"]].count("welcome_email") == 1


def test_a_profile_without_consent_is_not_mailed(welcome):
    request = Simulation.model_validate(
        {"profile": {**ADA, "consents": {"sms": True}}, "events": [SIGNUP], "until": "PT12H"}
    )

    report = simulate(welcome, request, START)

    assert report["sends"] == []
    assert report["skipped"] == [
        {
            "at": "2026-06-01T09:00:00Z",
            "node": "welcome_email",
            "channel": "email",
            "reason": "no_consent",
        }
    ]


def test_the_example_timeline_matches_the_unconfirmed_journey(welcome):
    timeline = json.loads((EXAMPLES / "welcome.timeline.json").read_text())

    report = simulate(welcome, Simulation.model_validate(timeline), START)

    assert report["path"][-1]["node"] == "call_center"
    assert len(report["sends"]) == 2


def test_the_profile_may_come_as_put_profiles_takes_it(welcome):
    profile_id, fields = ADA["profile_id"], {k: v for k, v in ADA.items() if k != "profile_id"}
    as_put = {"profile": {"profile_id": profile_id, "fields": fields}, "events": [SIGNUP]}

    report = simulate(welcome, Simulation.model_validate(as_put), START)

    assert report == run(welcome)
    assert report["sends"][0]["to"] == "ada@example.com"


@pytest.mark.parametrize(
    ("profile", "location"),
    [
        ({"profile_id": "ada", "fields": ["email"]}, ("profile", "fields")),
        ({"profile_id": 7, "email": "ada@example.com"}, ("profile", "profile_id")),
        ({"profile_id": "ada", "fields": {}, "email": "ada@example.com"}, ("profile", "email")),
    ],
)
def test_what_cannot_be_a_profile_is_refused_naming_the_field(profile, location):
    with pytest.raises(ValidationError) as refused:
        Simulation.model_validate({"profile": profile})

    assert [error["loc"] for error in refused.value.errors()] == [location]


def test_a_null_field_is_no_field_as_put_profiles_takes_it():
    mail = {"type": "send", "channel": "email", "template": {"subject": "Hi {{ profile.nick }}"}}
    scenario = CompiledScenario.from_document(
        {"name": "Hi", "entry": "mail", "nodes": {"mail": mail}}
    )
    fields = {"email": "ada@example.com", "consents": {"email": True}, "nick": None}

    report = simulate(scenario, Simulation.model_validate({"profile": {"fields": fields}}), START)

    assert [send["subject"] for send in report["sends"]] == ["Hi "]


def held_reminder() -> CompiledScenario:
    """A reminder held by quiet hours until 12:00 UTC (13:00 in London), rechecked then:
    only to a profile that has not ordered since it entered. In German for German speakers."""
    reminder = {
        "type": "send",
        "channel": "email",
        "template": {"subject": "Still thinking?", "body": "Your cart"},
        "variants": {"de": {"subject": "Noch am Überlegen?"}},
        "recheck": {
            "event_count": {"type": "order.created", "since": "entry"},
            "op": "eq",
            "value": 0,
        },
    }
    document = {
        "name": "Reminder",
        "entry": "reminder",
        "quiet_hours": {"start": "09:00", "end": "13:00"},
        "nodes": {"reminder": reminder},
    }
    return CompiledScenario.from_document(document, scenario_id="reminder")


def test_a_held_send_is_rechecked_when_it_would_leave():
    ordered = {"at": "PT1H", "type": "order.created", "data": {"total": 30}}
    request = Simulation.model_validate({"profile": ADA, "events": [ordered], "until": "P1D"})

    report = simulate(held_reminder(), request, START)

    assert report["sends"] == []
    assert report["skipped"] == [
        {"at": "2026-06-01T12:00:00Z", "node": "reminder", "channel": "email", "reason": "recheck"}
    ]


def test_a_held_send_whose_recheck_holds_is_shown_with_its_variant():
    request = Simulation.model_validate({"profile": {**ADA, "locale": "de-DE"}, "until": "P1D"})

    report = simulate(held_reminder(), request, START)

    [send] = report["sends"]
    assert (send["at"], send["subject"], send["variant"]) == (
        "2026-06-01T12:00:00Z",
        "Noch am Überlegen?",
        "de",
    )
    assert report["skipped"] == []
