"""The channel worker's last check before a message goes out: the profile as it is now."""

from __future__ import annotations

import pytest

from chalicelib.runtime.channels import skip_reason
from chalicelib.runtime.storage import MessageRow
from chalicelib.scenarios.facts import Profile

SUBSCRIPTION = {
    "endpoint": "https://push.example/send/abc",
    "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA", "auth": "tBHItJI5svbpez7KI4CCXg"},
}


def profile(**consents: bool) -> Profile:
    fields = {
        "email": "ada@example.com",
        "phone": "+14155550100",
        "push": [SUBSCRIPTION],
        "consents": consents,
    }
    return Profile("ada", fields)


def row(channel: str) -> MessageRow:
    to = {"email": "ada@example.com", "sms": "+14155550100", "push": None}[channel]
    return MessageRow(
        "m1", "message", "sending", "default", "ada", "s1", 1, "send", channel, "i1",
        None, None, None, values={"to": to},
    )  # fmt: skip


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_a_consent_withdrawn_since_the_journey_queued_skips_the_send(channel: str) -> None:
    assert skip_reason(row(channel), profile(**{channel: False})) == "no_consent"
    assert skip_reason(row(channel), profile()) == "no_consent"  # never given


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_a_consenting_reachable_profile_is_sent_to(channel: str) -> None:
    assert skip_reason(row(channel), profile(**{channel: True})) is None


def test_a_push_without_subscriptions_left_has_no_address() -> None:
    gone = profile(push=True)
    gone.fields["push"] = []
    assert skip_reason(row("push"), gone) == "no_address"
