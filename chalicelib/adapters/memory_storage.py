"""The storage and queue ports in memory: for the use cases' unit tests and for benches
that measure logic rather than AWS.

`MemoryStorage` keeps the records themselves and commits as the DynamoDB adapter does:
every expectation of a commit is checked before anything is applied, all under one
lock, and a failed one raises `Conflict` with nothing written. `MemoryQueues` keeps
what was sent, queue by queue, for the test to deliver.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from chalicelib.engine.compiled import CompiledScenario, WindowLimit
from chalicelib.engine.interpreter import ANY_EVENT, listened_types
from chalicelib.engine.state import Instance
from chalicelib.runtime.commit import epoch
from chalicelib.runtime.messages import QueueMessage
from chalicelib.runtime.pacing import next_slot
from chalicelib.runtime.storage import (
    EVENT_LIMIT,
    AbandonTimer,
    AtNode,
    CaptureGuard,
    CartStage,
    Changes,
    Conflict,
    DayCounters,
    EventTimer,
    ExperimentDecision,
    HistoryMark,
    ListLine,
    Merged,
    MergeRecord,
    MessageMove,
    MessageRow,
    OutboxRow,
    PendingRow,
    PriceChange,
    ProductView,
    ProfileContention,
    ProfileCreate,
    ProfileRecord,
    ProfileState,
    ProfileUpdate,
    ReadAhead,
    ReadAheadFound,
    ScenarioChange,
    ScenarioFilter,
    ScenarioMeta,
    ScenarioRecord,
    ScheduleEntry,
    SessionTimer,
    SignalSettings,
    StatusWrite,
    StoredInstance,
    StoredOrder,
    StoredProduct,
    StoredSession,
    Timer,
    UnknownToken,
    VersionCounters,
    VersionRecord,
    Watch,
    merged_fields,
)
from chalicelib.scenarios.facts import Event, Message, Profile
from chalicelib.scenarios.model import EventTrigger, ExperimentNode, Segment

MESSAGE_LIMIT = 200  # as the DynamoDB adapter: the newest messages of a profile


@dataclass
class _Row:
    row: OutboxRow
    dispatch_at: int | None  # None once consumed (or never pending)


@dataclass
class _Profile:
    fields: dict[str, Any] | None = None  # None: no profile item (only history)
    events: dict[tuple[datetime, str], Event] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    segments: tuple[str, ...] = ()  # segment membership
    created_at: str | None = None
    updated_at: str | None = None
    invalid: dict[str, str] = field(default_factory=dict)  # channel → a hard-bounced address
    # --- orders ---
    orders: dict[str, StoredOrder] = field(default_factory=dict)
    ordered: dict[str, datetime] = field(default_factory=dict)  # product → last order
    session: StoredSession | None = None
    session_ends: datetime | None = None  # the open session's timer


class MemoryStorage:
    """`Storage` in memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.metas: dict[str, ScenarioMeta] = {}
        self.versions: dict[tuple[str, int], CompiledScenario] = {}
        self.listening: dict[str, set[str]] = defaultdict(set)  # event type → scenarios
        self.listeners_done = True  # a new store's scenarios are all listed: it has none
        self.triggers_done = True  # and their triggers
        self.profiles: dict[tuple[str, str], _Profile] = defaultdict(_Profile)
        self.instances: dict[str, StoredInstance] = {}
        self.until: dict[str, datetime | None] = {}  # an instance's `InstanceWrite.until`
        self.guards: dict[tuple[str, str, str], CaptureGuard] = {}
        self.timers: dict[str, Timer] = {}
        self.rows: dict[str, _Row] = {}
        self.stats: dict[tuple[str, int, str], Counter[str]] = defaultdict(Counter)
        # --- commerce ---
        self.products: dict[str, StoredProduct] = {}
        # per profile and list: product id → its line, or the moment it was taken off
        self.lines: dict[tuple[str, str, str], dict[str, ListLine | datetime]] = defaultdict(dict)
        self.product_views: dict[tuple[str, str], dict[str, ProductView]] = defaultdict(dict)
        self.cart_stages: dict[tuple[str, str], CartStage] = {}
        self.signals: SignalSettings = SignalSettings()
        self.abandon_timers: dict[tuple[str, str, str | None], AbandonTimer] = {}
        self.price_pending: dict[str, PriceChange] = {}
        self.price_checked: datetime | None = None
        self.codes: dict[str, list[str]] = {}
        self.taken: dict[str, str] = {}
        self.issued: set[tuple[str, str]] = set()  # (pool, code) taken
        self.redeemed: dict[tuple[str, str], tuple[str, str]] = {}
        self.queued_events: set[str] = set()
        self.reads: Counter[str] = Counter()  # calls by method, for tests that count them
        # --- sending discipline ---
        self.entries: Counter[tuple[str, datetime]] = Counter()  # per scenario and window
        self.send_slots: dict[str, datetime] = {}  # per scenario: when its next token is there
        self.firsts: dict[tuple[str, int], dict[str, datetime]] = {}
        self.control: float = 0.0
        self.stored_decisions: dict[tuple[str, int, str], ExperimentDecision] = {}
        # --- once-only records ---
        self.once: dict[str, datetime] = {}  # key → when it was written
        # --- segment membership ---
        self.segment_definitions: dict[str, dict[str, Any]] = {}
        self.membership_run: str | None = None  # the latest started
        # --- merges ---
        self.aliases: dict[tuple[str, str], str] = {}  # (database, merged id) -> into
        self.merges: dict[str, MergeRecord] = {}
        # --- loyalty ---
        self.event_timers: dict[str, EventTimer] = {}

    # --- what tests set up ---------------------------------------------------------------

    def put_scenario(self, scenario: CompiledScenario, status: str = "active") -> None:
        """A scenario at this version, with its trigger index."""
        with self._lock:
            self.versions[(scenario.scenario_id, scenario.version)] = scenario
            self.metas[scenario.scenario_id] = ScenarioMeta(
                scenario.scenario_id, status, scenario.version
            )
        self.add_listeners(scenario.scenario_id, listened_types(scenario))

    def put_profile(self, profile_db: str, profile_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self.profiles[(profile_db, profile_id)].fields = copy.deepcopy(fields)

    # --- scenarios -----------------------------------------------------------------------

    def scenario(self, scenario_id: str) -> ScenarioMeta | None:
        self.reads["scenario"] += 1
        return self.metas.get(scenario_id)

    def version(self, scenario_id: str, version: int) -> CompiledScenario:
        found = self.versions.get((scenario_id, version))
        if found is None:
            raise LookupError(f"scenario {scenario_id} has no version {version}")
        return found

    def listened(self, event_type: str) -> bool:
        self.reads["listened"] += 1
        return self._listened(event_type)

    def _listened(self, event_type: str) -> bool:
        with self._lock:
            heard = self.listening.get(event_type) or self.listening.get(ANY_EVENT)
            return not self.listeners_done or bool(heard)

    def scenarios_for_event(self, event_type: str) -> list[str]:
        self.reads["scenarios_for_event"] += 1
        return self._triggered(event_type)

    def _triggered(self, event_type: str) -> list[str]:
        return sorted(
            meta.scenario_id
            for meta in self.metas.values()
            if meta.active
            and any(
                isinstance(t, EventTrigger) and t.event == event_type
                for t in self.versions[(meta.scenario_id, meta.version)].triggers.values()
            )
        )

    # --- profiles ------------------------------------------------------------------------

    def profile_item(self, profile_db: str, profile_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._item(profile_db, profile_id)

    def profile_items(self, profile_db: str, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            found = {profile_id: self._item(profile_db, profile_id) for profile_id in profile_ids}
        return {profile_id: item for profile_id, item in found.items() if item is not None}

    def _item(self, profile_db: str, profile_id: str) -> dict[str, Any] | None:
        stored = self.profiles.get((profile_db, profile_id))
        merged_into = self.aliases.get((profile_db, profile_id))
        if merged_into is not None:
            return {"profile_id": profile_id, "merged_into": merged_into}
        if stored is None or stored.fields is None:
            return None
        item = {
            "profile_db": profile_db, "profile_id": profile_id,
            "fields": copy.deepcopy(stored.fields),
            "created_at": stored.created_at, "updated_at": stored.updated_at,
        }  # fmt: skip
        if stored.invalid:
            item["invalid"] = dict(stored.invalid)
        return item

    def merge_profile(
        self, profile_db: str, profile_id: str, fields: dict[str, Any], stamp: str,
        exists: bool = True,
    ) -> Merged:  # fmt: skip
        with self._lock:
            if (profile_db, profile_id) in self.aliases:  # no fields to merge into, and taken
                raise ProfileContention(f"profile {profile_id!r} of {profile_db!r} was merged")
            before = self._item(profile_db, profile_id)
            stored = self.profiles[(profile_db, profile_id)]
            stored.fields = merged_fields(stored.fields, copy.deepcopy(fields))
            stored.created_at = stored.created_at or stamp
            stored.updated_at = stamp
            after = self._item(profile_db, profile_id)
        assert after is not None
        return Merged(before, after)

    def set_profile_consent(
        self, profile_db: str, profile_id: str, channel: str, granted: bool, stamp: str
    ) -> Merged | None:
        with self._lock:
            before = self._item(profile_db, profile_id)
            stored = self.profiles.get((profile_db, profile_id))
            if before is None or stored is None or stored.fields is None:
                return None
            consents = stored.fields.get("consents")
            consents = consents if isinstance(consents, dict) else {}
            stored.fields["consents"] = {**consents, channel: granted}
            stored.updated_at = stamp
            after = self._item(profile_db, profile_id)
        assert after is not None
        return Merged(before, after)

    def mark_address_invalid(
        self, profile_db: str, profile_id: str, channel: str, address: str
    ) -> None:
        with self._lock:
            stored = self.profiles.get((profile_db, profile_id))
            if stored is not None and stored.fields is not None:
                stored.invalid[channel] = address

    def profile(self, profile_db: str, profile_id: str, history: bool = True) -> ProfileRecord:
        self.reads["profile" if history else "profile fields"] += 1
        return self._profile(profile_db, profile_id, history)

    def _profile(self, profile_db: str, profile_id: str, history: bool) -> ProfileRecord:
        with self._lock:
            stored = self.profiles.get((profile_db, profile_id)) or _Profile()
            events, messages = [], []
            if history:
                events = [stored.events[key] for key in sorted(stored.events)][-EVENT_LIMIT:]
                messages = sorted(stored.messages.values(), key=lambda m: (m.at, m.message_id))
            fields = copy.deepcopy(stored.fields or {})
            merged_into = self.aliases.get((profile_db, profile_id))
        view = Profile(profile_id, fields, events, messages[-MESSAGE_LIMIT:], profile_db)
        view.invalid = dict(stored.invalid)
        return ProfileRecord(
            view,
            stored.fields is not None,
            isinstance(fields.get("consents"), dict),
            stored.segments,
            merged_into,
            history,
        )

    def record_event(self, profile_db: str, profile_id: str, event: Event) -> None:
        self.record_events([(profile_db, profile_id, event)])

    def record_events(self, events: list[tuple[str, str, Event]]) -> None:
        with self._lock:
            for profile_db, profile_id, event in events:
                history = self.profiles[(profile_db, profile_id)].events
                history[(event.occurred_at, event.id or "")] = event

    # --- instances -----------------------------------------------------------------------

    def instance(self, instance_id: str) -> StoredInstance | None:
        self.reads["instance"] += 1
        with self._lock:
            return copy.deepcopy(self.instances.get(instance_id))

    def read_ahead(self, wanted: ReadAhead) -> ReadAheadFound:
        self.reads["read_ahead"] += 1
        with self._lock:
            instances = {
                instance_id: copy.deepcopy(self.instances[instance_id])
                for instance_id in wanted.instances
                if instance_id in self.instances
            }
            return ReadAheadFound(
                instances,
                {s: self.metas.get(s) for s in wanted.scenarios},
                {profile: self._profile(*profile, history=False) for profile in wanted.profiles},
                self._aliases_among(list(wanted.aliases)),
                {t: self._listened(t) for t in wanted.event_types},
                {t: self._triggered(t) for t in wanted.event_types} if self.triggers_done else None,
                {guard: self.guards.get(guard) for guard in wanted.guards},
                self.control if wanted.control else None,
            )

    def instances_of_profile(
        self,
        profile_db: str,
        profile_id: str,
        scenario_id: str | None = None,
        since: datetime | None = None,
    ) -> list[StoredInstance]:
        self.reads["instances_of_profile"] += 1
        with self._lock:
            return [
                copy.deepcopy(stored)
                for stored in self.instances.values()
                if (stored.instance.profile_db, stored.instance.profile_id)
                == (profile_db, profile_id)
                and scenario_id in (None, stored.instance.scenario_id)
                and (since is None or self._matters(stored.instance, since))
            ]

    def _matters(self, instance: Instance, since: datetime) -> bool:
        """Active, or its `until` (its end without one) not before `since`."""
        if instance.active:
            return True
        ends = (self.until.get(instance.instance_id), instance.ended_at, instance.entered_at)
        return max(moment for moment in ends if moment is not None) >= since

    def capture_guard(
        self, profile_db: str, profile_id: str, scenario_id: str
    ) -> CaptureGuard | None:
        self.reads["capture_guard"] += 1
        return self.guards.get((profile_db, profile_id, scenario_id))

    # --- commit --------------------------------------------------------------------------

    def commit(self, changes: Changes) -> None:
        with self._lock:
            self._check(changes)
            self._apply(copy.deepcopy(changes))

    def _check(self, changes: Changes) -> None:
        for write in changes.instances:
            current = self.instances.get(write.stored.instance.instance_id)
            if (current.rev if current else None) != write.rev:
                raise Conflict(f"instance {write.stored.instance.instance_id} changed")
        for row in changes.rows:
            if row.row_id in self.rows:
                raise Conflict(f"outbox row {row.row_id} exists")
        for change in changes.profiles:
            fields = self.profiles[(change.profile_db, change.profile_id)].fields
            if isinstance(change, ProfileCreate) and fields is not None:
                raise Conflict(f"profile {change.profile_id} exists")
            if isinstance(change, ProfileUpdate):
                if fields is None:
                    raise Conflict(f"profile {change.profile_id} is gone")
                if change.consents and change.has_consents != isinstance(
                    fields.get("consents"), dict
                ):
                    raise Conflict(f"profile {change.profile_id}'s consents changed")
        for guard in changes.guards:
            found = self.guards.get((guard.profile_db, guard.profile_id, guard.scenario_id))
            if (found.captures if found else None) != guard.expected:
                raise Conflict(f"another capture into {guard.scenario_id} came first")
        for count in changes.entries:
            if self.entries[(count.scenario_id, count.window[0])] >= count.max:
                raise Conflict(f"the entry limit of {count.scenario_id} is reached")
        for once in changes.once:
            if once.key in self.once:
                raise Conflict(f"{once.key} was written before")
        created = {
            (c.profile_db, c.profile_id) for c in changes.profiles if isinstance(c, ProfileCreate)
        }
        for membership in changes.memberships:
            key = (membership.profile_db, membership.profile_id)
            stored = self.profiles.get(key)
            if key not in created and (stored is None or stored.fields is None):
                raise Conflict(f"profile {membership.profile_id} is gone")
            if key not in created and stored is not None and stored.segments != membership.was:
                raise Conflict(f"profile {membership.profile_id}'s segments changed")
        self._check_orders(changes)

    def _apply(self, changes: Changes) -> None:
        for write in changes.instances:
            self.instances[write.stored.instance.instance_id] = write.stored
            self.until[write.stored.instance.instance_id] = write.until
        for timer in changes.timers:
            self.timers[timer.instance_id] = timer
        for instance_id in changes.timers_gone:
            self.timers.pop(instance_id, None)
        for row in changes.rows:
            self._keep(row)
        for sent in changes.history:
            message = Message(
                sent.message_id, sent.scenario_id, sent.node, sent.channel, sent.at,
                {"sent": sent.at}, sent.instance_id,
            )  # fmt: skip
            self.profiles[(sent.profile_db, sent.profile_id)].messages[sent.message_id] = message
        for change in changes.profiles:
            stored = self.profiles[(change.profile_db, change.profile_id)]
            if isinstance(change, ProfileCreate):
                stored.fields = change.fields
                continue
            fields = stored.fields if stored.fields is not None else {}
            fields.update(change.set_fields)
            for name, amount in change.add.items():
                fields[name] = fields.get(name, 0) + amount
            for name in change.remove:
                fields.pop(name, None)
            if change.consents:
                consents = fields.get("consents")
                fields["consents"] = {
                    **(consents if isinstance(consents, dict) else {}),
                    **change.consents,
                }
        for guard in changes.guards:
            self.guards[guard.key] = guard.written()
        for delta in changes.stats:
            self.stats[(delta.scenario_id, delta.version, delta.day)].update(delta.counters)
            firsts = self.firsts.setdefault((delta.scenario_id, delta.version), {})
            for name, at in delta.firsts.items():
                firsts[name] = min(at, firsts.get(name, at))
        for count in changes.entries:
            self.entries[(count.scenario_id, count.window[0])] += 1
        for once in changes.once:
            self.once[once.key] = once.at
        for membership in changes.memberships:
            self.profiles[
                (membership.profile_db, membership.profile_id)
            ].segments = membership.members
        self._apply_orders(changes)

    def _keep(self, row: OutboxRow) -> None:
        pending = row.dispatch
        self.rows[row.row_id] = _Row(row, int(pending.dispatch_at.timestamp()) if pending else None)

    # --- timers and the outbox -----------------------------------------------------------

    def due_timers(self, now: datetime) -> Iterator[Timer | EventTimer]:
        with self._lock:
            due: list[tuple[datetime, Timer | EventTimer]] = [
                (timer.wake_at, timer) for timer in self.timers.values() if timer.wake_at <= now
            ]
            due.extend(
                (timer.due_at, timer) for timer in self.event_timers.values()
                if timer.due_at <= now
            )  # fmt: skip
        yield from (timer for _, timer in sorted(due, key=lambda pair: pair[0]))

    def forget_timer(self, instance_id: str, step: int) -> None:
        with self._lock:
            timer = self.timers.get(instance_id)
            if timer is not None and timer.step == step:
                del self.timers[instance_id]

    def overdue_rows(self, now: datetime) -> Iterator[PendingRow]:
        with self._lock:
            overdue = [
                kept for kept in self.rows.values()
                if kept.dispatch_at is not None and kept.dispatch_at <= now.timestamp()
            ]  # fmt: skip
        for kept in overdue:
            dispatch = kept.row.dispatch
            assert dispatch is not None
            assert kept.dispatch_at is not None
            yield PendingRow(kept.row.row_id, dispatch.queue, dispatch.message, kept.dispatch_at)

    def postpone_row(self, row: PendingRow, until: datetime) -> bool:
        with self._lock:
            kept = self.rows.get(row.row_id)
            if kept is None or kept.dispatch_at != row.dispatch_at:
                return False
            kept.dispatch_at = int(until.timestamp())
            return True

    def consume_rows(self, row_ids: list[str]) -> None:
        with self._lock:
            for row_id in row_ids:
                self.rows.pop(row_id, None)

    def keep_pending(self, rows: list[OutboxRow]) -> None:
        with self._lock:
            for row in rows:
                self._keep(row)

    # --- promo codes and event ids -------------------------------------------------------

    def add_codes(self, pool: str, codes: list[str]) -> int:
        with self._lock:
            available = self.codes.setdefault(pool, [])
            held = {*available, *(code for taken_pool, code in self.issued if taken_pool == pool)}
            fresh = sorted(set(codes) - held)
            available.extend(fresh)
            return len(fresh)

    def codes_left(self, pool: str) -> int:
        return len(self.codes.get(pool) or [])

    def pool_exists(self, pool: str) -> bool:
        return pool in self.codes

    def take_code(self, pool: str, request_id: str, at: datetime) -> str | None:
        with self._lock:
            if request_id in self.taken:
                return self.taken[request_id]
            available = self.codes.get(pool) or []
            if not available:
                return None
            self.taken[request_id] = available.pop(0)
            self.issued.add((pool, self.taken[request_id]))
            return self.taken[request_id]

    def redeem_code(
        self, pool: str, code: str, profile_db: str, profile_id: str, at: datetime
    ) -> str:
        with self._lock:
            key = (pool, code)
            if key in self.redeemed:
                return "repeated" if self.redeemed[key] == (profile_db, profile_id) else "again"
            available = self.codes.get(pool) or []
            if code in available:
                available.remove(code)
            elif key not in self.issued:
                return "unknown"
            self.redeemed[key] = (profile_db, profile_id)
            return "redeemed"

    def events_seen(self, event_ids: list[str]) -> set[str]:
        return set(event_ids) & self.queued_events

    def mark_events_queued(self, event_ids: list[str], at: datetime) -> None:
        with self._lock:
            self.queued_events.update(event_ids)

    # --- sending discipline ---

    def entries_in_window(self, scenario_id: str, window: tuple[datetime, datetime]) -> int:
        self.reads["entries_in_window"] += 1
        with self._lock:
            return self.entries[(scenario_id, window[0])]

    def take_send_slot(self, scenario_id: str, limit: WindowLimit, now: datetime) -> datetime:
        with self._lock:
            leave, self.send_slots[scenario_id] = next_slot(
                self.send_slots.get(scenario_id), now, limit
            )
            return leave

    # --- measurement ---------------------------------------------------------------------

    def control_percent(self) -> float:
        self.reads["control_percent"] += 1
        return self.control

    def set_control_percent(self, percent: float, at: datetime) -> None:
        self.control = percent

    def experiment_scenarios(self) -> list[str]:
        return sorted(
            meta.scenario_id
            for meta in self.metas.values()
            if meta.active
            and any(
                isinstance(node, ExperimentNode)
                for node in self.versions[(meta.scenario_id, meta.version)].nodes.values()
            )
        )

    def decisions(self, scenario_id: str, version: int) -> dict[str, ExperimentDecision]:
        self.reads["decisions"] += 1
        with self._lock:
            return {
                node: decision
                for (sid, number, node), decision in self.stored_decisions.items()
                if (sid, number) == (scenario_id, version)
            }

    def put_decision(self, decision: ExperimentDecision) -> None:
        with self._lock:
            key = (decision.scenario_id, decision.version, decision.node)
            self.stored_decisions[key] = decision

    def version_counters(self, scenario_id: str, version: int) -> VersionCounters:
        with self._lock:
            counts: Counter[str] = Counter()
            for (sid, number, _), counters in self.stats.items():
                if (sid, number) == (scenario_id, version):
                    counts.update(counters)
            return VersionCounters(dict(counts), dict(self.firsts.get((scenario_id, version), {})))

    def day_counters(self, scenario_id: str, version: int | None = None) -> list[DayCounters]:
        with self._lock:
            return [
                DayCounters(number, date.fromisoformat(day), dict(counters))
                for (sid, number, day), counters in sorted(self.stats.items())
                if sid == scenario_id and version in (None, number)
            ]

    # --- once-only records ---------------------------------------------------------------

    def once_done(self, key: str) -> bool:
        return key in self.once

    def forget_once(self, key: str) -> None:
        with self._lock:
            self.once.pop(key, None)

    # --- what the API reads --------------------------------------------------------------

    def version_document(self, scenario_id: str, version: int) -> dict[str, Any] | None:
        saved = self._lifecycle.versions.get((scenario_id, version))
        if saved is not None:  # as the lifecycle saved it
            return copy.deepcopy(saved.document)
        found = self.versions.get((scenario_id, version))
        return found.model.model_dump(mode="json", exclude_none=True) if found else None

    def count_active(self, scenario_id: str) -> int:
        with self._lock:
            return sum(
                1
                for stored in self.instances.values()
                if stored.instance.scenario_id == scenario_id and stored.instance.active
            )

    def messages_between(
        self, profile_db: str, profile_id: str, start: datetime, end: datetime
    ) -> list[Message]:
        with self._lock:
            stored = self.profiles.get((profile_db, profile_id)) or _Profile()
            found = [m for m in stored.messages.values() if start <= m.at <= end]
        return sorted(found, key=lambda m: (m.at, m.message_id), reverse=True)

    def message_version(self, message_id: str) -> int | None:
        with self._lock:
            found = self.rows.get(message_id)
        instance = found.row.instance if found else None
        return instance.version if instance else None

    # --- segment membership ---

    def defined_segments(self) -> dict[str, Segment]:
        self.reads["defined_segments"] += 1
        with self._lock:
            return {
                segment_id: Segment.model_validate(definition)
                for segment_id, definition in self.segment_definitions.items()
            }

    def define_segment(self, segment_id: str, definition: dict[str, Any]) -> None:
        with self._lock:
            self.segment_definitions[segment_id] = copy.deepcopy(definition)

    def delete_segment(self, segment_id: str) -> bool:
        with self._lock:
            return self.segment_definitions.pop(segment_id, None) is not None

    def scan_profiles(self, part: int, parts: int) -> Iterator[ProfileRecord]:
        with self._lock:  # a Scan reads the profile items, not their history
            found = [
                ProfileRecord(
                    Profile(profile_id, copy.deepcopy(stored.fields), profile_db=profile_db),
                    True,
                    isinstance(stored.fields.get("consents"), dict),
                    stored.segments,
                    history=False,
                )
                for (profile_db, profile_id), stored in sorted(self.profiles.items())
                if stored.fields is not None
            ]
        return iter(found[part::parts])

    def membership_run_done(self, run: str) -> bool:
        return self.membership_run == run

    def mark_membership_run(self, run: str, at: datetime) -> None:
        self.membership_run = run

    # --- merges --------------------------------------------------------------------------

    def merged_into(self, profile_db: str, profile_id: str) -> str | None:
        self.reads["merged_into"] += 1
        return self.aliases.get((profile_db, profile_id))

    def _aliases_among(self, profiles: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        with self._lock:
            return {key: self.aliases[key] for key in profiles if key in self.aliases}

    def profile_state(self, profile_db: str, profile_id: str) -> ProfileState:
        with self._lock:
            key = (profile_db, profile_id)
            stored = self.profiles.get(key) or _Profile()
            guards = any(guard[:2] == key for guard in self.guards)
            return ProfileState(
                stored.fields is not None,
                bool(stored.events or stored.messages or guards),
                self.aliases.get(key),
            )

    def begin_merge(self, record: MergeRecord, row: OutboxRow) -> MergeRecord:
        with self._lock:
            if record.merge_id not in self.merges:
                self.merges[record.merge_id] = record
                self._keep(row)
            return self.merges[record.merge_id]

    def merge_record(self, merge_id: str) -> MergeRecord | None:
        return self.merges.get(merge_id)

    def finish_merge(self, merge_id: str) -> None:
        with self._lock:
            self.merges[merge_id] = dataclasses.replace(self.merges[merge_id], done=True)

    def alias_profile(self, profile_db: str, from_id: str, into: str) -> None:
        with self._lock:
            if (profile_db, into) in self.aliases or (profile_db, into) not in self.profiles:
                raise Conflict(f"profile {into} is merged into another, or there is none")
            if self.aliases.get((profile_db, from_id), into) != into:
                raise Conflict(f"profile {from_id} is merged into another")
            self.aliases[(profile_db, from_id)] = into

    def fold_profile(self, profile_db: str, from_id: str, into: str) -> None:
        with self._lock:
            source = self.profiles[(profile_db, from_id)]
            target = self.profiles[(profile_db, into)]
            if source.fields is None:
                return
            fields = target.fields if target.fields is not None else {}
            for name, value in source.fields.items():
                kept = fields.get(name)
                if name == "consents" and isinstance(kept, dict) and isinstance(value, dict):
                    fields[name] = {**value, **kept}
                else:
                    fields.setdefault(name, value)
            target.fields, source.fields = fields, None

    def move_profile_rows(self, profile_db: str, from_id: str, into: str) -> None:
        with self._lock:
            source = self.profiles[(profile_db, from_id)]
            target = self.profiles[(profile_db, into)]
            for at, event in source.events.items():
                target.events.setdefault(at, event)
            for message_id, message in source.messages.items():
                target.messages.setdefault(message_id, message)
            source.events, source.messages = {}, {}
            for order_id, order in source.orders.items():
                target.orders.setdefault(order_id, order)
            for product_id, at in source.ordered.items():
                target.ordered.setdefault(product_id, at)
            source.orders, source.ordered = {}, {}
            for list_key in [key for key in self.lines if key[:2] == (profile_db, from_id)]:
                kept_lines = self.lines[(profile_db, into, list_key[2])]
                for product_id, line in self.lines.pop(list_key).items():
                    kept_lines.setdefault(product_id, line)
            for product_id, view in self.product_views.pop((profile_db, from_id), {}).items():
                self.product_views[(profile_db, into)].setdefault(product_id, view)
            stage = self.cart_stages.pop((profile_db, from_id), None)
            if stage is not None:
                self.cart_stages.setdefault((profile_db, into), stage)
            for key in [key for key in self.guards if key[:2] == (profile_db, from_id)]:
                self.guards.setdefault((profile_db, into, key[2]), self.guards.pop(key))
            for kept in self.rows.values():
                row = kept.row
                if row.kind == "message" and (row.profile_db, row.profile_id) == (
                    profile_db, from_id,
                ):  # fmt: skip
                    kept.row = dataclasses.replace(row, profile_id=into)

    # --- loyalty ---
    def set_event_timer(self, timer: EventTimer) -> None:
        with self._lock:
            self.event_timers[timer.timer_id] = timer

    def forget_event_timer(self, timer_id: str) -> None:
        with self._lock:
            self.event_timers.pop(timer_id, None)

    # --- orders --------------------------------------------------------------------------

    def order(self, profile_db: str, profile_id: str, order_id: str) -> StoredOrder | None:
        with self._lock:
            return copy.deepcopy(self.profiles[(profile_db, profile_id)].orders.get(order_id))

    def last_ordered_at(self, profile_db: str, profile_id: str, product_id: str) -> datetime | None:
        with self._lock:
            return self.profiles[(profile_db, profile_id)].ordered.get(product_id)

    def _check_orders(self, changes: Changes) -> None:
        for write in changes.orders:
            order_id = write.stored.state.order_id
            current = self.profiles[(write.profile_db, write.profile_id)].orders.get(order_id)
            if (current.rev if current else None) != write.rev:
                raise Conflict(f"order {order_id} changed")
        for ordered in changes.ordered:
            kept = self.profiles[(ordered.profile_db, ordered.profile_id)].ordered
            if kept.get(ordered.product_id, ordered.at) > ordered.at:
                raise Conflict(f"a later order of {ordered.product_id} is kept")
        for write in changes.sessions:
            current = self.profiles[(write.profile_db, write.profile_id)].session
            if (current.rev if current else None) != write.rev:
                raise Conflict(f"the session of {write.profile_id} changed")

    def _apply_orders(self, changes: Changes) -> None:
        for write in changes.orders:
            stored = self.profiles[(write.profile_db, write.profile_id)]
            stored.orders[write.stored.state.order_id] = write.stored
        for ordered in changes.ordered:
            kept = self.profiles[(ordered.profile_db, ordered.profile_id)].ordered
            kept[ordered.product_id] = ordered.at
        for write in changes.sessions:
            stored = self.profiles[(write.profile_db, write.profile_id)]
            stored.session, stored.session_ends = write.stored, write.ends_at

    def session(self, profile_db: str, profile_id: str) -> StoredSession | None:
        with self._lock:
            return copy.deepcopy(self.profiles[(profile_db, profile_id)].session)

    def due_sessions(self, now: datetime) -> Iterator[SessionTimer]:
        with self._lock:
            due = [
                SessionTimer(db, profile_id, kept.session_ends)
                for (db, profile_id), kept in self.profiles.items()
                if kept.session_ends is not None and kept.session_ends <= now
            ]
        yield from sorted(due, key=lambda timer: timer.wake_at)

    # --- commerce ------------------------------------------------------------------------

    def product(self, product_id: str) -> StoredProduct | None:
        with self._lock:
            return copy.deepcopy(self.products.get(product_id))

    def put_product(self, product: StoredProduct, fan_out: OutboxRow | None = None) -> None:
        with self._lock:
            stored = self.products.get(product.product_id)
            if (stored.version if stored else 0) != product.version - 1:
                raise Conflict(f"product {product.product_id} changed")
            if fan_out is not None and fan_out.row_id in self.rows:
                raise Conflict(f"outbox row {fan_out.row_id} exists")
            self.products[product.product_id] = copy.deepcopy(product)
            if fan_out is not None:
                self._keep(fan_out)

    def list_lines(self, profile_db: str, profile_id: str, list_name: str) -> list[ListLine]:
        with self._lock:
            kept = self.lines[(profile_db, profile_id, list_name)]
            return [line for _, line in sorted(kept.items()) if isinstance(line, ListLine)]

    def put_line(self, profile_db: str, profile_id: str, list_name: str, line: ListLine) -> bool:
        with self._lock:
            kept = self.lines[(profile_db, profile_id, list_name)]
            current = kept.get(line.product_id)
            changed = _changed_at(current)
            if changed is not None and changed > line.at:
                return False
            if isinstance(current, ListLine):
                line = replace(line, price=current.price, added_at=current.added_at)
            kept[line.product_id] = line
            return True

    def remove_line(
        self, profile_db: str, profile_id: str, list_name: str, product_id: str, at: datetime
    ) -> bool:
        with self._lock:
            kept = self.lines[(profile_db, profile_id, list_name)]
            changed = _changed_at(kept.get(product_id))
            if changed is not None and changed > at:
                return False
            kept[product_id] = at
            return True

    def record_view(self, profile_db: str, profile_id: str, view: ProductView) -> bool:
        with self._lock:
            kept = self.product_views[(profile_db, profile_id)]
            current = kept.get(view.product_id)
            if current is not None and current.viewed_at > view.viewed_at:
                return False
            kept[view.product_id] = view
            return True

    def views(self, profile_db: str, profile_id: str) -> list[ProductView]:
        with self._lock:
            kept = self.product_views[(profile_db, profile_id)]
            return [kept[product_id] for product_id in sorted(kept)]

    def cart_stage(self, profile_db: str, profile_id: str) -> CartStage | None:
        with self._lock:
            return self.cart_stages.get((profile_db, profile_id))

    def set_cart_stage(self, profile_db: str, profile_id: str, stage: CartStage) -> bool:
        with self._lock:
            current = self.cart_stages.get((profile_db, profile_id))
            if current is not None and current.at > stage.at:
                return False
            self.cart_stages[(profile_db, profile_id)] = stage
            return True

    def watchers(
        self, product_id: str, limit: int, token: str | None = None
    ) -> tuple[list[Watch], str | None]:
        with self._lock:
            found = [
                Watch(db, pid, product_id, list_name, line.price, line.added_at)
                for (db, pid, list_name), kept in self.lines.items()
                if isinstance(line := kept.get(product_id), ListLine)
            ] + [
                Watch(db, pid, product_id, "viewed", view.price, view.viewed_at)
                for (db, pid), kept in self.product_views.items()
                if (view := kept.get(product_id)) is not None
            ]
        found.sort(key=lambda w: (w.profile_db, w.profile_id, w.source))
        start = int(token or 0)
        end = start + limit
        return found[start:end], str(end) if end < len(found) else None

    def signal_settings(self) -> SignalSettings:
        return self.signals

    def set_signal_settings(self, signals: SignalSettings, at: datetime) -> None:
        self.signals = signals

    def mark_price_change(self, product_id: str, before: dict[str, Any], version: int) -> None:
        with self._lock:
            kept = self.price_pending.get(product_id)
            base = kept.base if kept else copy.deepcopy(before)
            self.price_pending[product_id] = PriceChange(product_id, base, version)

    def price_changes(self) -> Iterator[PriceChange]:
        with self._lock:
            pending = sorted(self.price_pending.values(), key=lambda change: change.product_id)
        yield from copy.deepcopy(pending)

    def settle_price_change(self, product_id: str, version: int, checked: dict[str, Any]) -> None:
        with self._lock:
            kept = self.price_pending.get(product_id)
            if kept is None:
                return
            if kept.version == version:
                del self.price_pending[product_id]
            else:
                self.price_pending[product_id] = replace(kept, base=copy.deepcopy(checked))

    def last_price_check(self) -> datetime | None:
        return self.price_checked

    def mark_price_check(self, moment: datetime) -> None:
        with self._lock:
            if self.price_checked is None or self.price_checked < moment:
                self.price_checked = moment

    def abandon_timer(
        self, profile_db: str, profile_id: str, product_id: str | None
    ) -> AbandonTimer | None:
        with self._lock:
            return self.abandon_timers.get((profile_db, profile_id, product_id))

    def set_abandon_timer(self, timer: AbandonTimer) -> bool:
        key = (timer.profile_db, timer.profile_id, timer.product_id)
        with self._lock:
            kept = self.abandon_timers.get(key)
            if kept is not None and kept.changed_at >= timer.changed_at:
                return False
            self.abandon_timers[key] = timer
            return True

    def due_abandon_timers(self, now: datetime) -> Iterator[AbandonTimer]:
        with self._lock:
            due = [
                timer for timer in self.abandon_timers.values()
                if timer.due_at is not None and timer.due_at <= now
            ]  # fmt: skip
        yield from sorted(due, key=lambda timer: timer.due_at or now)

    def disarm_abandon_timer(self, timer: AbandonTimer) -> None:
        key = (timer.profile_db, timer.profile_id, timer.product_id)
        with self._lock:
            kept = self.abandon_timers.get(key)
            if kept is not None and kept.changed_at == timer.changed_at:
                self.abandon_timers[key] = replace(kept, due_at=None)

    # --- messages on their way: the channel worker, provider feedback, profile deletion
    # A message's state is kept in its outbox row's values, beside what the journey
    # queued: `status`, the claim, `feedback` {status: at}, as `MessageRow` names them.

    def outbox_message(self, message_id: str) -> MessageRow | None:
        self.reads["outbox_message"] += 1
        return self._outbox_message(message_id)

    def _outbox_message(self, message_id: str) -> MessageRow | None:
        with self._lock:
            kept = self.rows.get(message_id)
            if kept is None or kept.row.kind not in MESSAGE_KINDS:
                return None
            return _message_row(kept.row)

    def claim_message(
        self, message_id: str, at: datetime, lease_until: datetime
    ) -> MessageRow | None:
        with self._lock:
            kept = self.rows.get(message_id)
            if kept is None or kept.row.values.get("status") != "queued":
                return None
            values = kept.row.values
            _set_values(kept, status="sending", claimed_at=at,
                        attempts=values.get("attempts", 0) + 1,
                        feedback=values.get("feedback", {}))  # fmt: skip
            kept.dispatch_at = int(lease_until.timestamp())
            return _message_row(kept.row)

    def claim_if_due(
        self, message_id: str, at: datetime, lease_until: datetime, due_by: datetime
    ) -> tuple[bool, MessageRow | None]:
        with self._lock:
            found = self._outbox_message(message_id)
            if found is None or found.status != "queued":
                return False, found
            due = found.retry_at or found.deliver_at
            if due is not None and due > due_by:
                return False, found
            return True, self.claim_message(message_id, at, lease_until)

    def move_message(self, move: MessageMove) -> None:
        with self._lock:
            kept = self.rows.get(move.message_id)
            values = kept.row.values if kept is not None else {}
            recorded = move.recorded
            if kept is None or (values.get("status"), values.get("claimed_at")) != (
                move.held, move.claimed_at,
            ):  # fmt: skip
                raise Conflict(f"message {move.message_id} moved on")
            if recorded is not None:
                self._record_status(kept, recorded)
            values = {**kept.row.values, "status": move.status}
            values.update((n, getattr(move, n)) for n in _MOVED if getattr(move, n) is not None)
            if move.unpaced:
                values.pop("paced_at", None)
            kept.row = replace(kept.row, values=values)
            if move.final:
                kept.dispatch_at = None
            elif move.dispatch_at is not None:
                kept.dispatch_at = move.dispatch_at

    def pace_message(self, message_id: str, slot: datetime, dispatch_at: int) -> bool:
        with self._lock:
            kept = self.rows.get(message_id)
            values = kept.row.values if kept is not None else {}
            if kept is None or values.get("status") != "queued" or "paced_at" in values:
                return False
            _set_values(kept, retry_at=slot, paced_at=slot)
            kept.dispatch_at = dispatch_at
            return True

    def mark_pushed(self, message_id: str, endpoint: str) -> None:
        with self._lock:
            kept = self.rows[message_id]
            _set_values(kept, pushed=(*kept.row.values.get("pushed", ()), endpoint))

    def sent_messages(self) -> list[MessageRow]:
        with self._lock:
            return [
                _message_row(kept.row) for kept in self.rows.values()
                if kept.row.kind in MESSAGE_KINDS and kept.row.values.get("status") == "sent"
            ]  # fmt: skip

    def forget_push_subscriptions(self, profile: Profile, endpoints: list[str]) -> bool:
        with self._lock:
            stored = self.profiles.get((profile.profile_db, profile.profile_id))
            current = profile.fields.get("push") or []
            if stored is None or stored.fields is None or stored.fields.get("push") != current:
                return False
            stored.fields["push"] = [
                s for s in current if not (isinstance(s, dict) and s.get("endpoint") in endpoints)
            ]
            return True

    def mark_history(self, mark: HistoryMark) -> bool:
        with self._lock:
            stored = self.profiles.get((mark.profile_db, mark.profile_id))
            message = stored.messages.get(mark.message_id) if stored is not None else None
            if stored is None or message is None:
                return False
            statuses = {**message.statuses, mark.status: mark.at}
            statuses.pop(mark.replaces or "", None)
            stored.messages[mark.message_id] = replace(message, statuses=statuses)
            return True

    def record_status(self, write: StatusWrite) -> None:
        with self._lock:
            kept = self.rows.get(write.record.message_id)
            if kept is None:
                raise Conflict(f"no message {write.record.message_id}")
            self._record_status(kept, write)

    def _record_status(self, kept: _Row, write: StatusWrite) -> None:
        record = write.record
        if record.status in kept.row.values.get("feedback", {}):
            raise Conflict(f"{record.status} of message {record.message_id}")
        changes = write.changes()
        self._check(changes)
        feedback = {**kept.row.values.get("feedback", {}), record.status: record.at}
        _set_values(kept, feedback=feedback)
        self._apply(copy.deepcopy(changes))

    def erase_profile(self, profile_db: str, profile_id: str, instance_ids: list[str]) -> bool:
        key = (profile_db, profile_id)
        with self._lock:
            stored = self.profiles.pop(key, None)
            found = stored is not None and stored != _Profile()  # reads leave empty ones
            for message_id in stored.messages if stored is not None else ():
                self.rows.pop(message_id, None)
            for instance_id in instance_ids:
                self.timers.pop(instance_id, None)
                self.instances.pop(instance_id, None)
            for guard in [guard for guard in self.guards if guard[:2] == key]:
                del self.guards[guard]
                found = True
            for lines in [lines for lines in self.lines if lines[:2] == key]:
                del self.lines[lines]
            self.product_views.pop(key, None)
            self.cart_stages.pop(key, None)
            self.aliases.pop(key, None)
            return found or bool(instance_ids)

    # --- scenarios, versions, schedules and segments
    # The trigger and experiment indexes follow from `metas` and `versions`, which a
    # saved change keeps current; tokens are `<list>:<where the next page starts>`.

    @functools.cached_property
    def _lifecycle(self) -> _Lifecycle:
        """What the scenario lifecycle saved (kept from the first use on)."""
        return _Lifecycle()

    def listeners_listed(self) -> bool:
        return self.listeners_done

    def add_listeners(self, scenario_id: str, event_types: Iterable[str]) -> None:
        with self._lock:
            for event_type in event_types:
                self.listening[event_type].add(scenario_id)

    def mark_listeners_listed(self) -> None:
        self.listeners_done = True

    def triggers_listed(self) -> bool:
        return self.triggers_done

    def add_triggers(self, scenario_id: str, event_types: Iterable[str]) -> None:
        """Nothing to add: the scenarios a type triggers are read from the active versions."""

    def mark_triggers_listed(self) -> None:
        self.triggers_done = True

    def scenario_record(self, scenario_id: str) -> ScenarioRecord | None:
        self.reads["scenario_record"] += 1
        with self._lock:
            return copy.deepcopy(self._lifecycle.records.get(scenario_id))

    def save_scenario(self, change: ScenarioChange) -> None:
        record, version = copy.deepcopy((change.record, change.version))
        scenario_id = record.scenario_id
        with self._lock:
            kept = self._lifecycle
            current = kept.records.get(scenario_id)
            if (current.updated_at if current else None) != change.seen:
                raise Conflict(f"scenario {scenario_id} changed")
            if version is not None:
                key = (scenario_id, version.version)
                if key in kept.versions or key in self.versions:
                    raise Conflict(f"scenario {scenario_id} has a version {version.version}")
                kept.versions[key] = version
                self.versions[key] = CompiledScenario.from_document(
                    version.document, scenario_id, version.version
                )
            kept.records[scenario_id] = record
            self.metas[scenario_id] = ScenarioMeta(scenario_id, record.status, record.version)
            for entry in change.unlisted.schedules if change.unlisted else ():
                kept.schedules.pop((entry.scenario_id, entry.trigger_id), None)
            for entry in change.listed.schedules if change.listed else ():
                kept.schedules[(entry.scenario_id, entry.trigger_id)] = entry
            for event_type in change.listed.listens if change.listed else ():
                self.listening[event_type].add(scenario_id)

    def scenario_page(
        self, where: ScenarioFilter, read: int, token: str | None
    ) -> tuple[list[ScenarioRecord], str | None]:
        """Scenarios in the order of their ids, from the one after the token's."""
        after = _token_start("scenarios", token) or ""
        with self._lock:
            listed = sorted(
                (record for record in self._lifecycle.records.values()
                 if record.scenario_id > after),
                key=lambda record: record.scenario_id,
            )  # fmt: skip
        page = copy.deepcopy(listed[:read])
        following = self.token_after(page[-1]) if len(listed) > read else None
        return [record for record in page if where.keeps(record)], following

    def token_after(self, record: ScenarioRecord) -> str:
        return f"scenarios:{record.scenario_id}"

    def versions_page(
        self, scenario_id: str, limit: int, token: str | None
    ) -> tuple[list[VersionRecord], str | None]:
        with self._lock:
            found = sorted(
                (saved for key, saved in self._lifecycle.versions.items() if key[0] == scenario_id),
                key=lambda saved: saved.version,
            )
        return _offset_page(f"versions#{scenario_id}", found, limit, token)

    def active_instance_ids(self, scenario_id: str) -> list[str]:
        with self._lock:
            return sorted(
                instance_id
                for instance_id, stored in self.instances.items()
                if stored.instance.scenario_id == scenario_id and stored.instance.active
            )

    def instances_at_node(self, scenario_id: str, node: str) -> list[str]:
        return [at.instance_id for at in self._at_node(scenario_id, node)]

    def node_page(
        self, scenario_id: str, node: str, limit: int, token: str | None
    ) -> tuple[list[AtNode], str | None]:
        return _offset_page(
            f"node#{scenario_id}#{node}", self._at_node(scenario_id, node), limit, token
        )

    def _at_node(self, scenario_id: str, node: str) -> list[AtNode]:
        """Active instances at the node that entered it at a known moment, earliest first."""
        with self._lock:
            found = [
                AtNode(instance.instance_id, instance.profile_id, instance.node_entered_at,
                       instance.wake_at)
                for instance in (stored.instance for stored in self.instances.values())
                if instance.scenario_id == scenario_id and instance.active
                and instance.node == node and instance.node_entered_at is not None
            ]  # fmt: skip
        return sorted(found, key=lambda at: (at.entered_at, at.instance_id))

    def schedules(self) -> list[ScheduleEntry]:
        with self._lock:
            kept = self._lifecycle.schedules
            return [kept[key] for key in sorted(kept)]

    def claim_schedule_run(
        self, entry: ScheduleEntry, now: datetime, next_run: datetime | None
    ) -> bool:
        key = (entry.scenario_id, entry.trigger_id)
        with self._lock:
            kept = self._lifecycle.schedules.get(key)
            if kept is None or kept.next_run != entry.next_run:
                return False
            self._lifecycle.schedules[key] = replace(kept, last_run=now, next_run=next_run)
            return True

    def next_due(self, after: datetime) -> datetime | None:
        """As the due-time indexes keep them: timers to the second, never early."""
        with self._lock:
            seconds = [
                *(_due_second(timer.wake_at) for timer in self.timers.values()),
                *(_due_second(timer.due_at) for timer in self.event_timers.values()),
                *(_due_second(timer.due_at) for timer in self.abandon_timers.values()
                  if timer.due_at is not None),
                *(_due_second(kept.session_ends) for kept in self.profiles.values()
                  if kept.session_ends is not None),
                *(kept.dispatch_at for kept in self.rows.values()
                  if kept.dispatch_at is not None),
            ]  # fmt: skip
            runs = [
                entry.next_run
                for entry in self._lifecycle.schedules.values()
                if entry.next_run is not None and entry.next_run > after
            ]
        due = [datetime.fromtimestamp(second, UTC) for second in seconds if second > epoch(after)]
        return min([*due, *runs], default=None)

    def profile_items_estimate(self) -> int:
        with self._lock:
            return sum(
                (stored.fields is not None) + len(stored.events) + len(stored.messages)
                for stored in self.profiles.values()
            )

    def segment_definition(self, segment_id: str, consistent: bool = True) -> dict[str, Any] | None:
        self.reads["segment_definition"] += 1
        with self._lock:
            return copy.deepcopy(self.segment_definitions.get(segment_id))

    def segment_profiles(
        self, profile_db: str, part: int = 0, parts: int | None = None
    ) -> Iterator[Profile]:
        with self._lock:
            found = [
                Profile(profile_id, copy.deepcopy(stored.fields), profile_db=profile_db)
                for (db, profile_id), stored in sorted(self.profiles.items())
                if db == profile_db and stored.fields is not None
            ]
        return iter(found[part::parts] if parts else found)


def _changed_at(kept: ListLine | datetime | None) -> datetime | None:
    return kept.at if isinstance(kept, ListLine) else kept


# --- messages on their way ---

MESSAGE_KINDS = ("message", "webhook")  # the outbox rows that go to a channel
_STATE = ("status", "attempts", "claimed_at", "feedback", "pushed", "retry_at", "paced_at",
          "sent_at", "ended_at", "result", "last_error")  # fmt: skip
_MOVED = ("sent_at", "ended_at", "provider_id", "reason", "result", "retry_at", "last_error")


def _message_row(row: OutboxRow) -> MessageRow:
    """The message's row as the port answers it, from the outbox row and its state."""
    values = copy.deepcopy(row.values)
    state = {name: values.pop(name) for name in _STATE if name in values}
    instance, dispatch = row.instance, row.dispatch
    return MessageRow(
        row.row_id, row.kind, state.pop("status", None), row.profile_db, row.profile_id,
        instance.scenario_id if instance else values.pop("scenario_id"),
        instance.version if instance else int(values.pop("version")),
        values.pop("node"), values.pop("channel", None),
        instance.instance_id if instance else values.pop("instance_id", None),
        dispatch.queue if dispatch else None,
        dispatch.message.model_dump(mode="json", exclude_none=True) if dispatch else None,
        dispatch.deliver_at if dispatch else None,
        values, **state,
    )  # fmt: skip


def _set_values(kept: _Row, **values: Any) -> None:
    """Change a kept outbox row's values (its record stays frozen: a new one)."""
    kept.row = replace(kept.row, values={**kept.row.values, **values})


class MemoryQueues:
    """`Queues` in memory: what was sent to each queue, oldest first."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[QueueMessage, int]]] = defaultdict(list)
        self._lock = threading.Lock()

    def send(self, queue: str, batch: Sequence[tuple[QueueMessage, int]]) -> int:
        with self._lock:
            self.sent[queue].extend(batch)
        return (len(batch) + 9) // 10

    def take(self, queue: str) -> list[QueueMessage]:
        """Every message sent to `queue` so far, taken off it."""
        with self._lock:
            taken, self.sent[queue] = self.sent[queue], []
        return [message for message, _ in taken]


# --- scenarios and schedules ---

Paged = TypeVar("Paged")


@dataclass
class _Lifecycle:
    """What the scenario lifecycle saved: metadata, versions and the schedule index."""

    records: dict[str, ScenarioRecord] = field(default_factory=dict)
    versions: dict[tuple[str, int], VersionRecord] = field(default_factory=dict)
    schedules: dict[tuple[str, str], ScheduleEntry] = field(default_factory=dict)


def _token_start(list_name: str, token: str | None) -> str | None:
    """Where a page token of this list starts (None: no token); `UnknownToken` for any
    other token."""
    if token is None:
        return None
    name, colon, start = token.rpartition(":")
    if not colon or name != list_name or not start:
        raise UnknownToken("not a token this API issued for this list")
    return start


def _offset_page(
    list_name: str, found: list[Paged], limit: int, token: str | None
) -> tuple[list[Paged], str | None]:
    """A page of `found` from the offset the token holds, and the next page's token."""
    start = _token_start(list_name, token) or "0"
    if not start.isdigit():
        raise UnknownToken("not a token this API issued for this list")
    end = int(start) + limit
    following = f"{list_name}:{end}" if end < len(found) else None
    return copy.deepcopy(found[int(start) : end]), following


def _due_second(moment: datetime) -> int:
    return epoch(moment) + (1 if moment.microsecond else 0)
