"""The scenario format of SPEC §1 as pydantic models.

Every trigger, node and condition is a member of a discriminated union, so an error
names the exact field at fault. Graph-wide rules (references, cycles) live in
`validation.py`; these models check each element on its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .durations import (
    DURATION_PATTERN,
    MAX_DAYS,
    is_time_zone,
    parse_clock_time,
    parse_duration,
)
from .templates import check_template

# --- scalar types ---------------------------------------------------------------------


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _clock_time(text: str) -> str:
    parse_clock_time(text)
    return text


def _time_zone(name: str) -> str:
    if not is_time_zone(name):
        raise ValueError(f"{name!r} is not an IANA time zone such as 'Europe/Berlin'")
    return name


def _cron(expression: str) -> str:
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a 5-field cron expression such as '0 10 * * mon'")
    return expression


PATH_ROOTS = ("profile", "event", "entry", "vars", "instance")


def _path(path: str) -> str:
    if not isinstance(path, str):
        raise ValueError("a field path is a string such as 'profile.city'")
    root, _, rest = path.partition(".")
    if root not in PATH_ROOTS or not rest or "" in rest.split("."):
        raise ValueError(
            f"{path!r} is not a field path: it starts with one of {', '.join(PATH_ROOTS)} "
            "followed by a field, e.g. 'profile.city'"
        )
    if root == "instance" and rest != "entered_at":
        raise ValueError(f"{path!r}: the only instance field is 'instance.entered_at'")
    return path


Duration = Annotated[
    str,
    AfterValidator(_duration),
    Field(examples=["P3D", "PT2H", "-P1D"], json_schema_extra={"pattern": DURATION_PATTERN}),
]
ClockTime = Annotated[str, AfterValidator(_clock_time), Field(examples=["10:00"])]
TimeZone = Annotated[str, AfterValidator(_time_zone), Field(examples=["Europe/Berlin"])]
CronExpression = Annotated[str, AfterValidator(_cron)]
FieldPath = Annotated[str, AfterValidator(_path), Field(examples=["profile.city"])]
Template = Annotated[str, AfterValidator(check_template)]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Channel = Literal["email", "sms", "push"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MessageStatus = Literal[
    "sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "failed"
]
Operator = Literal[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "exists",
    "not_exists",
    "between",
    "on_day",
]
Since = Annotated[str, AfterValidator(lambda v: v if v == "entry" else _duration(v))]


class Model(BaseModel):
    """Strict base: an unknown key is an error (it is usually a typo)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# --- conditions (§1.4) ----------------------------------------------------------------

CONDITION_KINDS = ("all", "any", "not", "field", "event_count", "message", "segment", "consent")


def condition_kind(value: Any) -> str | None:
    """The kind of a condition: the first of its keys that names one."""
    if isinstance(value, dict):
        return next((key for key in CONDITION_KINDS if key in value), None)
    return _KIND_OF_MODEL.get(type(value))


def _check_value(value: Any) -> Any:
    """`{"now": DURATION}`, `{"today": DAYS}` and `{"ref": PATH}` are computed values.

    They may also stand inside a list (`between`, `in`), so list items are checked too.
    """
    if isinstance(value, list):
        for item in value:
            _check_value(item)
    elif isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key == "now":
            _duration(inner)
        elif key == "today" and (
            not isinstance(inner, int) or isinstance(inner, bool) or abs(inner) > MAX_DAYS
        ):
            raise ValueError(f"{{'today': N}} takes a whole number of days, at most {MAX_DAYS}")
        elif key == "ref":
            _path(inner)
    return value


class AllOf(Model):
    all: list[Condition] = Field(min_length=1)


class AnyOf(Model):
    any: list[Condition] = Field(min_length=1)


class Not(Model):
    not_: Condition = Field(alias="not")


class FieldRule(Model):
    field: FieldPath
    op: Operator
    value: Annotated[Any, AfterValidator(_check_value)] = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> FieldRule:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"operator {self.op!r} takes a list as 'value'")
        if self.op == "between" and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError("operator 'between' takes 'value': [low, high]")
        if self.op not in ("exists", "not_exists") and self.value is None:
            raise ValueError(f"operator {self.op!r} needs a 'value'")
        return self


class EventCountQuery(Model):
    type: str = Field(min_length=1)
    where: Condition | None = None
    since: Since = "entry"


class EventCount(Model):
    event_count: EventCountQuery
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"]
    value: int = Field(ge=0)


class MessageQuery(Model):
    channel: Channel | None = None
    status: MessageStatus = "sent"
    node: str | None = None
    since: Since = "entry"


class MessageRule(Model):
    message: MessageQuery
    exists: bool = True


class SegmentRule(Model):
    segment: str = Field(min_length=1)
    member: bool = True


class ConsentRule(Model):
    consent: Channel
    granted: bool = True


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[FieldRule, Tag("field")]
    | Annotated[EventCount, Tag("event_count")]
    | Annotated[MessageRule, Tag("message")]
    | Annotated[SegmentRule, Tag("segment")]
    | Annotated[ConsentRule, Tag("consent")],
    Discriminator(
        condition_kind,
        custom_error_type="condition",
        custom_error_message=f"a condition has one of the keys {', '.join(CONDITION_KINDS)}",
    ),
]

_KIND_OF_MODEL: dict[type, str] = {
    AllOf: "all",
    AnyOf: "any",
    Not: "not",
    FieldRule: "field",
    EventCount: "event_count",
    MessageRule: "message",
    SegmentRule: "segment",
    ConsentRule: "consent",
}
for _model in (AllOf, AnyOf, Not, EventCountQuery):
    _model.model_rebuild()


def _segment_ref(value: Any) -> Any:
    """A schedule's `{"ref": "<segment id>"}` is the condition 'member of that segment'."""
    if isinstance(value, dict) and set(value) == {"ref"}:
        return {"segment": value["ref"], "member": True}
    return value


# --- triggers (§1.2) ------------------------------------------------------------------


class Limit(Model):
    max: int = Field(ge=1)
    per: str = "profile"
    within: Duration | None = None

    @model_validator(mode="after")
    def _per(self) -> Limit:
        if self.per != "profile":
            _path(self.per)
        return self


class EventTrigger(Model):
    id: NodeId
    type: Literal["event"]
    event: str = Field(min_length=1)
    where: Condition | None = None
    limit: Limit | None = None
    actuality: Duration | None = None
    next: str


class Weekly(Model):
    days: list[Weekday] = Field(min_length=1)
    at: ClockTime


class Monthly(Model):
    day: int = Field(ge=1, le=31)
    at: ClockTime


class Sample(Model):
    from_: float = Field(0, alias="from", ge=0, le=100)
    to: float = Field(100, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Sample:
        if self.from_ >= self.to:
            raise ValueError("'from' must be below 'to'")
        return self


class ScheduleTrigger(Model):
    id: NodeId
    type: Literal["schedule"]
    cron: CronExpression | None = None
    daily: ClockTime | None = None
    weekly: Weekly | None = None
    monthly: Monthly | None = None
    once: AwareDatetime | None = None
    timezone: TimeZone | None = None
    until: AwareDatetime | None = None
    segment: Annotated[Condition | None, BeforeValidator(_segment_ref)] = None
    sample: Sample | None = None
    actuality: Duration | None = None
    next: str

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleTrigger:
        given = [k for k in ("cron", "daily", "weekly", "monthly", "once") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "a schedule trigger has exactly one of cron, daily, weekly, monthly, once"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self


class WebhookTrigger(Model):
    id: NodeId
    type: Literal["webhook"]
    actuality: Duration | None = None
    next: str


Trigger = Annotated[EventTrigger | ScheduleTrigger | WebhookTrigger, Field(discriminator="type")]


# --- nodes (§1.3) ---------------------------------------------------------------------


class MessageTemplate(Model):
    subject: Template | None = None
    body: Template | None = None
    html: Template | None = None
    title: Template | None = None
    url: Template | None = None
    from_: Template | None = Field(None, alias="from")


MAX_PUSH_TTL = timedelta(hours=72)
MAX_CALL_TIMEOUT = timedelta(seconds=25)
# A BCP 47 language tag: a language, then subtags (script, region, variant), `-`-separated.
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
LocaleTag = Annotated[str, Field(pattern=LOCALE_PATTERN, examples=["de", "pt-BR"])]


class SendNode(Model):
    type: Literal["send"]
    channel: Channel
    template: MessageTemplate
    to: Template | None = None
    ttl: Duration | None = None
    recheck: Condition | None = Field(
        None, description="evaluated again when the message leaves; false: skipped (`recheck`)"
    )
    variants: dict[LocaleTag, MessageTemplate] = Field(
        default_factory=dict, description="templates by the profile's `locale` (SPEC §1.3)"
    )
    next: str | None = None

    @field_validator("to")
    @classmethod
    def _address_override(cls, to: str | None, info: ValidationInfo) -> str | None:
        if to is not None and info.data.get("channel") == "push":
            raise ValueError(
                "'to' applies to email and sms: a push goes to the profile's own devices"
            )
        return to

    @field_validator("variants")
    @classmethod
    def _distinct_locales(cls, variants: dict[str, MessageTemplate]) -> dict[str, MessageTemplate]:
        """Locale tags are case-insensitive: two keys that differ only in case are one."""
        seen: dict[str, str] = {}
        for tag in variants:
            other = seen.setdefault(tag.lower(), tag)
            if other != tag:
                raise ValueError(f"variants {other!r} and {tag!r} name the same locale")
        return variants

    @field_validator("ttl")
    @classmethod
    def _push_ttl(cls, ttl: str | None, info: ValidationInfo) -> str | None:
        """Checked on the field (not the node) so the problem's path ends in `.ttl`."""
        if ttl is not None:
            if info.data.get("channel", "push") != "push":
                raise ValueError("'ttl' applies to push sends only")
            if not timedelta(0) < parse_duration(ttl) <= MAX_PUSH_TTL:
                raise ValueError(f"'ttl' {ttl} must be positive and at most PT72H")
        return ttl


class WebhookNode(Model):
    type: Literal["webhook"]
    url: Template = Field(min_length=1)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, Template] = Field(default_factory=dict)
    body: Template | None = None
    timeout: Duration = "PT10S"
    save_as: str | None = None
    next: str | None = None
    on_error: str | None = None

    @field_validator("timeout")
    @classmethod
    def _call_timeout(cls, timeout: str) -> str:
        """A call is made inside one run of the webhook worker (a 30-second function)."""
        if not timedelta(0) < parse_duration(timeout) <= MAX_CALL_TIMEOUT:
            raise ValueError(f"'timeout' {timeout} must be positive and at most PT25S")
        return timeout


class PauseNode(Model):
    type: Literal["pause"]
    duration: Duration | None = None
    until: AwareDatetime | None = None
    until_field: FieldPath | None = None
    offset: Duration | None = None
    at: ClockTime | None = None
    days: list[Weekday] | None = None
    next: str | None = None

    @model_validator(mode="after")
    def _one_basis(self) -> PauseNode:
        given = [k for k in ("duration", "until", "until_field") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"a pause has one of duration, until, until_field (found {given})")
        if not given and self.at is None and not self.days:
            raise ValueError("a pause needs duration, until, until_field, at or days")
        if self.offset is not None and self.until_field is None:
            raise ValueError("'offset' goes with 'until_field'")
        return self


class BestTimeNode(Model):
    type: Literal["best_time"]
    within: Duration = "P1D"
    fallback: ClockTime = "10:00"
    next: str | None = None


class WaitForNode(Model):
    type: Literal["wait_for"]
    event: str | None = None
    where: Condition | None = None
    condition: Condition | None = None
    timeout: Duration | None = None
    next: str | None = None
    timeout_next: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> WaitForNode:
        if (self.event is None) == (self.condition is None):
            raise ValueError("a wait_for node waits for either 'event' or 'condition'")
        if self.where is not None and self.event is None:
            raise ValueError("'where' goes with 'event'")
        return self


class ConditionNode(Model):
    type: Literal["condition"]
    if_: Condition = Field(alias="if")
    then: str | None = None
    else_: str | None = Field(None, alias="else")


class SplitBranch(Model):
    name: str | None = None
    if_: Condition = Field(alias="if")
    next: str | None = None


class SplitNode(Model):
    type: Literal["split"]
    branches: list[SplitBranch] = Field(min_length=1, max_length=10)
    else_: str | None = Field(None, alias="else")


class ABBranch(Model):
    name: str | None = None
    percent: int = Field(ge=0, le=100)
    next: str | None = None


class ABSplitNode(Model):
    type: Literal["ab_split"]
    branches: list[ABBranch] = Field(min_length=1, max_length=10)

    @field_validator("branches")
    @classmethod
    def _sums_to_100(cls, branches: list[ABBranch]) -> list[ABBranch]:
        """Checked on the field so the problem's path ends in `.branches`."""
        total = sum(branch.percent for branch in branches)
        if total != 100:
            raise ValueError(f"branch percents sum to {total}, not 100")
        return branches


class ExperimentBranch(Model):
    name: str = Field(min_length=1, max_length=64)
    percent: int = Field(ge=1, le=100)
    next: str | None = None


class ExperimentNode(Model):
    """Splits like `ab_split` until a winner is decided (SPEC §8); then everyone takes it."""

    type: Literal["experiment"]
    branches: list[ExperimentBranch] = Field(min_length=2, max_length=4)
    metric: Literal["conversion", "opened", "clicked"]
    decide_after: Duration
    min_per_branch: int = Field(500, ge=1)
    confidence: float = Field(0.9, ge=0.5, lt=1)

    @field_validator("branches")
    @classmethod
    def _named_and_sums_to_100(cls, branches: list[ExperimentBranch]) -> list[ExperimentBranch]:
        """Checked on the field so the problem's path ends in `.branches`."""
        names = [branch.name for branch in branches]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"branch names must differ: {', '.join(map(repr, doubled))} repeated")
        total = sum(branch.percent for branch in branches)
        if total != 100:
            raise ValueError(f"branch percents sum to {total}, not 100")
        return branches

    @field_validator("decide_after")
    @classmethod
    def _not_negative(cls, decide_after: str) -> str:
        if parse_duration(decide_after) < timedelta(0):
            raise ValueError(f"'decide_after' {decide_after} must not be negative")
        return decide_after


class FieldOp(Model):
    field: str = Field(min_length=1)
    op: Literal["set", "clear", "now", "increment", "decrement"]
    value: Any = None

    @model_validator(mode="after")
    def _value(self) -> FieldOp:
        if self.op in ("increment", "decrement") and not _is_number(self.value, default_ok=True):
            raise ValueError(f"'{self.op}' takes a number as 'value'")
        if self.op == "set" and self.value is None:
            raise ValueError("'set' needs a 'value' (use 'clear' to remove a field)")
        return self


class ConsentOp(Model):
    consent: Channel
    op: Literal["grant", "revoke"]


ProfileOp = Annotated[
    Annotated[FieldOp, Tag("field")] | Annotated[ConsentOp, Tag("consent")],
    Discriminator(
        lambda v: (
            ("consent" if "consent" in v else "field")
            if isinstance(v, dict)
            else ("consent" if isinstance(v, ConsentOp) else "field")
        ),
    ),
]


class UpdateProfileNode(Model):
    type: Literal["update_profile"]
    ops: list[ProfileOp] = Field(min_length=1)
    next: str | None = None


class PromoCodeNode(Model):
    type: Literal["promo_code"]
    pool: str = Field(min_length=1)
    save_as: str = "promo_code"
    next: str | None = None
    on_empty: str | None = None


class JumpNode(Model):
    type: Literal["jump"]
    scenario: str = Field(min_length=1)
    node: str | None = None


class ExitNode(Model):
    type: Literal["exit"]


Node = Annotated[
    SendNode
    | WebhookNode
    | PauseNode
    | BestTimeNode
    | WaitForNode
    | ConditionNode
    | SplitNode
    | ABSplitNode
    | ExperimentNode
    | UpdateProfileNode
    | PromoCodeNode
    | JumpNode
    | ExitNode,
    Field(discriminator="type"),
]

WAITING_NODE_TYPES = frozenset({"pause", "best_time", "wait_for"})


# --- the scenario (§1.1) --------------------------------------------------------------


class Goal(Model):
    event: str = Field(min_length=1)
    where: Condition | None = None


class QuietHours(Model):
    start: ClockTime
    end: ClockTime


class FrequencyCap(Model):
    max: int = Field(ge=1)
    per: Duration
    channel: Channel | None = None
    on_cap: Literal["skip", "delay"] = "skip"


def _positive(text: str) -> str:
    if parse_duration(text) <= timedelta(0):
        raise ValueError(f"{text} must be a positive duration")
    return text


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


class Holdout(Model):
    """The share of captured profiles held out of a scenario, stable per profile (SPEC §8)."""

    percent: float = Field(gt=0, lt=100)


class Conversion(Model):
    """What counts as converting: a matching event within `within` of the entry (SPEC §8)."""

    event: str = Field(min_length=1)
    where: Condition | None = None
    within: PositiveDuration = "P7D"


class RateLimit(Model):
    """At most `max` sends of the scenario leave per `per` window; later ones wait in order."""

    max: int = Field(ge=1)
    per: PositiveDuration


class EntryLimit(Model):
    """At most `max` captures per `per` window; later ones are refused (`entry_limit`)."""

    max: int = Field(ge=1)
    per: PositiveDuration


def _event_path(path: str) -> str:
    _path(path)
    if not path.startswith("event."):
        raise ValueError(f"{path!r}: the re-entry key is a path into the capturing event, "
                         "e.g. 'event.data.cart_id'")  # fmt: skip
    return path


class Scenario(Model):
    """A scenario definition (SPEC §1)."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    group: str | None = None
    profile_db: str = Field("default", min_length=1)
    reentry: Literal["never", "when_finished", "restart", "parallel", "per_key"] = "when_finished"
    # Validated even when absent, so a missing key with `per_key` is reported at its path.
    reentry_key: Annotated[str | None, Field(validate_default=True)] = None
    exit_on: list[Goal] = Field(default_factory=list)
    keep_profiles_on_stop: bool = True
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    timezone: TimeZone | None = None
    actuality: Duration | None = None
    entry: str | None = None
    triggers: list[Trigger] = Field(default_factory=list, max_length=10)
    nodes: dict[NodeId, Node] = Field(default_factory=dict)
    transactional: bool = False
    holdout: Holdout | None = None
    conversion: Conversion | None = None
    rate_limit: RateLimit | None = None
    entry_limit: EntryLimit | None = None

    @field_validator("reentry_key")
    @classmethod
    def _key_with_per_key(cls, key: str | None, info: ValidationInfo) -> str | None:
        """Checked on the field so the problem's path is `$.reentry_key`."""
        per_key = info.data.get("reentry") == "per_key"
        if key is None:
            if per_key:
                raise ValueError("reentry 'per_key' needs a 'reentry_key' such as "
                                 "'event.data.cart_id'")  # fmt: skip
            return None
        if "reentry" in info.data and not per_key:
            raise ValueError("'reentry_key' goes with reentry 'per_key'")
        return _event_path(key)


def _is_number(value: Any, default_ok: bool = False) -> bool:
    if value is None:
        return default_ok
    return isinstance(value, int | float) and not isinstance(value, bool)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario document, as published in docs/."""
    return Scenario.model_json_schema(by_alias=True)


class Segment(Model):
    """A named condition over a profile database (SPEC §2)."""

    profile_db: str = Field("default", min_length=1)
    where: Condition
