"""Conditions (SPEC §1.4) compiled once into plain callables.

`compile_condition(model)` returns `predicate(facts) -> bool`. Paths are split, literal
values and operators resolved at compile time, so an evaluation is a few dictionary
look-ups and one comparison. A condition on a missing field is false (`not_exists` is
true); values that cannot be compared make the rule false, never an error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from .durations import parse_datetime, parse_duration
from .facts import Event, Facts, Predicate
from .model import (
    AllOf,
    AnyOf,
    Condition,
    ConsentRule,
    EventCount,
    FieldRule,
    MessageRule,
    Not,
    SegmentRule,
)

MISSING: Any = object()
Getter = Callable[[Facts], Any]


def compile_condition(condition: Condition | None) -> Predicate:
    """Compile a condition; None (no condition) is always true."""
    if condition is None:
        return _always
    match condition:
        case AllOf():
            parts = tuple(compile_condition(c) for c in condition.all)
            return lambda facts: all(part(facts) for part in parts)
        case AnyOf():
            parts = tuple(compile_condition(c) for c in condition.any)
            return lambda facts: any(part(facts) for part in parts)
        case Not():
            inner = compile_condition(condition.not_)
            return lambda facts: not inner(facts)
        case FieldRule():
            return _field_rule(condition)
        case EventCount():
            return _event_count(condition)
        case MessageRule():
            return _message_rule(condition)
        case SegmentRule():
            return _segment_rule(condition)
        case ConsentRule():
            channel, granted = condition.consent, condition.granted
            return lambda facts: facts.profile.consent(channel) is granted
    raise TypeError(f"not a condition: {condition!r}")


def _always(facts: Facts) -> bool:
    return True


# --- paths ---------------------------------------------------------------------------


def compile_path(path: str) -> Getter:
    """A getter for `profile.a.b`, `event.data.x`, `entry.type`, `vars.n`, `instance.entered_at`."""
    root, *keys = path.split(".")
    if root == "instance":
        return lambda facts: facts.entered_at if facts.entered_at is not None else MISSING
    if root == "vars":
        return lambda facts: _dig(facts.vars, keys)
    if root == "profile":
        if keys == ["profile_id"]:
            return lambda facts: facts.profile.profile_id
        return lambda facts: _dig(facts.profile.fields, keys)
    which = "event" if root == "event" else "entry"
    head, rest = keys[0], keys[1:]

    def get_event_field(facts: Facts) -> Any:
        event: Event | None = getattr(facts, which)
        if event is None:
            return MISSING
        if head == "data":
            return _dig(event.data, rest)
        if rest or head not in ("type", "occurred_at", "id"):
            return MISSING
        return getattr(event, head)

    return get_event_field


def _dig(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, MISSING)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


def resolve(getter_or_value: Any, facts: Facts) -> Any:
    return getter_or_value(facts) if callable(getter_or_value) else getter_or_value


# --- values --------------------------------------------------------------------------


def _value_getter(value: Any) -> Any:
    """A literal stays a literal; `{"now"}`, `{"today"}`, `{"ref"}` become getters."""
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key == "now":
            shift = parse_duration(inner)
            return lambda facts: facts.now + shift
        if key == "today":
            days = timedelta(days=inner)
            return lambda facts: facts.now.astimezone(facts.tz).date() + days
        if key == "ref":
            return compile_path(inner)
    if isinstance(value, list):
        items = [_value_getter(item) for item in value]
        if any(callable(item) for item in items):
            return lambda facts: [resolve(item, facts) for item in items]
        return [_literal(item) for item in items]
    return _literal(value)


def _literal(value: Any) -> Any:
    """Date strings in a rule compare as datetimes."""
    if isinstance(value, str):
        moment = parse_datetime(value)
        if moment is not None:
            return moment
    return value


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Bring two values to one type, or None when they cannot be compared."""
    if type(left) is type(right) and not isinstance(left, date):
        return left, right
    if isinstance(right, date) or isinstance(left, date):
        left, right = _as_datetime(left), _as_datetime(right)
        return None if left is None or right is None else (left, right)
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left, right
    if isinstance(left, str) and isinstance(right, int | float):
        number = _as_number(left)
        return None if number is None else (number, right)
    if isinstance(left, int | float) and isinstance(right, str):
        number = _as_number(right)
        return None if number is None else (left, number)
    return None


def _as_datetime(value: Any) -> datetime | None:
    return parse_datetime(value)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _equal(left: Any, right: Any) -> bool:
    """Values that cannot be brought to one type differ (JSON `true` is not `1`)."""
    pair = _comparable(left, right)
    return pair[0] == pair[1] if pair else False


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def test(left: Any, right: Any) -> bool:
        pair = _comparable(left, right)
        if pair is None:
            return False
        if isinstance(pair[0], str) and isinstance(pair[1], str):  # "10" > "9", not "10" < "9"
            numbers = _as_number(pair[0]), _as_number(pair[1])
            if None not in numbers:
                pair = numbers
        try:
            return compare(*pair)
        except TypeError:
            return False

    return test


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, list):
        return any(_equal(item, right) for item in left)
    if isinstance(left, str) and isinstance(right, str):
        return right in left
    if isinstance(left, dict) and isinstance(right, str):
        return right in left
    return False


def _between(left: Any, bounds: Any) -> bool:
    low, high = bounds
    return _gte(left, low) and _lte(left, high)


_gt, _gte, _lt, _lte = (_ordered(f) for f in (operator.gt, operator.ge, operator.lt, operator.le))

# Every operator as (test on a present value, result when the field is missing).
_OPERATORS: dict[str, tuple[Callable[[Any, Any], bool], bool]] = {
    "eq": (_equal, False),
    "ne": (lambda a, b: not _equal(a, b), False),
    "gt": (_gt, False),
    "gte": (_gte, False),
    "lt": (_lt, False),
    "lte": (_lte, False),
    "in": (lambda a, b: any(_equal(a, item) for item in b), False),
    "not_in": (lambda a, b: not any(_equal(a, item) for item in b), False),
    "contains": (_contains, False),
    "not_contains": (lambda a, b: not _contains(a, b), False),
    "starts_with": (
        lambda a, b: isinstance(a, str) and isinstance(b, str) and a.startswith(b),
        False,
    ),
    "ends_with": (lambda a, b: isinstance(a, str) and isinstance(b, str) and a.endswith(b), False),
    "between": (_between, False),
}


# Operators whose literal text value is used as written, never parsed as a UTC datetime.
_AS_WRITTEN = ("on_day", "starts_with", "ends_with")


def _field_rule(rule: FieldRule) -> Predicate:
    get = compile_path(rule.field)
    op = rule.op
    if op in ("exists", "not_exists"):
        want = op == "exists"
        return lambda facts: (get(facts) not in (MISSING, None, "")) is want
    if op in _AS_WRITTEN and isinstance(rule.value, str):
        value: Any = rule.value  # a date string here is a calendar day or a prefix, not UTC
    else:
        value = _value_getter(rule.value)
    if op == "on_day":
        return _on_day(get, value)
    test, when_missing = _OPERATORS[op]
    if not callable(value):
        if op == "eq" and isinstance(value, str):  # the most common rule, kept short

            def equals_text(facts: Facts) -> bool:
                found = get(facts)
                return (
                    found == value
                    if type(found) is str
                    else found is not MISSING and _equal(found, value)
                )

            return equals_text

        def against_literal(facts: Facts) -> bool:
            found = get(facts)
            return when_missing if found is MISSING or found is None else test(found, value)

        return against_literal

    def against_computed(facts: Facts) -> bool:
        found = get(facts)
        return when_missing if found is MISSING or found is None else test(found, value(facts))

    return against_computed


def _on_day(get: Getter, value: Any) -> Predicate:
    """True when the field's date, in the profile's time zone, is the given calendar day."""

    def day_of(found: Any, facts: Facts) -> date | None:
        if isinstance(found, date) and not isinstance(found, datetime):
            return found
        if isinstance(found, str) and len(found) == 10:
            try:
                return date.fromisoformat(found)
            except ValueError:
                return None
        moment = _as_datetime(found)
        return None if moment is None else moment.astimezone(facts.tz).date()

    def on_day(facts: Facts) -> bool:
        found = get(facts)
        if found is MISSING or found is None:
            return False
        want = resolve(value, facts)
        return day_of(found, facts) == day_of(want, facts) is not None

    return on_day


# --- history rules -------------------------------------------------------------------


def _since(since: str) -> Callable[[Facts], datetime | None]:
    if since == "entry":
        return lambda facts: facts.entered_at
    window = abs(parse_duration(since))
    return lambda facts: facts.now - window


def _event_count(rule: EventCount) -> Predicate:
    query = rule.event_count
    event_type, start = query.type, _since(query.since)
    where = compile_condition(query.where) if query.where is not None else None
    test, _ = _OPERATORS[rule.op]
    value = rule.value

    def count_events(facts: Facts) -> bool:
        cutoff = start(facts)
        count = 0
        for event in facts.profile.events:
            if event.type != event_type or (cutoff is not None and event.occurred_at < cutoff):
                continue
            if where is None or where(replace(facts, event=event)):
                count += 1
        return test(count, value)

    return count_events


def _message_rule(rule: MessageRule) -> Predicate:
    query, exists = rule.message, rule.exists
    start = _since(query.since)

    def has_message(facts: Facts) -> bool:
        cutoff = start(facts)
        for message in facts.profile.messages:
            if (
                message.scenario_id == facts.scenario_id
                and (query.channel is None or message.channel == query.channel)
                and (query.node is None or message.node == query.node)
                and query.status in message.statuses
                and (cutoff is None or message.statuses[query.status] >= cutoff)
            ):
                return exists
        return not exists

    return has_message


def _segment_rule(rule: SegmentRule) -> Predicate:
    segment_id, member = rule.segment, rule.member

    def in_segment(facts: Facts) -> bool:
        predicate = facts.segments.get(segment_id)
        return predicate is not None and predicate(facts) is member

    return in_segment
