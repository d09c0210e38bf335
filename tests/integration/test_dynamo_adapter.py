"""The DynamoDB adapter on moto: the value codec, paging, transactions and conditions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters import store
from chalicelib.adapters.aws import count_requests
from chalicelib.adapters.dynamo import ConditionFailed, Table, from_item, to_item, transact

pytestmark = pytest.mark.usefixtures("aws_stack")

scenarios = Table("scenarios")  # a plain pk/sk table


def calls(counter: count_requests, operation: str) -> int:
    return counter.counts[("dynamodb", operation)]


# --- codec ---------------------------------------------------------------------------------

NESTED: dict[str, Any] = {
    "pk": "codec",
    "sk": "nested",
    "float": 1.5,
    "tenth": 0.1,
    "negative": -273.15,
    "decimal": Decimal("2.25"),
    "whole_decimal": Decimal("2"),
    "whole_float": 3.0,
    "int": 7,
    "big": 12345678901234567890,
    "flag": False,
    "text": "Zoë 🚀",
    "empty_text": "",
    "tags": {"a", "b"},
    "dropped": None,
    "nested": {
        "list": [1, 2.5, {"deep": [True, None, "x", Decimal("0.125")]}],
        "empty_map": {},
        "empty_list": [],
        "tuple": (1, 2),
    },
}


def test_values_round_trip_through_a_table() -> None:
    scenarios.put(NESTED)
    stored = scenarios.get({"pk": "codec", "sk": "nested"})
    assert stored == {
        "pk": "codec",
        "sk": "nested",
        "float": 1.5,
        "tenth": 0.1,
        "negative": -273.15,
        "decimal": 2.25,
        "whole_decimal": 2,
        "whole_float": 3,
        "int": 7,
        "big": 12345678901234567890,
        "flag": False,
        "text": "Zoë 🚀",
        "empty_text": "",
        "tags": {"a", "b"},
        "nested": {
            "list": [1, 2.5, {"deep": [True, None, "x", 0.125]}],
            "empty_map": {},
            "empty_list": [],
            "tuple": [1, 2],
        },
    }
    assert isinstance(stored["decimal"], float)
    assert isinstance(stored["whole_decimal"], int)
    assert isinstance(stored["whole_float"], int)  # a whole number comes back as int
    assert type(stored["flag"]) is bool
    assert "dropped" not in stored  # None at the top is left out, inside it is NULL


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**18), 10**18)
    # DynamoDB numbers: magnitudes from 1e-130 to 1e126, 38 digits. Past 2**53 a float's
    # shortest repr is not its exact value, so a whole one would come back a different int.
    | st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda x: x == 0 or 1e-100 < abs(x) < 2**53
    )
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=6))
def test_the_codec_round_trips_json_like_values(values: dict[str, Any]) -> None:
    expected = {key: value for key, value in values.items() if value is not None}
    assert from_item(to_item(values)) == expected


# --- queries and scans -------------------------------------------------------------------


@pytest.fixture
def thirty() -> list[dict[str, Any]]:
    items = [
        {"pk": "paged", "sk": f"i#{n:02d}", "n": n, "kind": "third" if n % 3 == 0 else "other"}
        for n in range(30)
    ]
    scenarios.batch_put(items)
    return items


def test_query_returns_every_item_in_key_order(thirty: list[dict[str, Any]]) -> None:
    assert list(scenarios.query("pk = :p", values={":p": "paged"})) == thirty
    newest = list(scenarios.query("pk = :p", values={":p": "paged"}, forward=False))
    assert [item["n"] for item in newest] == list(range(29, -1, -1))


def test_query_limit_caps_the_total_in_one_call(thirty: list[dict[str, Any]]) -> None:
    with count_requests() as counter:
        first = list(scenarios.query("pk = :p", values={":p": "paged"}, limit=7))
    assert [item["n"] for item in first] == list(range(7))
    assert calls(counter, "Query") == 1


def test_query_pages_on_until_a_filtered_limit_is_met(thirty: list[dict[str, Any]]) -> None:
    with count_requests() as counter:
        found = list(
            scenarios.query(
                "pk = :p",
                filter="kind = :k",
                values={":p": "paged", ":k": "third"},
                limit=5,
            )
        )
    assert [item["n"] for item in found] == [0, 3, 6, 9, 12]
    assert calls(counter, "Query") > 1  # a page of 5 keys holds at most 2 matches


def test_query_of_a_key_range(thirty: list[dict[str, Any]]) -> None:
    found = scenarios.query(
        "pk = :p AND sk BETWEEN :a AND :b", values={":p": "paged", ":a": "i#10", ":b": "i#12"}
    )
    assert [item["n"] for item in found] == [10, 11, 12]


def test_parallel_scan_segments_cover_the_table_once(thirty: list[dict[str, Any]]) -> None:
    parts = [list(scenarios.scan(segment, 3)) for segment in range(3)]
    seen = sorted(item["n"] for part in parts for item in part)
    assert seen == list(range(30))
    assert len(list(scenarios.scan(limit=4))) == 4


def test_batch_put_writes_in_groups_of_25() -> None:
    items = [{"pk": "batch", "sk": f"{n:03d}"} for n in range(60)]
    assert scenarios.batch_put(items) == 3
    assert len(list(scenarios.query("pk = :p", values={":p": "batch"}))) == 60


def test_a_bulk_load_of_profiles_reads_back_as_profiles_and_unloads() -> None:
    from chalicelib.adapters.dynamodb_storage import DynamoStorage

    storage = DynamoStorage()
    storage.load_profiles("customers", {"ada": ({"city": "Paris"}, ["parisians"]), "bob": ({}, [])})
    ada = storage.profile("customers", "ada")
    assert (ada.exists, ada.view.fields, ada.segments) == (True, {"city": "Paris"}, ("parisians",))
    storage.unload_profiles("customers", ["ada", "bob"])
    assert not storage.profile("customers", "ada").exists
    assert not storage.profile("customers", "bob").exists


# --- conditions and transactions -----------------------------------------------------------


def test_a_single_write_is_a_plain_call() -> None:
    item = scenarios.tx_put({"pk": "tx", "sk": "one", "rev": 1}, "attribute_not_exists(pk)")
    with count_requests() as counter:
        transact([item])
    assert calls(counter, "PutItem") == 1
    assert calls(counter, "TransactWriteItems") == 0
    assert scenarios.get({"pk": "tx", "sk": "one"}) == {"pk": "tx", "sk": "one", "rev": 1}

    with pytest.raises(ConditionFailed):
        transact([item])  # it exists now


def test_many_writes_are_one_transaction() -> None:
    scenarios.put({"pk": "tx", "sk": "counter", "rev": 1, "total": 10})
    items = [
        scenarios.tx_put({"pk": "tx", "sk": "a"}),
        scenarios.tx_put({"pk": "tx", "sk": "b"}, "attribute_not_exists(pk)"),
        scenarios.tx_update(
            {"pk": "tx", "sk": "counter"},
            "SET rev = :next ADD #t :five",
            "rev = :rev",
            names={"#t": "total"},
            values={":next": 2, ":rev": 1, ":five": 5},
        ),
        scenarios.tx_delete({"pk": "tx", "sk": "missing"}),
    ]
    with count_requests() as counter:
        transact(items)
    assert calls(counter, "TransactWriteItems") == 1
    assert counter.total == 1
    assert scenarios.get({"pk": "tx", "sk": "counter"}) == {
        "pk": "tx",
        "sk": "counter",
        "rev": 2,
        "total": 15,
    }
    assert scenarios.get({"pk": "tx", "sk": "b"}) is not None


def test_a_failed_condition_in_a_transaction_writes_nothing() -> None:
    scenarios.put({"pk": "tx", "sk": "counter", "rev": 3})
    items = [
        scenarios.tx_put({"pk": "tx", "sk": "new"}, "attribute_not_exists(pk)"),
        scenarios.tx_update(
            {"pk": "tx", "sk": "counter"},
            "SET rev = :next",
            "rev = :rev",
            values={":next": 3, ":rev": 2},
        ),
    ]
    with pytest.raises(ConditionFailed):
        transact(items)
    assert scenarios.get({"pk": "tx", "sk": "new"}) is None
    assert scenarios.get({"pk": "tx", "sk": "counter"}) == {"pk": "tx", "sk": "counter", "rev": 3}


def test_an_oversized_transaction_is_refused_before_any_call() -> None:
    items = [scenarios.tx_put({"pk": "tx", "sk": f"{n:03d}"}) for n in range(101)]
    with count_requests() as counter, pytest.raises(ValueError, match="100"):
        transact(items)
    assert counter.total == 0
    with count_requests() as counter:
        transact([])
    assert counter.total == 0


def test_single_writes_raise_condition_failed() -> None:
    key = {"pk": "cond", "sk": "x"}
    scenarios.put({**key, "rev": 1}, "attribute_not_exists(pk)")
    with pytest.raises(ConditionFailed):
        scenarios.put({**key, "rev": 9}, "attribute_not_exists(pk)")
    with pytest.raises(ConditionFailed):
        scenarios.update(key, "SET rev = :n", "rev = :r", values={":n": 2, ":r": 5})
    assert scenarios.update(key, "SET rev = :n", "rev = :r", values={":n": 2, ":r": 1})["rev"] == 2
    with pytest.raises(ConditionFailed):
        scenarios.delete(key, "rev = :r", values={":r": 1})
    scenarios.delete(key, "rev = :r", values={":r": 2})
    assert scenarios.get(key) is None


def test_every_table_of_the_stack_exists() -> None:
    for table in (store.profiles, store.instances, store.timers, store.messages, store.stats):
        assert list(table.scan()) == []
