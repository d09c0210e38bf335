"""Conditions of SPEC §1.4 compiled to predicates over Facts."""

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter

from chalicelib.scenarios.conditions import compile_condition, compile_path
from chalicelib.scenarios.facts import Event, Facts, Message, Predicate, Profile
from chalicelib.scenarios.model import Condition

CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)

# 2026-06-10 02:00 UTC is still 2026-06-09 (22:00) in New York and already 04:00 in Berlin.
NOW = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
ENTERED = NOW - timedelta(days=3)
SCENARIO = "welcome"


def make_facts(
    fields: Mapping[str, Any] | None = None,
    *,
    tz: str = "UTC",
    event: Event | None = None,
    entry: Event | None = None,
    vars: Mapping[str, Any] | None = None,
    entered_at: datetime | None = ENTERED,
    events: list[Event] | None = None,
    messages: list[Message] | None = None,
    segments: Mapping[str, Predicate] | None = None,
    now: datetime = NOW,
) -> Facts:
    profile = Profile(
        "p-1",
        fields=dict(fields or {}),
        events=list(events or []),
        messages=list(messages or []),
    )
    return Facts(
        profile=profile,
        now=now,
        tz=ZoneInfo(tz),
        event=event,
        entry=entry,
        vars=dict(vars or {}),
        entered_at=entered_at,
        scenario_id=SCENARIO,
        segments=dict(segments or {}),
    )


def compiled(condition: dict[str, Any]) -> Predicate:
    return compile_condition(CONDITION.validate_python(condition))


def holds(condition: dict[str, Any], facts: Facts | None = None, **kwargs: Any) -> bool:
    result = compiled(condition)(facts if facts is not None else make_facts(**kwargs))
    assert isinstance(result, bool)
    return result


def rule(op: str, value: Any = None, field: str = "profile.x") -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def on_x(op: str, present: Any, value: Any = None) -> bool:
    return holds(rule(op, value), fields={"x": present})


# --- every operator on present values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "present", "value", "expected"),
    [
        ("eq", "Berlin", "Berlin", True),
        ("eq", "Berlin", "berlin", False),
        ("eq", 5, 5, True),
        ("eq", 5, 5.0, True),
        ("eq", 5, 6, False),
        ("eq", True, True, True),
        ("eq", False, True, False),
        ("eq", ["a"], ["a"], True),
        ("ne", "Berlin", "Paris", True),
        ("ne", "Berlin", "Berlin", False),
        ("ne", 3, 3, False),
        ("gt", 10, 9, True),
        ("gt", 9, 9, False),
        ("gt", 2.5, 2, True),
        ("gte", 9, 9, True),
        ("gte", 8, 9, False),
        ("lt", 8, 9, True),
        ("lt", 9, 9, False),
        ("lte", 9, 9, True),
        ("lte", 10, 9, False),
        ("gt", "b", "a", True),
        ("lt", "apple", "banana", True),
        ("in", "sms", ["sms", "email"], True),
        ("in", "push", ["sms", "email"], False),
        ("in", 3, [1, 2, 3], True),
        ("not_in", "push", ["sms", "email"], True),
        ("not_in", "sms", ["sms", "email"], False),
        ("contains", ["vip", "beta"], "vip", True),
        ("contains", ["vip", "beta"], "gold", False),
        ("contains", [1, 2], 2, True),
        ("contains", "hello world", "lo w", True),
        ("contains", "hello world", "bye", False),
        ("contains", {"a": 1}, "a", True),
        ("contains", {"a": 1}, "b", False),
        ("not_contains", ["vip"], "gold", True),
        ("not_contains", ["vip"], "vip", False),
        ("not_contains", "hello", "ell", False),
        ("starts_with", "+49 170 123", "+49", True),
        ("starts_with", "+33 6 12", "+49", False),
        ("ends_with", "ann@example.com", "@example.com", True),
        ("ends_with", "ann@example.org", "@example.com", False),
        ("between", 5, [1, 10], True),
        ("between", 1, [1, 10], True),
        ("between", 10, [1, 10], True),
        ("between", 11, [1, 10], False),
        ("between", 0.5, [1, 10], False),
        ("exists", "x", None, True),
        ("exists", 0, None, True),
        ("exists", False, None, True),
        ("exists", [], None, True),
        ("exists", "", None, False),
        ("exists", None, None, False),
        ("not_exists", "x", None, False),
        ("not_exists", 0, None, False),
        ("not_exists", "", None, True),
        ("not_exists", None, None, True),
    ],
)
def test_operator_on_present_value(op: str, present: Any, value: Any, expected: bool) -> None:
    assert on_x(op, present, value) is expected


ALL_OPERATORS = {
    "eq": "a",
    "ne": "a",
    "gt": 1,
    "gte": 1,
    "lt": 1,
    "lte": 1,
    "in": ["a", 1],
    "not_in": ["a", 1],
    "contains": "a",
    "not_contains": "a",
    "starts_with": "a",
    "ends_with": "a",
    "exists": None,
    "not_exists": None,
    "between": [1, 2],
    "on_day": {"today": 0},
}


@pytest.mark.parametrize(("op", "value"), ALL_OPERATORS.items())
def test_missing_field_is_false_except_not_exists(op: str, value: Any) -> None:
    expected = op == "not_exists"
    assert holds(rule(op, value), fields={}) is expected
    assert holds(rule(op, value, field="profile.a.b.c"), fields={"a": {"b": {}}}) is expected
    assert holds(rule(op, value, field="profile.a.b"), fields={"a": "not a dict"}) is expected
    assert holds(rule(op, value, field="event.data.x"), event=None) is expected
    assert holds(rule(op, value, field="vars.x")) is expected


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("ne", {"ref": "vars.x"}),
        ("ne", {"now": "-P1D"}),
        ("not_in", [{"ref": "vars.x"}]),
        ("not_contains", {"ref": "vars.x"}),
        ("eq", {"ref": "vars.x"}),
        ("on_day", {"today": 0}),
    ],
)
def test_missing_field_against_a_computed_value_is_false(op: str, value: Any) -> None:
    assert holds(rule(op, value), fields={}, vars={"x": "a"}) is False
    assert holds(rule(op, value), fields={"x": None}, vars={"x": "a"}) is False


@pytest.mark.parametrize(("op", "value"), ALL_OPERATORS.items())
def test_null_field_counts_as_missing(op: str, value: Any) -> None:
    assert holds(rule(op, value), fields={"x": None}) is (op == "not_exists")


ANY_VALUES = ["text", "", 7, 2.5, True, False, ["a", 1], [], {"a": 1}, {}, "2026-06-10T10:00:00Z"]


@pytest.mark.parametrize(("op", "value"), ALL_OPERATORS.items())
def test_never_raises_on_any_value_type(op: str, value: Any) -> None:
    predicate = compiled(rule(op, value))
    for present in ANY_VALUES:
        result = predicate(make_facts({"x": present}))
        assert isinstance(result, bool), (present, result)


@pytest.mark.parametrize(
    ("op", "present", "value"),
    [
        ("eq", True, 1),
        ("eq", False, 0),
        ("eq", 1, True),
        ("eq", "5", "five"),
        ("eq", [1], 1),
        ("eq", {"a": 1}, "a"),
        ("eq", "true", True),
        ("in", True, [1, 2]),
        ("gt", "abc", 5),
        ("gt", True, 0),
        ("gte", [5], 1),
        ("lt", {"a": 1}, 5),
        ("lt", "soon", "2026-06-10T00:00:00Z"),
        ("lte", 5, "abc"),
        ("contains", 12345, "3"),
        ("contains", "12345", 3),
        ("starts_with", 12345, "1"),
        ("ends_with", ["a", "b"], "b"),
        ("between", "abc", [1, 10]),
        ("between", {"a": 1}, [1, 10]),
        ("on_day", "not a date", "2026-06-10"),
        ("on_day", 20260610, "2026-06-10"),
    ],
)
def test_mismatched_types_are_false(op: str, present: Any, value: Any) -> None:
    assert on_x(op, present, value) is False


def test_ne_is_true_for_mismatched_types() -> None:
    assert on_x("ne", True, 1) is True
    assert on_x("ne", "five", 5) is True


# --- numbers as strings, dates as strings --------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "present", "value", "expected"),
    [
        ("eq", "10", 10, True),
        ("eq", "10.0", 10, True),
        ("eq", 10, "10", True),
        ("eq", "10", "10", True),
        ("gt", "10", 9, True),
        ("gt", 10, "9", True),
        ("gt", "10", "9", True),  # numerically, not as text ("10" < "9")
        ("lt", "9", "10", True),
        ("lt", "100", 20, False),
        ("gte", "2.5", 2.5, True),
        ("between", "5", [1, 10], True),
        ("between", "5", ["1", "10"], True),
        ("in", "3", [1, 2, 3], True),
        ("contains", ["1", "2"], 2, True),
    ],
)
def test_numbers_as_strings_compare_numerically(
    op: str, present: Any, value: Any, expected: bool
) -> None:
    assert on_x(op, present, value) is expected


def test_numeric_strings_stay_distinct_for_eq() -> None:
    # Zip codes and ids: "007" is not "7", even though 7 == 7.0.
    assert on_x("eq", "007", "7") is False


@pytest.mark.parametrize(
    ("op", "present", "value", "expected"),
    [
        ("eq", "2026-06-10T12:00:00+02:00", "2026-06-10T10:00:00Z", True),
        ("eq", "2026-06-10T00:00:00Z", "2026-06-10", True),
        ("gt", "2026-06-10T10:00:01Z", "2026-06-10T10:00:00Z", True),
        ("gt", "2026-06-10T11:00:00+02:00", "2026-06-10T10:00:00Z", False),
        ("lt", "2026-05-31", "2026-06-01T00:00:00Z", True),
        # As datetimes, not as text: "2026-06-10T09:00:00-05:00" is 14:00 UTC.
        ("gt", "2026-06-10T09:00:00-05:00", "2026-06-10T12:00:00Z", True),
        ("between", "2026-06-05", ["2026-06-01", "2026-06-30"], True),
        ("between", "2026-07-05", ["2026-06-01", "2026-06-30"], False),
        ("in", "2026-06-10T02:00:00+02:00", ["2026-06-10T00:00:00Z"], True),
    ],
)
def test_date_strings_compare_as_datetimes(
    op: str, present: Any, value: Any, expected: bool
) -> None:
    assert on_x(op, present, value) is expected


def test_date_prefix_for_starts_with_is_text() -> None:
    assert on_x("starts_with", "2026-06-10T10:00:00Z", "2026-06-10") is True
    assert on_x("ends_with", "due 2026-06-10", "2026-06-10") is True


# --- relative values: now and today ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (NOW - timedelta(days=2), True),
        (NOW - timedelta(days=7) + timedelta(seconds=1), True),
        (NOW - timedelta(days=8), False),
        (NOW + timedelta(days=1), True),
    ],
)
def test_now_minus_duration(seen: datetime, expected: bool) -> None:
    condition = rule("gte", {"now": "-P7D"}, field="profile.last_seen")
    as_text = seen.isoformat().replace("+00:00", "Z")
    assert holds(condition, fields={"last_seen": as_text}) is expected
    assert holds(condition, fields={"last_seen": seen}) is expected


def test_now_follows_facts_now() -> None:
    condition = rule("lt", {"now": "PT1H"}, field="profile.t")
    fields = {"t": "2026-06-10T02:30:00Z"}
    assert holds(condition, fields=fields) is True
    assert holds(condition, fields=fields, now=NOW - timedelta(hours=1)) is False


def test_between_now_values() -> None:
    condition = rule("between", [{"now": "-P1D"}, {"now": "P1D"}], field="profile.t")
    assert holds(condition, fields={"t": "2026-06-10T12:00:00Z"}) is True
    assert holds(condition, fields={"t": "2026-06-12T12:00:00Z"}) is False


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        ("UTC", "2026-06-10", True),
        ("Europe/Berlin", "2026-06-10", True),
        ("America/New_York", "2026-06-09", True),
        ("America/New_York", "2026-06-10", False),
        ("UTC", "2026-06-09", False),
    ],
)
def test_today_is_the_calendar_day_in_the_profile_time_zone(
    tz: str, day: str, expected: bool
) -> None:
    condition = rule("on_day", {"today": 0}, field="profile.d")
    assert holds(condition, fields={"d": day}, tz=tz) is expected
    assert holds(condition, fields={"d": date.fromisoformat(day)}, tz=tz) is expected


@pytest.mark.parametrize(
    ("tz", "expected_day"),
    [("UTC", "2026-06-24"), ("Europe/Berlin", "2026-06-24"), ("America/New_York", "2026-06-23")],
)
def test_today_plus_14(tz: str, expected_day: str) -> None:
    condition = rule("on_day", {"today": 14}, field="profile.renewal")
    assert holds(condition, fields={"renewal": expected_day}, tz=tz) is True
    other = (date.fromisoformat(expected_day) + timedelta(days=1)).isoformat()
    assert holds(condition, fields={"renewal": other}, tz=tz) is False


def test_today_minus_days() -> None:
    condition = rule("on_day", {"today": -1}, field="profile.d")
    assert holds(condition, fields={"d": "2026-06-09"}) is True


def test_on_day_with_a_datetime_field_uses_the_local_day() -> None:
    # 2026-06-10T01:00Z is June 9 in New York, June 10 in Berlin.
    condition = rule("on_day", {"today": 0}, field="profile.d")
    fields = {"d": "2026-06-10T01:00:00Z"}
    assert holds(condition, fields=fields, tz="America/New_York") is True
    assert holds(condition, fields=fields, tz="Europe/Berlin") is True
    # 21:00Z is 23:00 on June 9 in Berlin; 23:00Z is already June 10 there.
    assert holds(condition, fields={"d": "2026-06-09T21:00:00Z"}, tz="Europe/Berlin") is False
    assert holds(condition, fields={"d": "2026-06-09T23:00:00Z"}, tz="Europe/Berlin") is True
    assert holds(condition, fields={"d": "2026-06-09T23:00:00Z"}, tz="UTC") is False


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati"])
def test_on_day_with_a_literal_calendar_day(tz: str) -> None:
    condition = rule("on_day", "2026-06-10", field="profile.d")
    assert holds(condition, fields={"d": "2026-06-10"}, tz=tz) is True
    assert holds(condition, fields={"d": "2026-06-11"}, tz=tz) is False


def test_on_day_with_now() -> None:
    condition = rule("on_day", {"now": "-P1D"}, field="profile.d")
    assert holds(condition, fields={"d": "2026-06-09"}) is True
    assert holds(condition, fields={"d": "2026-06-08"}, tz="America/New_York") is True


# --- paths -----------------------------------------------------------------------------------------

ORDER = Event(
    "order.created",
    datetime(2026, 6, 9, 20, 0, tzinfo=UTC),
    {"order_id": "o-1", "total": 120.5, "items": [{"sku": "A"}, {"sku": "B"}]},
    id="ev-1",
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("profile.city", "Berlin"),
        ("profile.address.zip", "10115"),
        ("profile.tags.1", "beta"),
        ("profile.profile_id", "p-1"),
        ("event.type", "order.created"),
        ("event.id", "ev-1"),
        ("event.occurred_at", ORDER.occurred_at),
        ("event.data.order_id", "o-1"),
        ("event.data.items.0.sku", "A"),
        ("entry.type", "order.created"),
        ("entry.data.total", 120.5),
        ("vars.promo_code", "WELCOME10"),
        ("vars.response.status", 200),
        ("instance.entered_at", ENTERED),
    ],
)
def test_compile_path(path: str, expected: Any) -> None:
    facts = make_facts(
        {"city": "Berlin", "address": {"zip": "10115"}, "tags": ["vip", "beta"]},
        event=ORDER,
        entry=ORDER,
        vars={"promo_code": "WELCOME10", "response": {"status": 200}},
    )
    assert compile_path(path)(facts) == expected


@pytest.mark.parametrize(
    "path",
    [
        "profile.nope",
        "profile.tags.5",
        "profile.tags.x",
        "profile.city.name",
        "event.data.nope",
        "event.type.more",
        "event.nope",
        "entry.data.order_id",  # no entry event
        "vars.nope",
    ],
)
def test_compile_path_missing_is_false_for_eq(path: str) -> None:
    facts = make_facts({"city": "Berlin", "tags": ["vip"]}, event=ORDER, entry=None)
    assert holds(rule("exists", field=path), facts) is False
    assert holds(rule("not_exists", field=path), facts) is True


def test_instance_entered_at_missing() -> None:
    assert holds(rule("exists", field="instance.entered_at"), entered_at=None) is False


def test_instance_entered_at_compares_with_now() -> None:
    condition = rule("lt", {"now": "-P2D"}, field="instance.entered_at")
    assert holds(condition) is True  # entered 3 days ago
    assert holds(condition, entered_at=NOW - timedelta(days=1)) is False


def test_event_paths_in_rules() -> None:
    assert holds(rule("eq", "order.created", field="event.type"), event=ORDER)
    assert holds(rule("gt", 100, field="event.data.total"), event=ORDER)
    assert not holds(rule("gt", 200, field="event.data.total"), event=ORDER)
    assert holds(rule("lt", {"now": "-PT1H"}, field="event.occurred_at"), event=ORDER)


def test_ref_compares_with_the_entry_event() -> None:
    same_order = rule("eq", {"ref": "entry.data.order_id"}, field="event.data.order_id")
    paid = Event("order.paid", NOW, {"order_id": "o-1"})
    other = Event("order.paid", NOW, {"order_id": "o-2"})
    assert holds(same_order, event=paid, entry=ORDER) is True
    assert holds(same_order, event=other, entry=ORDER) is False
    assert holds(same_order, event=paid, entry=None) is False
    assert holds(same_order, event=Event("order.paid", NOW, {}), entry=ORDER) is False


def test_ref_to_a_profile_field() -> None:
    condition = rule("gte", {"ref": "profile.budget"}, field="event.data.total")
    assert holds(condition, fields={"budget": 100}, event=ORDER) is True
    assert holds(condition, fields={"budget": "200"}, event=ORDER) is False
    assert holds(condition, fields={}, event=ORDER) is False


def test_ref_inside_a_list() -> None:
    condition = rule("in", [{"ref": "vars.a"}, {"ref": "vars.b"}], field="profile.x")
    assert holds(condition, fields={"x": 2}, vars={"a": 1, "b": 2}) is True
    assert holds(condition, fields={"x": 3}, vars={"a": 1, "b": 2}) is False


# --- nesting -----------------------------------------------------------------------------------------


def test_all_any_not() -> None:
    vip = rule("eq", True, field="profile.vip")
    berlin = rule("eq", "Berlin", field="profile.city")
    young = rule("lt", 30, field="profile.age")
    condition = {"all": [vip, {"any": [berlin, {"not": young}]}]}
    assert holds(condition, fields={"vip": True, "city": "Berlin", "age": 20}) is True
    assert holds(condition, fields={"vip": True, "city": "Paris", "age": 40}) is True
    assert holds(condition, fields={"vip": True, "city": "Paris", "age": 20}) is False
    assert holds(condition, fields={"vip": False, "city": "Berlin", "age": 40}) is False


def test_not_of_a_missing_field_is_true() -> None:
    assert holds({"not": rule("eq", "Berlin", field="profile.city")}, fields={}) is True


def test_double_not() -> None:
    assert holds({"not": {"not": rule("exists")}}, fields={"x": 1}) is True


def test_any_with_one_true_and_all_with_one_false() -> None:
    yes, no = rule("exists"), rule("not_exists")
    assert holds({"any": [no, no, yes]}, fields={"x": 1}) is True
    assert holds({"all": [yes, yes, no]}, fields={"x": 1}) is False


def test_no_condition_is_always_true() -> None:
    assert compile_condition(None)(make_facts()) is True


def test_compile_condition_rejects_non_conditions() -> None:
    with pytest.raises(TypeError):
        compile_condition({"field": "profile.x"})  # type: ignore[arg-type]


# --- event_count -------------------------------------------------------------------------------------


def _event(kind: str, hours_ago: float, **data: Any) -> Event:
    return Event(kind, NOW - timedelta(hours=hours_ago), data)


HISTORY = [
    _event("subscription.confirmed", 100),  # before entry (72 h ago)
    _event("subscription.confirmed", 48),
    _event("subscription.confirmed", 2),
    _event("order.created", 30, total=50),
    _event("order.created", 10, total=150),
    _event("order.created", 1, total=250),
]


def count_rule(
    kind: str, op: str, value: int, since: str = "entry", **query: Any
) -> dict[str, Any]:
    return {"event_count": {"type": kind, "since": since, **query}, "op": op, "value": value}


@pytest.mark.parametrize(
    ("since", "count"),
    [("entry", 2), ("P1D", 1), ("P5D", 3), ("PT1H", 0), ("-P1D", 1)],
)
def test_event_count_since(since: str, count: int) -> None:
    assert holds(count_rule("subscription.confirmed", "eq", count, since), events=HISTORY)
    assert not holds(count_rule("subscription.confirmed", "eq", count + 1, since), events=HISTORY)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gte", 3, True),
        ("gte", 4, False),
        ("gt", 2, True),
        ("lt", 4, True),
        ("lte", 2, False),
        ("ne", 2, True),
        ("ne", 3, False),
        ("eq", 3, True),
    ],
)
def test_event_count_operators(op: str, value: int, expected: bool) -> None:
    assert holds(count_rule("order.created", op, value), events=HISTORY) is expected


def test_event_count_where_filters_on_event_data() -> None:
    big = {"field": "event.data.total", "op": "gt", "value": 100}
    assert holds(count_rule("order.created", "eq", 2, where=big), events=HISTORY)
    assert holds(count_rule("order.created", "eq", 1, since="PT5H", where=big), events=HISTORY)


def test_event_count_where_sees_the_profile() -> None:
    over_budget = {"field": "event.data.total", "op": "gt", "value": {"ref": "profile.budget"}}
    condition = count_rule("order.created", "eq", 1, where=over_budget)
    assert holds(condition, events=HISTORY, fields={"budget": 200})


def test_event_count_zero_with_no_events() -> None:
    assert holds(count_rule("order.created", "eq", 0), events=[])
    assert not holds(count_rule("order.created", "gte", 1), events=[])


def test_event_count_ignores_other_types() -> None:
    assert holds(count_rule("order.paid", "eq", 0), events=HISTORY)


def test_spec_example_confirmed_since_entry() -> None:
    condition = count_rule("subscription.confirmed", "gte", 1)
    before_entry_only = [_event("subscription.confirmed", 100)]
    assert holds(condition, events=HISTORY) is True
    assert holds(condition, events=before_entry_only) is False


# --- message -----------------------------------------------------------------------------------------


def _message(
    channel: str,
    node: str,
    hours_ago: float,
    statuses: tuple[str, ...] = ("sent",),
    scenario_id: str = SCENARIO,
) -> Message:
    at = NOW - timedelta(hours=hours_ago)
    return Message(
        message_id=f"m-{channel}-{node}-{hours_ago}",
        scenario_id=scenario_id,
        node=node,
        channel=channel,
        at=at,
        statuses={status: at + timedelta(minutes=i) for i, status in enumerate(statuses)},
    )


MESSAGES = [
    _message("email", "welcome_email", 70, ("sent", "delivered", "opened")),
    _message("sms", "reminder_sms", 100),  # before entry
    _message("push", "nudge", 5, ("sent", "failed")),
    _message("sms", "other_sms", 1, scenario_id="another-scenario"),
]


def message_rule(exists: bool = True, **query: Any) -> dict[str, Any]:
    return {"message": query, "exists": exists}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({"channel": "email"}, True),
        ({"channel": "email", "status": "opened"}, True),
        ({"channel": "email", "status": "clicked"}, False),
        ({"channel": "sms"}, False),  # before entry, and the other is another scenario's
        ({"channel": "sms", "since": "P5D"}, True),
        ({"channel": "push", "status": "failed", "since": "PT6H"}, True),
        ({"channel": "push", "since": "PT4H"}, False),
        ({"node": "welcome_email"}, True),
        ({"node": "welcome_email", "channel": "sms"}, False),
        ({"node": "other_sms", "since": "P1D"}, False),
        ({"status": "delivered"}, True),
        ({"status": "bounced"}, False),
        ({}, True),
    ],
)
def test_message_rule(query: dict[str, Any], found: bool) -> None:
    assert holds(message_rule(True, **query), messages=MESSAGES) is found
    assert holds(message_rule(False, **query), messages=MESSAGES) is (not found)


def test_spec_example_sms_sent_since_entry() -> None:
    condition = message_rule(True, channel="sms", status="sent", since="entry")
    assert holds(condition, messages=MESSAGES) is False
    sent = [*MESSAGES, _message("sms", "reminder_sms", 2)]
    assert holds(condition, messages=sent) is True


def test_message_rule_with_no_messages() -> None:
    assert holds(message_rule(True), messages=[]) is False
    assert holds(message_rule(False), messages=[]) is True


# --- segment and consent -------------------------------------------------------------------------------


def _vip(facts: Facts) -> bool:
    return facts.profile.fields.get("vip") is True


@pytest.mark.parametrize(
    ("fields", "member", "expected"),
    [
        ({"vip": True}, True, True),
        ({"vip": False}, True, False),
        ({"vip": True}, False, False),
        ({"vip": False}, False, True),
        ({}, False, True),
    ],
)
def test_segment_rule(fields: dict[str, Any], member: bool, expected: bool) -> None:
    condition = {"segment": "vip", "member": member}
    assert holds(condition, fields=fields, segments={"vip": _vip}) is expected


def test_segment_member_defaults_to_true() -> None:
    assert holds({"segment": "vip"}, fields={"vip": True}, segments={"vip": _vip})


def test_unknown_segment_is_false_either_way() -> None:
    assert holds({"segment": "ghost", "member": True}, segments={"vip": _vip}) is False
    assert holds({"segment": "ghost", "member": False}, segments={"vip": _vip}) is False


@pytest.mark.parametrize(
    ("consents", "channel", "granted", "expected"),
    [
        ({"sms": True}, "sms", True, True),
        ({"sms": True}, "sms", False, False),
        ({"sms": False}, "sms", True, False),
        ({"sms": False}, "sms", False, True),
        ({"sms": True}, "email", True, False),
        ({"sms": True}, "email", False, True),
        ({"sms": "true"}, "sms", True, False),  # only JSON true grants consent
        ({"sms": 1}, "sms", True, False),
        (None, "push", True, False),
        ("yes", "push", False, True),
    ],
)
def test_consent_rule(consents: Any, channel: str, granted: bool, expected: bool) -> None:
    fields = {} if consents is None else {"consents": consents}
    assert holds({"consent": channel, "granted": granted}, fields=fields) is expected


def test_consent_granted_defaults_to_true() -> None:
    assert holds({"consent": "email"}, fields={"consents": {"email": True}})
    assert not holds({"consent": "email"}, fields={"consents": {}})


# --- compiled once, evaluated many times ------------------------------------------------------------


def test_a_compiled_predicate_is_reusable_across_facts() -> None:
    predicate = compiled(rule("eq", "Berlin", field="profile.city"))
    assert predicate(make_facts({"city": "Berlin"})) is True
    assert predicate(make_facts({"city": "Paris"})) is False
    assert predicate(make_facts({"city": "Berlin"})) is True


def test_event_count_does_not_change_the_facts_event() -> None:
    facts = make_facts(events=HISTORY, event=ORDER)
    big = {"field": "event.data.total", "op": "gt", "value": 100}
    assert compiled(count_rule("order.created", "eq", 2, where=big))(facts) is True
    assert facts.event is ORDER
