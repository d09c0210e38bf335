"""Virtual time for the local stack: move forward, firing timers and schedules in order."""

from __future__ import annotations

from datetime import datetime

from chalicelib.adapters.clock import VirtualClock
from chalicelib.bootstrap import services

from .stack import Runtime


def next_due(after: datetime) -> datetime | None:
    """The first moment after `after` at which a timer, a held message or a schedule is due."""
    return services().storage.next_due(after)


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
