"""Virtual time for the local stack: move forward, firing timers and schedules in order."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.adapters import store
from chalicelib.adapters.clock import VirtualClock
from chalicelib.config import settings
from chalicelib.runtime.commit import epoch
from chalicelib.scenarios.durations import parse_datetime

from .stack import Runtime


def next_due(after: datetime) -> datetime | None:
    """The first moment after `after` at which a timer, a held message or a schedule is due."""
    candidates: list[datetime] = []
    for number in map(str, range(settings().timer_shards)):
        for shard, table, index, hash_key, range_key in (
            (number, store.timers, "by_due", "shard", "due"),
            (f"abandon-{number}", store.timers, "by_due", "shard", "due"),
            (f"session-{number}", store.timers, "by_due", "shard", "due"),
            (number, store.messages, "pending", "pending_shard", "dispatch_at"),
        ):
            first = next(
                table.query(
                    f"{hash_key} = :s AND {range_key} > :t",
                    index=index,
                    values={":s": shard, ":t": epoch(after)},
                    limit=1,
                ),
                None,
            )
            if first is not None:
                candidates.append(datetime.fromtimestamp(first[range_key], UTC))
    for item in store.scenarios.query("pk = :pk", values={":pk": "SCHEDULE"}):
        moment = parse_datetime(item.get("next_run"))
        if moment is not None and moment > after:
            candidates.append(moment)
    return min(candidates, default=None)


def advance_to(runtime: Runtime, clock: VirtualClock, target: datetime) -> int:
    """Move the clock to `target` through every due moment on the way; returns the stops made."""
    stops = 0
    runtime.drain()
    while True:
        moment = next_due(clock.now())
        if moment is None or moment > target:
            break
        clock.set(moment)
        runtime.fire_schedules(moment)
        runtime.drain()
        stops += 1
    clock.set(target)
    runtime.fire_schedules(target)
    runtime.drain()
    return stops
