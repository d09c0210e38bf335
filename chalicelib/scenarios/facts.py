"""What conditions, templates and the engine read: a profile view, events and messages.

Plain slotted dataclasses: the runtime builds them from storage, tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .durations import format_datetime


@dataclass(slots=True)
class Event:
    """An event of SPEC §4 (or a custom one) as it happened to a profile."""

    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": format_datetime(self.occurred_at),
            "data": self.data,
        }


@dataclass(slots=True)
class Message:
    """A message a scenario sent to the profile, with the time of each status it reached."""

    message_id: str
    scenario_id: str
    node: str
    channel: str
    at: datetime
    statuses: dict[str, datetime] = field(default_factory=dict)
    instance_id: str | None = None


@dataclass(slots=True)
class Profile:
    """The view of a profile the engine needs: fields, recent events and messages, and the
    addresses that hard-bounced (`invalid`, by channel: not a field, the stack keeps it)."""

    profile_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    profile_db: str = "default"
    invalid: dict[str, Any] = field(default_factory=dict)

    @property
    def timezone(self) -> str | None:
        value = self.fields.get("timezone")
        return value if isinstance(value, str) else None

    def consent(self, channel: str) -> bool:
        consents = self.fields.get("consents")
        return isinstance(consents, dict) and consents.get(channel) is True


Predicate = Callable[["Facts"], bool]


@dataclass(slots=True)
class Facts:
    """Everything a condition may look at, for one evaluation."""

    profile: Profile
    now: datetime
    tz: ZoneInfo
    event: Event | None = None
    entry: Event | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    entered_at: datetime | None = None
    scenario_id: str | None = None
    segments: Mapping[str, Predicate] = field(default_factory=dict)
