"""The unit of work: one queue message's or request's reads and commits.

What a unit of work has read it keeps, so one event reads its profile once however
many journeys it moves, and a scenario's status once however many of its instances it
touches. A commit writes one `Commit` through the storage port, then sends its queue
messages, and keeps what it wrote as the new state of what was read: the next step of
the same unit of work sees the profile and the instances as the last one left them.
A commit that conflicts (someone else wrote first) forgets what it had read of them, so
the step is tried again on fresh reads. An event it records is in the profile's history
it hands out from then on, written or not yet (`record_event`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from chalicelib.bootstrap import Services, services
from chalicelib.engine.compiled import CompiledScenario
from chalicelib.engine.measure import conversion_deadline
from chalicelib.engine.membership import MembershipChange, evaluate_membership
from chalicelib.engine.state import Instance
from chalicelib.scenarios.facts import Event, Profile
from chalicelib.scenarios.model import ExperimentNode

from . import membership
from .commit import Commit, Outgoing
from .messages import QueueMessage
from .storage import (
    EVENT_LIMIT,
    CaptureGuard,
    Changes,
    Conflict,
    ProfileCreate,
    ProfileRecord,
    ProfileUpdate,
    ReadAhead,
    ScenarioMeta,
    SignalSettings,
    StoredInstance,
)


class UnitOfWork:
    """`buffered`: the events it records and the messages of its commits wait for `flush`
    (one unit of work for a whole SQS batch writes and sends them in as few calls as it
    can)."""

    def __init__(self, wiring: Services | None = None, buffered: bool = False) -> None:
        wired = wiring or services()
        self.storage = wired.storage
        self.queues = wired.queues
        self._buffer: list[Outgoing] | None = [] if buffered else None
        self._consumed: list[str] = []  # outbox rows of the handled messages (buffered)
        # per profile: the events recorded and not written yet (buffered), by history key
        self._recorded: dict[tuple[str, str], dict[tuple[datetime, str], Event]] = {}
        self._scenarios: dict[str, ScenarioMeta | None] = {}
        self._listening: dict[str, list[str]] = {}  # scenarios by the event type they take
        self._heard: dict[str, bool] = {}  # whether journeys listen to an event type
        self._profiles: dict[tuple[str, str], ProfileRecord] = {}
        self._instances: dict[str, StoredInstance] = {}
        self._aliases: dict[tuple[str, str], str | None] = {}  # profile → merged into
        self._guards: dict[tuple[str, str, str], CaptureGuard | None] = {}  # by profile, scenario
        # per profile: since when its instances were read (None: all), and their ids
        self._of_profile: dict[tuple[str, str], tuple[datetime | None, list[str]]] = {}
        self._entries: dict[tuple[str, datetime], int] = {}  # sending discipline
        self._control: float | None = None
        self._signals: SignalSettings | None = None
        self._winners: dict[tuple[str, int], dict[str, str]] = {}
        self._segments: membership.Definitions | None = None  # segment membership

    # --- reads ---------------------------------------------------------------------------

    def scenario(self, scenario_id: str) -> ScenarioMeta | None:
        if scenario_id not in self._scenarios:
            self._scenarios[scenario_id] = self.storage.scenario(scenario_id)
        return self._scenarios[scenario_id]

    def scenarios_for_event(self, event_type: str) -> list[str]:
        """The scenarios that take events of this type, read once per unit of work (a
        batch of events of one type reads them once)."""
        if event_type not in self._listening:
            self._listening[event_type] = self.storage.scenarios_for_event(event_type)
        return self._listening[event_type]

    def listened(self, event_type: str) -> bool:
        """Whether some scenario's journeys may take events of this type, read once."""
        if event_type not in self._heard:
            self._heard[event_type] = self.storage.listened(event_type)
        return self._heard[event_type]

    def active_version(self, scenario_id: str) -> CompiledScenario | None:
        """The scenario's current version when it is active, else None."""
        meta = self.scenario(scenario_id)
        if meta is None or not meta.active:
            return None
        return self.storage.version(scenario_id, meta.version)

    def version(self, scenario_id: str, version: int) -> CompiledScenario:
        return self.storage.version(scenario_id, version)

    def profile(self, profile_db: str, profile_id: str, history: bool = True) -> ProfileRecord:
        """The profile as read (`Storage.profile`), or as this unit of work's last commit
        left it; with `history`, read again if the one kept has none. A history holds the
        events this unit of work recorded and has not written yet."""
        key = (profile_db, profile_id)
        found = self._profiles.get(key)
        if found is None or (history and not found.history):
            found = self.storage.profile(profile_db, profile_id, history)
            if found.history and key in self._recorded:
                found = _with_events(found, self._recorded[key].values())
            self._profiles[key] = found
        return found

    def merged_into(self, profile_db: str, profile_id: str) -> str | None:
        """The profile this one was merged into: from the profile's read if it was made,
        or from the batch's read of aliases (`read_ahead`)."""
        key = (profile_db, profile_id)
        read = self._profiles.get(key)
        if read is not None:
            return read.merged_into
        if key not in self._aliases:
            self._aliases[key] = self.storage.merged_into(profile_db, profile_id)
        return self._aliases[key]

    def read_ahead(self, wanted: ReadAhead) -> None:
        """Read in one request what a batch's messages will ask of this unit of work, but
        what it holds already: `instance`, `scenario`, `profile` without history,
        `merged_into`, `listened`, `scenarios_for_event` (once the stack has the triggers
        listed), `capture_guard` and `control_percent` then answer without a read of
        their own (an instance that is not found is read again)."""
        unread = ReadAhead(
            instances=sorted({i for i in wanted.instances if i not in self._instances}),
            scenarios=sorted({s for s in wanted.scenarios if s not in self._scenarios}),
            profiles=sorted({p for p in wanted.profiles if p not in self._profiles}),
            aliases=sorted({p for p in wanted.aliases if p not in self._aliases}),
            event_types=sorted({t for t in wanted.event_types if t not in self._heard}),
            guards=sorted({g for g in wanted.guards if g not in self._guards}),
            control=wanted.control and self._control is None,
        )
        if not unread:
            return
        found = self.storage.read_ahead(unread)
        self._instances.update(found.instances)
        self._scenarios.update(found.scenarios)
        self._profiles.update(found.profiles)
        self._aliases.update({key: found.aliases.get(key) for key in unread.aliases})
        self._heard.update(found.listened)
        self._listening.update(found.triggered or {})
        self._guards.update(found.guards)
        if found.control_percent is not None:
            self._control = found.control_percent

    def forget_profile(self, profile_db: str, profile_id: str) -> None:
        """Read the profile again next time: something changed it outside a commit."""
        self._profiles.pop((profile_db, profile_id), None)

    def instance(self, instance_id: str) -> StoredInstance | None:
        """The instance as this unit of work last saw it (read from the table if not yet)."""
        if instance_id not in self._instances:
            stored = self.storage.instance(instance_id)
            if stored is None:
                return None
            self._instances[instance_id] = stored
        return self._instances[instance_id]

    def instances_of_profile(
        self, profile_db: str, profile_id: str, since: datetime | None = None
    ) -> list[StoredInstance]:
        """The profile's instances that matter at `since` (all of them without), read once
        unless a later call reaches further back; may hold more than asked (the index may
        also lag: a commit that conflicts reads the instance itself again)."""
        key = (profile_db, profile_id)
        read = self._of_profile.get(key)
        if read is None or not (read[0] is None or (since is not None and read[0] <= since)):
            found = self.storage.instances_of_profile(profile_db, profile_id, since=since)
            for stored in found:
                self._instances.setdefault(stored.instance.instance_id, stored)
            self._of_profile[key] = read = (since, [s.instance.instance_id for s in found])
        listed = (self.instance(instance_id) for instance_id in read[1])
        return [stored for stored in listed if stored is not None]  # a forgotten one read again

    def capture_guard(
        self, profile_db: str, profile_id: str, scenario_id: str
    ) -> CaptureGuard | None:
        """The profile's guard of its captures into the scenario: as read ahead, or as this
        unit of work's last capture left it, else read (a commit that conflicts forgets
        the guard it expected, to be read again)."""
        key = (profile_db, profile_id, scenario_id)
        if key not in self._guards:
            self._guards[key] = self.storage.capture_guard(*key)
        return self._guards[key]

    # --- writes --------------------------------------------------------------------------

    def record_event(self, profile_db: str, profile_id: str, event: Event) -> None:
        """Add the event to the profile's history, and to the view of it this unit of work
        hands out from now on. Unbuffered: written at once; buffered: at `flush`, with the
        batch's others, before anything goes out (a crash before loses nothing: SQS hands
        the batch again, and the same event is the same entry)."""
        key = (profile_db, profile_id)
        if self._buffer is None:
            self.storage.record_event(profile_db, profile_id, event)
        else:
            self._recorded.setdefault(key, {})[_history_key(event)] = event
        record = self._profiles.get(key)
        if record is not None and record.history:
            self._profiles[key] = _with_events(record, [event])

    def commit(self, commit: Commit, profile: Profile | None = None) -> None:
        """Write the commit, then send its messages; `profile` is the profile's view as its
        last step left it. `Conflict` when someone wrote first: nothing was written."""
        changes = commit.written()
        changes.instances = [
            replace(write, until=self._until(write.stored.instance)) for write in changes.instances
        ]
        if profile is not None:
            self._membership_of_step(commit, changes, profile)
        try:
            self.storage.commit(changes)
        except Conflict:
            for write in changes.instances:
                self._instances.pop(write.stored.instance.instance_id, None)
            for change in changes.profiles:
                self._profiles.pop((change.profile_db, change.profile_id), None)
            for count in changes.entries:
                self._entries.pop((count.scenario_id, count.window[0]), None)
            for guard in changes.guards:
                self._guards.pop(guard.key, None)
            raise
        for guard in changes.guards:
            self._guards[guard.key] = guard.written()
        for count in changes.entries:
            counted = (count.scenario_id, count.window[0])
            if counted in self._entries:
                self._entries[counted] += 1
        for write in changes.instances:
            instance = write.stored.instance
            self._instances[instance.instance_id] = write.stored
            read = self._of_profile.get((instance.profile_db, instance.profile_id))
            if read is not None and instance.instance_id not in read[1]:
                read[1].append(instance.instance_id)
        if profile is not None:
            key = (profile.profile_db, profile.profile_id)
            if key in self._profiles:
                record = self._profiles[key]
                wrote = any((c.profile_db, c.profile_id) == key for c in changes.profiles)
                consents = isinstance(profile.fields.get("consents"), dict)
                self._profiles[key] = replace(
                    record, view=profile, exists=record.exists or wrote,
                    has_consents=consents if wrote else record.has_consents,
                )  # fmt: skip
        self._kept_membership(changes)
        self.dispatch(commit)

    def _until(self, instance: Instance) -> datetime | None:
        """Until when the profile's events concern an ended instance: the end of its
        conversion window, when that is later than its end (None: its end, or active)."""
        if instance.active or instance.ended_at is None:
            return None
        deadline = conversion_deadline(
            self.version(instance.scenario_id, instance.version), instance
        )
        return deadline if deadline is not None and deadline > instance.ended_at else None

    def set_fields(
        self, profile_db: str, profile_id: str, fields: dict[str, Any], at: datetime
    ) -> None:
        """Set these fields of the profile (creating it if need be), outside any journey's
        step, and keep the view this unit of work has of it current."""
        for _ in range(2):  # a profile created meanwhile: update it
            record = self.profile(profile_db, profile_id, history=False)
            change: ProfileCreate | ProfileUpdate = (
                ProfileUpdate(profile_db, profile_id, at, dict(fields))
                if record.exists
                else ProfileCreate(profile_db, profile_id, dict(fields), at)
            )
            try:
                self.storage.commit(Changes(profiles=[change]))
            except Conflict:
                self._profiles.pop((profile_db, profile_id), None)
                continue
            view = record.view
            self._profiles[(profile_db, profile_id)] = replace(
                record, exists=True,
                view=replace(view, fields={**view.fields, **fields}),
            )  # fmt: skip
            return
        raise Conflict(f"profile {profile_id!r} kept changing")

    def send(self, queue: str, messages: list[QueueMessage]) -> None:
        """Queue messages outside a commit (with the batch's, when buffered)."""
        self._pending([Outgoing(queue, message) for message in messages])

    def dispatch(self, commit: Commit) -> None:
        """Send a written commit's messages (a crash before leaves them to the sweeper)."""
        self._pending(commit.outgoing)

    def _pending(self, outgoing: list[Outgoing]) -> None:
        if self._buffer is not None:
            self._buffer.extend(outgoing)
        else:
            self._send(outgoing)

    def consume_row(self, row_id: str) -> None:
        """Take the outbox row of a handled message out (buffered: at `flush`, with the
        batch's others; a crash before leaves it to the sweeper, which sends it again)."""
        if self._buffer is None:
            self.storage.consume_rows([row_id])
        else:
            self._consumed.append(row_id)

    def flush(self) -> None:
        """Write the recorded events first, so nothing derived from an event goes out
        before its history does; then send what the buffered commits dispatched, then take
        the handled messages' rows out of the outbox."""
        if self._recorded:
            recorded, self._recorded = self._recorded, {}
            self.storage.record_events(
                [(*key, event) for key, events in recorded.items() for event in events.values()]
            )
        if self._buffer:
            pending, self._buffer = self._buffer, []
            self._send(pending)
        if self._consumed:
            consumed, self._consumed = self._consumed, []
            self.storage.consume_rows(consumed)

    def _send(self, outgoing: list[Outgoing]) -> None:
        by_queue: dict[str, list[tuple[QueueMessage, int]]] = {}
        for message in outgoing:
            by_queue.setdefault(message.queue, []).append((message.message, message.delay))
        for queue, batch in by_queue.items():
            self.queues.send(queue, batch)

    def forget_instance(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    # --- sending discipline --------------------------------------------------------------

    def entries_in_window(self, scenario_id: str, window: tuple[datetime, datetime]) -> int:
        """Captures into the scenario in its entry-limit window: read once, then counted
        on by this unit of work's commits (a conflict reads it again)."""
        counted = (scenario_id, window[0])
        if counted not in self._entries:
            self._entries[counted] = self.storage.entries_in_window(scenario_id, window)
        return self._entries[counted]

    # --- measurement ---------------------------------------------------------------------

    def signal_settings(self) -> SignalSettings:
        """The stack's settings of derived signals, read once."""
        if self._signals is None:
            self._signals = self.storage.signal_settings()
        return self._signals

    def control_percent(self) -> float:
        """The stack's global control group, read once."""
        if self._control is None:
            self._control = self.storage.control_percent()
        return self._control

    def winners(self, scenario_id: str, version: int) -> dict[str, str]:
        """The decided winners of a version's experiments, by node, read once (and only
        for a version with an experiment node)."""
        key = (scenario_id, version)
        if key not in self._winners:
            scenario = self.version(scenario_id, version)
            self._winners[key] = (
                {
                    node: decision.winner
                    for node, decision in self.storage.decisions(scenario_id, version).items()
                    if decision.winner is not None
                }
                if any(isinstance(node, ExperimentNode) for node in scenario.nodes.values())
                else {}
            )
        return self._winners[key]

    # --- segment membership --------------------------------------------------------------

    def segment_definitions(self) -> membership.Definitions:
        """The defined segments, read and compiled once."""
        if self._segments is None:
            self._segments = membership.Definitions.of(self.storage.defined_segments())
        return self._segments

    def write_membership(
        self, profile_db: str, profile_id: str, change: MembershipChange, cause: str,
        now: datetime,
    ) -> None:  # fmt: skip
        """Write the profile's new membership (expecting the one read) with its events,
        then send them; `Conflict` forgets the profile read, to be read again."""
        key = (profile_db, profile_id)
        was = self.profile(profile_db, profile_id, history=False).segments
        write, rows, sent = membership.written(profile_db, profile_id, was, change, cause, now)
        changes = Changes(rows=rows, memberships=[write])
        try:
            self.storage.commit(changes)
        except Conflict:
            self._profiles.pop(key, None)
            raise
        self._kept_membership(changes)
        self.send("events", list(sent))

    def _membership_of_step(self, commit: Commit, changes: Changes, profile: Profile) -> None:
        """A step that changed the profile re-evaluates its segments in the same commit."""
        key = (profile.profile_db, profile.profile_id)
        if not any((c.profile_db, c.profile_id) == key for c in changes.profiles):
            return
        read = self._profiles.get(key)
        was = read.segments if read is not None else ()
        segments = self.segment_definitions().on(profile.profile_db)
        if not segments and not was:
            return
        change = evaluate_membership(profile, was, segments, commit.now)
        if not change:
            return
        last = changes.instances[-1].stored if changes.instances else None
        cause = f"{last.instance.instance_id}:{last.instance.step}" if last else str(commit.now)
        write, rows, sent = membership.written(*key, was, change, cause, commit.now)
        changes.memberships.append(write)
        changes.rows.extend(rows)
        commit.outgoing.extend(Outgoing("events", message) for message in sent)

    def _kept_membership(self, changes: Changes) -> None:
        """What a commit wrote of memberships is what this unit of work knows now."""
        for write in changes.memberships:
            key = (write.profile_db, write.profile_id)
            if key in self._profiles:
                self._profiles[key] = replace(self._profiles[key], segments=write.members)


def _history_key(event: Event) -> tuple[datetime, str]:
    """An event's place in a history, as the adapters key it: its time, then its id."""
    return (event.occurred_at, event.id or "")


def _with_events(record: ProfileRecord, events: Iterable[Event]) -> ProfileRecord:
    """The record with these events in its view's history: in `occurred_at` order, the
    same one once, the newest EVENT_LIMIT (as `Storage.profile` reads it)."""
    history = {_history_key(event): event for event in [*record.view.events, *events]}
    newest = [history[key] for key in sorted(history)][-EVENT_LIMIT:]
    return replace(record, view=replace(record.view, events=newest))
