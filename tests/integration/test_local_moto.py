"""What the local stack adds to moto (`chalicelib/local/ttl.py`, `moto_fixes.py`,
`stack.py`): items expire as DynamoDB's TTL makes them, moto keeps no copies of its
tables, and a drain ends only when no queue holds a message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters import store
from chalicelib.adapters.dynamo import ConditionFailed, transact
from chalicelib.adapters.queues import send
from chalicelib.local.stack import Pump, Runtime
from chalicelib.local.ttl import reap
from chalicelib.runtime.commit import epoch

NOW = datetime(2026, 6, 10, 10, tzinfo=UTC)
PAST, FUTURE = epoch(NOW - timedelta(seconds=1)), epoch(NOW + timedelta(days=1))


@pytest.fixture
def streamed(aws_stack: None) -> list[tuple[str, list[dict[str, Any]]]]:
    return []


def test_items_whose_ttl_is_past_go_and_nothing_else(
    streamed: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    store.idempotency.put({"key": "old", "expires_at": PAST})
    store.idempotency.put({"key": "new", "expires_at": FUTURE})
    store.idempotency.put({"key": "forever"})
    store.profiles.put({"pk": "customers#ada", "sk": "E#old", "expires_at": PAST})
    store.profiles.put({"pk": "customers#ada", "sk": "P", "profile_id": "ada"})
    store.messages.put({"message_id": "m1", "expires_at": PAST})  # no TTL on this table

    assert reap(NOW, lambda table, records: streamed.append((table, records))) == 2

    assert store.idempotency.get({"key": "old"}) is None
    assert store.idempotency.get({"key": "new"}) is not None
    assert store.idempotency.get({"key": "forever"}) is not None
    assert store.profiles.get({"pk": "customers#ada", "sk": "E#old"}) is None
    assert store.profiles.get({"pk": "customers#ada", "sk": "P"}) is not None
    assert store.messages.get({"message_id": "m1"}) is not None
    assert streamed == []  # neither table has a stream


def test_an_expired_timer_reaches_the_stream_as_a_ttl_deletion(
    streamed: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    timer = {"instance_id": "i1", "scenario_id": "s1", "step": 3, "due": PAST, "shard": "0"}
    store.timers.put({**timer, "expires_at": PAST})
    store.timers.put({**timer, "instance_id": "i2", "expires_at": FUTURE})

    reap(NOW, lambda table, records: streamed.append((table, records)))

    assert store.timers.get({"instance_id": "i1"}) is None
    assert store.timers.get({"instance_id": "i2"}) is not None
    ((table, (record,)),) = streamed
    assert table.endswith("-timers")
    assert record["eventName"] == "REMOVE"
    assert record["userIdentity"]["principalId"] == "dynamodb.amazonaws.com"
    assert record["dynamodb"]["OldImage"]["step"] == {"N": "3"}


def test_reaping_lets_go_of_the_objects_moto_tracks(aws_stack: None) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    for n in range(5):
        store.idempotency.put({"key": f"k{n}", "expires_at": FUTURE})
    assert Item.instances_tracked  # moto keeps every item it ever made, for its dashboard
    reap(NOW, lambda *_: None)
    assert Item.instances_tracked == []


def test_a_transaction_copies_no_table(aws_stack: None) -> None:
    # moto backed up each table a transaction touched with a deep copy of all of it, and
    # kept every copy: a stack driven for an hour held gigabytes
    from moto.core.model_instances import reset_model_data
    from moto.dynamodb.models.table import Table

    for n in range(50):
        store.profiles.put({"pk": f"customers#p{n}", "sk": "P", "n": n})
    reset_model_data()
    for n in range(3):
        transact(
            [
                store.profiles.tx_put({"pk": "customers#t", "sk": f"E#{n}"}),
                store.idempotency.tx_put({"key": f"t{n}"}),
            ]
        )
    assert Table.instances_tracked == []


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws_stack: None) -> None:
    store.profiles.put({"pk": "customers#ada", "sk": "P", "points": 1})
    store.idempotency.put({"key": "taken"})
    with pytest.raises(ConditionFailed):
        transact(
            [
                store.profiles.tx_update(
                    {"pk": "customers#ada", "sk": "P"}, "SET points = :p", values={":p": 2}
                ),
                store.profiles.tx_put({"pk": "customers#ada", "sk": "E#1"}),
                store.idempotency.tx_put(
                    {"key": "taken"}, "attribute_not_exists(#k)", names={"#k": "key"}
                ),
            ]
        )
    assert store.profiles.get({"pk": "customers#ada", "sk": "P"})["points"] == 1
    assert store.profiles.get({"pk": "customers#ada", "sk": "E#1"}) is None
    assert store.idempotency.get({"key": "taken"}) == {"key": "taken"}


def test_a_drain_ends_only_after_a_failed_message_comes_back_whenever_that_is(
    aws_stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed message is hidden for a second. Here moto's SQS clock moves on by a tick
    at every read, so that second runs out at one of the reads a drain makes, a different
    one for each tick length: at whichever it is, the drain hands the message over again."""
    from moto.sqs import models

    from app import app

    clock = {"now": models.unix_time_millis(), "tick": 0.0}

    def ticking(dt: Any = None) -> float:
        clock["now"] += clock["tick"]
        return clock["now"]

    monkeypatch.setattr(models, "unix_time_millis", ticking)
    deliveries: list[str] = []

    def fails_the_first_time(event: dict[str, Any], context: Any) -> dict[str, Any]:
        (record,) = event["Records"]
        deliveries.append(record["body"])
        if len(deliveries) > 1:
            return {}
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}

    runtime = Runtime(app)
    runtime.pumps = [Pump("sms", fails_the_first_time, 10)]
    for reads in range(1, 41):
        clock["tick"] = 1000 / reads + 0.001  # the second runs out at the reads-th read
        deliveries.clear()
        send("sms", {"kind": "message"})
        assert runtime.drain() == 2, f"hidden for {reads} reads"
        assert deliveries == ['{"kind": "message"}'] * 2


def test_reaping_lets_go_of_the_stream_records_nothing_reads(aws_stack: None) -> None:
    from chalicelib.local.ttl import moto_tables

    (timers,) = [t for t in moto_tables() if t.name == store.timers.name]
    for n in range(3):
        store.timers.put({"instance_id": f"i{n}", "due": FUTURE, "expires_at": FUTURE})
    assert len(timers.stream_shard.items) == 3  # moto keeps every record for ever
    first = timers.stream_shard.starting_sequence_number
    reap(NOW, lambda *_: None)
    assert timers.stream_shard.items == []
    store.timers.put({"instance_id": "i9", "due": FUTURE, "expires_at": FUTURE})
    (record,) = timers.stream_shard.items  # numbered after the records let go
    assert record.record["dynamodb"]["SequenceNumber"] == str(first + 3)
    assert store.timers.get({"instance_id": "i0"}) is not None  # live timers stay
