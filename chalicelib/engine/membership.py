"""Segment membership (SPEC §7): which defined segments a profile belongs to, and the
`segment.entered` / `segment.exited` events a change of that makes.

The stack keeps each profile's membership beside its fields. After a change of the
profile, an event a segment counts, a segment's (re)definition or the daily run for
conditions relative to now, the runtime calls `evaluate_membership` with what it has
read; the rule lives here once. The events' ids derive from the segment and the cause
(an event id, a step, a run), so a redelivered cause announces nothing twice — and as
the membership is written with them, a second evaluation finds nothing changed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.scenarios.durations import zone
from chalicelib.scenarios.facts import Event, Facts, Predicate, Profile
from chalicelib.scenarios.model import Condition

from .timing import profile_zone

UTC_ZONE = zone(None)


@dataclass(frozen=True)
class MembershipChange:
    """The segments a profile belongs to after an evaluation, and what changed."""

    members: tuple[str, ...]  # sorted
    entered: tuple[str, ...] = ()
    exited: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entered or self.exited)


def evaluate_membership(
    profile: Profile,
    member_of: Iterable[str],
    segments: Mapping[str, Predicate],
    now: datetime,
    only: Collection[str] | None = None,
) -> MembershipChange:
    """The profile's membership of the `segments` defined on its database (predicates by
    id), from `member_of`, the segments it belonged to. With `only`, just those segments
    are evaluated and the others keep what they were. A segment it belonged to that is no
    longer defined is left. Conditions see the profile's own time zone (else UTC)."""
    was = set(member_of)
    facts = Facts(profile=profile, now=now, tz=profile_zone(profile, UTC_ZONE), segments=segments)
    targets = set(segments) | was if only is None else set(only)
    members = {segment for segment in was if segment not in targets}
    for segment in targets:
        predicate = segments.get(segment)
        if predicate is not None and predicate(facts):
            members.add(segment)
    return MembershipChange(
        tuple(sorted(members)),
        tuple(sorted(members - was)),
        tuple(sorted(was - members)),
    )


def membership_events(change: MembershipChange, cause: str, at: datetime) -> list[Event]:
    """`segment.entered` / `segment.exited` for each segment that changed, with ids
    derived from the segment and the cause."""
    return [
        Event(kind, at, {"segment": segment, "derived": True}, id=f"{kind}:{segment}:{cause}")
        for kind, segments in (
            ("segment.exited", change.exited),
            ("segment.entered", change.entered),
        )
        for segment in segments
    ]


# --- what a segment's condition depends on -----------------------------------------------


def counted_events(condition: Condition) -> set[str]:
    """The event types the condition's `event_count` rules count."""
    return {rule["event_count"]["type"] for rule in _rules(condition) if "event_count" in rule}


def needs_history(condition: Condition) -> bool:
    """Whether the condition looks at the profile's events or messages, not only fields."""
    return any("event_count" in rule or "message" in rule for rule in _rules(condition))


def time_relative(condition: Condition) -> bool:
    """Whether the condition's truth can change with time alone: a value relative to now
    or today, or an event or message counted over a window that slides."""
    for rule in _rules(condition):
        query = rule.get("event_count") or rule.get("message")
        if isinstance(query, dict) and query.get("since", "entry") != "entry":
            return True
        if any(_relative(value) for key, value in rule.items() if key not in ("all", "any")):
            return True
    return False


def _relative(value: Any) -> bool:
    if isinstance(value, dict):
        return "now" in value or "today" in value or any(map(_relative, value.values()))
    if isinstance(value, list):
        return any(map(_relative, value))
    return False


def _rules(condition: Condition) -> list[dict[str, Any]]:
    """Every rule of the condition as a document, nested ones (`all`, `any`, `not`, an
    `event_count`'s `where`) included."""
    found: list[dict[str, Any]] = []
    pending: list[Any] = [condition.model_dump(mode="json", by_alias=True, exclude_none=True)]
    while pending:
        rule = pending.pop()
        if not isinstance(rule, dict):
            continue
        found.append(rule)
        pending.extend(rule.get("all", []))
        pending.extend(rule.get("any", []))
        pending.append(rule.get("not"))
        pending.append((rule.get("event_count") or {}).get("where"))
    return found
