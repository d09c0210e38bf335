"""The clock port. Nothing else reads the wall clock, so everything can run in virtual time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """Time that moves only when told, and only forward."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            if moment < self._now:
                raise ValueError(f"the clock only moves forward (it is {self._now.isoformat()})")
            self._now = moment

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)


_clock: Clock = SystemClock()


def clock() -> Clock:
    return _clock


def use_clock(new: Clock) -> Clock:
    """Install a clock (tests, the local stack's virtual time); returns the previous one."""
    global _clock
    previous, _clock = _clock, new
    return previous


def now() -> datetime:
    return _clock.now()
