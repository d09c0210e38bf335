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
