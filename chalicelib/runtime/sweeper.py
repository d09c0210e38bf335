"""The sweeper: every minute, fire due timers and re-dispatch the outbox.

Timers are found through the sharded due-time index (one Query per shard, however
long the sweeper was away); outbox rows still pending past `dispatch_at` are sent
again and their deadline pushed on. Consumers drop what they already handled.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from chalicelib.adapters import store
from chalicelib.adapters.dynamo import ConditionFailed
from chalicelib.adapters.queues import send_batch
from chalicelib.config import settings

from .commit import REDISPATCH_AFTER, epoch

logger = logging.getLogger(__name__)


@dataclass
class Swept:
    timers: int = 0
    redispatched: int = 0


def sweep(now: datetime) -> Swept:
    """Fire every timer due by `now` and re-send every outbox row pending past its time."""
    result = Swept()
    statuses: dict[str, bool] = {}

    def active(scenario_id: str) -> bool:
        if scenario_id not in statuses:
            meta = store.load_scenario(scenario_id)
            statuses[scenario_id] = meta is not None and meta.get("status") == "active"
        return statuses[scenario_id]

    wakes = []
    by_queue: dict[str, list[tuple[dict, int]]] = {}
    for shard in map(str, range(settings().timer_shards)):
        for timer in store.timers.query(
            "shard = :s AND due <= :now", index="by_due", values={":s": shard, ":now": epoch(now)}
        ):
            if active(timer["scenario_id"]):  # a sleeping scenario's timers wait for reactivation
                wakes.append(
                    (
                        {
                            "kind": "wake",
                            "instance_id": timer["instance_id"],
                            "step": timer["step"],
                        },
                        0,
                    )
                )
        for row in store.messages.query(
            "pending_shard = :s AND dispatch_at <= :now",
            index="pending",
            values={":s": shard, ":now": epoch(now)},
        ):
            with suppress(ConditionFailed):
                store.messages.update(
                    {"message_id": row["message_id"]},
                    "SET dispatch_at = :next",
                    "dispatch_at = :was",
                    values={":next": epoch(now + REDISPATCH_AFTER), ":was": row["dispatch_at"]},
                )
                by_queue.setdefault(row["queue"], []).append((row["payload"], 0))
    send_batch("steps", wakes)
    for queue, batch in by_queue.items():
        send_batch(queue, batch)
        result.redispatched += len(batch)
    result.timers = len(wakes)
    if result.timers or result.redispatched:
        logger.info("swept", extra={"timers": result.timers, "redispatched": result.redispatched})
    return result
