"""ISO 8601 durations, HH:MM times, datetimes and time zones (SPEC §1)."""

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.scenarios.durations import (
    format_datetime,
    is_time_zone,
    parse_clock_time,
    parse_datetime,
    parse_duration,
    zone,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P3D", timedelta(days=3)),
        ("PT2H", timedelta(hours=2)),
        ("PT2H30M", timedelta(hours=2, minutes=30)),
        ("PT10S", timedelta(seconds=10)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("P2W", timedelta(weeks=2)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT72H", timedelta(hours=72)),
        ("-P1D", timedelta(days=-1)),
        ("-P7D", timedelta(days=-7)),
        ("+PT15M", timedelta(minutes=15)),
        ("P0D", timedelta(0)),
    ],
)
def test_parse_duration_accepts_iso_8601(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P1M", "P2Y", "-P1M", "P1Y2D", "P1M3D"])
def test_parse_duration_refuses_months_and_years(text: str) -> None:
    with pytest.raises(ValueError, match="months and years are not supported"):
        parse_duration(text)


def test_minutes_after_t_are_not_months() -> None:
    assert parse_duration("PT1M") == timedelta(minutes=1)


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "3D", "1 day", "P1.5D", "PT1H2D", "p1d", "P-1D", "P1D "]
)
def test_parse_duration_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [5, None, 1.5, ["P1D"], {"now": "P1D"}])
def test_parse_duration_refuses_non_strings_with_value_error(value: object) -> None:
    # Unhashable values used to escape as TypeError from the cache.
    with pytest.raises(ValueError, match="ISO 8601 string"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00", time(0, 0)),
        ("09:05", time(9, 5)),
        ("19:30", time(19, 30)),
        ("23:59", time(23, 59)),
    ],
)
def test_parse_clock_time(text: str, expected: time) -> None:
    assert parse_clock_time(text) == expected


@pytest.mark.parametrize(
    "text", ["25:00", "24:00", "12:60", "9:00", "0900", "09:00:00", "", "ten", " 09:00"]
)
def test_parse_clock_time_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock_time(text)


def test_parse_clock_time_refuses_non_string() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock_time(930)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-10T10:00:00Z", datetime(2026, 6, 10, 10, tzinfo=UTC)),
        ("2026-06-10T12:00:00+02:00", datetime(2026, 6, 10, 10, tzinfo=UTC)),
        ("2026-06-10T10:00:00", datetime(2026, 6, 10, 10, tzinfo=UTC)),
        ("2026-06-10", datetime(2026, 6, 10, tzinfo=UTC)),
        (date(2026, 6, 10), datetime(2026, 6, 10, tzinfo=UTC)),
        (
            datetime(2026, 6, 10, 5, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 6, 10, 10, tzinfo=UTC),
        ),
        (datetime(2026, 6, 10, 10), datetime(2026, 6, 10, 10, tzinfo=UTC)),
    ],
)
def test_parse_datetime_normalises_to_aware_utc(value: object, expected: datetime) -> None:
    parsed = parse_datetime(value)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value", ["hello", "10", "2026", "2026-13-01", "2026-06-32", "12/06/2026", 20260610, None, []]
)
def test_parse_datetime_returns_none_for_non_dates(value: object) -> None:
    assert parse_datetime(value) is None


def test_format_datetime_writes_utc_with_z() -> None:
    moment = datetime(2026, 6, 10, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(moment) == "2026-06-10T10:00:00Z"
    assert format_datetime(moment.replace(microsecond=5)) == "2026-06-10T10:00:00.000005Z"


@settings(max_examples=500)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), zone("America/New_York")]
        ),
    )
)
def test_format_datetime_is_isoformat_in_utc(moment: datetime) -> None:
    # Years before 1000 too: they are written with four digits, as isoformat writes them.
    expected = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert format_datetime(moment) == expected


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_is_time_zone_accepts_iana_names(name: str) -> None:
    assert is_time_zone(name)


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "", "America", "Europe", "../../etc/passwd", "/etc/passwd", "+02:00"]
)
def test_is_time_zone_refuses_without_raising(name: str) -> None:
    # "America" is a directory of the tz database: it used to raise IsADirectoryError.
    assert is_time_zone(name) is False


def test_zone_defaults_to_utc() -> None:
    assert zone(None).key == "UTC"
    assert zone("").key == "UTC"
    assert zone("Europe/Berlin").key == "Europe/Berlin"
