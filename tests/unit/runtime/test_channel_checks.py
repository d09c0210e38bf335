"""The channel worker's last check before a message goes out: the profile as it is now."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.runtime.channels import skip_reason

SUBSCRIPTION = {
    "endpoint": "https://push.example/send/abc",
    "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA", "auth": "tBHItJI5svbpez7KI4CCXg"},
}


def profile(**consents: bool) -> dict[str, Any]:
    return {
        "profile_id": "ada",
        "fields": {
            "email": "ada@example.com",
            "phone": "+14155550100",
            "push": [SUBSCRIPTION],
            "consents": consents,
        },
    }


def row(channel: str) -> dict[str, Any]:
    to = {"email": "ada@example.com", "sms": "+14155550100", "push": None}[channel]
    return {"message_id": "m1", "channel": channel, "to": to}


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_a_consent_withdrawn_since_the_journey_queued_skips_the_send(channel: str) -> None:
    assert skip_reason(row(channel), profile(**{channel: False})) == "no_consent"
    assert skip_reason(row(channel), profile()) == "no_consent"  # never given


@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_a_consenting_reachable_profile_is_sent_to(channel: str) -> None:
    assert skip_reason(row(channel), profile(**{channel: True})) is None


def test_a_push_without_subscriptions_left_has_no_address() -> None:
    gone = profile(push=True)
    gone["fields"]["push"] = []
    assert skip_reason(row("push"), gone) == "no_address"
