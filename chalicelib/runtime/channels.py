"""Channel delivery: the sandbox that records messages instead of calling providers.

Each queued message is claimed by a conditional write on its row (`queued` → `sent`)
before anything is delivered, so a redelivered queue message is never sent twice.
Webhook calls are recorded and answered with a success.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.codec import time_value
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.queues import send
from chalicelib.scenarios.durations import format_datetime

logger = logging.getLogger(__name__)


class NotYet(Exception):
    """A message arrived before its delivery time; the queue hands it back later."""


def deliver(body: dict[str, Any]) -> None:
    row = store.messages.get({"message_id": body["message_id"]})
    if row is None:
        return
    if row.get("status") != "queued":
        # already delivered: nothing goes out again, but a crash may have lost the result
        if row["kind"] == "webhook" and row.get("status") == "sent":
            announce_result(row)
        return
    deliver_at = time_value(row.get("deliver_at"))
    now = clock_now()
    if deliver_at is not None and deliver_at > now + timedelta(seconds=1):
        raise NotYet(f"message {row['message_id']} is due at {row['deliver_at']}")
    try:
        store.messages.update(
            {"message_id": row["message_id"]},
            "SET #s = :sent, sent_at = :now REMOVE pending_shard, dispatch_at",
            "#s = :queued",
            names={"#s": "status"},
            values={":sent": "sent", ":queued": "queued", ":now": format_datetime(now)},
        )
    except ConditionFailed:
        return  # another delivery of this message claimed it first
    logger.info(
        "delivered",
        extra={"message_id": row["message_id"], "channel": row.get("channel", "webhook")},
    )
    if row["kind"] == "webhook":
        announce_result(row)


def announce_result(row: dict[str, Any]) -> None:
    """Give a webhook call's result to its journey (the sandbox answers every call with 200).

    Announced again when the call's queue message is redelivered: the journey ignores a
    result for a step it has left, so only a result lost in a crash makes a difference.
    """
    send(
        "steps",
        {
            "kind": "webhook_result",
            "instance_id": row["instance_id"],
            "step": row["step"],
            "ok": True,
            "status": 200,
            "body": {},
        },
    )


def delivered(limit: int = 1000) -> list[dict[str, Any]]:
    """Messages the sandbox delivered, oldest first (`GET /local/sent`)."""
    rows = list(
        store.messages.scan(filter="#s = :sent", names={"#s": "status"}, values={":sent": "sent"})
    )
    rows.sort(key=lambda row: (row["sent_at"], row["message_id"]))
    return [
        {
            "message_id": row["message_id"],
            "channel": row.get("channel", "webhook"),
            "to": row.get("to", row.get("url")),
            "subject": row.get("subject") or row.get("title"),
            "body": row.get("body"),
            "scenario_id": row["scenario_id"],
            "node": row["node"],
            "profile_id": row["profile_id"],
            "at": row["sent_at"],
        }
        for row in rows[:limit]
    ]
