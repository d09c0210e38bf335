"""The delivery policy: consent, addresses, hard bounces, push subscriptions, caps, quiet
hours and locale variants — and that the journey and the channel worker agree on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.engine import Send, SendSkipped
from chalicelib.engine.delivery import capped_until, decide, refusal, variant_for
from chalicelib.runtime.channels import skip_reason
from chalicelib.runtime.storage import MessageRow
from chalicelib.scenarios.facts import Message, Profile

NOW = datetime(2026, 6, 10, 10, tzinfo=UTC)  # as the engine tests' conftest
ADA = {
    "first_name": "Ada",
    "email": "ada@example.com",
    "phone": "+14155550100",
    "consents": {"email": True, "sms": True, "push": True},
}
SUBSCRIPTION = {
    "endpoint": "https://push.example/send/abc",
    "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA", "auth": "tBHItJI5svbpez7KI4CCXg"},
}
OWN = {"email": "ada@example.com", "sms": "+14155550100", "push": [SUBSCRIPTION]}


def ada(invalid: dict[str, str] | None = None, **fields: Any) -> Profile:
    merged = {**ADA, "push": [SUBSCRIPTION], **fields}
    kept = {name: value for name, value in merged.items() if value is not None}
    return Profile("ada", kept, invalid=dict(invalid or {}))


def sent(at: datetime, channel: str = "email") -> Message:
    return Message(f"m-{at.isoformat()}-{channel}", "s0", "old", channel, at, {"sent": at})


# --- consent ---------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_the_profiles_own_address_needs_its_consent_to_the_channel(channel: str) -> None:
    assert refusal(channel, OWN[channel], ada()) is None
    assert refusal(channel, OWN[channel], ada(consents={channel: False})) == "no_consent"
    assert refusal(channel, OWN[channel], ada(consents={channel: "yes"})) == "no_consent"
    assert refusal(channel, OWN[channel], ada(consents=None)) == "no_consent"


def test_consent_to_one_channel_is_not_consent_to_another() -> None:
    only_sms = ada(consents={"sms": True})
    assert refusal("sms", OWN["sms"], only_sms) is None
    assert refusal("email", OWN["email"], only_sms) == "no_consent"


def test_a_to_override_to_another_address_needs_no_consent_of_the_profile() -> None:
    """A notice to the manager is not a message to the customer."""
    assert refusal("email", "boss@example.com", ada(consents={})) is None
    assert refusal("sms", "+14155550199", ada(consents={})) is None


def test_a_to_override_to_the_profiles_own_address_still_needs_its_consent() -> None:
    """An override cannot route around a withdrawn consent: `to` rendering the profile's
    own address (in any case) is a message to the customer."""
    withdrawn = ada(consents={"email": False, "sms": False})
    assert refusal("email", "ADA@Example.com", withdrawn) == "no_consent"
    assert refusal("sms", "+14155550100", withdrawn) == "no_consent"


# --- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "to"),
    [
        ("email", None),
        ("email", "not-an-address"),
        ("email", "boss@"),  # an override is checked like the profile's own
        ("sms", "0415 555 0100"),
        ("sms", None),
        ("push", None),
        ("push", []),
    ],
)
def test_a_missing_or_invalid_address_is_no_address(channel: str, to: Any) -> None:
    assert refusal(channel, to, ada()) == "no_address"


def test_a_hard_bounced_address_is_no_address_until_the_profile_has_another() -> None:
    bounced = ada(invalid={"email": "ada@example.com"})
    assert refusal("email", "ada@example.com", bounced) == "no_address"
    assert refusal("email", "Ada@Example.com", bounced) == "no_address"
    assert refusal("sms", "+14155550100", bounced) is None  # only that channel's address
    moved = ada(invalid={"email": "ada@example.com"}, email="ada@new.example")
    assert refusal("email", "ada@new.example", moved) is None


# --- frequency cap and quiet hours -------------------------------------------------------


def test_the_cap_allows_sends_until_max_then_names_when_it_allows_the_next() -> None:
    day = timedelta(days=1)
    two = [sent(NOW - timedelta(hours=5)), sent(NOW - timedelta(hours=2))]
    assert capped_until(two[:1], "email", NOW, 2, day) is None
    assert capped_until(two, "email", NOW, 2, day) == NOW - timedelta(hours=5) + day
    old = [sent(NOW - timedelta(days=2)), sent(NOW - timedelta(hours=2))]
    assert capped_until(old, "email", NOW, 2, day) is None  # one left the window


def test_a_cap_on_one_channel_counts_and_holds_only_that_channel() -> None:
    day = timedelta(days=1)
    texts = [sent(NOW - timedelta(hours=1), "sms")]
    assert capped_until(texts, "email", NOW, 1, day, only="email") is None
    assert capped_until(texts, "sms", NOW, 1, day, only="email") is None
    assert capped_until(texts, "sms", NOW, 1, day) is not None  # every channel counts


def test_decide_skips_or_holds_by_the_cap_then_holds_by_quiet_hours(make_scenario) -> None:
    node = {"type": "send", "channel": "email", "template": {"body": "Hi"}}
    cap = {"max": 1, "per": "P1D"}
    earlier = sent(NOW - timedelta(hours=4))
    profile = ada(timezone="Europe/Berlin")  # 12:00 there at NOW
    profile.messages.append(earlier)

    skip = make_scenario({"send": node}, frequency_cap={**cap, "on_cap": "skip"})
    delay = make_scenario({"send": node}, frequency_cap={**cap, "on_cap": "delay"})
    quiet = make_scenario(
        {"send": node},
        frequency_cap={**cap, "on_cap": "delay"},
        quiet_hours={"start": "02:00", "end": "09:00"},
    )

    assert decide(skip, "email", OWN["email"], profile, NOW) == ("capped", NOW)
    allowed = NOW + timedelta(hours=20)  # 06:00 UTC, 08:00 in Berlin: inside quiet hours
    assert decide(delay, "email", OWN["email"], profile, NOW) == (None, allowed)
    assert decide(quiet, "email", OWN["email"], profile, NOW) == (
        None,
        datetime(2026, 6, 11, 7, tzinfo=UTC),  # 09:00 in Berlin
    )
    refused = ada(consents={})
    assert decide(delay, "email", OWN["email"], refused, NOW).reason == "no_consent"


# --- variants --------------------------------------------------------------------------

VARIANTS = {"de": 1, "pt": 2, "pt-br": 3, "zh-hant": 4}


@pytest.mark.parametrize(
    ("locale", "chosen"),
    [
        ("de", "de"),
        ("pt-BR", "pt-br"),  # exactly, case-insensitive
        ("pt_BR", "pt-br"),  # the underscore form profiles often carry
        ("pt-PT", "pt"),  # then by language
        ("de-AT", "de"),
        ("zh-Hant-TW", "zh-hant"),  # subtags dropped one at a time
        ("fr", None),  # no variant: the node's own template
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_the_variant_is_the_locale_then_its_language(locale: Any, chosen: str | None) -> None:
    assert variant_for(locale, VARIANTS) == chosen


def test_a_language_profile_does_not_take_a_regional_variant() -> None:
    assert variant_for("pt", {"pt-br": 1}) is None


# --- the journey and the worker agree ----------------------------------------------------

CASES = [
    ("email", None, {}, None),
    ("email", None, {"consents": {"email": False}}, None),
    ("email", None, {"email": "nope"}, None),
    ("email", None, {}, {"email": "ada@example.com"}),
    ("email", "boss@example.com", {"consents": {}}, None),
    ("email", "ADA@example.com", {"consents": {}}, None),
    ("email", "boss@", {}, None),
    ("sms", None, {"phone": "0415"}, None),
    ("sms", None, {"consents": {"email": True}}, None),
    ("sms", "+14155550199", {"consents": {}}, {"sms": "+14155550199"}),
    ("push", None, {}, None),
    ("push", None, {"push": []}, None),
    ("push", None, {"consents": {"push": False}}, None),
]


@pytest.mark.parametrize(("channel", "to", "fields", "invalid"), CASES)
def test_the_journey_and_the_channel_worker_give_the_same_answer(
    make_scenario, enter, pick, channel, to, fields, invalid
) -> None:
    node: dict[str, Any] = {"type": "send", "channel": channel, "template": {"body": "Hi"}}
    if to is not None:
        node["to"] = to
    profile = ada(invalid, **fields)

    step = enter(make_scenario({"send": node}), profile).steps[-1]
    journey = next((s.reason for s in pick(step, SendSkipped)), None)

    address = to or (None if channel == "push" else profile.fields.get(OWN_FIELD[channel]))
    row = MessageRow(
        "m1", "message", "sending", "default", "ada", "s1", 1, "send", channel, "i1",
        None, None, None, values={"to": address},
    )  # fmt: skip
    now = Profile("ada", profile.fields, invalid=profile.invalid)  # as the worker reads it
    assert skip_reason(row, now) == journey
    assert (journey is None) == bool(pick(step, Send))


OWN_FIELD = {"email": "email", "sms": "phone"}
