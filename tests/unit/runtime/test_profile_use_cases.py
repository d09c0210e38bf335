"""Upserts, imports and consent on the in-memory storage: each announces what changed as
events (SPEC §4), a merged profile's go to the profile it was merged into, and a profile
that would not fit changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.runtime import feedback, profiles
from chalicelib.runtime.messages import EventMessage
from tests.unit.runtime.test_use_cases import Stack


def announced(stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    """(profile id, event type, data) of the events queued, taken off the queue."""
    return [
        (m.profile_id, m.event.type, m.event.data)
        for m in stack.queues.take("events")
        if isinstance(m, EventMessage)
    ]


def test_an_upsert_creates_then_merges_and_announces_what_changed(stack: Stack) -> None:
    created = profiles.upsert("customers", "ada", {"first_name": "Ada", "plan": "free"})
    assert created["fields"] == {"first_name": "Ada", "plan": "free"}
    assert created["created_at"] == created["updated_at"]
    assert [kind for _, kind, _ in announced(stack)] == ["profile.created", "profile.imported"]
    stack.clock.advance(timedelta(minutes=1))
    after = profiles.upsert("customers", "ada", {"plan": "gold", "first_name": None})
    assert after["fields"] == {"plan": "gold"}  # None clears a field
    assert (after["created_at"], after["updated_at"] > after["created_at"]) == (
        created["created_at"], True,
    )  # fmt: skip
    changed = {kind: data for _, kind, data in announced(stack)}
    assert changed["profile.field_changed"]["fields"] == {
        "plan": {"old": "free", "new": "gold"},
        "first_name": {"old": "Ada", "new": None},
    }
    profiles.upsert("customers", "ada", {"plan": "gold"})
    assert [kind for _, kind, _ in announced(stack)] == ["profile.imported"]  # nothing changed


def test_an_upsert_of_a_merged_profile_lands_on_the_one_it_was_merged_into(
    stack: Stack,
) -> None:
    profiles.upsert("customers", "ada", {"first_name": "Ada"})
    stack.storage.aliases[("customers", "ada-old")] = "ada"
    profiles.upsert("customers", "ada-old", {"plan": "gold"})
    assert stack.storage.profile("customers", "ada").view.fields == {
        "first_name": "Ada", "plan": "gold",
    }  # fmt: skip
    assert (profiles.read("customers", "ada-old") or {})["profile_id"] == "ada"


def test_an_import_that_would_overfill_a_profile_writes_nothing(stack: Stack) -> None:
    profiles.upsert("customers", "ada", {"notes": "x" * 200_000})
    announced(stack)
    with pytest.raises(profiles.ProfileTooLarge, match=r"\$\.profiles\[1\]\.fields"):
        profiles.import_profiles(
            "customers", [("bob", {"plan": "free"}), ("ada", {"more": "y" * 200_000})]
        )
    assert stack.storage.profile_item("customers", "bob") is None
    assert announced(stack) == []
    result = profiles.import_profiles(
        "customers", [("bob", {"plan": "free"}), ("bob", {"plan": "gold"}), ("ada", {"a": 1})]
    )
    assert result == {"imported": 2, "created": 1}
    assert stack.storage.profile("customers", "bob").view.fields == {"plan": "gold"}


def test_a_withdrawn_consent_is_announced_once_and_a_hard_bounce_marks_the_address(
    stack: Stack,
) -> None:
    profiles.upsert("customers", "ada", {"email": "ada@example.com", "consents": "yes"})
    announced(stack)
    feedback.revoke_consent("customers", "ada", "email")
    assert stack.storage.profile("customers", "ada").view.fields["consents"] == {"email": False}
    changed = {kind: data for _, kind, data in announced(stack)}
    assert changed["profile.field_changed"]["fields"]["consents"]["new"] == {"email": False}
    feedback.revoke_consent("customers", "ada", "email")  # so already: nothing announced
    assert announced(stack) == []
    feedback.revoke_consent("customers", "nobody", "email")  # gone: nothing created
    assert stack.storage.profile_item("customers", "nobody") is None
    feedback.mark_invalid("customers", "ada", "email", "ada@example.com")
    assert stack.storage.profile("customers", "ada").view.invalid == {"email": "ada@example.com"}
