"""The profiles adapter on moto: one item per profile of one database, and writes that
touch only the attributes they change."""

from __future__ import annotations

import threading

import pytest

from chalicelib.adapters import profiles as profile_items
from chalicelib.adapters import store
from chalicelib.adapters.codec import profile_key
from chalicelib.adapters.dynamo import ConditionFailed, transact
from chalicelib.bootstrap import services
from chalicelib.runtime.profiles import upsert

pytestmark = pytest.mark.usefixtures("aws_stack")

STAMP = "2026-06-10T10:00:00Z"


def test_profiles_of_two_databases_joined_by_a_hash_are_two_items() -> None:
    upsert("a#b", "c", {"who": "c of a#b"})
    upsert("a", "b#c", {"who": "b#c of a"})
    first = services().storage.profile("a#b", "c").view
    second = services().storage.profile("a", "b#c").view
    assert (first.fields, second.fields) == ({"who": "c of a#b"}, {"who": "b#c of a"})
    assert profile_key("a#b", "c") != profile_key("a", "b#c")
    assert profile_key("a%23b", "c") not in (profile_key("a#b", "c"), profile_key("a", "b#c"))
    assert profile_key("customers", "ada") == "customers#ada"  # plain names stay as stored
    assert len([i for i in store.profiles.scan() if i["sk"] == "P"]) == 2


def test_a_merge_answers_the_profile_just_before_and_after_it() -> None:
    created = profile_items.merge_fields("customers", "ada", {"a": 1, "b": None}, STAMP, False)
    assert created.before is None
    assert created.after["fields"] == {"a": 1}
    merged = profile_items.merge_fields("customers", "ada", {"b": 2, "a": None}, STAMP, True)
    assert merged.before is not None
    assert merged.before["fields"] == {"a": 1}
    assert merged.after["fields"] == {"b": 2}
    assert (profile_items.read("customers", "ada") or {})["fields"] == {"b": 2}


def test_a_merge_whose_guess_was_wrong_takes_the_other_write() -> None:
    profile_items.merge_fields("customers", "ada", {"a": 1}, STAMP, exists=True)  # was none
    profile_items.merge_fields("customers", "ada", {"b": 2}, STAMP, exists=False)  # was one
    assert (profile_items.read("customers", "ada") or {})["fields"] == {"a": 1, "b": 2}


def test_journey_consents_are_set_one_channel_at_a_time() -> None:
    upsert("customers", "ada", {"consents": {"email": True}, "points": 1})

    def update(has_consents: bool) -> None:
        transact(
            [
                profile_items.update_item(
                    "customers",
                    "ada",
                    STAMP,
                    set_fields={},
                    remove=[],
                    add={"points": 2},
                    consents={"sms": True},
                    has_consents=has_consents,
                )
            ]
        )

    with pytest.raises(ConditionFailed):  # read without a map, but one came since
        update(has_consents=False)
    update(has_consents=True)
    fields = (profile_items.read("customers", "ada") or {})["fields"]
    assert fields == {"consents": {"email": True, "sms": True}, "points": 3}


def test_a_consent_is_set_alone_and_a_consents_value_that_is_no_map_is_replaced() -> None:
    upsert("customers", "ada", {"consents": {"email": True, "sms": True}})
    upsert("customers", "bob", {"consents": "yes"})
    for profile_id in ("ada", "bob"):
        assert profile_items.set_consent("customers", profile_id, "email", False, STAMP)
    assert (profile_items.read("customers", "ada") or {})["fields"]["consents"] == {
        "email": False,
        "sms": True,
    }
    assert (profile_items.read("customers", "bob") or {})["fields"]["consents"] == {"email": False}
    assert profile_items.set_consent("customers", "nobody", "email", False, STAMP) is None
    assert profile_items.read("customers", "nobody") is None


def test_twenty_upserts_of_one_profile_at_once_all_land() -> None:
    upsert("customers", "ada", {"name": "Ada"})
    errors: list[BaseException] = []
    start = threading.Barrier(20, timeout=30)

    def merge(number: int) -> None:
        try:
            start.wait()
            upsert("customers", "ada", {f"f{number}": number})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=merge, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    fields = (profile_items.read("customers", "ada") or {})["fields"]
    assert fields == {"name": "Ada", **{f"f{n}": n for n in range(20)}}
