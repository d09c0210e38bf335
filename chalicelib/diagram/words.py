"""Scenario elements in words: one line that says what a trigger or a node does.

The diagram draws any stored document, drafts included, so nothing here assumes a valid
one: a field of the wrong type is shown as it is rather than raising.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = (
    ("weeks", "week"),
    ("days", "day"),
    ("hours", "hour"),
    ("minutes", "min"),
    ("seconds", "s"),
)
OPERATORS = {
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "in": "in",
    "not_in": "not in",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "between": "between",
    "on_day": "on the day",
}


def number(value: Any) -> str:
    """A number as people write it: `100`, not `Decimal('100')` or `100.0`."""
    if isinstance(value, Decimal | float) and value == int(value):
        return str(int(value))
    return str(value)


def duration(text: Any) -> str:
    """`P1DT12H` → `1 day 12 hours`; anything that is not a duration is shown as given."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or text in ("P", "PT"):
        return str(text)
    parts = []
    for group, unit in _UNITS:
        amount = match.group(group)
        if amount:
            plural = "s" if amount != "1" and unit not in ("min", "s") else ""
            parts.append(f"{number(Decimal(amount))} {unit}{plural}")
    words = " ".join(parts) or "0 s"
    return f"minus {words}" if match.group("sign") == "-" else words


def value(given: Any) -> str:
    """A condition's operand: computed values in words, lists joined, strings quoted."""
    if isinstance(given, dict) and len(given) == 1:
        ((key, inner),) = given.items()
        if key == "now":
            return (
                f"now {duration(inner)}"
                if str(inner).startswith("-")
                else f"now + {duration(inner)}"
            )
        if key == "today":
            return f"today + {number(inner)} days"
        if key == "ref":
            return str(inner)
    if isinstance(given, list):
        return ", ".join(value(item) for item in given)
    if isinstance(given, str):
        return f"'{given}'"
    if isinstance(given, bool):
        return "true" if given else "false"
    return number(given)


def since(text: Any) -> str:
    return "since entry" if text in (None, "entry") else f"in the last {duration(text)}"


def condition(rule: Any) -> str:
    """A condition (SPEC §1.4) as a phrase: `profile.city = 'Berlin' and in segment vip`."""
    if not isinstance(rule, dict):
        return "?"
    if "all" in rule:
        return " and ".join(_grouped(item) for item in _items(rule["all"])) or "?"
    if "any" in rule:
        return " or ".join(_grouped(item) for item in _items(rule["any"])) or "?"
    if "not" in rule:
        return f"not {_grouped(rule['not'])}"
    if "field" in rule:
        op = str(rule.get("op"))
        if op in ("exists", "not_exists"):
            return f"{rule['field']} {'exists' if op == 'exists' else 'is missing'}"
        return f"{rule['field']} {OPERATORS.get(op, op)} {value(rule.get('value'))}"
    if "event_count" in rule:
        query = rule["event_count"] if isinstance(rule["event_count"], dict) else {}
        op = OPERATORS.get(str(rule.get("op")), str(rule.get("op")))
        return (
            f"{query.get('type', '?')} events {since(query.get('since'))} "
            f"{op} {number(rule.get('value'))}"
        )
    if "message" in rule:
        query = rule["message"] if isinstance(rule["message"], dict) else {}
        channel = query.get("channel") or "message"
        at = f" from {query['node']}" if query.get("node") else ""
        found = "a" if rule.get("exists", True) else "no"
        return f"{found} {channel} {query.get('status', 'sent')}{at} {since(query.get('since'))}"
    if "segment" in rule:
        member = rule.get("member", True)
        return f"{'in' if member else 'not in'} segment {rule['segment']}"
    if "consent" in rule:
        granted = rule.get("granted", True)
        return f"{rule['consent']} consent {'granted' if granted else 'not granted'}"
    return "?"


def _items(given: Any) -> list[Any]:
    return given if isinstance(given, list) else []


def _grouped(rule: Any) -> str:
    text = condition(rule)
    return f"({text})" if isinstance(rule, dict) and ("all" in rule or "any" in rule) else text


def trigger(element: dict[str, Any]) -> str:
    """What captures profiles: `on profile.imported`, `daily at 19:30`, `webhook call`."""
    kind = element.get("type")
    if kind == "event":
        where = f" where {condition(element['where'])}" if element.get("where") else ""
        return f"on {element.get('event', '?')}{where}"
    if kind == "schedule":
        return _schedule(element)
    if kind == "webhook":
        return f"POST /hooks/…/{element.get('id', '?')}"
    return str(kind)


def _schedule(element: dict[str, Any]) -> str:
    if element.get("daily"):
        timing = f"daily at {element['daily']}"
    elif isinstance(element.get("weekly"), dict):
        weekly = element["weekly"]
        timing = f"{', '.join(map(str, _items(weekly.get('days'))))} at {weekly.get('at', '?')}"
    elif isinstance(element.get("monthly"), dict):
        monthly = element["monthly"]
        timing = f"monthly on day {monthly.get('day', '?')} at {monthly.get('at', '?')}"
    elif element.get("once"):
        timing = f"once at {element['once']}"
    else:
        timing = f"cron {element.get('cron', '?')}"
    segment = element.get("segment")
    if isinstance(segment, dict) and set(segment) == {"ref"}:
        return f"{timing}, segment {segment['ref']}"
    return f"{timing}, {condition(segment)}" if segment else timing


def node(element: dict[str, Any]) -> str:
    """One line that says what a node does: the pause's duration, the send's subject,
    the condition in words."""
    kind = element.get("type")
    describe = _NODES.get(kind) if isinstance(kind, str) else None
    return describe(element) if describe else ""


def _send(element: dict[str, Any]) -> str:
    given = element.get("template")
    template: dict[str, Any] = given if isinstance(given, dict) else {}
    for key in ("subject", "title", "body"):
        if template.get(key):
            return f"{element.get('channel', '?')}: {template[key]}"
    return str(element.get("channel", "?"))


def _pause(element: dict[str, Any]) -> str:
    if element.get("duration"):
        text = duration(element["duration"])
    elif element.get("until"):
        text = f"until {element['until']}"
    elif element.get("until_field"):
        offset = element.get("offset")
        text = f"until {element['until_field']}" + (f" {duration(offset)}" if offset else "")
    else:
        text = "wait"
    if element.get("days"):
        text += f", on {', '.join(map(str, _items(element['days'])))}"
    if element.get("at"):
        text += f", at {element['at']}"
    return text


def _wait_for(element: dict[str, Any]) -> str:
    if element.get("event"):
        text = f"for {element['event']}"
        if element.get("where"):
            text += f" where {condition(element['where'])}"
    else:
        text = f"until {condition(element.get('condition'))}"
    timeout = element.get("timeout")
    return f"{text}, at most {duration(timeout)}" if timeout else text


def _update_profile(element: dict[str, Any]) -> str:
    ops = []
    for op in _items(element.get("ops")):
        if not isinstance(op, dict):
            continue
        if "consent" in op:
            ops.append(f"{op.get('op', '?')} {op['consent']} consent")
        elif op.get("op") == "set":
            ops.append(f"{op.get('field')} = {value(op.get('value'))}")
        elif op.get("op") in ("increment", "decrement"):
            sign = "+" if op["op"] == "increment" else "−"
            ops.append(f"{op.get('field')} {sign} {number(op.get('value', 1))}")
        else:
            ops.append(f"{op.get('op', '?')} {op.get('field')}")
    return "; ".join(ops)


def _branches(element: dict[str, Any]) -> str:
    count = len(_items(element.get("branches")))
    return f"{count} branch{'es' if count != 1 else ''}"


def _experiment(element: dict[str, Any]) -> str:
    text = f"{_branches(element)}, best {element.get('metric', 'conversion')}"
    after = element.get("decide_after")
    return f"{text} after {duration(after)}" if after else text


def _jump(element: dict[str, Any]) -> str:
    at = f" at {element['node']}" if element.get("node") else ""
    return f"to scenario {element.get('scenario', '?')}{at}"


_NODES = {
    "send": _send,
    "webhook": lambda e: (
        f"{e.get('method', 'POST')} {re.sub(r'^https?://', '', str(e.get('url', '?')))}"
    ),
    "pause": _pause,
    "best_time": lambda e: f"best hour within {duration(e.get('within', 'P1D'))}",
    "wait_for": _wait_for,
    "condition": lambda e: f"if {condition(e.get('if'))}",
    "split": _branches,
    "ab_split": _branches,
    "experiment": _experiment,
    "update_profile": _update_profile,
    "promo_code": lambda e: f"a code from {e.get('pool', '?')}",
    "jump": _jump,
    "exit": lambda e: "the journey ends",
}


def branch(element: dict[str, Any], index: int) -> str:
    """The label of a split's, A/B split's or experiment's branch."""
    name = element.get("name")
    percent = element.get("percent")
    if percent is not None:
        share = f"{number(percent)} %"
        return f"{name} {share}" if name else share
    if name:
        return str(name)
    if element.get("if") is not None:
        return condition(element["if"])
    return f"branch {index + 1}"
