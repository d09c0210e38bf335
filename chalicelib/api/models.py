"""Request bodies, validated with pydantic (the OpenAPI document is generated from them)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chalicelib.engine.orders import ORDER_EVENTS
from chalicelib.engine.simulate import SimulatedProfile, Simulation, TimelineEvent
from chalicelib.runtime.ses_events import SesEvent, SnsEnvelope
from chalicelib.scenarios.model import (
    ClockTime,
    Condition,
    CronExpression,
    Duration,
    Monthly,
    PositiveDuration,
    TimeZone,
    Weekly,
)

from .http import MAX_DEPTH

MAX_DATA_BYTES = 64 * 1024  # an event's data travels in an SQS message and stays in the history
MAX_FIELDS_BYTES = 256 * 1024  # fields given in one call; a profile item holds at most 400 KB


def _at_most(limit: int) -> AfterValidator:
    """At most `limit` bytes as JSON (UTF-8)."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > limit:
            raise ValueError(f"{size} bytes of JSON, at most {limit} are allowed")
        return value

    return AfterValidator(check)


def _moment(value: datetime) -> datetime:
    """A moment the stack can compute with: from 1970 to 9000 once in UTC (a far one
    would overflow when formatted or when a pause is added to it)."""
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not 1970 <= year <= 9000:
        raise ValueError("a moment from 1970 to 9000 is expected")
    return value


# Free-form JSON as `http.check_storable` lets it through to DynamoDB, in the OpenAPI
# document's components. A schema cannot count a number's significant digits: it says
# 0 or a magnitude from 1E-130 to below 1E+38, where no number the API parses has more
# than 38 (a fraction is a float of 17 at most); nor the depth of a whole body: words say it.
STORABLE_VALUE_REF = {"$ref": "#/components/schemas/StorableValue"}
STORABLE_OBJECT = {
    "type": "object",
    "propertyNames": {"minLength": 1},
    "additionalProperties": STORABLE_VALUE_REF,
}
STORABLE_SCHEMAS: dict[str, dict[str, Any]] = {
    "StorableValue": {
        "description": "A JSON value DynamoDB stores as it is: objects with non-empty keys, "
        "numbers of at most 38 significant digits that are 0 or from 1E-130 to 1E+125 in "
        "magnitude (this schema admits those below 1E+38, where every number fits), no more "
        f"than {MAX_DEPTH} levels of nesting in the whole body. Else a 400 names the value.",
        "anyOf": [
            {"type": ["string", "boolean", "null"]},
            {"const": 0},
            {"type": "number", "minimum": 1e-130, "exclusiveMaximum": 1e38},
            {"type": "number", "exclusiveMinimum": -1e38, "maximum": -1e-130},
            {"type": "array", "items": STORABLE_VALUE_REF},
            STORABLE_OBJECT,
        ],
    },
}
Storable = Annotated[dict[str, Any], WithJsonSchema(STORABLE_OBJECT)]
Data = Annotated[Storable, _at_most(MAX_DATA_BYTES)]
Fields = Annotated[Storable, _at_most(MAX_FIELDS_BYTES)]
# The schema's years, 1971 to 8999 as written, are 1970 to 9000 in UTC whatever the offset.
Moment = Annotated[
    AwareDatetime,
    AfterValidator(_moment),
    Field(json_schema_extra={"pattern": "^(197[1-9]|19[89][0-9]|[2-8][0-9]{3})-"}),
]
Id = Annotated[str, Field(min_length=1, max_length=200)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioDraft(BaseModel):
    """A scenario document (SPEC §1). A draft may be incomplete; `name` is required."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=200)


class Deactivation(Body):
    keep_profiles: StrictBool | None = None  # strict: "yes" or 1 is a 400, not True


class Capture(Body):
    profile_id: str = Field(min_length=1, max_length=200)
    data: Data = Field(default_factory=dict)


class EventIn(Body):
    id: str | None = Field(None, min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=200)
    profile_db: str = Field("default", min_length=1, max_length=100)
    profile_id: str = Field(min_length=1, max_length=200)
    occurred_at: Moment | None = None
    data: Data = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _order(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if info.data.get("type") in ORDER_EVENTS:
            problem = order_problem(data)
            if problem is not None:
                raise ValueError(problem)
        return data


def _is_id(value: Any) -> bool:
    return (isinstance(value, str) and value != "") or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def order_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with an `order.created` / `order.updated` event's data (SPEC §6.3), naming
    the key; None when the stack can keep the order it describes, or when it names no order
    (an event without `order_id` is only an event: no order is kept)."""
    if "order_id" not in data:
        return None
    if not _is_id(data["order_id"]):
        return "order_id: a non-empty string or an integer is expected"
    if "status" in data and not isinstance(data["status"], str):
        return "status: a string is expected"
    items = data.get("items", [])
    if not isinstance(items, list):
        return "items: a list of items is expected"
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"items[{index}]: an object is expected"
        if not _is_id(item.get("item_id")):
            return f"items[{index}].item_id: a non-empty string or an integer is expected"
        if "status" in item and not isinstance(item["status"], str):
            return f"items[{index}].status: a string is expected"
    return None


class ProfileUpsert(Body):
    fields: Fields
    source: Literal["api", "manual", "form", "popup", "import"] = "api"


class SegmentIn(Body):
    profile_db: str = Field("default", min_length=1)
    where: Condition


class PromoCodes(Body):
    codes: list[Id] = Field(min_length=1, max_length=10_000)


class Redemption(Body):
    code: Id
    profile_db: str = Field("default", min_length=1, max_length=100)
    profile_id: str = Field(min_length=1, max_length=200)


class SendSegment(Body):
    segment: Id | Condition


class ClockChange(Body):
    advance: Duration | None = None
    set: Moment | None = None


class TimelineEventIn(TimelineEvent):
    """A simulated event: an offset, or a moment the simulation can compute with."""

    at: Duration | Moment = "PT0S"
    data: Storable = Field(default_factory=dict)


class SimulatedProfileIn(SimulatedProfile):
    """The simulated profile; its flat shape's fields are storable values too."""

    model_config = ConfigDict(  # with `fields`, nothing but `profile_id` beside it
        json_schema_extra={
            "additionalProperties": STORABLE_VALUE_REF,
            "propertyNames": {"minLength": 1},
            "anyOf": [
                {"required": ["fields"], "propertyNames": {"enum": ["profile_id", "fields"]}},
                {"not": {"required": ["fields"]}},
            ],
        }
    )
    fields: Storable = Field(default_factory=dict)


class SimulationRequest(Simulation):
    """`POST /scenarios/simulate`: a scenario document or a stored scenario's id, and a timeline."""

    model_config = ConfigDict(  # exactly one of the two, as the route checks
        json_schema_extra={
            "oneOf": [
                {"required": ["scenario"], "properties": {"scenario": {"type": "object"}}},
                {"required": ["scenario_id"], "properties": {"scenario_id": {"type": "string"}}},
            ]
        }
    )

    scenario: Storable | None = None
    scenario_id: str | None = None
    profile: SimulatedProfileIn = Field(
        default=SimulatedProfileIn(),
        description='`{"profile_id", "fields": {...}}` as `PUT /profiles` takes it, '
        "or the fields flat beside `profile_id`",
    )
    events: list[TimelineEventIn] = Field(default_factory=list)
    webhooks: Storable = Field(default_factory=dict, description="response body per node")
    winners: dict[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict,
        description="a decided winner (branch name) per experiment node, to simulate "
        "after the decision",
    )
    start: Moment | None = None


class ImportedProfile(Body):
    profile_id: str = Field(min_length=1, max_length=200)
    fields: Fields


class ProfileImport(Body):
    profiles: list[ImportedProfile] = Field(min_length=1, max_length=1000)


class ProfileMerge(Body):
    """Merge the `from` profiles into `into` (SPEC §7 `profile.merged`)."""

    into: Id
    from_: list[Id] = Field(alias="from", min_length=1, max_length=100)


class HookCall(Body):
    profile_id: str = Field(min_length=1, max_length=200)
    profile: Fields = Field(default_factory=dict)
    data: Data = Field(default_factory=dict)


class Feedback(Body):
    message_id: Id
    status: Literal["delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"]
    at: Moment | None = None


class SesEventNotification(SesEvent):
    """An SES event record (`eventType`; legacy notifications: `notificationType`): Delivery,
    Bounce (hard when `bounce.bounceType` is `Permanent`), Complaint and Subscription
    (unsubscribed), Open, Click, Reject and Rendering Failure (failed); Send and
    DeliveryDelay change nothing. Our message id is `mail.tags.message_id[0]`."""


class SnsNotification(SnsEnvelope):
    """An SES event record as SNS delivers it: `Message` holds it as JSON text."""


# --- request wrappers the routes read item by item (documented, not validated whole) ---


class EventBatch(Body):
    """`POST /events` with many events: each is checked on its own (see `rejected`)."""

    events: list[EventIn] = Field(max_length=500)


# --- responses (documented in /openapi.json; the routes build plain dicts of this shape) ---

ScenarioStatus = Literal["draft", "active", "stopped", "trashed"]
InstanceStatus = Literal["active", "completed", "exited", "removed", "error"]
Timestamp = Annotated[str, Field(description="RFC 3339 in UTC, e.g. 2025-01-31T10:00:00Z")]


class Out(BaseModel):
    """Base of the response models: a client should ignore keys it does not know."""


class ProblemItem(Out):
    path: str = Field(description="JSON path of the field at fault, e.g. `$.nodes.a.next`")
    message: str


class ProblemDocument(Out):
    """An RFC 9457 problem document (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = Field(description="what is wrong, starting with the field at fault")
    problems: list[ProblemItem] | None = Field(
        None, description="every field at fault (invalid input and invalid scenarios)"
    )
    reason: str | None = Field(None, description="why a profile was not captured")


class ScenarioOut(Out):
    id: str
    name: str | None
    status: ScenarioStatus
    version: int = Field(description="the version in force; 0 until the first activation")
    tags: list[str]
    webhook_secret: str | None = Field(description="HMAC key of the webhook triggers")
    created_at: Timestamp | None
    updated_at: Timestamp | None
    scenario: dict[str, Any] | None = Field(description="the latest saved document (SPEC §1)")
    problems: list[ProblemItem] | None = Field(
        None, description="what keeps a saved draft from being activated (create, replace, clone)"
    )


class ScenarioSummary(Out):
    id: str
    name: str | None
    status: ScenarioStatus
    version: int
    tags: list[str]
    group: str | None = Field(description="the access group the document names")
    updated_at: Timestamp | None
    profiles_in: int = Field(description="profiles now in the scenario")


class ScenarioList(Out):
    scenarios: list[ScenarioSummary]
    next_token: str | None = Field(description="pass as `next_token` for the next page")
    partial: bool = Field(
        description="true when the page holds fewer than `limit` scenarios only because it "
        "read as much of the table as one page may: `next_token` goes on"
    )


class Activation(Out):
    status: ScenarioStatus
    version: int
    webhook_secret: str


class VersionInfo(Out):
    version: int
    created_at: Timestamp


class VersionList(Out):
    versions: list[VersionInfo]
    next_token: str | None


class NextRuns(Out):
    trigger_id: str
    runs: list[Timestamp]


class Removed(Out):
    removed: int = Field(description="profiles removed (or being removed)")


class Captured(Out):
    instance_id: str
    profile_id: str


class SegmentRun(Out):
    run_id: str


class ProfileAtNode(Out):
    profile_id: str
    instance_id: str
    entered_at: Timestamp | None
    wake_at: Timestamp | None


class ProfilesAtNode(Out):
    profiles: list[ProfileAtNode]
    next_token: str | None


class ChannelStats(Out):
    """Messages of a channel by the statuses they reached (each counted once per message)."""

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    failed: int = 0
    skipped: int = Field(
        0, description="messages not sent: no_consent, no_address, capped or recheck"
    )


MOVED_IN = "profiles a live edit moved onto this version (with `version=` only)"
MOVED_OUT = "profiles a live edit moved from this version onto a newer one (with `version=` only)"


class NodeStats(Out):
    entered: int
    exited: int
    current: int = Field(
        description="profiles now at the node: entered + moved_in - exited - moved_out"
    )
    moved_in: int | None = Field(None, description=MOVED_IN)
    moved_out: int | None = Field(None, description=MOVED_OUT)
    channels: dict[str, ChannelStats] | None = Field(
        None, description="a send node's messages by channel (only on nodes that sent any)"
    )


class DayStats(Out):
    model_config = ConfigDict(extra="allow")  # further scenario-wide counters, e.g. conversions

    day: date
    entered: int
    completed: int
    exited: int
    removed: int
    errors: int
    revenue: float


class ScenarioStats(Out):
    entered: int
    completed: int
    exited: int
    removed: int
    active: int = Field(description="profiles now in the scenario (or in the version)")
    errors: int
    moved_in: int | None = Field(None, description=MOVED_IN)
    moved_out: int | None = Field(None, description=MOVED_OUT)
    nodes: dict[str, NodeStats]
    channels: dict[str, ChannelStats] = Field(description="only channels with messages")
    revenue: float = Field(
        description="`data.total` of `order.created` events of profiles while in the scenario "
        "or within 7 days of its last send to them"
    )
    days: list[DayStats] | None = Field(
        None, description="with `by=day`: the scenario-wide counters of each day, oldest first"
    )
    conversions: int = Field(description="instances that converted (SPEC §8), every group")
    conversion_rate: float | None = Field(description="conversions / entered")
    treatment: GroupStats = Field(description="the profiles that received the journey")
    holdout: HeldOutStats = Field(description="the scenario's holdout, against the treatment")
    control: HeldOutStats = Field(
        description="the stack's global control group, against the treatment"
    )
    branches: dict[str, dict[str, BranchStats]] = Field(
        description="per `ab_split` / `experiment` node and branch"
    )
    experiments: dict[str, ExperimentStats] = Field(
        description="per `experiment` node of the version (default: the current one)"
    )


class PathStep(Out):
    at: Timestamp
    node: str
    outcome: str | None


class SimulatedSend(Out):
    at: Timestamp
    node: str
    channel: str
    to: str | None
    subject: str | None
    body: str | None
    variant: str | None = Field(
        None, description="the locale of the node's `variants` the message was rendered from"
    )


class SkippedSend(Out):
    at: Timestamp
    node: str
    channel: str
    reason: str


class SimulationResult(Out):
    path: list[PathStep]
    sends: list[SimulatedSend]
    skipped: list[SkippedSend]
    status: InstanceStatus | Literal["not_captured"]
    reason: str | None
    exit_node: str | None


class RejectedEvent(Out):
    index: int
    detail: str


class EventAcceptance(Out):
    accepted: int
    duplicates: int = Field(description="events whose `id` was seen before: not processed again")
    rejected: list[RejectedEvent]


class ProfileOut(Out):
    profile_db: str
    profile_id: str
    fields: dict[str, Any]
    created_at: Timestamp | None
    updated_at: Timestamp | None


class ImportResult(Out):
    imported: int
    created: int


class Merged(Out):
    into: str
    merged: list[str]
    event_id: str


class Journey(Out):
    instance_id: str
    scenario_id: str
    version: int
    status: InstanceStatus
    node: str | None = Field(description="where an active journey is now")
    exit_node: str | None = Field(description="where an ended journey ended")
    reason: str | None
    entered_at: Timestamp
    ended_at: Timestamp | None
    path: list[PathStep]


class Journeys(Out):
    journeys: list[Journey]
    next_token: str | None


class SegmentOut(Out):
    id: str
    profile_db: str
    where: dict[str, Any] = Field(description="a condition (SPEC §1.4)")


class SegmentCount(Out):
    id: str
    members: int


class PromoPool(Out):
    pool: str
    left: int
    added: int | None = Field(
        None, description="codes of this call now available (one already taken is not added)"
    )


class Redeemed(Out):
    pool: str
    code: str
    event_id: str = Field(description="the `promo_code.redeemed` event announcing it")


class HookResult(Out):
    captured: bool
    instance_id: str | None
    reason: str | None = Field(description="why the profile was not captured")
    replayed: bool | None = Field(None, description="true when the Idempotency-Key was seen")


class FeedbackResult(Out):
    message_id: str
    feedback: dict[str, Timestamp] = Field(description="when each status was reported")


class DeadLetterQueue(Out):
    queue: str = Field(description="the queue whose failed messages it holds, e.g. `events`")
    dead_letter_queue: str = Field(description="its name, `scenaria-<stage>-<queue>-dlq`")
    messages: int = Field(description="messages waiting to be redriven (SQS's estimate)")
    in_flight: int = Field(description="messages received and not yet deleted or returned")


class DeadLetterQueues(Out):
    queues: list[DeadLetterQueue]


class Redrive(DeadLetterQueue):
    task_handle: str = Field(description="SQS's handle of the message move task")


# --- API keys and templates (SPEC §9) ---

GroupName = Annotated[str, Field(min_length=1, max_length=200)]


class ApiKeyIn(Body):
    """`POST /api-keys`: a key of a role, limited to `groups` (none: every group)."""

    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "editor", "viewer"]
    groups: list[GroupName] = Field(default_factory=list, max_length=50)


class FromTemplate(Body):
    """`POST /scenarios` from a built-in template: a draft of its scenario."""

    template: Id
    name: str | None = Field(None, min_length=1, max_length=200)
    group: GroupName | None = None


class ApiKeyOut(Out):
    id: str
    name: str
    role: Literal["admin", "editor", "viewer"]
    groups: list[str] = Field(description="the scenario groups it sees; empty: every group")
    created_at: Timestamp


class NewApiKey(ApiKeyOut):
    key: str = Field(description="the key for `X-Api-Key`: shown this once, stored hashed")


class ApiKeyList(Out):
    api_keys: list[ApiKeyOut]


class TemplateOut(Out):
    id: str
    name: str
    category: str
    description: str
    scenario: dict[str, Any] = Field(description="the scenario document (SPEC §1)")
    timeline: dict[str, Any] = Field(
        description="a simulation (`POST /scenarios/simulate` without the scenario) that "
        "walks the intended path"
    )


class TemplateList(Out):
    templates: list[TemplateOut]


# --- measurement (SPEC §8) ---


class ControlIn(Body):
    percent: float = Field(
        ge=0, lt=100, strict=True, description="share of profiles in the control group (0: none)"
    )


class ControlOut(Out):
    percent: float = Field(description="share of profiles in the stack's global control group")


class GroupStats(Out):
    entered: int
    conversions: int
    conversion_rate: float | None = Field(
        description="conversions / entered; null when none entered"
    )


class HeldOutStats(GroupStats):
    lift: float | None = Field(
        description="treatment rate over this group's rate, minus one; null when its rate is 0"
    )
    p_value: float | None = Field(
        description="two-sided p-value of the two-proportion test against the treatment; "
        "null when a group is empty"
    )


class BranchStats(Out):
    entered: int
    conversions: int
    conversion_rate: float | None
    opened: int
    clicked: int


class ExperimentBranchStats(Out):
    entered: int = Field(description="profiles the experiment sent down the branch at random")
    count: int = Field(description="the metric's count among them")
    rate: float | None
    p_best: float = Field(description="probability that its rate is the highest (Beta posteriors)")


class ExperimentStats(Out):
    metric: str
    winner: str | None
    decided_at: datetime | None
    branches: dict[str, ExperimentBranchStats]


# --- commerce (SPEC §6) ---

Price = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
ProductFields = Annotated[dict[str, Any], WithJsonSchema(STORABLE_OBJECT), _at_most(MAX_DATA_BYTES)]


class RegionIn(Body):
    price: Price | None = None
    available: StrictBool | None = None
    fields: ProductFields | None = None


class ProductIn(Body):
    """A product's update: the keys given are merged in, `null` clears one (a value, a
    field, a region or a region's value)."""

    price: Price | None = None
    available: StrictBool | None = None
    fields: ProductFields | None = None
    regions: dict[Id, RegionIn | None] | None = None

    def given(self) -> dict[str, Any]:
        """The keys given, as the catalogue merges them (`null` where one is cleared)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ImportedProduct(ProductIn):
    product_id: Id


class ProductImport(Body):
    products: list[ImportedProduct] = Field(
        max_length=1000,
        description="up to 1,000 products; one that is not valid is listed in `rejected`, "
        "the others are stored",
    )


class RegionOut(Out):
    price: float | None = None
    available: bool | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class ProductOut(Out):
    product_id: str
    price: float | None = None
    available: bool | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    regions: dict[str, RegionOut] = Field(default_factory=dict)
    updated_at: datetime


class RejectedProduct(Out):
    index: int
    detail: str


class ProductImportResult(Out):
    accepted: int
    rejected: list[RejectedProduct]


class ListItemIn(Body):
    product_id: Id
    quantity: float = Field(1, gt=0, allow_inf_nan=False, strict=True)
    price: Price | None = None


class ListIn(Body):
    items: list[ListItemIn] = Field(max_length=1000)


class ListItemOut(Out):
    product_id: str
    quantity: float
    price: float | None = Field(description="the price the profile saw when it was added")
    added_at: datetime


class ListOut(Out):
    profile_db: str
    profile_id: str
    list: str
    items: list[ListItemOut]
    stage: str | None = Field(
        None, description="the cart's stage: `added`, `viewed_cart` or `checkout` (carts only)"
    )


class PriceSchedule(Body):
    """When prices are compared, as a schedule trigger has it (SPEC §1.2)."""

    cron: CronExpression | None = None
    daily: ClockTime | None = None
    weekly: Weekly | None = None
    monthly: Monthly | None = None
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _one_timing(self) -> PriceSchedule:
        given = [k for k in ("cron", "daily", "weekly", "monthly") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "a price check schedule has exactly one of cron, daily, weekly, monthly"
            )
        return self


class SignalsIn(Body):
    """The keys given are set; `null` puts one back to its default."""

    cart_abandoned_after: PositiveDuration | None = None
    browse_abandoned_after: PositiveDuration | None = None
    session_timeout: PositiveDuration | None = None
    price_check: Literal["on_change"] | PriceSchedule | None = None


class SignalsOut(Out):
    cart_abandoned_after: str = Field(description="ISO duration (default PT1H)")
    browse_abandoned_after: str = Field(description="ISO duration (default PT1H)")
    session_timeout: str = Field(description="ISO duration (default PT30M)")
    price_check: str | dict[str, Any] = Field(description="`on_change` (default) or a schedule")
