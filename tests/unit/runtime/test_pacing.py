"""The send slots of a rate limit: a one-token bucket refilled at `max` per window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.engine.compiled import WindowLimit
from chalicelib.runtime.pacing import next_slot, spacing

T0 = datetime(2026, 6, 10, 10, tzinfo=UTC)
PER_MINUTE = WindowLimit(100, timedelta(minutes=1))


def test_slots_are_the_window_over_max_apart_rounded_up_to_a_microsecond() -> None:
    assert spacing(PER_MINUTE) == timedelta(seconds=0.6)
    assert spacing(WindowLimit(7, timedelta(minutes=1))) == timedelta(microseconds=8_571_429)


def test_a_token_that_is_there_is_taken_at_once_and_the_next_comes_one_spacing_later() -> None:
    assert next_slot(None, T0, PER_MINUTE) == (T0, T0 + timedelta(seconds=0.6))
    assert next_slot(T0, T0, PER_MINUTE) == (T0, T0 + timedelta(seconds=0.6))


def test_without_a_token_the_send_reserves_the_next_one() -> None:
    free_at = T0 + timedelta(seconds=0.6)
    assert next_slot(free_at, T0, PER_MINUTE) == (free_at, free_at + timedelta(seconds=0.6))


def test_an_idle_bucket_keeps_one_token_not_more() -> None:
    idle = T0 + timedelta(hours=1)
    leave, free_at = next_slot(T0, idle, PER_MINUTE)
    assert (leave, free_at) == (idle, idle + timedelta(seconds=0.6))
    assert next_slot(free_at, idle, PER_MINUTE)[0] == free_at


def test_no_window_holds_more_than_max_slots() -> None:
    free_at, slots = None, []
    for n in range(350):
        asked = T0 + timedelta(seconds=n * 0.2)  # three times the rate
        leave, free_at = next_slot(free_at, asked, PER_MINUTE)
        slots.append(leave)
    assert slots == sorted(slots)
    for start in slots:
        assert sum(start <= s < start + timedelta(minutes=1) for s in slots) <= 100


def test_a_thousand_sends_at_a_hundred_a_minute_leave_over_ten_minutes() -> None:
    """SPEC §1.1 at full size on the bucket itself (the e2e test sends a tenth of it through
    the worker): none lost, none early, at most 100 in any minute, in the order asked."""
    free_at, slots = None, []
    for n in range(1_000):
        asked = T0 + timedelta(milliseconds=n)  # all queued within a second
        leave, free_at = next_slot(free_at, asked, PER_MINUTE)
        assert leave >= asked  # never early
        slots.append(leave)
    assert len(slots) == 1_000
    assert slots == sorted(slots)
    per_minute = [sum(T0 + timedelta(minutes=m) <= s < T0 + timedelta(minutes=m + 1)
                      for s in slots) for m in range(11)]  # fmt: skip
    assert per_minute == [100] * 10 + [0]
