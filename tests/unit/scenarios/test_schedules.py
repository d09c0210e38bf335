"""Schedule triggers (SPEC §1.2): run times in their time zone, `until`, due runs and samples."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.scenarios.model import Sample, ScheduleTrigger
from chalicelib.scenarios.schedules import (
    cron_expression,
    due_runs,
    in_sample,
    matches_no_date,
    next_runs,
    sample_point,
)
from chalicelib.scenarios.validation import check_scenario


def schedule(**timing: Any) -> ScheduleTrigger:
    return ScheduleTrigger.model_validate({"id": "s", "type": "schedule", "next": "a", **timing})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- the kinds of timing ----------------------------------------------------------------------------


def test_daily_in_utc() -> None:
    runs = next_runs(schedule(daily="19:30"), utc(2026, 6, 10, 12), 3)
    assert runs == [utc(2026, 6, 10, 19, 30), utc(2026, 6, 11, 19, 30), utc(2026, 6, 12, 19, 30)]


def test_daily_in_a_time_zone_across_dst() -> None:
    # Berlin moves from UTC+1 to UTC+2 on 2026-03-29.
    trigger = schedule(daily="19:30", timezone="Europe/Berlin")
    assert next_runs(trigger, utc(2026, 3, 27), 4) == [
        utc(2026, 3, 27, 18, 30),
        utc(2026, 3, 28, 18, 30),
        utc(2026, 3, 29, 17, 30),
        utc(2026, 3, 30, 17, 30),
    ]


def test_scenario_time_zone_applies_when_the_trigger_names_none() -> None:
    trigger = schedule(daily="09:00")
    after = utc(2026, 6, 9, 12)
    assert next_runs(trigger, after, 1, tz="Asia/Tokyo") == [utc(2026, 6, 10, 0)]
    assert next_runs(trigger, after, 1) == [utc(2026, 6, 10, 9)]


def test_trigger_time_zone_wins_over_the_scenario_one() -> None:
    trigger = schedule(daily="09:00", timezone="America/New_York")
    assert next_runs(trigger, utc(2026, 6, 10), 1, tz="Asia/Tokyo") == [utc(2026, 6, 10, 13)]


def test_weekly_on_given_days_in_a_time_zone() -> None:
    trigger = schedule(weekly={"days": ["fri", "mon"], "at": "10:00"}, timezone="America/New_York")
    runs = next_runs(trigger, utc(2026, 6, 1), 4)  # 2026-06-01 is a Monday
    assert runs == [
        utc(2026, 6, 1, 14),
        utc(2026, 6, 5, 14),
        utc(2026, 6, 8, 14),
        utc(2026, 6, 12, 14),
    ]
    assert {run.astimezone(trigger_zone(trigger)).strftime("%a %H:%M") for run in runs} == {
        "Mon 10:00",
        "Fri 10:00",
    }


def trigger_zone(trigger: ScheduleTrigger) -> ZoneInfo:
    return ZoneInfo(trigger.timezone or "UTC")


def test_weekly_local_day_differs_from_utc_day() -> None:
    # Monday 08:00 in Tokyo is Sunday 23:00 UTC.
    trigger = schedule(weekly={"days": ["mon"], "at": "08:00"}, timezone="Asia/Tokyo")
    assert next_runs(trigger, utc(2026, 6, 1), 2) == [utc(2026, 6, 7, 23), utc(2026, 6, 14, 23)]


def test_monthly() -> None:
    trigger = schedule(monthly={"day": 1, "at": "09:00"}, timezone="Europe/Berlin")
    assert next_runs(trigger, utc(2026, 1, 15), 3) == [
        utc(2026, 2, 1, 8),
        utc(2026, 3, 1, 8),
        utc(2026, 4, 1, 7),  # summer time
    ]


def test_monthly_on_the_31st_skips_short_months() -> None:
    trigger = schedule(monthly={"day": 31, "at": "09:00"})
    assert next_runs(trigger, utc(2026, 1, 1), 4) == [
        utc(2026, 1, 31, 9),
        utc(2026, 3, 31, 9),
        utc(2026, 5, 31, 9),
        utc(2026, 7, 31, 9),
    ]


def test_cron_in_a_time_zone() -> None:
    trigger = schedule(cron="0 10 * * mon-fri", timezone="Europe/London")
    # 2026-06-05 is a Friday: the next runs skip the weekend.
    assert next_runs(trigger, utc(2026, 6, 5, 12), 2) == [utc(2026, 6, 8, 9), utc(2026, 6, 9, 9)]


def test_cron_every_15_minutes() -> None:
    runs = next_runs(schedule(cron="*/15 * * * *"), utc(2026, 6, 10, 10, 7), 3)
    assert runs == [utc(2026, 6, 10, 10, 15), utc(2026, 6, 10, 10, 30), utc(2026, 6, 10, 10, 45)]


@pytest.mark.parametrize(
    ("expression", "never"),
    [
        ("0 0 31 2 *", True),  # February 31st
        ("0 0 30 2 *", True),
        ("0 9 31 4,6,9,11 *", True),  # months of 30 days
        ("0 0 29 2 *", False),  # leap years
        ("0 0 31 2 mon", False),  # day of month or day of week, as cron reads it: Mondays
        ("0 0 31 * *", False),
        ("*/15 * * * *", False),
        ("not cron", False),  # malformed: the model refuses it, with its own message
    ],
)
def test_an_expression_that_matches_no_date(expression: str, never: bool) -> None:
    assert matches_no_date(expression) is never


def test_a_stored_schedule_that_matches_no_date_has_no_runs() -> None:
    trigger = schedule(cron="0 0 31 2 *")
    assert next_runs(trigger, utc(2026, 6, 1), 12) == []
    assert due_runs(trigger, utc(2026, 1, 1), utc(2030, 1, 1)) == []


def test_validation_refuses_a_schedule_that_never_fires_naming_the_trigger() -> None:
    def document(*triggers: dict[str, Any]) -> dict[str, Any]:
        nodes = {"a": {"type": "exit"}}
        return {"name": "N", "entry": "a", "triggers": list(triggers), "nodes": nodes}

    never = {"id": "feb31", "type": "schedule", "cron": "0 0 31 2 *", "next": "a"}
    late = {"id": "late", "type": "schedule", "once": "2026-06-10T10:00:00Z", "next": "a"}
    scenario, problems = check_scenario(
        document({"id": "ok", "type": "schedule", "daily": "10:00", "next": "a"}, late)
    )
    assert scenario is not None, problems
    scenario, problems = check_scenario(
        document(never, {**late, "until": "2026-06-09T00:00:00Z"}, {**never, "id": "x", "cron": 5})
    )
    assert scenario is None
    paths = [p.path for p in problems]
    assert paths.count("$.triggers[0].cron") == 1
    assert "never fire" in problems[paths.index("$.triggers[0].cron")].message
    assert "$.triggers[1].until" in paths
    assert paths.count("$.triggers[2].cron") == 1  # not a string: the model's problem alone


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        ({"cron": "5 4 * * sun"}, "5 4 * * sun"),
        ({"daily": "19:30"}, "30 19 * * *"),
        ({"weekly": {"days": ["fri", "mon", "fri"], "at": "07:05"}}, "5 7 * * mon,fri"),
        ({"monthly": {"day": 15, "at": "00:00"}}, "0 0 15 * *"),
        ({"once": "2026-06-10T10:00:00Z"}, None),
    ],
)
def test_cron_expression(timing: dict[str, Any], expected: str | None) -> None:
    assert cron_expression(schedule(**timing)) == expected


def test_once() -> None:
    trigger = schedule(once="2026-06-10T12:00:00+02:00")
    assert next_runs(trigger, utc(2026, 6, 1), 5) == [utc(2026, 6, 10, 10)]
    assert next_runs(trigger, utc(2026, 6, 10, 10), 5) == []  # strictly after
    assert next_runs(trigger, utc(2026, 6, 11), 5) == []


def test_runs_are_aware_utc() -> None:
    for run in next_runs(schedule(daily="10:00", timezone="Asia/Kolkata"), utc(2026, 6, 1), 3):
        assert run.utcoffset() == timedelta(0)
        assert run.minute == 30  # Kolkata is UTC+05:30


def test_next_runs_are_strictly_after_and_increasing() -> None:
    trigger = schedule(daily="10:00")
    runs = next_runs(trigger, utc(2026, 6, 10, 10), 3)
    assert runs[0] == utc(2026, 6, 11, 10)
    assert runs == sorted(runs)


def test_after_may_be_in_any_time_zone() -> None:
    after = datetime(2026, 6, 10, 12, tzinfo=ZoneInfo("Europe/Berlin"))  # 10:00 UTC
    assert next_runs(schedule(daily="10:30"), after, 1) == [utc(2026, 6, 10, 10, 30)]


# --- until -----------------------------------------------------------------------------------------------


def test_until_ends_the_listing() -> None:
    trigger = schedule(daily="10:00", until="2026-06-12T10:00:00Z")
    assert next_runs(trigger, utc(2026, 6, 10), 10) == [
        utc(2026, 6, 10, 10),
        utc(2026, 6, 11, 10),
        utc(2026, 6, 12, 10),  # until is inclusive
    ]
    assert next_runs(trigger, utc(2026, 6, 12, 10), 10) == []


def test_until_between_runs() -> None:
    trigger = schedule(weekly={"days": ["mon"], "at": "09:00"}, until="2026-06-20T00:00:00Z")
    assert next_runs(trigger, utc(2026, 6, 1), 10) == [
        utc(2026, 6, 1, 9),
        utc(2026, 6, 8, 9),
        utc(2026, 6, 15, 9),
    ]


def test_until_before_once() -> None:
    trigger = schedule(once="2026-06-10T10:00:00Z", until="2026-06-09T00:00:00Z")
    assert next_runs(trigger, utc(2026, 6, 1), 1) == []
    assert due_runs(trigger, utc(2026, 6, 1), utc(2026, 7, 1)) == []


# --- due runs ----------------------------------------------------------------------------------------------


def test_due_runs_window_is_open_at_since_closed_at_now() -> None:
    trigger = schedule(daily="10:00")
    assert due_runs(trigger, utc(2026, 6, 1, 10), utc(2026, 6, 3, 10)) == [
        utc(2026, 6, 2, 10),
        utc(2026, 6, 3, 10),
    ]


def test_due_runs_nothing_due() -> None:
    trigger = schedule(daily="10:00")
    assert due_runs(trigger, utc(2026, 6, 1, 10, 1), utc(2026, 6, 2, 9, 59)) == []
    assert due_runs(trigger, utc(2026, 6, 2), utc(2026, 6, 2)) == []


def test_due_runs_catch_up_after_a_gap() -> None:
    trigger = schedule(cron="0 * * * *")
    due = due_runs(trigger, utc(2026, 6, 10, 0, 30), utc(2026, 6, 10, 5, 30))
    assert due == [utc(2026, 6, 10, hour) for hour in range(1, 6)]


def test_consecutive_ticks_fire_each_run_once() -> None:
    trigger = schedule(cron="*/10 * * * *", timezone="Europe/Berlin")
    ticks = [utc(2026, 6, 10, 9, 0) + timedelta(minutes=7 * i) for i in range(20)]
    fired = [run for since, now in pairwise(ticks) for run in due_runs(trigger, since, now)]
    assert fired == due_runs(trigger, ticks[0], ticks[-1])
    assert len(fired) == len(set(fired)) == 13


def test_due_runs_respect_until_and_time_zone() -> None:
    trigger = schedule(daily="08:00", timezone="America/New_York", until="2026-06-11T12:00:00Z")
    assert due_runs(trigger, utc(2026, 6, 9), utc(2026, 6, 20)) == [
        utc(2026, 6, 9, 12),
        utc(2026, 6, 10, 12),
        utc(2026, 6, 11, 12),
    ]


def test_due_runs_of_once() -> None:
    trigger = schedule(once="2026-06-10T10:00:00Z")
    assert due_runs(trigger, utc(2026, 6, 10, 9), utc(2026, 6, 10, 10)) == [utc(2026, 6, 10, 10)]
    assert due_runs(trigger, utc(2026, 6, 10, 10), utc(2026, 6, 10, 11)) == []
    assert due_runs(trigger, utc(2026, 6, 10, 8), utc(2026, 6, 10, 9)) == []


# --- samples -----------------------------------------------------------------------------------------------

PROFILE_IDS = [f"profile-{i}" for i in range(4000)]


def test_sample_point_is_stable_and_in_range() -> None:
    points = [sample_point(pid) for pid in PROFILE_IDS]
    assert points == [sample_point(pid) for pid in PROFILE_IDS]
    assert all(0 <= point < 100 for point in points)
    assert len(set(points)) > 1000  # spread, not constant


def test_sample_point_known_value() -> None:
    # Pinned: a change of the hash would move every profile to another sample group.
    assert sample_point("abc") == 37.21


def test_sample_point_is_spread_evenly() -> None:
    deciles = [0] * 10
    for pid in PROFILE_IDS:
        deciles[int(sample_point(pid) // 10)] += 1
    assert all(300 < count < 500 for count in deciles), deciles


def test_complementary_samples_partition_the_audience() -> None:
    first, second = Sample.model_validate({"from": 0, "to": 50}), Sample(to=100, **{"from": 50})
    in_first = {pid for pid in PROFILE_IDS if in_sample(pid, first)}
    in_second = {pid for pid in PROFILE_IDS if in_sample(pid, second)}
    assert not in_first & in_second
    assert in_first | in_second == set(PROFILE_IDS)
    assert 0.45 < len(in_first) / len(PROFILE_IDS) < 0.55


def test_three_way_split_partitions_too() -> None:
    bounds = [(0, 20), (20, 70.5), (70.5, 100)]
    samples = [Sample.model_validate({"from": low, "to": high}) for low, high in bounds]
    for pid in PROFILE_IDS[:1000]:
        assert sum(in_sample(pid, sample) for sample in samples) == 1


def test_sample_bounds_are_from_inclusive_to_exclusive() -> None:
    pid = "abc"  # point 37.21
    assert in_sample(pid, Sample.model_validate({"from": 37.21, "to": 38}))
    assert not in_sample(pid, Sample.model_validate({"from": 0, "to": 37.21}))


def test_no_sample_and_full_sample_take_everyone() -> None:
    full = Sample.model_validate({})
    assert all(in_sample(pid, None) for pid in PROFILE_IDS[:200])
    assert all(in_sample(pid, full) for pid in PROFILE_IDS[:200])


def test_sample_size_is_proportional() -> None:
    ten_percent = Sample.model_validate({"from": 0, "to": 10})
    share = sum(in_sample(pid, ten_percent) for pid in PROFILE_IDS) / len(PROFILE_IDS)
    assert 0.08 < share < 0.12
