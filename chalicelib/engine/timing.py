"""Time arithmetic of pauses, best time and quiet hours, in the profile's time zone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from chalicelib.scenarios.durations import is_time_zone, parse_clock_time, zone
from chalicelib.scenarios.facts import Message, Profile

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ENGAGEMENT = ("opened", "clicked")


def profile_zone(profile: Profile, default: ZoneInfo) -> ZoneInfo:
    """The profile's own time zone when it has a valid one, else the scenario's."""
    name = profile.timezone
    return (_valid_zone(name) if name else None) or default


@lru_cache(maxsize=1024)
def _valid_zone(name: str) -> ZoneInfo | None:
    """The zone of that name, or None. Cached: checking a name costs two zone look-ups and
    a caught exception, and a few names serve every profile."""
    return zone(name) if is_time_zone(name) else None


def at_local(day: datetime, clock: time, tz: ZoneInfo) -> datetime:
    """That calendar day (in `tz`) at the wall-clock time, as UTC."""
    local = day.astimezone(tz)
    return datetime.combine(local.date(), clock, tzinfo=tz).astimezone(UTC)


def next_local(moment: datetime, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant at or after `moment` whose local time is `clock`."""
    candidate = at_local(moment, clock, tz)
    if candidate < moment:
        candidate = at_local(moment + timedelta(days=1), clock, tz)
    return candidate


def align(moment: datetime, at: str | None, days: Sequence[str] | None, tz: ZoneInfo) -> datetime:
    """Move `moment` on to the local time `at` and to one of the weekdays `days`."""
    clock = parse_clock_time(at) if at else None
    if clock is not None:
        moment = next_local(moment, clock, tz)
    if days:
        allowed = {_WEEKDAYS.index(day) for day in days}
        for _ in range(7):
            if moment.astimezone(tz).weekday() in allowed:
                break
            moment = moment + timedelta(days=1)
            if clock is not None:
                moment = at_local(moment, clock, tz)
    return moment


def best_hour(messages: Iterable[Message], tz: ZoneInfo) -> int | None:
    """The local hour at which the profile most often opens or clicks (earliest on ties)."""
    hours = Counter(
        at.astimezone(tz).hour
        for message in messages
        for status, at in message.statuses.items()
        if status in ENGAGEMENT
    )
    if not hours:
        return None
    return min(hours, key=lambda hour: (-hours[hour], hour))


def best_time(
    due: datetime, within: timedelta, fallback: str, messages: Iterable[Message], tz: ZoneInfo
) -> datetime:
    """When a best_time node wakes: the usual engagement hour within the window, else the
    fallback time, else the end of the window."""
    deadline = due + within
    hour = best_hour(messages, tz)
    for clock in ((time(hour),) if hour is not None else ()) + (parse_clock_time(fallback),):
        candidate = next_local(due, clock, tz)
        if candidate <= deadline:
            return candidate
    return deadline


def after_quiet_hours(moment: datetime, start: time, end: time, tz: ZoneInfo) -> datetime:
    """`moment` itself, or the end of the quiet window it falls in."""
    local = moment.astimezone(tz)
    clock = local.time()
    inside = start <= clock < end if start <= end else (clock >= start or clock < end)
    if not inside:
        return moment
    # next_local(moment, end, tz), reusing the local time converted above.
    candidate = datetime.combine(local.date(), end, tzinfo=tz).astimezone(UTC)
    if candidate < moment:
        candidate = at_local(moment + timedelta(days=1), end, tz)
    return candidate
