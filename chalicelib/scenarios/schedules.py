"""When schedule triggers run (croniter, in their time zone) and who falls in their sample."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING

from croniter import CroniterBadDateError, croniter

from .durations import parse_clock_time, zone

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .model import Sample, ScheduleTrigger

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SOME_START = datetime(2000, 1, 1, tzinfo=UTC)  # any will do: a real date comes within 8 years


def matches_no_date(expression: str) -> bool:
    """True for a well-formed cron expression that no date fulfils, such as `0 0 31 2 *`
    (February 31st): a schedule on it would never fire. A malformed expression is the
    model's to refuse, not this check's."""
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        return False
    try:
        croniter(expression, _SOME_START).get_next(datetime)
    except CroniterBadDateError:
        return True
    return False


def cron_expression(trigger: ScheduleTrigger) -> str | None:
    """The 5-field cron expression of a recurring trigger; None for `once`."""
    if trigger.cron:
        return trigger.cron
    if trigger.daily:
        at = parse_clock_time(trigger.daily)
        return f"{at.minute} {at.hour} * * *"
    if trigger.weekly:
        at = parse_clock_time(trigger.weekly.at)
        days = ",".join(sorted(set(trigger.weekly.days), key=_WEEKDAYS.index))
        return f"{at.minute} {at.hour} * * {days}"
    if trigger.monthly:
        at = parse_clock_time(trigger.monthly.at)
        return f"{at.minute} {at.hour} {trigger.monthly.day} * *"
    return None


def runs_after(
    trigger: ScheduleTrigger, after: datetime, tz: str | None = None
) -> Iterator[datetime]:
    """Run times strictly after `after`, in UTC, ending at `until`.

    `tz` is the scenario's time zone, used when the trigger names none. A monthly day
    that a month lacks (the 31st) is skipped in that month, as cron does; an expression
    that matches no date at all has no runs.
    """
    until = trigger.until
    if trigger.once is not None:
        if trigger.once > after and (until is None or trigger.once <= until):
            yield trigger.once.astimezone(UTC)
        return
    expression = cron_expression(trigger)
    assert expression is not None  # the model allows exactly one timing
    local = after.astimezone(zone(trigger.timezone or tz))
    try:
        for moment in croniter(expression, local).all_next(datetime):
            moment = moment.astimezone(UTC)
            if until is not None and moment > until:
                return
            yield moment
    except CroniterBadDateError:  # stored before validation refused dates that never come
        return


def next_runs(
    trigger: ScheduleTrigger, after: datetime, count: int, tz: str | None = None
) -> list[datetime]:
    """The next `count` run times of a schedule trigger (fewer when it ends)."""
    return list(islice(runs_after(trigger, after, tz), count))


def due_runs(
    trigger: ScheduleTrigger, since: datetime, now: datetime, tz: str | None = None
) -> list[datetime]:
    """Run times in (since, now]: what a schedule tick has to fire."""
    runs = []
    for moment in runs_after(trigger, since, tz):
        if moment > now:
            break
        runs.append(moment)
    return runs


def sample_point(profile_id: str) -> float:
    """A stable point in [0, 100) for a profile.

    It depends on the profile id only, so complementary samples in two scenarios
    (0–50 and 50–100) split one audience without overlap.
    """
    digest = hashlib.blake2b(profile_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100


def in_sample(profile_id: str, sample: Sample | None) -> bool:
    if sample is None:
        return True
    return sample.from_ <= sample_point(profile_id) < sample.to
