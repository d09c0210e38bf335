"""Both storage adapters write a profile's item alike: a merge of the fields it names
answers the item before and after, a consent is set alone and never creates a profile,
and a hard-bounced address reaches the profile's view."""

from __future__ import annotations

import pytest

from chalicelib.runtime.storage import Storage

STAMP, LATER = "2026-06-10T10:00:00Z", "2026-06-10T10:05:00Z"


def test_a_merge_creates_then_changes_only_the_fields_it_names(storage: Storage) -> None:
    created = storage.merge_profile("customers", "ada", {"a": 1, "b": None}, STAMP, False)
    assert created.before is None
    assert (created.after["fields"], created.after["created_at"]) == ({"a": 1}, STAMP)
    again = storage.merge_profile("customers", "ada", {"b": 2, "a": None}, LATER)
    assert again.before is not None
    assert again.before["fields"] == {"a": 1}
    assert (again.after["fields"], again.after["created_at"], again.after["updated_at"]) == (
        {"b": 2}, STAMP, LATER,
    )  # fmt: skip
    wrong_guess = storage.merge_profile("customers", "ada", {"c": 3}, LATER, exists=False)
    assert wrong_guess.before is not None  # the caller's read was stale: merged all the same
    item = storage.profile_item("customers", "ada")
    assert item is not None
    assert item["fields"] == {"b": 2, "c": 3}
    assert storage.profile_items("customers", ["ada", "bob"]).keys() == {"ada"}


@pytest.mark.parametrize("consents", [{"sms": True}, "yes", None])
def test_a_consent_is_set_alone_and_never_creates_a_profile(
    storage: Storage, consents: object
) -> None:
    assert storage.set_profile_consent("customers", "ada", "email", False, STAMP) is None
    assert storage.profile_item("customers", "ada") is None
    fields = {"plan": "gold"} if consents is None else {"plan": "gold", "consents": consents}
    storage.merge_profile("customers", "ada", fields, STAMP, False)
    result = storage.set_profile_consent("customers", "ada", "email", False, LATER)
    assert result is not None
    assert result.before is not None
    kept = consents if isinstance(consents, dict) else {}
    expected = {"plan": "gold", "consents": {**kept, "email": False}}
    assert result.after["fields"] == expected
    assert storage.profile("customers", "ada", history=False).view.fields == expected


def test_a_hard_bounced_address_reaches_the_view_and_an_erased_profile_stays_gone(
    storage: Storage,
) -> None:
    storage.merge_profile("customers", "ada", {"email": "a@example.com"}, STAMP, False)
    storage.mark_address_invalid("customers", "ada", "email", "a@example.com")
    storage.mark_address_invalid("customers", "ada", "sms", "+100")
    view = storage.profile("customers", "ada", history=False).view
    assert view.invalid == {"email": "a@example.com", "sms": "+100"}
    storage.mark_address_invalid("customers", "bob", "email", "b@example.com")
    assert storage.profile_item("customers", "bob") is None
