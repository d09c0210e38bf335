"""The SQS adapter on moto: batches of ten, retries of refused entries, delays."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters import queues
from chalicelib.adapters.aws import client, count_requests
from chalicelib.bootstrap import bootstrap

pytestmark = pytest.mark.usefixtures("aws_stack")


def receive_all(queue: str) -> list[dict[str, Any]]:
    url = queues.queue_url(queue)
    bodies: list[dict[str, Any]] = []
    while True:
        answer = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        messages = answer.get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(message["Body"]) for message in messages)
        client("sqs").delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def test_twenty_five_messages_go_in_three_calls() -> None:
    messages = [({"n": n, "kind": "wake"}, 0) for n in range(25)]
    with count_requests() as counter:
        assert queues.send_batch("steps", messages) == 3
    assert counter.counts[("sqs", "SendMessageBatch")] == 3
    assert sorted(body["n"] for body in receive_all("steps")) == list(range(25))


def test_nothing_to_send_makes_no_call() -> None:
    with count_requests() as counter:
        assert queues.send_batch("steps", []) == 0
    assert counter.total == 0


def test_the_queue_url_is_looked_up_once() -> None:
    bootstrap()  # a new wiring knows no queue URL yet
    with count_requests() as counter:
        queues.send("events", {"a": 1})
        queues.send("events", {"a": 2})
    assert counter.counts[("sqs", "GetQueueUrl")] == 1
    assert queues.queue_url("events").endswith("/scenaria-test-events")


def test_bodies_are_json_with_anything_else_as_text() -> None:
    queues.send("events", {"at": datetime(2026, 6, 10, tzinfo=UTC), "nested": {"x": [1, 2.5]}})
    assert receive_all("events") == [{"at": "2026-06-10 00:00:00+00:00", "nested": {"x": [1, 2.5]}}]


def test_delays_are_clamped_to_what_sqs_allows() -> None:
    queues.send_batch("steps", [({"late": True}, 5000), ({"now": True}, -30)])
    assert receive_all("steps") == [{"now": True}]  # the other waits (at most 15 minutes)


def test_refused_entries_are_sent_again_and_a_second_refusal_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sqs = client("sqs")
    real = sqs.send_message_batch
    refusals = iter([1, 0])

    def refuse_first(**arguments: Any) -> dict[str, Any]:
        if next(refusals, 0):
            entry = arguments["Entries"][1]
            arguments["Entries"] = [e for e in arguments["Entries"] if e is not entry]
            answer: dict[str, Any] = real(**arguments)
            answer["Failed"] = [{"Id": entry["Id"], "Code": "InternalError", "SenderFault": False}]
            return answer
        result: dict[str, Any] = real(**arguments)
        return result

    monkeypatch.setattr(sqs, "send_message_batch", refuse_first)
    assert queues.send_batch("steps", [({"n": n}, 0) for n in range(3)]) == 2
    assert sorted(body["n"] for body in receive_all("steps")) == [0, 1, 2]

    def always_refuse(**arguments: Any) -> dict[str, Any]:
        return {"Successful": [], "Failed": [{"Id": "0", "Code": "InternalError"}]}

    monkeypatch.setattr(sqs, "send_message_batch", always_refuse)
    with pytest.raises(RuntimeError, match="refused"):
        queues.send_batch("steps", [({"n": 9}, 0)])
