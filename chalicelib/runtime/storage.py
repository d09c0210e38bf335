"""The storage port: what the runtime's use cases read and write, as typed records.

The use cases (capture, feed an event, wake, sweep, take a promo code) see the stack's
state only through `Storage`. Two adapters implement it: DynamoDB
(`chalicelib/adapters/dynamodb_storage.py`, the only code that knows keys, indexes and
expressions) and in memory (`chalicelib/adapters/memory_storage.py`, for the use cases'
unit tests and for benches that measure logic).

Reads answer records; every write of one step is gathered in a `Changes` and committed
at once by `Storage.commit` — atomically, and only if every expectation in it still
holds (the instance's revision, a capture guard's count, a profile that did or did not
exist), else it raises `Conflict` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from chalicelib.engine.compiled import CompiledScenario, WindowLimit
from chalicelib.engine.orders import OrderState
from chalicelib.engine.sessions import SessionState
from chalicelib.engine.state import Instance
from chalicelib.scenarios.facts import Event, Message, Profile
from chalicelib.scenarios.model import Segment

from .messages import EventMessage, QueueMessage


class Conflict(Exception):
    """A commit's expectation did not hold (someone else wrote first): nothing was written."""


# --- what is read -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadAhead:
    """What a batch of queue messages reads before it starts, in one request
    (`Storage.read_ahead`): instances, scenarios' metadata, profiles' fields (`profiles`)
    or only whether they are aliases (`aliases`), whether journeys listen to event types
    and which scenarios those trigger, capture guards, the control percent."""

    instances: Sequence[str] = ()
    scenarios: Sequence[str] = ()
    profiles: Sequence[tuple[str, str]] = ()
    aliases: Sequence[tuple[str, str]] = ()
    event_types: Sequence[str] = ()
    guards: Sequence[tuple[str, str, str]] = ()  # (profile_db, profile_id, scenario_id)
    control: bool = False

    def __bool__(self) -> bool:
        return any(getattr(self, wanted.name) for wanted in fields(self))


@dataclass(frozen=True)
class ReadAheadFound:
    """What `read_ahead` found, each as the port's single read answers it: the instances
    that exist (`instance`), each scenario (`scenario`: None, none such), each profile
    without history (`profile(..., history=False)`), the profiles among `aliases` that
    are aliases with the profile each was merged into (`merged_into`), each event
    type's `listened` and, once the stack has them listed, the scenarios it triggers
    (`scenarios_for_event`; None: ask that), each guard (`capture_guard`), the control
    percent (`control_percent`, when asked)."""

    instances: dict[str, StoredInstance]
    scenarios: dict[str, ScenarioMeta | None]
    profiles: dict[tuple[str, str], ProfileRecord]
    aliases: dict[tuple[str, str], str]
    listened: dict[str, bool]
    triggered: dict[str, list[str]] | None
    guards: dict[tuple[str, str, str], CaptureGuard | None]
    control_percent: float | None


@dataclass(frozen=True)
class ScenarioMeta:
    """What a journey needs of a scenario: whether it runs, and its current version."""

    scenario_id: str
    status: str
    version: int

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass
class StoredInstance:
    """An instance with its revision (for optimistic locking) and the event ids it has seen."""

    instance: Instance
    rev: int
    seen: list[str] = field(default_factory=list)


EVENT_LIMIT = 300  # the newest events a profile's view holds (`ProfileRecord.history`)


@dataclass
class ProfileRecord:
    """The engine's view of a profile, and what a write of it must know of the stored one."""

    view: Profile
    exists: bool  # the profile's item exists (else a step's update creates it)
    has_consents: bool = False  # its `consents` field is a map (single consents set in place)
    segments: tuple[str, ...] = ()  # the defined segments it belongs to (segment membership)
    merged_into: str | None = None  # a merged profile's alias: the profile it went into
    history: bool = True  # the view holds the profile's newest events and messages


@dataclass(frozen=True)
class CaptureGuard:
    """Serializes a profile's captures into one scenario: how many, and the latest."""

    captures: int
    latest: str | None


@dataclass(frozen=True)
class Timer:
    """An instance waits for `wake_at` at `step`."""

    instance_id: str
    scenario_id: str
    step: int
    wake_at: datetime


@dataclass(frozen=True)
class PendingRow:
    """An outbox row not yet consumed, due to be dispatched (again)."""

    row_id: str
    queue: str
    message: QueueMessage
    dispatch_at: int  # epoch seconds


# --- what is written ----------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceWrite:
    """Store the instance; `rev` is the revision it was read at (None: it must be new).
    `until`, for an ended instance: until when the profile's events still concern it (the
    end of its conversion window when that is later than its end; None: its end)."""

    stored: StoredInstance
    rev: int | None
    until: datetime | None = None


@dataclass(frozen=True)
class Dispatch:
    """An outbox row's queue message: pending until its consumer takes the row out."""

    queue: str
    message: QueueMessage
    deliver_at: datetime
    dispatch_at: datetime  # when the sweeper sends it (again) if it is still pending


@dataclass(frozen=True)
class OutboxRow:
    """A row of the outbox: a message, a webhook call, a promo code request, an emitted
    event or a jump — its kind, the journey it belongs to, and the kind's own values."""

    row_id: str
    kind: str
    created_at: datetime
    profile_db: str
    profile_id: str
    instance: Instance | None = None
    values: dict[str, Any] = field(default_factory=dict)
    dispatch: Dispatch | None = None


@dataclass(frozen=True)
class SentMessage:
    """A message in the profile's history, for conditions, caps and best times."""

    profile_db: str
    profile_id: str
    message_id: str
    scenario_id: str
    instance_id: str
    node: str
    channel: str
    at: datetime


class ProfileContention(RuntimeError):
    """A profile was created and erased under a write that many times; nothing was written."""


@dataclass(frozen=True)
class Merged:
    """A profile's item before and after a merge of fields (`before` None: it was created)."""

    before: dict[str, Any] | None
    after: dict[str, Any]


def merged_fields(old: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """`old` fields with `fields` merged in, None clearing one: what a merge stores."""
    return {k: v for k, v in {**(old or {}), **fields}.items() if v is not None}


@dataclass(frozen=True)
class ProfileCreate:
    """Create the profile with these fields, unless it exists (then: Conflict)."""

    profile_db: str
    profile_id: str
    fields: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class ProfileUpdate:
    """Change only the fields named: set, removed, added to (from 0) and single consents.
    Without `has_consents`, the consents map is created, expecting there still is none."""

    profile_db: str
    profile_id: str
    at: datetime
    set_fields: dict[str, Any] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    add: dict[str, float] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)
    has_consents: bool = True


@dataclass(frozen=True)
class GuardWrite:
    """Count a capture on the guard, expecting the count read (None: there was no guard)."""

    profile_db: str
    profile_id: str
    scenario_id: str
    latest: str
    expected: int | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.profile_db, self.profile_id, self.scenario_id)

    def written(self) -> CaptureGuard:
        """The guard as this write leaves it."""
        return CaptureGuard((self.expected or 0) + 1, self.latest)


@dataclass(frozen=True)
class StatsDelta:
    """Counters added to one scenario version's statistics of one day. `spread` (an
    instance id) spreads a busy scenario's writes over several items."""

    scenario_id: str
    version: int
    day: str
    spread: str
    counters: dict[str, int]
    # marks kept at their first value: when something first happened (e.g. a first entry)
    firsts: dict[str, datetime] = field(default_factory=dict)


@dataclass
class Changes:
    """The writes of one commit."""

    instances: list[InstanceWrite] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    timers_gone: list[str] = field(default_factory=list)  # instance ids whose timer goes
    rows: list[OutboxRow] = field(default_factory=list)
    history: list[SentMessage] = field(default_factory=list)
    profiles: list[ProfileCreate | ProfileUpdate] = field(default_factory=list)
    guards: list[GuardWrite] = field(default_factory=list)
    stats: list[StatsDelta] = field(default_factory=list)
    # --- sending discipline ---
    entries: list[EntryCount] = field(default_factory=list)
    # --- segment membership ---
    memberships: list[MembershipWrite] = field(default_factory=list)
    # --- orders ---
    orders: list[OrderWrite] = field(default_factory=list)
    ordered: list[ProductOrdered] = field(default_factory=list)
    sessions: list[SessionWrite] = field(default_factory=list)
    # --- once-only records ---
    once: list[Once] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.instances, self.timers, self.timers_gone, self.rows, self.history,
             self.profiles, self.guards, self.stats, self.entries, self.memberships,
             self.orders, self.ordered, self.sessions, self.once)
        )  # fmt: skip


# --- the port -----------------------------------------------------------------------------


class Storage(Protocol):
    """The stack's state as the runtime's use cases see it."""

    # scenarios
    def scenario(self, scenario_id: str) -> ScenarioMeta | None: ...

    def version(self, scenario_id: str, version: int) -> CompiledScenario:
        """A stored version, compiled (versions never change: adapters may keep them)."""
        ...

    def listened(self, event_type: str) -> bool:
        """Whether journeys of some scenario may take events of this type: one of its
        versions ever activated listens to it (`engine.listened_types`) or to any event,
        or the stack's listeners are not listed yet (`listeners_listed`). One read."""
        ...

    def scenarios_for_event(self, event_type: str) -> list[str]:
        """Active scenarios with an event trigger on this type."""
        ...

    # profiles
    def profile(self, profile_db: str, profile_id: str, history: bool = True) -> ProfileRecord:
        """The profile's fields with its newest events and messages (an empty view if none);
        not `history`: its fields only, a read of one item instead of hundreds."""
        ...

    def profile_item(self, profile_db: str, profile_id: str) -> dict[str, Any] | None:
        """The profile's item as upserts answer it (`profile_db`, `profile_id`, `fields`,
        `created_at`, `updated_at`, and `merged_into` for a merged profile), or None."""
        ...

    def profile_items(self, profile_db: str, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The items of those profiles that exist, by profile id (100 a request)."""
        ...

    def merge_profile(
        self, profile_db: str, profile_id: str, fields: dict[str, Any], stamp: str,
        exists: bool = True,
    ) -> Merged:  # fmt: skip
        """Merge `fields` into the profile (None removes one), creating it if need be, in
        one write of those fields alone that answers the item as it was just before: a
        concurrent change of other fields survives, and what changed is known exactly.
        `exists`: which write to try first (the caller's read). ProfileContention when it
        was created and erased under the write again and again."""
        ...

    def set_profile_consent(
        self, profile_db: str, profile_id: str, channel: str, granted: bool, stamp: str
    ) -> Merged | None:
        """Set `fields.consents.<channel>` alone (a `consents` that is not a map becomes
        `{channel: granted}`); None when there is no such profile: nothing is created."""
        ...

    def mark_address_invalid(
        self, profile_db: str, profile_id: str, channel: str, address: str
    ) -> None:
        """Record that `address` hard-bounced on `channel` (the item's `invalid` map, which
        the profile's view carries); an erased profile stays erased."""
        ...

    def record_event(self, profile_db: str, profile_id: str, event: Event) -> None:
        """Add the event to the profile's history (the same id again: the same entry)."""
        ...

    def record_events(self, events: list[tuple[str, str, Event]]) -> None:
        """Add each `(profile_db, profile_id, event)` to its profile's history, a batch's at
        once (BatchWriteItem, 25 a call); the same event twice is one entry."""
        ...

    # instances
    def instance(self, instance_id: str) -> StoredInstance | None: ...

    def read_ahead(self, wanted: ReadAhead) -> ReadAheadFound:
        """All of `wanted` as the single reads answer each (strongly consistent), in one
        request per 100 items: what a batch reads before it starts."""
        ...

    def instances_of_profile(
        self,
        profile_db: str,
        profile_id: str,
        scenario_id: str | None = None,
        since: datetime | None = None,
    ) -> list[StoredInstance]:
        """The profile's instances (of one scenario); with `since`, only those that still
        matter at that moment: the active ones and the ended ones whose `until` (see
        `InstanceWrite`) is not before it, so what an event reads does not grow with the
        profile's past. May miss the newest or show an older revision (an index), and
        hold a few more (`since` is taken to the second), never one that was not written."""
        ...

    def capture_guard(
        self, profile_db: str, profile_id: str, scenario_id: str
    ) -> CaptureGuard | None: ...

    # the commit of one or more steps
    def commit(self, changes: Changes) -> None:
        """Write all of it or nothing; `Conflict` when an expectation failed."""
        ...

    # timers and the outbox
    def due_timers(self, now: datetime) -> Iterable[Timer | EventTimer]:
        """Timers due by `now`: instances' wake-ups and derived events' timers."""
        ...

    def forget_timer(self, instance_id: str, step: int) -> None:
        """Delete the instance's timer if it is still the one for `step`."""
        ...

    def overdue_rows(self, now: datetime) -> Iterable[PendingRow]:
        """Outbox rows still pending past their dispatch time."""
        ...

    def postpone_row(self, row: PendingRow, until: datetime) -> bool:
        """Move a pending row's dispatch time on, unless another sweeper did (False)."""
        ...

    def consume_rows(self, row_ids: list[str]) -> None:
        """Take handled rows out of the outbox (a batch's at once)."""
        ...

    def keep_pending(self, rows: list[OutboxRow]) -> None:
        """Write rows outside a step's commit (a queue that refused their messages)."""
        ...

    # promo codes
    def take_code(self, pool: str, request_id: str, at: datetime) -> str | None:
        """One unused code for `request_id`, the same one if asked again; None when empty."""
        ...

    def redeem_code(
        self, pool: str, code: str, profile_db: str, profile_id: str, at: datetime
    ) -> str:
        """Mark a code of the pool redeemed by the profile, once: `redeemed`, `repeated`
        (this profile redeemed it already: a retry), `again` (another profile did) or
        `unknown` (no such code in the pool). An available code redeemed is taken out of
        the pool."""
        ...

    # event ids the API has queued
    def events_seen(self, event_ids: list[str]) -> set[str]: ...

    def mark_events_queued(self, event_ids: list[str], at: datetime) -> None:
        """Remember these ids as queued `at`, for a week (BatchWriteItem: 25 a call; an id
        marked again, by a race of two calls that both queued it, starts its week anew)."""
        ...

    # --- sending discipline ---

    def entries_in_window(self, scenario_id: str, window: tuple[datetime, datetime]) -> int:
        """Captures into the scenario counted in this entry-limit window [start, end)."""
        ...

    def take_send_slot(self, scenario_id: str, limit: WindowLimit, now: datetime) -> datetime:
        """Reserve the scenario's next send slot under its rate limit: when the send that
        asks now may leave (`now` itself when a token is there). Slots are handed out in
        the order they are asked for and never given twice."""
        ...

    # --- measurement ---
    def control_percent(self) -> float:
        """The stack's global control group, in percent (0 when none is set)."""
        ...

    def set_control_percent(self, percent: float, at: datetime) -> None: ...

    def experiment_scenarios(self) -> list[str]:
        """Active scenarios whose current version has an experiment node."""
        ...

    def decisions(self, scenario_id: str, version: int) -> dict[str, ExperimentDecision]:
        """The stored decisions of one version's experiment nodes, by node id."""
        ...

    def put_decision(self, decision: ExperimentDecision) -> None: ...

    def version_counters(self, scenario_id: str, version: int) -> VersionCounters:
        """One version's statistics counters summed over every day and shard."""
        ...

    def day_counters(self, scenario_id: str, version: int | None = None) -> Iterable[DayCounters]:
        """The scenario's counters (of one version, else of all), per version, day and
        shard: a day's counters may come in several parts, to be added up."""
        ...

    # --- once-only records ---
    def once_done(self, key: str) -> bool:
        """Whether a commit wrote the once-only record `key` (and it has not expired)."""
        ...

    def forget_once(self, key: str) -> None:
        """Take a once-only record out (its work was undone)."""
        ...

    # --- promo pools ---
    def add_codes(self, pool: str, codes: list[str]) -> int:
        """Add the codes the pool does not hold yet, taken or not; how many were added."""
        ...

    def codes_left(self, pool: str) -> int: ...

    def pool_exists(self, pool: str) -> bool:
        """A pool exists once codes were added to it, even when all of them are taken."""
        ...

    # --- what the API reads ---
    def version_document(self, scenario_id: str, version: int) -> dict[str, Any] | None:
        """A stored version's document as it was saved."""
        ...

    def count_active(self, scenario_id: str) -> int:
        """Profiles now in the scenario: its active instances."""
        ...

    def messages_between(
        self, profile_db: str, profile_id: str, start: datetime, end: datetime
    ) -> list[Message]:
        """The messages sent to the profile in [start, end], newest first, however many."""
        ...

    def message_version(self, message_id: str) -> int | None:
        """The scenario version a message's outbox row was written by (None: no row)."""
        ...

    # --- segment membership ---
    def defined_segments(self) -> dict[str, Segment]:
        """Every defined segment, by id."""
        ...

    def define_segment(self, segment_id: str, definition: dict[str, Any]) -> None:
        """Store a segment's definition (`{"profile_db", "where"}`), replacing any."""
        ...

    def delete_segment(self, segment_id: str) -> bool:
        """Forget a segment's definition; False when there was none."""
        ...

    def scan_profiles(self, part: int, parts: int) -> Iterable[ProfileRecord]:
        """One of `parts` disjoint parts of every stored profile: fields and membership,
        without their history (a parallel Scan segment)."""
        ...

    def membership_run_done(self, run: str) -> bool:
        """Whether the latest daily membership run started is this one (of this day)."""
        ...

    def mark_membership_run(self, run: str, at: datetime) -> None:
        """Remember the daily membership run started (in place of the one before)."""
        ...

    # --- merges ---
    def merged_into(self, profile_db: str, profile_id: str) -> str | None:
        """The profile this one was merged into (one read of its alias alone), or None."""
        ...

    def profile_state(self, profile_db: str, profile_id: str) -> ProfileState: ...

    def begin_merge(self, record: MergeRecord, row: OutboxRow) -> MergeRecord:
        """Store the record with its pending outbox row, unless a record of that id is
        stored: then answer that one (and write nothing)."""
        ...

    def merge_record(self, merge_id: str) -> MergeRecord | None: ...

    def finish_merge(self, merge_id: str) -> None: ...

    def alias_profile(self, profile_db: str, from_id: str, into: str) -> None:
        """Mark `from_id` merged into `into` (its item keeps its fields until folded),
        expecting `into` not merged itself and `from_id` not merged into another profile:
        else Conflict, and nothing is written."""
        ...

    def fold_profile(self, profile_db: str, from_id: str, into: str) -> None:
        """Add the fields of `from_id` that `into` lacks to `into` (`into` wins; consents
        channel by channel), then leave `from_id`'s item only the alias — again if it
        changed in between, so a concurrent change of it is folded too."""
        ...

    def move_profile_rows(self, profile_db: str, from_id: str, into: str) -> None:
        """Move every other row of `from_id`'s partition to `into`'s (a row `into` has
        already keeps `into`'s), and point the records of its messages at `into`."""
        ...

    # --- loyalty ---
    def set_event_timer(self, timer: EventTimer) -> None:
        """Keep a derived event's timer (the same `timer_id` again: the same timer)."""
        ...

    def forget_event_timer(self, timer_id: str) -> None:
        """Delete a derived event's timer (its event was sent)."""
        ...

    # --- orders ---
    def order(self, profile_db: str, profile_id: str, order_id: str) -> StoredOrder | None:
        """The profile's order as its events left it, with its revision."""
        ...

    def last_ordered_at(self, profile_db: str, profile_id: str, product_id: str) -> datetime | None:
        """When the profile last ordered the product (the newest order holding it)."""
        ...

    def session(self, profile_db: str, profile_id: str) -> StoredSession | None:
        """The profile's open web session, with its revision."""
        ...

    def due_sessions(self, now: datetime) -> Iterable[SessionTimer]:
        """Open sessions whose time without activity is up by `now`."""
        ...

    # --- commerce ---
    def product(self, product_id: str) -> StoredProduct | None:
        """A product of the catalogue as stored (None: never put)."""
        ...

    def put_product(self, product: StoredProduct, fan_out: OutboxRow | None = None) -> None:
        """Store the product at its `version`, expecting the one before it (version 1: no
        product yet), with the outbox row of its change's fan-out in the same write;
        `Conflict` when another change came first (then neither is written)."""
        ...

    def list_lines(self, profile_db: str, profile_id: str, list_name: str) -> list[ListLine]:
        """The lines of one of the profile's lists, by product id."""
        ...

    def put_line(self, profile_db: str, profile_id: str, list_name: str, line: ListLine) -> bool:
        """Put a product on the list or change its quantity; a line already there keeps
        its `price` seen and `added_at`. Not applied (False) when the line changed at a
        later moment than `line.at`."""
        ...

    def remove_line(
        self, profile_db: str, profile_id: str, list_name: str, product_id: str, at: datetime
    ) -> bool:
        """Take a product off the list, unless its line changed after `at` (False); the
        removal is remembered, so an older addition delivered late does not undo it."""
        ...

    def record_view(self, profile_db: str, profile_id: str, view: ProductView) -> bool:
        """Keep the profile's latest view of the product (for VIEW_KEPT); an older one
        than the view kept is not applied (False)."""
        ...

    def views(self, profile_db: str, profile_id: str) -> list[ProductView]:
        """The profile's latest view of each product it viewed, by product id."""
        ...

    def cart_stage(self, profile_db: str, profile_id: str) -> CartStage | None: ...

    def set_cart_stage(self, profile_db: str, profile_id: str, stage: CartStage) -> bool:
        """Mark how far the profile's cart got (`stage.stage` None: not started), unless
        it was marked at a later moment (False)."""
        ...

    def watchers(
        self, product_id: str, limit: int, token: str | None = None
    ) -> tuple[list[Watch], str | None]:
        """One page of the profiles watching a product (on a list or viewed), and the
        token of the next page (None: the last)."""
        ...

    def signal_settings(self) -> SignalSettings:
        """The stack's signal settings (the defaults when none are set)."""
        ...

    def set_signal_settings(self, signals: SignalSettings, at: datetime) -> None: ...

    def mark_price_change(self, product_id: str, before: dict[str, Any], version: int) -> None:
        """A product changed to `version` while prices are checked on a schedule: keep the
        document before its first change since the last check (`before` if none is kept)."""
        ...

    def price_changes(self) -> Iterable[PriceChange]:
        """The products changed since the last price check, with their document then."""
        ...

    def settle_price_change(self, product_id: str, version: int, checked: dict[str, Any]) -> None:
        """The check compared the product up to `version` (its document `checked`): no
        change is pending, unless a later one came meanwhile (then it is compared from
        `checked` at the next check)."""
        ...

    def last_price_check(self) -> datetime | None:
        """The moment of the latest scheduled price check (None: none yet)."""
        ...

    def mark_price_check(self, moment: datetime) -> None:
        """The scheduled price check of `moment` is done (an earlier moment changes nothing)."""
        ...

    def abandon_timer(
        self, profile_db: str, profile_id: str, product_id: str | None
    ) -> AbandonTimer | None:
        """The profile's abandonment timer of its cart (`product_id` None) or of a product
        it viewed."""
        ...

    def set_abandon_timer(self, timer: AbandonTimer) -> bool:
        """Set the timer, unless the one kept is for a change as late or later (False)."""
        ...

    def due_abandon_timers(self, now: datetime) -> Iterable[AbandonTimer]:
        """Abandonment timers due by `now` (armed, not fired)."""
        ...

    def disarm_abandon_timer(self, timer: AbandonTimer) -> None:
        """The timer fired: it stays for its change, out of the due ones, unless a later
        change re-set it meanwhile."""
        ...

    # --- messages on their way: the channel worker, provider feedback, profile deletion
    def outbox_message(self, message_id: str) -> MessageRow | None:
        """The message or webhook call of that id as its row is now (None: no such row,
        or a row of another kind)."""
        ...

    def claim_message(
        self, message_id: str, at: datetime, lease_until: datetime
    ) -> MessageRow | None:
        """`queued` → `sending`, claimed `at` by the caller alone: one more attempt, pending
        until `lease_until`, with a map of statuses if it had none. The row as it is then;
        None when it was not `queued` (another delivery claimed it first)."""
        ...

    def claim_if_due(
        self, message_id: str, at: datetime, lease_until: datetime, due_by: datetime
    ) -> tuple[bool, MessageRow | None]:
        """`claim_message` in the same request as the row's read, when the row is `queued`
        and due by `due_by` (its `retry_at`, else its `deliver_at`, if any, at or before
        it): (True, the row as claimed). Else nothing is written: (False, the row as it is;
        None when there is none, or it is of another kind). A row due within the last
        second may be refused as not due yet: the caller decides from the row it gets."""
        ...

    def move_message(self, move: MessageMove) -> None:
        """Apply the move, expecting the row still as its worker holds it, and with its
        `recorded` status, without that status flagged yet (else Conflict, and nothing is
        written)."""
        ...

    def pace_message(self, message_id: str, slot: datetime, dispatch_at: int) -> bool:
        """Keep a `queued` row waiting for its send slot: due (and paced) at `slot`, sent
        again by the sweeper at `dispatch_at` (epoch seconds). False when it is not
        `queued` or already has a slot."""
        ...

    def mark_pushed(self, message_id: str, endpoint: str) -> None:
        """Remember the push subscription a message went to (or may have: no answer)."""
        ...

    def sent_messages(self) -> list[MessageRow]:
        """Every message and webhook call that is `sent` (a scan: the local stack's)."""
        ...

    def forget_push_subscriptions(self, profile: Profile, endpoints: list[str]) -> bool:
        """Take the subscriptions with these endpoints out of the profile's `push` field as
        `profile` was read; False when the field changed since (or the profile is gone)."""
        ...

    def mark_history(self, mark: HistoryMark) -> bool:
        """Set a status on the message's entry in the profile's history; False when there
        is no such entry (the profile was erased)."""
        ...

    def record_status(self, write: StatusWrite) -> None:
        """Flag the status on the message's row, add the counters and keep the event's
        outbox row, all at once; Conflict, with nothing written, when the status is flagged
        already, the row is gone, or a concurrent write to one of them came between."""
        ...

    def erase_profile(self, profile_db: str, profile_id: str, instance_ids: list[str]) -> bool:
        """Delete the profile with everything in its partition (fields, history, lists...),
        its messages' rows, these instances and their timers. False when there was
        nothing to delete."""
        ...

    # --- scenarios, versions, schedules and segments
    def listeners_listed(self) -> bool:
        """Whether every scenario saved so far has its listened event types listed (a
        stack whose scenarios predate the list has them listed once: `add_listeners`,
        then `mark_listeners_listed`)."""
        ...

    def add_listeners(self, scenario_id: str, event_types: Iterable[str]) -> None:
        """List the scenario among those listening to these event types."""
        ...

    def mark_listeners_listed(self) -> None: ...

    def triggers_listed(self) -> bool:
        """Whether the scenarios each event type triggers are listed where `read_ahead`
        reads them (a stack whose active scenarios predate that list has them listed
        once: `add_triggers`, then `mark_triggers_listed`; activations keep it since)."""
        ...

    def add_triggers(self, scenario_id: str, event_types: Iterable[str]) -> None:
        """List the scenario among those these event types trigger."""
        ...

    def mark_triggers_listed(self) -> None: ...

    def scenario_record(self, scenario_id: str) -> ScenarioRecord | None:
        """The scenario's metadata as saved (None: no such scenario)."""
        ...

    def save_scenario(self, change: ScenarioChange) -> None:
        """Write a lifecycle change all at once, or nothing and `Conflict` when the
        scenario is not as read (or, for a new one, exists)."""
        ...

    def scenario_page(
        self, where: ScenarioFilter, read: int, token: str | None
    ) -> tuple[list[ScenarioRecord], str | None]:
        """One read of at most `read` stored items from `token` on: the scenarios among
        them that `where` keeps, and the token of the next read (None: the list ended).
        `UnknownToken` for a token this list did not issue."""
        ...

    def token_after(self, record: ScenarioRecord) -> str:
        """The token of a scenario list that goes on just after this scenario."""
        ...

    def versions_page(
        self, scenario_id: str, limit: int, token: str | None
    ) -> tuple[list[VersionRecord], str | None]:
        """One page of the scenario's versions, oldest first, and the next page's token
        (None: the last). `UnknownToken` for a token this list did not issue."""
        ...

    def active_instance_ids(self, scenario_id: str) -> list[str]:
        """The scenario's active instances (an index: may miss the newest)."""
        ...

    def instances_at_node(self, scenario_id: str, node: str) -> list[str]:
        """The scenario's active instances now at the node, earliest entered first."""
        ...

    def node_page(
        self, scenario_id: str, node: str, limit: int, token: str | None
    ) -> tuple[list[AtNode], str | None]:
        """One page of `instances_at_node`, with what the real-time view shows of each,
        and the next page's token (None: the last). `UnknownToken` for a token this list
        did not issue."""
        ...

    def schedules(self) -> list[ScheduleEntry]:
        """Every schedule trigger of an active scenario, with its next run."""
        ...

    def claim_schedule_run(
        self, entry: ScheduleEntry, now: datetime, next_run: datetime | None
    ) -> bool:
        """Move the entry on (last run `now`, then `next_run`, None: never again), unless
        its next run is no longer the one read: another tick claimed it (False)."""
        ...

    def next_due(self, after: datetime) -> datetime | None:
        """The first moment after `after`, to the second, at which a timer (an instance's,
        a derived event's, an abandonment's or a session's), a pending outbox row or a
        schedule run is due."""
        ...

    def profile_items_estimate(self) -> int:
        """About how many items the profiles are stored in (for the parts of a scan)."""
        ...

    def segment_definition(self, segment_id: str, consistent: bool = True) -> dict[str, Any] | None:
        """A segment's definition as it was stored (`{"profile_db", "where"}`); not
        `consistent`: a cheaper read, which may miss a change of the last second."""
        ...

    def segment_profiles(self, profile_db: str, part: int = 0, parts: int = 1) -> Iterable[Profile]:
        """One of `parts` disjoint parts of the database's stored profiles: their fields,
        without their history."""
        ...


# --- sending discipline -------------------------------------------------------------------


@dataclass(frozen=True)
class EntryCount:
    """Count one capture in the scenario's entry-limit window, expecting fewer than `max`
    counted so far (else: Conflict)."""

    scenario_id: str
    window: tuple[datetime, datetime]  # [start, end)
    max: int


# --- measurement ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentDecision:
    """Where an experiment node of one version stands (SPEC §8).

    `versions`: the versions whose counts it is decided on (the node's experiment goes
    on across live edits that leave its branches as they were); `winner` once decided,
    else `decide_again_at` (None: as soon as a profile has entered)."""

    scenario_id: str
    version: int
    node: str
    versions: tuple[int, ...]
    winner: str | None = None
    decided_at: datetime | None = None
    decide_again_at: datetime | None = None
    p_best: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionCounters:
    """A version's counters, and the first moment of each `first_*` mark (StatsDelta)."""

    counts: dict[str, int] = field(default_factory=dict)
    firsts: dict[str, datetime] = field(default_factory=dict)


# --- commerce ---------------------------------------------------------------------------

VIEW_KEPT = timedelta(days=60)  # how long the latest view of a product is kept
REMOVAL_KEPT = timedelta(days=60)  # how long a line taken off a list is remembered


@dataclass(frozen=True)
class StoredProduct:
    """A product of the catalogue: its `document` (`price`, `available`, `fields`,
    `regions`), `version` (1 for the first put) and the document before its latest
    change (`previous`), from which that change's signals are derived."""

    product_id: str
    document: dict[str, Any]
    updated_at: datetime
    version: int = 1
    previous: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ListLine:
    """A product on one of a profile's lists: the price the profile saw when it was added
    (None: not known) and when; `at` is the moment of the line's latest change."""

    product_id: str
    quantity: float
    price: float | None
    added_at: datetime
    at: datetime


@dataclass(frozen=True)
class ProductView:
    """The latest view of a product by a profile, with the price it saw (None: unknown)."""

    product_id: str
    price: float | None
    viewed_at: datetime


@dataclass(frozen=True)
class CartStage:
    """How far a profile's cart got (`added`, `viewed_cart`, `checkout`; None: not
    started) and when it was marked."""

    stage: str | None
    at: datetime


@dataclass(frozen=True)
class Watch:
    """A profile watching a product: `source` is the list it is on, or `viewed`."""

    profile_db: str
    profile_id: str
    product_id: str
    source: str
    price_seen: float | None
    seen_at: datetime


@dataclass(frozen=True)
class SignalSettings:
    """The stack's settings of derived signals (SPEC §6.3): ISO durations, and when
    prices are compared (`on_change` or a schedule as a schedule trigger has it)."""

    cart_abandoned_after: str = "PT1H"
    browse_abandoned_after: str = "PT1H"
    session_timeout: str = "PT30M"
    price_check: str | dict[str, Any] = "on_change"


@dataclass(frozen=True)
class PriceChange:
    """A product changed since the last scheduled price check: `base` is its document at
    that check, `version` its latest version."""

    product_id: str
    base: dict[str, Any]
    version: int


@dataclass(frozen=True)
class AbandonTimer:
    """When a cart (`product_id` None) or a viewed product counts as abandoned: the change
    it follows (`changed_at`: the cart's latest change, the view, or the order or addition
    that ended it) and `due_at` (None: nothing is due for that change)."""

    profile_db: str
    profile_id: str
    product_id: str | None
    changed_at: datetime
    due_at: datetime | None


# --- segment membership -------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipWrite:
    """Set the profile's membership to `members`, expecting it still is `was` (else:
    Conflict); in the same write as the profile's own change when the commit has one."""

    profile_db: str
    profile_id: str
    was: tuple[str, ...]
    members: tuple[str, ...]


# --- merges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileState:
    """Whether a profile is there, and the profile it was merged into (its alias)."""

    exists: bool  # it has a profile item with fields (an alias alone is not one)
    history: bool = False  # its partition holds rows besides the item (events, messages...)
    merged_into: str | None = None


@dataclass(frozen=True)
class MergeRecord:
    """A merge of profiles of one database into `into`, stored before its first step and
    `done` after its last: a retry, or the steps queue, finishes one a crash left."""

    merge_id: str
    profile_db: str
    into: str
    merged: tuple[str, ...]
    started_at: datetime
    done: bool = False


# --- loyalty ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventTimer:
    """A derived event due at `due_at` (points becoming available): a timer of its own kind
    in the timers table, beside the instances' wake-ups. When it is due the sweeper (or
    the TTL backstop) sends `event` to the events queue; its id is deterministic, so a
    timer fired twice still makes one event."""

    timer_id: str
    due_at: datetime
    event: EventMessage


# --- orders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredOrder:
    """An order of a profile with its revision (for optimistic locking)."""

    state: OrderState
    rev: int


@dataclass(frozen=True)
class OrderWrite:
    """Store the profile's order; `rev` is the revision it was read at (None: it must be new)."""

    profile_db: str
    profile_id: str
    stored: StoredOrder
    rev: int | None


@dataclass(frozen=True)
class ProductOrdered:
    """The profile ordered the product at `at`, expecting no later order of it is kept
    (else: Conflict)."""

    profile_db: str
    profile_id: str
    product_id: str
    at: datetime


@dataclass(frozen=True)
class StoredSession:
    """A profile's open web session with its revision (for optimistic locking)."""

    state: SessionState
    rev: int


@dataclass(frozen=True)
class SessionTimer:
    """The profile's open session ends at `wake_at` unless activity comes first."""

    profile_db: str
    profile_id: str
    wake_at: datetime


@dataclass(frozen=True)
class SessionWrite:
    """Store the profile's session with its timer at `ends_at` (`stored` None: it ended,
    both go); `rev` is the revision read (None: there must be none)."""

    profile_db: str
    profile_id: str
    stored: StoredSession | None
    rev: int | None
    ends_at: datetime | None = None


# --- once-only records and counters ------------------------------------------------------


@dataclass(frozen=True)
class Once:
    """A record that may be written once: a commit holding it fails with `Conflict` when
    it exists. It marks work done once (revenue counted for an event, a hook signature
    accepted), kept until `expires`."""

    key: str
    at: datetime
    expires: datetime


@dataclass(frozen=True)
class DayCounters:
    """Counters of one scenario version on one day (one part of them: see `day_counters`)."""

    version: int
    day: date
    counts: dict[str, int]


# --- records of messages on their way ---


@dataclass(frozen=True)
class MessageRow:
    """A message or webhook call of the outbox, as the channel worker moves it through its
    states (`runtime/channels.py`) and feedback records the statuses it reaches.

    `values`: the rest of what the journey queued (the address and content, or the call's
    request and `step`; `recheck`) and of what its states left (`reason`, `provider_id`),
    as stored."""

    message_id: str
    kind: str  # `message` or `webhook`
    status: str | None
    profile_db: str
    profile_id: str
    scenario_id: str
    version: int
    node: str
    channel: str | None  # None for a webhook call
    instance_id: str | None
    queue: str | None  # the channel queue, and `payload` its queue message, to queue again
    payload: dict[str, Any] | None
    deliver_at: datetime | None  # as the journey set it: with the id, its history entry's key
    values: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    claimed_at: datetime | None = None
    feedback: dict[str, datetime] | None = None  # the statuses recorded (None: no map yet)
    pushed: tuple[str, ...] = ()  # the push endpoints it went to
    retry_at: datetime | None = None
    paced_at: datetime | None = None  # its send slot (`rate_limit`)
    sent_at: datetime | None = None
    ended_at: datetime | None = None  # when it failed or was skipped
    result: dict[str, Any] | None = None  # a webhook call's
    last_error: str | None = None


@dataclass(frozen=True)
class MessageMove:
    """Move a row its worker holds (still `held`, claimed at `claimed_at`) to `status`,
    setting the values given (None: left as they are). `final`: out of the pending index;
    `unpaced`: its send slot given up (its next attempt takes a new one)."""

    message_id: str
    held: str
    claimed_at: datetime
    status: str
    final: bool = False
    unpaced: bool = False
    sent_at: datetime | None = None
    ended_at: datetime | None = None
    provider_id: str | None = None
    reason: str | None = None
    result: dict[str, Any] | None = None
    retry_at: datetime | None = None
    dispatch_at: int | None = None  # epoch seconds: when the sweeper sends it (again)
    last_error: str | None = None
    recorded: StatusWrite | None = None  # a status recorded in the same write (`record_status`)


@dataclass(frozen=True)
class HistoryMark:
    """A status a message reached (`at`), on its entry in the profile's history, which the
    journey wrote when it sent it at `sent_at`. `replaces`: the status it takes the place
    of (a `skipped` message was not `sent` after all), and `reason` why."""

    profile_db: str
    profile_id: str
    message_id: str
    sent_at: datetime | None
    status: str
    at: datetime
    replaces: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StatusRecord:
    """A status recorded on a message's row, once: `feedback.<status>` at `at`, expecting
    the row there without it. `started`: the row has its map of statuses (else it is given
    one first)."""

    message_id: str
    status: str
    at: datetime
    started: bool = True


@dataclass(frozen=True)
class StatusWrite:
    """A status recorded once (`record`), counted (`counters`) and announced (the outbox
    row of its event: None when the caller's queue message stands for it), in one write."""

    record: StatusRecord
    counters: StatsDelta
    event: OutboxRow | None

    def changes(self) -> Changes:
        """The writes beside the status's flag: its counters and its event's row."""
        return Changes(rows=[self.event] if self.event is not None else [], stats=[self.counters])


# --- records of scenarios and schedules ---


class UnknownToken(ValueError):
    """A page token that the list read did not issue."""


@dataclass(frozen=True)
class ScenarioRecord:
    """A scenario's metadata (SPEC §1.6): its status, the version in force (0: none yet),
    its latest saved document and the moments of its lifecycle."""

    scenario_id: str
    status: str
    version: int
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    webhook_secret: str | None = None
    activated_at: datetime | None = None
    stopped_at: datetime | None = None
    status_before_trash: str | None = None

    @property
    def name(self) -> Any:
        return self.document.get("name")

    @property
    def tags(self) -> Any:
        return self.document.get("tags") or []

    @property
    def search(self) -> str:
        """The text a list's `q` is looked for in: the name and description, in lower case."""
        document = self.document
        return f"{document.get('name') or ''}\n{document.get('description') or ''}".lower()


@dataclass(frozen=True)
class ScenarioFilter:
    """Which scenarios a list keeps: those every given filter holds for. `tag`: one of its
    tags; `q`: a text in its name or description, in any case; `groups`: only scenarios
    of one of these groups (none: of any)."""

    status: str | None = None
    tag: str | None = None
    group: str | None = None
    q: str | None = None
    groups: tuple[str, ...] = ()

    def keeps(self, record: ScenarioRecord) -> bool:
        """Whether the list keeps the scenario (an empty filter is no filter). A draft's
        tags may be anything: a tag is one of a list, or a part of a text."""
        group, tags = record.document.get("group"), record.tags
        return (
            (not self.groups or group in self.groups)
            and (not self.status or record.status == self.status)
            and (not self.tag or (isinstance(tags, list | str) and self.tag in tags))
            and (not self.group or group == self.group)
            and (not self.q or self.q.lower() in record.search)
        )


@dataclass(frozen=True)
class VersionRecord:
    """A saved version of a scenario (versions never change)."""

    scenario_id: str
    version: int
    document: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ScheduleEntry:
    """A schedule trigger of an active scenario: when it last ran (or was listed) and
    when it runs next (None: never)."""

    scenario_id: str
    trigger_id: str
    last_run: datetime
    next_run: datetime | None


@dataclass(frozen=True)
class TriggerIndex:
    """Where a scenario version is listed: the event types of its event triggers, whether
    it has an experiment node, and its schedule triggers' entries; and the event types
    its journeys listen to (`listens`: kept once listed, for every later version too)."""

    scenario_id: str
    event_types: tuple[str, ...] = ()
    experiment: bool = False
    schedules: tuple[ScheduleEntry, ...] = ()
    listens: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScenarioChange:
    """One lifecycle change: the metadata as it becomes, expecting it still is as read
    (`seen`, its `updated_at`; None: there is no scenario of that id yet); a new
    `version` (never one that exists); the index entries of `listed` in place of
    those of `unlisted` (an entry of both is written anew)."""

    record: ScenarioRecord
    seen: datetime | None
    version: VersionRecord | None = None
    listed: TriggerIndex | None = None
    unlisted: TriggerIndex | None = None


@dataclass(frozen=True)
class AtNode:
    """An active instance at a node, as the real-time view shows it."""

    instance_id: str
    profile_id: str
    entered_at: datetime | None
    wake_at: datetime | None
