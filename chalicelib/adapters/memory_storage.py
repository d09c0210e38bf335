"""The storage and queue ports in memory: for the use cases' unit tests and for benches
that measure logic rather than AWS.

`MemoryStorage` keeps the records themselves and commits as the DynamoDB adapter does:
every expectation of a commit is checked before anything is applied, all under one
lock, and a failed one raises `Conflict` with nothing written. `MemoryQueues` keeps
what was sent, queue by queue, for the test to deliver.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from chalicelib.engine.compiled import CompiledScenario, WindowLimit
from chalicelib.runtime.messages import QueueMessage
from chalicelib.runtime.pacing import next_slot
from chalicelib.runtime.storage import (
    CaptureGuard,
    Changes,
    Conflict,
    DayCounters,
    ExperimentDecision,
    OutboxRow,
    PendingRow,
    ProfileCreate,
    ProfileRecord,
    ProfileUpdate,
    ScenarioMeta,
    StoredInstance,
    Timer,
    VersionCounters,
)
from chalicelib.scenarios.facts import Event, Message, Profile
from chalicelib.scenarios.model import EventTrigger, ExperimentNode

EVENT_LIMIT = 300  # as the DynamoDB adapter: the newest events and messages of a profile
MESSAGE_LIMIT = 200


@dataclass
class _Row:
    row: OutboxRow
    dispatch_at: int | None  # None once consumed (or never pending)


@dataclass
class _Profile:
    fields: dict[str, Any] | None = None  # None: no profile item (only history)
    events: dict[tuple[datetime, str], Event] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)


class MemoryStorage:
    """`Storage` in memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.metas: dict[str, ScenarioMeta] = {}
        self.versions: dict[tuple[str, int], CompiledScenario] = {}
        self.profiles: dict[tuple[str, str], _Profile] = defaultdict(_Profile)
        self.instances: dict[str, StoredInstance] = {}
        self.guards: dict[tuple[str, str, str], CaptureGuard] = {}
        self.timers: dict[str, Timer] = {}
        self.rows: dict[str, _Row] = {}
        self.stats: dict[tuple[str, int, str], Counter[str]] = defaultdict(Counter)
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
        # --- once-only records ---
        self.once: dict[str, datetime] = {}  # key → when it was written
        self.control: float = 0.0
        self.stored_decisions: dict[tuple[str, int, str], ExperimentDecision] = {}

    # --- what tests set up ---------------------------------------------------------------

    def put_scenario(self, scenario: CompiledScenario, status: str = "active") -> None:
        """A scenario at this version, with its trigger index."""
        with self._lock:
            self.versions[(scenario.scenario_id, scenario.version)] = scenario
            self.metas[scenario.scenario_id] = ScenarioMeta(
                scenario.scenario_id, status, scenario.version
            )

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

    def scenarios_for_event(self, event_type: str) -> list[str]:
        self.reads["scenarios_for_event"] += 1
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

    def profile(self, profile_db: str, profile_id: str) -> ProfileRecord:
        self.reads["profile"] += 1
        with self._lock:
            stored = self.profiles.get((profile_db, profile_id)) or _Profile()
            events = [stored.events[key] for key in sorted(stored.events)][-EVENT_LIMIT:]
            messages = sorted(stored.messages.values(), key=lambda m: (m.at, m.message_id))
            fields = copy.deepcopy(stored.fields or {})
        view = Profile(profile_id, fields, events, messages[-MESSAGE_LIMIT:], profile_db)
        return ProfileRecord(
            view, stored.fields is not None, isinstance(fields.get("consents"), dict)
        )

    def record_event(self, profile_db: str, profile_id: str, event: Event) -> None:
        with self._lock:
            self.profiles[(profile_db, profile_id)].events[(event.occurred_at, event.id or "")] = (
                event
            )

    # --- instances -----------------------------------------------------------------------

    def instance(self, instance_id: str) -> StoredInstance | None:
        self.reads["instance"] += 1
        with self._lock:
            return copy.deepcopy(self.instances.get(instance_id))

    def instances_of_profile(
        self, profile_db: str, profile_id: str, scenario_id: str | None = None
    ) -> list[StoredInstance]:
        self.reads["instances_of_profile"] += 1
        with self._lock:
            return [
                copy.deepcopy(stored)
                for stored in self.instances.values()
                if (stored.instance.profile_db, stored.instance.profile_id)
                == (profile_db, profile_id)
                and scenario_id in (None, stored.instance.scenario_id)
            ]

    def capture_guard(
        self, profile_db: str, profile_id: str, scenario_id: str
    ) -> CaptureGuard | None:
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

    def _apply(self, changes: Changes) -> None:
        for write in changes.instances:
            self.instances[write.stored.instance.instance_id] = write.stored
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
            self.guards[(guard.profile_db, guard.profile_id, guard.scenario_id)] = CaptureGuard(
                (guard.expected or 0) + 1, guard.latest
            )
        for delta in changes.stats:
            self.stats[(delta.scenario_id, delta.version, delta.day)].update(delta.counters)
            firsts = self.firsts.setdefault((delta.scenario_id, delta.version), {})
            for name, at in delta.firsts.items():
                firsts[name] = min(at, firsts.get(name, at))
        for count in changes.entries:
            self.entries[(count.scenario_id, count.window[0])] += 1
        for once in changes.once:
            self.once[once.key] = once.at

    def _keep(self, row: OutboxRow) -> None:
        pending = row.dispatch
        self.rows[row.row_id] = _Row(row, int(pending.dispatch_at.timestamp()) if pending else None)

    # --- timers and the outbox -----------------------------------------------------------

    def due_timers(self, now: datetime) -> Iterator[Timer]:
        with self._lock:
            due = [timer for timer in self.timers.values() if timer.wake_at <= now]
        yield from sorted(due, key=lambda timer: timer.wake_at)

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

    def consume_row(self, row_id: str) -> None:
        with self._lock:
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
                return "again"
            available = self.codes.get(pool) or []
            if code in available:
                available.remove(code)
            elif key not in self.issued:
                return "unknown"
            self.redeemed[key] = (profile_db, profile_id)
            return "redeemed"

    def events_seen(self, event_ids: list[str]) -> set[str]:
        return set(event_ids) & self.queued_events

    def mark_event_queued(self, event_id: str, at: datetime) -> None:
        with self._lock:
            self.queued_events.add(event_id)

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
