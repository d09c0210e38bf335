"""The messages of the stack's queues, each built and parsed here and nowhere else.

Every queue body is one of these pydantic models, told apart by its `kind` (a
discriminated union, as the scenario's nodes are). A message that came out of an
outbox row carries the row's id (`row_id`), so its consumer can take the row out of
the outbox once it has handled it.

- `events`: `EventMessage` — an event of a profile, from the API, an upsert, feedback or
  a journey's `profile.field_changed`.
- `steps`: `Wake`, `WebhookDone`, `PromoRequest`, `Capture`, `Migrate`, `Resume`, `End`,
  `Merge`, `SessionTimeout`, `AbandonCheck`.
- `segments`: `ScanSegment` — one Scan segment of a segment run; `ScanMembership` — one
  Scan segment of a re-evaluation of segment membership; `WatchersPage` — one page of a
  product's watchers to derive a product change's signals for.
- `email`, `sms`, `push`: `Deliver`; `webhook`: `CallWebhook` — each names its outbox row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from chalicelib.scenarios.durations import format_datetime, parse_datetime
from chalicelib.scenarios.facts import Event


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    row_id: str | None = None  # the outbox row this message was dispatched from

    def wire(self) -> str:
        """The message as the queue carries it."""
        return self.model_dump_json(exclude_none=True)

    def with_row(self, row_id: str) -> Any:
        return self.model_copy(update={"row_id": row_id})


class EventBody(BaseModel):
    """An event as messages and outbox rows carry it."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    type: str
    occurred_at: str
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, event: Event) -> EventBody:
        return cls(
            id=event.id, type=event.type, occurred_at=format_datetime(event.occurred_at),
            data=event.data,
        )  # fmt: skip

    def event(self) -> Event:
        occurred = parse_datetime(self.occurred_at)
        assert occurred is not None
        return Event(self.type, occurred, self.data, self.id)


# --- events queue ----------------------------------------------------------------------


class EventMessage(_Message):
    kind: Literal["event"] = "event"
    profile_db: str
    profile_id: str
    event: EventBody


# --- steps queue -----------------------------------------------------------------------


class _InstanceStep(_Message):
    """A message for a step of one instance. `scenario_id`: whose instance, for a batch to
    read the scenarios with the instances (None: sent before messages said so)."""

    instance_id: str
    scenario_id: str | None = None


class Wake(_InstanceStep):
    """A timer's wake-up for one step of an instance (`wake_at` when sent delayed)."""

    kind: Literal["wake"] = "wake"
    step: int
    wake_at: str | None = None

    @property
    def due(self) -> datetime | None:
        return parse_datetime(self.wake_at)


class WebhookDone(_InstanceStep):
    """A webhook node's call ended: its result for the journey."""

    kind: Literal["webhook_result"] = "webhook_result"
    step: int
    ok: bool
    status: int | None = None
    body: Any = None
    failure: str | None = None


class PromoRequest(_InstanceStep):
    """A promo_code node asks its pool for a code."""

    kind: Literal["promo"] = "promo"
    step: int
    pool: str
    request_id: str


class Capture(_Message):
    """Capture a profile into a scenario: by a trigger, a jump (`node`) or the default."""

    kind: Literal["capture"] = "capture"
    scenario_id: str
    profile_db: str
    profile_id: str
    event: EventBody
    trigger_id: str | None = None
    node: str | None = None


class Migrate(_Message):
    """Bring an active instance onto its scenario's current version (a live edit)."""

    kind: Literal["migrate"] = "migrate"
    instance_id: str


class Resume(_Message):
    """After reactivation: migrate, and go on if the wait ran out while it slept."""

    kind: Literal["resume"] = "resume"
    instance_id: str


class End(_Message):
    """End an active instance (stop, removal)."""

    kind: Literal["end"] = "end"
    instance_id: str
    status: str
    reason: str


class Merge(_Message):
    """Finish a profile merge a crash left half done (its record says what to merge)."""

    kind: Literal["merge"] = "merge"
    merge_id: str


class SessionTimeout(_Message):
    """A profile's web session may have run out of time (its timer is due)."""

    kind: Literal["session_timeout"] = "session_timeout"
    profile_db: str
    profile_id: str


class AbandonCheck(_Message):
    """A profile's cart (`product_id` None) or a product it viewed may be abandoned: its
    timer, for the change at `changed_at`, is due."""

    kind: Literal["abandon_check"] = "abandon_check"
    profile_db: str
    profile_id: str
    product_id: str | None = None
    changed_at: str


StepMessage = Annotated[
    Wake
    | WebhookDone
    | PromoRequest
    | Capture
    | Migrate
    | Resume
    | End
    | Merge
    | SessionTimeout
    | AbandonCheck,
    Field(discriminator="kind"),
]


# --- segments queue --------------------------------------------------------------------


class ScanSegment(_Message):
    """One parallel-Scan segment of a segment run (a schedule's or a quick-send's)."""

    kind: Literal["scan"] = "scan"
    run_id: str
    scenario_id: str
    version: int
    trigger_id: str | None = None
    segment: str | dict[str, Any] | None = None  # a quick-send's segment id or condition
    run_at: str
    scan_segment: int
    total_segments: int


class ScanMembership(_Message):
    """One parallel-Scan segment of a membership run: one segment re-evaluated after its
    definition changed or went (`segment`), or the daily run (every segment whose
    condition is relative to now)."""

    kind: Literal["membership"] = "membership"
    run_id: str
    segment: str | None = None
    scan_segment: int
    total_segments: int


class WatchersPage(_Message):
    """One page of the watchers of a changed product (`token`: where the page starts):
    the product as it was before the change (version `version` - 1; for a scheduled price
    check, at the last check) and after it."""

    kind: Literal["watchers"] = "watchers"
    product_id: str
    version: int
    changed_at: str
    before: dict[str, Any]
    after: dict[str, Any]
    prices: bool = True  # compare prices (the stack's price check is `on_change`, or a check)
    others: bool = True  # derive stock and field signals (False: a scheduled price check)
    token: str | None = None


SegmentsMessage = Annotated[
    ScanSegment | ScanMembership | WatchersPage, Field(discriminator="kind")
]


# --- channel queues --------------------------------------------------------------------


class Deliver(_Message):
    """Send the message of this outbox row (e-mail, SMS, push). `scenario_id` and
    `version`: whose message it is, for the worker to know before it reads the row whether
    it is paced (None: queued before messages said so; its row is read first);
    `profile_db` and `profile_id`: whom it goes to, for a batch to read its profiles in one
    request (None: read with the row's)."""

    kind: Literal["message"] = "message"
    message_id: str
    scenario_id: str | None = None
    version: int | None = None
    profile_db: str | None = None
    profile_id: str | None = None


class CallWebhook(_Message):
    """Make the webhook call of this outbox row."""

    kind: Literal["webhook"] = "webhook"
    message_id: str


ChannelMessage = Annotated[Deliver | CallWebhook, Field(discriminator="kind")]
QueueMessage = EventMessage | StepMessage | SegmentsMessage | ChannelMessage

_steps: TypeAdapter[StepMessage] = TypeAdapter(StepMessage)
_channels: TypeAdapter[ChannelMessage] = TypeAdapter(ChannelMessage)
_segments: TypeAdapter[SegmentsMessage] = TypeAdapter(SegmentsMessage)
_any: TypeAdapter[Any] = TypeAdapter(
    Annotated[
        EventMessage | Wake | WebhookDone | PromoRequest | Capture | Migrate | Resume | End
        | Merge | SessionTimeout | AbandonCheck | ScanSegment | ScanMembership | WatchersPage | Deliver
        | CallWebhook,
        Field(discriminator="kind"),
    ]
)  # fmt: skip


def parse_step(body: str | dict[str, Any]) -> StepMessage:
    return _steps.validate_python(_loaded(body))


def parse_channel(body: str | dict[str, Any]) -> ChannelMessage:
    return _channels.validate_python(_loaded(body))


def parse_scan(body: str | dict[str, Any]) -> ScanSegment:
    return ScanSegment.model_validate(_loaded(body))


def parse_segments(body: str | dict[str, Any]) -> SegmentsMessage:
    return _segments.validate_python(_loaded(body))


def parse_event(body: str | dict[str, Any]) -> EventMessage:
    return EventMessage.model_validate(_loaded(body))


def parse(body: str | dict[str, Any]) -> QueueMessage:
    """Any of the stack's messages (an outbox row's stored payload)."""
    parsed: QueueMessage = _any.validate_python(_loaded(body))
    return parsed


def _loaded(body: str | dict[str, Any]) -> dict[str, Any]:
    loaded = json.loads(body) if isinstance(body, str) else body
    if not isinstance(loaded, dict):
        raise ValueError("a queue message is a JSON object")
    return loaded


class Queues(Protocol):
    """The port to the stack's queues."""

    def send(self, queue: str, batch: Sequence[tuple[QueueMessage, int]]) -> int:
        """Send (message, delay seconds) pairs; answers the calls made. Raises when the
        queue refused some, so the caller's own input is redelivered."""
        ...
