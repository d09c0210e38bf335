"""SPEC §7's contact rules: which change of a profile's fields is `email.changed`,
`phone.changed`, `email.confirmed` or `phone.confirmed`."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.engine.signals import contact_signals

ADA = {"email": "ada@example.com", "phone": "+14155550100"}


def kinds(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    return [kind for kind, _ in contact_signals(before, after)]


def test_an_address_changed_from_one_value_to_another() -> None:
    after = {**ADA, "email": "ada@new.example", "phone": "+14155550199"}
    assert contact_signals(ADA, after) == [
        ("email.changed", {"old": "ada@example.com", "new": "ada@new.example", "derived": True}),
        ("phone.changed", {"old": "+14155550100", "new": "+14155550199", "derived": True}),
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({}, ADA),  # first filled
        ({"email": ""}, ADA),  # filled from empty
        (ADA, {}),  # cleared
        (ADA, {"email": "", "phone": None}),  # cleared to nothing
        (ADA, ADA),  # the same again
        (None, ADA),  # created
    ],
    ids=["first-filled", "from-empty", "cleared", "emptied", "unchanged", "created"],
)
def test_no_change_signal(before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    assert not [k for k in kinds(before, after) if k.endswith(".changed")]


def test_every_confirmation_and_a_profile_created_confirmed() -> None:
    assert contact_signals(ADA, {**ADA, "email_confirmed": True}) == [
        ("email.confirmed", {"email": "ada@example.com", "derived": True})
    ]
    assert kinds({**ADA, "phone_confirmed": False}, {**ADA, "phone_confirmed": True}) == [
        "phone.confirmed"
    ]
    assert kinds(None, {**ADA, "email_confirmed": True, "phone_confirmed": True}) == [
        "email.confirmed",
        "phone.confirmed",
    ]
    unconfirmed = {**ADA, "email_confirmed": False}
    confirmed = {**ADA, "email_confirmed": True}
    assert kinds(confirmed, confirmed) == []  # still confirmed: nothing new
    assert kinds(confirmed, unconfirmed) == []
    assert kinds(unconfirmed, {**ADA, "email_confirmed": "yes"}) == []  # only true confirms
    assert kinds(unconfirmed, confirmed) == ["email.confirmed"]  # confirmed again
