"""The storage port on DynamoDB: the item layout, the indexes and the expressions.

- `scenarios`: `S#<id>`/`meta` (status, version), `S#<id>`/`V#<version>` (documents),
  the trigger index `E#<event type>`/`<scenario id>`.
- `profiles`, one partition per profile: `P` (fields), `M#<at>#<message id>` (messages
  sent), `E#<at>#<event id>` (events), `C#<scenario id>` (capture guards).
- `instances` by id, with the sparse indexes `by_profile`, `by_scenario`, `by_node`.
- `timers` by instance, in the sharded due-time index `by_due`; beside them, derived
  events' timers (`kind` `event`, keyed by their timer id, the event's message in `event`).
- `messages`: the outbox, pending rows in the sharded `pending` index.
- `stats`: counters per scenario, `<version>#<day>#<shard>`.
- commerce: `products` by id; in the profile's partition its list lines
  (`list#<list>#<product>`), latest views (`V#<product>`, expiring) and cart stage (`CART`),
  the lines and views in the sparse `watchers` index (by `product_id`).
- `idempotency`: event ids queued by the API, promo codes taken per request, merges
  (`merge#<merge id>`).
- `segments` by id; a profile's membership is the `P` item's top-level `segments`.
- `idempotency`: event ids queued by the API, promo codes taken per request, once-only
  records (`Once`: their key as it is).
- orders, in the profile's partition: `order#<order id>` (the order's state and `rev`) and
  `B#<product id>` (when the profile last ordered the product).

A commit is one TransactWriteItems (one plain write when it holds a single item).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.config import settings
from chalicelib.engine.compiled import CompiledScenario, WindowLimit
from chalicelib.engine.interpreter import ANY_EVENT
from chalicelib.runtime import messages
from chalicelib.runtime.commit import epoch
from chalicelib.runtime.pacing import spacing
from chalicelib.runtime.storage import (
    EVENT_LIMIT,
    REMOVAL_KEPT,
    VIEW_KEPT,
    AbandonTimer,
    AtNode,
    CaptureGuard,
    CartStage,
    Changes,
    Conflict,
    DayCounters,
    EntryCount,
    EventTimer,
    ExperimentDecision,
    GuardWrite,
    HistoryMark,
    ListLine,
    MembershipWrite,
    Merged,
    MergeRecord,
    MessageMove,
    MessageRow,
    Once,
    OutboxRow,
    PendingRow,
    PriceChange,
    ProductOrdered,
    ProductView,
    ProfileCreate,
    ProfileRecord,
    ProfileState,
    ReadAhead,
    ReadAheadFound,
    ScenarioChange,
    ScenarioFilter,
    ScenarioMeta,
    ScenarioRecord,
    ScheduleEntry,
    SessionTimer,
    SessionWrite,
    SignalSettings,
    StatusWrite,
    StoredInstance,
    StoredOrder,
    StoredProduct,
    StoredSession,
    Timer,
    TriggerIndex,
    UnknownToken,
    VersionCounters,
    VersionRecord,
    Watch,
)
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event, Message, Profile
from chalicelib.scenarios.model import Segment

from . import profiles as profile_items
from . import store
from .aws import client
from .codec import (
    event_from_values,
    event_to_values,
    instance_from_values,
    instance_to_values,
    live_since,
    message_from_values,
    order_from_values,
    order_to_values,
    profile_key,
    session_from_values,
    session_to_values,
    time_text,
    time_value,
)
from .dynamo import (
    BadToken,
    BatchGet,
    ConditionFailed,
    Table,
    batch_get,
    decode_token,
    encode_token,
    from_item,
    to_item,
    transact,
)

MESSAGE_LIMIT = 200  # the newest messages the engine sees per profile (events: EVENT_LIMIT)
EVENT_HISTORY = timedelta(days=400)  # how long a profile keeps its events
STAT_SHARDS = 8  # items a scenario version's counters of one day are spread over
DEDUP_WINDOW = timedelta(days=7)  # how long an event id the API queued is remembered


class DynamoStorage:
    """`Storage` on the stack's tables (names from the settings)."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, int], CompiledScenario] = {}
        # the lists' markers (`LISTED`, `TRIGGERS_LISTED`) once seen, for the wiring's life
        self._listed = {LISTED["sk"]: False, TRIGGERS_LISTED["sk"]: False}
        self._lock = threading.Lock()

    def load_profiles(
        self, profile_db: str, profiles: Mapping[str, tuple[dict[str, Any], list[str]]]
    ) -> None:
        """Write profiles as they are — id → (fields, the segments they are in) — with no
        events and no history: a bench's bulk load (BatchWriteItem, 25 a call)."""
        store.profiles.batch_put(
            [
                {**profile_items.item_key(profile_db, profile_id), "profile_db": profile_db,
                 "profile_id": profile_id, "fields": fields, "segments": segments}
                for profile_id, (fields, segments) in profiles.items()
            ]
        )  # fmt: skip

    def unload_profiles(self, profile_db: str, profile_ids: list[str]) -> None:
        """Delete these profiles' items as `load_profiles` wrote them."""
        store.profiles.batch_delete([profile_items.item_key(profile_db, p) for p in profile_ids])

    # --- scenarios -----------------------------------------------------------------------

    def scenario(self, scenario_id: str) -> ScenarioMeta | None:
        return _meta(scenario_id, store.scenarios.get(store.scenario_key(scenario_id)))

    def version(self, scenario_id: str, version: int) -> CompiledScenario:
        with self._lock:
            found = self._versions.get((scenario_id, version))
        if found is None:
            item = store.scenarios.get(store.version_key(scenario_id, version))
            if item is None:
                raise LookupError(f"scenario {scenario_id} has no version {version}")
            found = CompiledScenario.from_document(item["document"], scenario_id, version)
            with self._lock:
                self._versions[(scenario_id, version)] = found
        return found

    def listened(self, event_type: str) -> bool:
        return self.read_ahead(ReadAhead(event_types=[event_type])).listened[event_type]

    def read_ahead(self, wanted: ReadAhead) -> ReadAheadFound:
        """One BatchGetItem over three tables: the instances; from `profiles`, the items
        of the profiles (of `profiles` and `aliases`) and their guards; from `scenarios`,
        the metadata, the listener items of the types and of any event (with the markers
        of the lists not seen yet) and the control percent."""
        types = sorted(set(wanted.event_types))
        listeners = [_listeners_key(t) for t in (*types, ANY_EVENT)] if types else []
        if types:
            listeners += [m for m in (LISTED, TRIGGERS_LISTED) if not self._listed[m["sk"]]]
        profiles = sorted({*wanted.profiles, *wanted.aliases})  # a request names a key once
        guards = [_guard_key(*guard) for guard in sorted(set(wanted.guards))]
        metas = [store.scenario_key(s) for s in sorted(set(wanted.scenarios))]
        instance_keys = [{"instance_id": i} for i in sorted(set(wanted.instances))]
        instances, profile_items_found, scenario_items = batch_get(
            [
                BatchGet(store.instances, instance_keys, True),
                BatchGet(
                    store.profiles,
                    [*(profile_items.item_key(*profile) for profile in profiles), *guards],
                    True,
                ),
                BatchGet(
                    store.scenarios,
                    [*metas, *listeners, *([CONTROL_KEY] if wanted.control else [])],
                    True,
                ),
            ]
        )
        by_key = {(item["pk"], item["sk"]): item for item in profile_items_found + scenario_items}

        def found(key: dict[str, str]) -> dict[str, Any] | None:
            return by_key.get((key["pk"], key["sk"]))

        for marker in (LISTED, TRIGGERS_LISTED):
            if types and found(marker) is not None:
                self._listed[marker["sk"]] = True

        def listener(event_type: str) -> dict[str, Any]:
            return found(_listeners_key(event_type)) or {}

        anything = not self._listed[LISTED["sk"]] or bool(listener(ANY_EVENT).get("scenarios"))
        records = {
            profile: _fields_record(*profile, found(profile_items.item_key(*profile)))
            for profile in profiles
        }
        return ReadAheadFound(
            instances={
                v["instance_id"]: StoredInstance(*instance_from_values(v)) for v in instances
            },
            scenarios={s: _meta(s, found(store.scenario_key(s))) for s in wanted.scenarios},
            profiles={profile: records[profile] for profile in wanted.profiles},
            aliases={
                profile: alias
                for profile in wanted.aliases
                if (alias := records[profile].merged_into) is not None
            },
            listened={t: anything or bool(listener(t).get("scenarios")) for t in types},
            triggered={t: sorted(listener(t).get("triggered") or ()) for t in types}
            if self._listed[TRIGGERS_LISTED["sk"]]
            else None,
            guards={guard: _guard_from(found(_guard_key(*guard))) for guard in wanted.guards},
            control_percent=_percent(found(CONTROL_KEY)) if wanted.control else None,
        )

    def scenarios_for_event(self, event_type: str) -> list[str]:
        found = store.scenarios.query("pk = :pk", values={":pk": f"E#{event_type}"})
        return [item["sk"] for item in found]

    # --- profiles ------------------------------------------------------------------------

    def profile_item(self, profile_db: str, profile_id: str) -> dict[str, Any] | None:
        return profile_items.read(profile_db, profile_id)

    def profile_items(self, profile_db: str, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
        return profile_items.read_many(profile_db, profile_ids)

    def merge_profile(
        self, profile_db: str, profile_id: str, fields: dict[str, Any], stamp: str,
        exists: bool = True,
    ) -> Merged:  # fmt: skip
        return profile_items.merge_fields(profile_db, profile_id, fields, stamp, exists)

    def set_profile_consent(
        self, profile_db: str, profile_id: str, channel: str, granted: bool, stamp: str
    ) -> Merged | None:
        return profile_items.set_consent(profile_db, profile_id, channel, granted, stamp)

    def mark_address_invalid(
        self, profile_db: str, profile_id: str, channel: str, address: str
    ) -> None:
        profile_items.mark_invalid(profile_db, profile_id, channel, address)

    def profile(self, profile_db: str, profile_id: str, history: bool = True) -> ProfileRecord:
        """One Query, newest first, from the profile item through its messages and events;
        a second one for the events only when messages filled the first. Without
        `history`, a (consistent) GetItem of the profile item."""
        if not history:
            return _fields_record(
                profile_db, profile_id, profile_items.read(profile_db, profile_id)
            )
        view = Profile(profile_id, profile_db=profile_db)
        item = None
        partition = store.profile_partition(profile_db, profile_id)
        read = 0
        for values in store.profiles.query(
            "pk = :pk AND sk BETWEEN :e AND :p",
            values={":pk": partition, ":e": "E#", ":p": "P"},
            forward=False,
            limit=1 + MESSAGE_LIMIT + EVENT_LIMIT,
        ):
            read += 1
            kind = values["sk"][:2]
            if values["sk"] == "P":
                item = values
                view.fields = values.get("fields") or {}
                view.invalid = values.get("invalid") or {}
            elif kind == "M#" and len(view.messages) < MESSAGE_LIMIT:
                view.messages.append(message_from_values(values))
            elif kind == "E#":
                view.events.append(event_from_values(values))
        if read == 1 + MESSAGE_LIMIT + EVENT_LIMIT and len(view.events) < EVENT_LIMIT:
            view.events = [  # a long message history crowded the events out of the first
                event_from_values(values)
                for values in store.profiles.query(
                    "pk = :pk AND begins_with(sk, :e)",
                    values={":pk": partition, ":e": "E#"},
                    forward=False,
                    limit=EVENT_LIMIT,
                )
            ]
        view.events.reverse()
        view.messages.reverse()
        return _record(view, item)

    def record_event(self, profile_db: str, profile_id: str, event: Event) -> None:
        store.profiles.put(_event_item(profile_db, profile_id, event))

    def record_events(self, events: list[tuple[str, str, Event]]) -> None:
        """BatchWriteItem, each item once (a call may not hold one key twice)."""
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for recorded in events:
            item = _event_item(*recorded)
            items[(item["pk"], item["sk"])] = item
        store.profiles.batch_put(list(items.values()))

    # --- instances -----------------------------------------------------------------------

    def instance(self, instance_id: str) -> StoredInstance | None:
        values = store.instances.get({"instance_id": instance_id})
        return StoredInstance(*instance_from_values(values)) if values else None

    def instances_of_profile(
        self,
        profile_db: str,
        profile_id: str,
        scenario_id: str | None = None,
        since: datetime | None = None,
    ) -> list[StoredInstance]:
        condition = "profile_key = :p"
        values: dict[str, Any] = {":p": profile_key(profile_db, profile_id)}
        options: dict[str, Any] = {}
        if since is not None:
            condition += " AND live_key >= :since"
            values[":since"] = live_since(since)
        if scenario_id is not None:
            options["filter"] = "scenario_id = :s"
            values[":s"] = scenario_id
        found = store.instances.query(condition, index="by_profile", values=values, **options)
        return [StoredInstance(*instance_from_values(v)) for v in found]

    def capture_guard(
        self, profile_db: str, profile_id: str, scenario_id: str
    ) -> CaptureGuard | None:
        return _guard_from(store.profiles.get(_guard_key(profile_db, profile_id, scenario_id)))

    # --- commit --------------------------------------------------------------------------

    def commit(self, changes: Changes) -> None:
        try:
            transact(self._writes(changes))
        except ConditionFailed as failed:
            raise Conflict(str(failed)) from failed

    def _writes(self, changes: Changes) -> list[dict[str, Any]]:
        writes: list[dict[str, Any]] = []
        for write in changes.instances:
            stored = write.stored
            item = instance_to_values(stored.instance, stored.rev, stored.seen, write.until)
            if write.rev is None:
                writes.append(store.instances.tx_put(item, "attribute_not_exists(instance_id)"))
            else:
                writes.append(
                    store.instances.tx_put(item, "rev = :rev", values={":rev": write.rev})
                )
        writes.extend(store.timers.tx_put(_timer_item(timer)) for timer in changes.timers)
        writes.extend(
            store.timers.tx_delete({"instance_id": instance_id})
            for instance_id in changes.timers_gone
        )
        writes.extend(
            store.messages.tx_put(_row_item(row), "attribute_not_exists(message_id)")
            for row in changes.rows
        )
        for sent in changes.history:
            history = {
                "pk": store.profile_partition(sent.profile_db, sent.profile_id),
                "sk": f"M#{format_datetime(sent.at)}#{sent.message_id}",
                "message_id": sent.message_id,
                "scenario_id": sent.scenario_id,
                "instance_id": sent.instance_id,
                "node": sent.node,
                "channel": sent.channel,
                "at": format_datetime(sent.at),
                "statuses": {"sent": format_datetime(sent.at)},
            }
            writes.append(store.profiles.tx_put(history))
        # a membership goes into its profile's own write (one item once per transaction)
        memberships = {(m.profile_db, m.profile_id): m for m in changes.memberships}
        for change in changes.profiles:
            stamp = format_datetime(change.at)
            membership = memberships.pop((change.profile_db, change.profile_id), None)
            if isinstance(change, ProfileCreate):
                writes.append(
                    profile_items.create_item(
                        change.profile_db, change.profile_id, change.fields, stamp,
                        membership.members if membership else (),
                    )
                )  # fmt: skip
            else:
                writes.append(
                    profile_items.update_item(
                        change.profile_db, change.profile_id, stamp,
                        set_fields=change.set_fields, remove=change.remove, add=change.add,
                        consents=change.consents, has_consents=change.has_consents,
                        membership=(membership.was, membership.members) if membership else None,
                    )
                )  # fmt: skip
        writes.extend(_membership_write(m) for m in memberships.values())
        writes.extend(_guard_write(guard) for guard in changes.guards)
        writes.extend(_entry_write(count) for count in changes.entries)
        writes.extend(_once_write(once) for once in changes.once)
        for delta in changes.stats:
            names = {f"#c{i}": name for i, name in enumerate(delta.counters)}
            values: dict[str, Any] = {
                f":c{i}": amount for i, amount in enumerate(delta.counters.values())
            }
            expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(delta.counters)))
            if delta.firsts:  # kept at their first value
                for i, (name, at) in enumerate(delta.firsts.items()):
                    names[f"#f{i}"], values[f":f{i}"] = name, format_datetime(at)
                expression += " SET " + ", ".join(
                    f"#f{i} = if_not_exists(#f{i}, :f{i})" for i in range(len(delta.firsts))
                )
            shard = shard_of(delta.spread, STAT_SHARDS)
            key = {
                "scenario_id": delta.scenario_id,
                "sk": f"{delta.version:06d}#{delta.day}#{shard}",
            }
            writes.append(store.stats.tx_update(key, expression, names=names, values=values))
        writes.extend(_order_writes(changes))
        return writes

    # --- timers and the outbox -----------------------------------------------------------

    def due_timers(self, now: datetime) -> Iterator[Timer | EventTimer]:
        for item in _due(store.timers, "by_due", "shard", "due", now):
            yield _timer_from(item)

    def forget_timer(self, instance_id: str, step: int) -> None:
        with suppress(ConditionFailed):  # the instance has moved on to a newer timer
            store.timers.delete({"instance_id": instance_id}, "step = :s", values={":s": step})

    def overdue_rows(self, now: datetime) -> Iterator[PendingRow]:
        for item in _due(store.messages, "pending", "pending_shard", "dispatch_at", now):
            yield PendingRow(
                item["message_id"], item["queue"], messages.parse(item["payload"]),
                item["dispatch_at"],
            )  # fmt: skip

    def postpone_row(self, row: PendingRow, until: datetime) -> bool:
        try:
            store.messages.update(
                {"message_id": row.row_id},
                "SET dispatch_at = :next",
                "dispatch_at = :was",
                values={":next": epoch(until), ":was": row.dispatch_at},
            )
        except ConditionFailed:
            return False
        return True

    def consume_rows(self, row_ids: list[str]) -> None:
        store.messages.batch_delete([{"message_id": row_id} for row_id in row_ids])

    def keep_pending(self, rows: list[OutboxRow]) -> None:
        store.messages.batch_put([_row_item(row) for row in rows])

    # --- promo codes ---------------------------------------------------------------------
    # Codes are items (pool, "A#<code>") while available and (pool, "T#<code>") once taken.

    def take_code(self, pool: str, request_id: str, at: datetime) -> str | None:
        """A code and this request's record of it in one transaction; the record is read
        only when that fails or the pool is empty (a request delivered again took one)."""
        key = {"key": f"promo#{request_id}"}

        def taken_before() -> str | None:
            done = store.idempotency.get(key)
            return None if done is None else str(done["code"])

        for _ in range(20):
            available = next(
                store.promo_codes.query(
                    "pool = :p AND begins_with(code, :a)", values={":p": pool, ":a": "A#"}, limit=1
                ),
                None,
            )
            if available is None:
                return taken_before()
            code = available["code"][2:]
            taken = {"pool": pool, "code": f"T#{code}", "taken_by": request_id,
                     "taken_at": format_datetime(at)}  # fmt: skip
            try:
                transact(
                    [
                        store.promo_codes.tx_delete(
                            {"pool": pool, "code": f"A#{code}"}, "attribute_exists(code)"
                        ),
                        store.promo_codes.tx_put(taken),
                        store.idempotency.tx_put(
                            {**key, "code": code}, "attribute_not_exists(#k)", names={"#k": "key"}
                        ),
                    ]
                )
            except ConditionFailed:  # this request got one already, or someone took that code
                before = taken_before()
                if before is not None:
                    return before
                continue
            return str(code)
        raise RuntimeError(f"could not take a code from pool {pool!r}")

    def redeem_code(
        self, pool: str, code: str, profile_db: str, profile_id: str, at: datetime
    ) -> str:
        redeemed = {":at": format_datetime(at), ":by": profile_key(profile_db, profile_id)}
        taken = {"pool": pool, "code": f"T#{code}"}
        try:
            store.promo_codes.update(
                taken,
                "SET redeemed_at = :at, redeemed_by = :by",
                "attribute_exists(code) AND attribute_not_exists(redeemed_at)",
                values=redeemed,
            )
            return "redeemed"
        except ConditionFailed:
            pass
        item = {**taken, "taken_at": redeemed[":at"], "redeemed_at": redeemed[":at"],
                "redeemed_by": redeemed[":by"]}  # fmt: skip
        try:
            transact(
                [
                    store.promo_codes.tx_delete(
                        {"pool": pool, "code": f"A#{code}"}, "attribute_exists(code)"
                    ),
                    store.promo_codes.tx_put(item, "attribute_not_exists(code)"),
                ]
            )
            return "redeemed"
        except ConditionFailed:
            found = store.promo_codes.get(taken)
        if found is None:
            return "unknown"
        return "repeated" if found.get("redeemed_by") == redeemed[":by"] else "again"

    # --- event ids the API queued --------------------------------------------------------

    def events_seen(self, event_ids: list[str]) -> set[str]:
        if not event_ids:
            return set()
        keys = [_dedup_key(event_id) for event_id in event_ids]
        return {
            values["key"].removeprefix("event#") for values in store.idempotency.batch_get(keys)
        }

    def mark_events_queued(self, event_ids: list[str], at: datetime) -> None:
        marked = {"status": "queued", "at": format_datetime(at),
                  "expires_at": epoch(at + DEDUP_WINDOW)}  # fmt: skip
        store.idempotency.batch_put([{**_dedup_key(event_id), **marked} for event_id in event_ids])

    # --- sending discipline ---
    # Entry counters: `idempotency` items `entries#<scenario id>#<window start>`, expiring a
    # day after their window. Send slots: `scenarios` item `S#<id>`/`pace`, `free_at` in
    # microseconds since the epoch.

    def entries_in_window(self, scenario_id: str, window: tuple[datetime, datetime]) -> int:
        item = store.idempotency.get(_entries_key(scenario_id, window[0]))
        return int(item.get("entries", 0)) if item else 0

    def take_send_slot(self, scenario_id: str, limit: WindowLimit, now: datetime) -> datetime:
        """One UpdateItem while the scenario is busy (its next token is still to come: the
        slot is that one, the next one is `spacing` later), another when it was idle."""
        key = {"pk": f"S#{scenario_id}", "sk": "pace"}
        step, at = _micros(spacing(limit)), _micros(now - _EPOCH)
        for _ in range(20):
            with suppress(ConditionFailed):
                after = store.scenarios.update(
                    key, "SET free_at = free_at + :step", "free_at > :now",
                    returned="UPDATED_NEW", values={":step": step, ":now": at},
                )  # fmt: skip
                return _EPOCH + timedelta(microseconds=int(after["free_at"]) - step)
            with suppress(ConditionFailed):
                store.scenarios.update(
                    key, "SET free_at = :next", "attribute_not_exists(free_at) OR free_at <= :now",
                    values={":next": at + step, ":now": at},
                )  # fmt: skip
                return now
        raise RuntimeError(f"could not take a send slot of scenario {scenario_id}")

    # --- measurement ---------------------------------------------------------------------
    # The control percent is `SETTINGS`/`control` in `scenarios`; the experiment index
    # `X#experiment`/<scenario id> lists active scenarios with experiment nodes (written
    # with the trigger index); decisions are `S#<id>`/`D#<version>#<node>`.

    def control_percent(self) -> float:
        return _percent(store.scenarios.get(CONTROL_KEY))

    def set_control_percent(self, percent: float, at: datetime) -> None:
        store.scenarios.put({**CONTROL_KEY, "percent": percent, "updated_at": format_datetime(at)})

    def experiment_scenarios(self) -> list[str]:
        found = store.scenarios.query("pk = :pk", values={":pk": EXPERIMENT_INDEX})
        return [item["sk"] for item in found]

    def decisions(self, scenario_id: str, version: int) -> dict[str, ExperimentDecision]:
        found = store.scenarios.query(
            "pk = :pk AND begins_with(sk, :d)",
            values={":pk": f"S#{scenario_id}", ":d": f"D#{version:06d}#"},
        )
        return {item["node"]: _decision_from(scenario_id, item) for item in found}

    def put_decision(self, decision: ExperimentDecision) -> None:
        store.scenarios.put(
            {
                "pk": f"S#{decision.scenario_id}",
                "sk": f"D#{decision.version:06d}#{decision.node}",
                "version": decision.version,
                "node": decision.node,
                "versions": list(decision.versions),
                "winner": decision.winner,
                "decided_at": time_text(decision.decided_at),
                "decide_again_at": time_text(decision.decide_again_at),
                "p_best": decision.p_best,
            }
        )

    def version_counters(self, scenario_id: str, version: int) -> VersionCounters:
        counts: dict[str, int] = {}
        firsts: dict[str, datetime] = {}
        for item in store.stats.query(
            "scenario_id = :s AND begins_with(sk, :p)",
            values={":s": scenario_id, ":p": f"{version:06d}#"},
        ):
            for name, value in item.items():
                if name.startswith("first_"):
                    at = time_value(value)
                    if at is not None and (name not in firsts or at < firsts[name]):
                        firsts[name] = at
                elif name not in ("scenario_id", "sk"):
                    counts[name] = counts.get(name, 0) + value
        return VersionCounters(counts, firsts)

    def day_counters(self, scenario_id: str, version: int | None = None) -> Iterator[DayCounters]:
        # DynamoDB refuses an empty `begins_with` prefix: all versions is a plain key query
        if version is None:
            found = store.stats.query("scenario_id = :s", values={":s": scenario_id})
        else:
            found = store.stats.query(
                "scenario_id = :s AND begins_with(sk, :p)",
                values={":s": scenario_id, ":p": f"{version:06d}#"},
            )
        for item in found:
            stored_version, day, _ = item["sk"].split("#")
            counts = {
                name: int(value)
                for name, value in item.items()
                if name not in ("scenario_id", "sk") and not name.startswith("first_")
            }
            yield DayCounters(int(stored_version), date.fromisoformat(day), counts)

    # --- once-only records ---------------------------------------------------------------

    def once_done(self, key: str) -> bool:
        return store.idempotency.get({"key": key}) is not None

    def forget_once(self, key: str) -> None:
        store.idempotency.delete({"key": key})

    # --- promo pools ---------------------------------------------------------------------

    def add_codes(self, pool: str, codes: list[str]) -> int:
        held = {
            item["code"][2:] for item in store.promo_codes.query("pool = :p", values={":p": pool})
        }
        fresh = sorted(set(codes) - held)
        store.promo_codes.batch_put([{"pool": pool, "code": f"A#{code}"} for code in fresh])
        return len(fresh)

    def codes_left(self, pool: str) -> int:
        return sum(1 for _ in _codes(pool, "A#"))

    def pool_exists(self, pool: str) -> bool:
        found = store.promo_codes.query("pool = :p", values={":p": pool}, limit=1)
        return next(found, None) is not None

    # --- what the API reads --------------------------------------------------------------

    def version_document(self, scenario_id: str, version: int) -> dict[str, Any] | None:
        item = store.scenarios.get(store.version_key(scenario_id, version))
        return item["document"] if item else None

    def count_active(self, scenario_id: str) -> int:
        """Counted on the `by_scenario` index, one Query page (1 MB of keys) at a time."""
        arguments: dict[str, Any] = {
            "TableName": store.instances.name,
            "IndexName": "by_scenario",
            "Select": "COUNT",
            "KeyConditionExpression": "active_scenario = :s",
            "ExpressionAttributeValues": {":s": {"S": scenario_id}},
        }
        count = 0
        while True:
            answer = client("dynamodb").query(**arguments)
            count += int(answer["Count"])
            if "LastEvaluatedKey" not in answer:
                return count
            arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def messages_between(
        self, profile_db: str, profile_id: str, start: datetime, end: datetime
    ) -> list[Message]:
        """History items `M#<at>#<id>` in a key range a second wider on each side (`at`
        is kept to the microsecond, the key's text sorts by it), then checked exactly."""
        low = start.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=1)
        high = end.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        found = store.profiles.query(
            "pk = :pk AND sk BETWEEN :a AND :b",
            values={
                ":pk": store.profile_partition(profile_db, profile_id),
                ":a": f"M#{format_datetime(low)}",
                ":b": f"M#{format_datetime(high)}~",
            },
            forward=False,
        )
        sent = (message_from_values(values) for values in found)
        return [message for message in sent if start <= message.at <= end]

    def message_version(self, message_id: str) -> int | None:
        row = store.messages.get({"message_id": message_id})
        return int(row["version"]) if row and "version" in row else None

    # --- segment membership ---

    def defined_segments(self) -> dict[str, Segment]:
        return {
            item["segment_id"]: Segment.model_validate(item["definition"])
            for item in store.segments.scan()
        }

    def define_segment(self, segment_id: str, definition: dict[str, Any]) -> None:
        store.segments.put({"segment_id": segment_id, "definition": definition})

    def delete_segment(self, segment_id: str) -> bool:
        try:
            store.segments.delete({"segment_id": segment_id}, "attribute_exists(segment_id)")
        except ConditionFailed:
            return False
        return True

    def scan_profiles(self, part: int, parts: int) -> Iterable[ProfileRecord]:
        for item in store.profiles.scan(part, parts, filter="sk = :p", values={":p": "P"}):
            view = Profile(
                item["profile_id"], item.get("fields") or {}, profile_db=item["profile_db"],
                invalid=item.get("invalid") or {},
            )  # fmt: skip
            yield _record(view, item, history=False)

    def membership_run_done(self, run: str) -> bool:
        item = store.scenarios.get(MEMBERSHIP_RUN_KEY)
        return item is not None and item.get("run") == run

    def mark_membership_run(self, run: str, at: datetime) -> None:
        store.scenarios.put({**MEMBERSHIP_RUN_KEY, "run": run, "at": format_datetime(at)})

    # --- merges --------------------------------------------------------------------------
    # A merged profile's item `P` is its alias: `merged_into` (and `merged_at`), its
    # `fields` and `profile_db` gone once folded (so segment scans pass it by). A merge's
    # record is the `idempotency` item `merge#<merge id>`.

    def merged_into(self, profile_db: str, profile_id: str) -> str | None:
        item = store.profiles.get(
            profile_items.item_key(profile_db, profile_id), projection="merged_into"
        )
        return (item or {}).get("merged_into")

    def profile_state(self, profile_db: str, profile_id: str) -> ProfileState:
        """The profile item, and whether one other row of its partition exists (rows sort
        on both sides of `P`: two rows of the partition tell)."""
        item = store.profiles.get(profile_items.item_key(profile_db, profile_id))
        found = store.profiles.query(
            "pk = :pk", values={":pk": store.profile_partition(profile_db, profile_id)}, limit=2
        )
        return ProfileState(
            item is not None and "fields" in item,
            any(row["sk"] != "P" for row in found),
            (item or {}).get("merged_into"),
        )

    def begin_merge(self, record: MergeRecord, row: OutboxRow) -> MergeRecord:
        item = {
            **_merge_key(record.merge_id),
            "profile_db": record.profile_db,
            "into": record.into,
            "merged": list(record.merged),
            "started_at": format_datetime(record.started_at),
            "done": False,
        }
        with suppress(ConditionFailed):  # a retry: the record is there
            transact(
                [
                    store.idempotency.tx_put(item, "attribute_not_exists(#k)", names={"#k": "key"}),
                    store.messages.tx_put(_row_item(row), "attribute_not_exists(message_id)"),
                ]
            )
        stored = self.merge_record(record.merge_id)
        assert stored is not None
        return stored

    def merge_record(self, merge_id: str) -> MergeRecord | None:
        item = store.idempotency.get(_merge_key(merge_id))
        if item is None:
            return None
        started = time_value(item["started_at"])
        assert started is not None
        return MergeRecord(
            merge_id, item["profile_db"], item["into"], tuple(item["merged"]), started,
            bool(item.get("done")),
        )  # fmt: skip

    def finish_merge(self, merge_id: str) -> None:
        store.idempotency.update(_merge_key(merge_id), "SET done = :t", values={":t": True})

    def alias_profile(self, profile_db: str, from_id: str, into: str) -> None:
        """One transaction: the alias on `from_id`'s item, and the check that `into` is not
        merged — so two merges the other way round cannot both pass."""
        into_key = to_item(profile_items.item_key(profile_db, into))
        check = {
            "ConditionCheck": {
                "TableName": store.profiles.name,
                "Key": into_key,
                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into)",
            }
        }
        alias = store.profiles.tx_update(
            profile_items.item_key(profile_db, from_id),
            "SET merged_into = :into, merged_at = if_not_exists(merged_at, :now), profile_id = :id",
            "attribute_not_exists(merged_into) OR merged_into = :into",
            values={":into": into, ":now": format_datetime(clock_now()), ":id": from_id},
        )
        try:
            transact([check, alias])
        except ConditionFailed as failed:
            raise Conflict(f"profile {from_id} or {into} is merged into another") from failed

    def fold_profile(self, profile_db: str, from_id: str, into: str) -> None:
        source_key = profile_items.item_key(profile_db, from_id)
        target_key = profile_items.item_key(profile_db, into)
        for _ in range(FOLD_ATTEMPTS):
            source = store.profiles.get(source_key)
            if source is None or "fields" not in source:
                return
            target = store.profiles.get(target_key) or {}
            clear = store.profiles.tx_update(
                source_key,
                "REMOVE #f, profile_db, invalid",
                "updated_at = :was"
                if "updated_at" in source
                else "attribute_not_exists(updated_at)",
                names={"#f": "fields"},
                values={":was": source["updated_at"]} if "updated_at" in source else None,
            )
            try:
                transact([_fold_write(target_key, source, target), clear])
            except ConditionFailed:
                continue  # one of them changed meanwhile: fold it as it now is
            return
        raise Conflict(f"profile {from_id} kept changing while it was merged")

    def move_profile_rows(self, profile_db: str, from_id: str, into: str) -> None:
        source = store.profile_partition(profile_db, from_id)
        target = store.profile_partition(profile_db, into)
        rows = [
            row
            for row in store.profiles.query("pk = :pk", values={":pk": source})
            if row["sk"] != "P"
        ]
        held = {row["sk"] for row in store.profiles.query("pk = :pk", values={":pk": target})}
        for row in rows:  # later feedback for these messages applies to `into`
            if row["sk"].startswith("M#") and "message_id" in row:
                with suppress(ConditionFailed):  # the message's record is gone (erased)
                    store.messages.update(
                        {"message_id": row["message_id"]},
                        "SET profile_id = :into",
                        "attribute_exists(message_id)",
                        values={":into": into},
                    )
        store.profiles.batch_put([{**row, "pk": target} for row in rows if row["sk"] not in held])
        store.profiles.batch_delete([{"pk": source, "sk": row["sk"]} for row in rows])

    # --- loyalty ---
    def set_event_timer(self, timer: EventTimer) -> None:
        store.timers.put(_event_timer_item(timer))

    def forget_event_timer(self, timer_id: str) -> None:
        store.timers.delete({"instance_id": timer_id})

    # --- orders ---------------------------------------------------------------------------

    def order(self, profile_db: str, profile_id: str, order_id: str) -> StoredOrder | None:
        item = store.profiles.get(_order_key(profile_db, profile_id, order_id))
        return StoredOrder(order_from_values(item["order"]), int(item["rev"])) if item else None

    def last_ordered_at(self, profile_db: str, profile_id: str, product_id: str) -> datetime | None:
        item = store.profiles.get(_bought_key(profile_db, profile_id, product_id))
        return time_value(item.get("ordered_at")) if item else None

    def session(self, profile_db: str, profile_id: str) -> StoredSession | None:
        item = store.profiles.get(_session_key(profile_db, profile_id))
        return (
            StoredSession(session_from_values(item["session"]), int(item["rev"])) if item else None
        )

    def due_sessions(self, now: datetime) -> Iterator[SessionTimer]:
        for shard in range(settings().timer_shards):
            for item in store.timers.query(
                "shard = :s AND due <= :now", index="by_due",
                values={":s": f"{SESSION_SHARD}{shard}", ":now": epoch(now)},
            ):  # fmt: skip
                wake_at = time_value(item["wake_at"])
                assert wake_at is not None
                yield SessionTimer(item["profile_db"], item["profile_id"], wake_at)

    # --- commerce ------------------------------------------------------------------------
    # A line taken off a list stays as a removal (no `product_id`, so out of the watchers
    # index) until REMOVAL_KEPT has passed: an addition older than it is not applied.

    def product(self, product_id: str) -> StoredProduct | None:
        item = products.get({"product_id": product_id})
        if item is None:
            return None
        updated_at = time_value(item["updated_at"])
        assert updated_at is not None
        return StoredProduct(
            product_id, item.get("document") or {}, updated_at, item["version"],
            item.get("previous") or {},
        )  # fmt: skip

    def put_product(self, product: StoredProduct, fan_out: OutboxRow | None = None) -> None:
        item = {
            "product_id": product.product_id,
            "document": product.document,
            "updated_at": format_datetime(product.updated_at),
            "version": product.version,
            "previous": product.previous,
        }
        if product.version == 1:
            write = products.tx_put(item, "attribute_not_exists(product_id)")
        else:
            write = products.tx_put(item, "version = :v", values={":v": product.version - 1})
        row = [] if fan_out is None else [
            store.messages.tx_put(_row_item(fan_out), "attribute_not_exists(message_id)")
        ]  # fmt: skip
        try:
            transact([write, *row])
        except ConditionFailed as failed:
            raise Conflict(f"product {product.product_id} changed") from failed

    def list_lines(self, profile_db: str, profile_id: str, list_name: str) -> list[ListLine]:
        found = store.profiles.query(
            "pk = :pk AND begins_with(sk, :l)",
            values={
                ":pk": store.profile_partition(profile_db, profile_id),
                ":l": f"list#{_key_part(list_name)}#",
            },
        )
        lines = [_line_from(item) for item in found if "product_id" in item]
        return sorted(lines, key=lambda line: line.product_id)

    def put_line(self, profile_db: str, profile_id: str, list_name: str, line: ListLine) -> bool:
        values: dict[str, Any] = {
            ":at": format_datetime(line.at), ":q": line.quantity, ":l": list_name,
            ":p": line.product_id, ":added": format_datetime(line.added_at),
        }  # fmt: skip
        update = (
            "SET #at = :at, quantity = :q, list_name = :l, product_id = :p, "
            "added_at = if_not_exists(added_at, :added)"
        )
        if line.price is not None:
            update += ", price = if_not_exists(price, :price)"
            values[":price"] = line.price
        try:
            store.profiles.update(
                _line_key(profile_db, profile_id, list_name, line.product_id),
                update + " REMOVE expires_at, removed",
                "attribute_not_exists(sk) OR #at <= :at",
                names={"#at": "at"}, values=values,
            )  # fmt: skip
        except ConditionFailed:
            return False
        return True

    def remove_line(
        self, profile_db: str, profile_id: str, list_name: str, product_id: str, at: datetime
    ) -> bool:
        removal = {
            **_line_key(profile_db, profile_id, list_name, product_id),
            "list_name": list_name,
            "removed": product_id,
            "at": format_datetime(at),
            "expires_at": epoch(at + REMOVAL_KEPT),
        }
        try:
            store.profiles.put(
                removal, "attribute_not_exists(sk) OR #at <= :at",
                names={"#at": "at"}, values={":at": removal["at"]},
            )  # fmt: skip
        except ConditionFailed:
            return False
        return True

    def record_view(self, profile_db: str, profile_id: str, view: ProductView) -> bool:
        item = {
            "pk": store.profile_partition(profile_db, profile_id),
            "sk": f"V#{_key_part(view.product_id)}",
            "product_id": view.product_id,
            "price": view.price,
            "viewed_at": format_datetime(view.viewed_at),
            "expires_at": epoch(view.viewed_at + VIEW_KEPT),
        }
        try:
            store.profiles.put(
                item, "attribute_not_exists(sk) OR viewed_at <= :v",
                values={":v": item["viewed_at"]},
            )  # fmt: skip
        except ConditionFailed:
            return False
        return True

    def views(self, profile_db: str, profile_id: str) -> list[ProductView]:
        found = store.profiles.query(
            "pk = :pk AND begins_with(sk, :v)",
            values={":pk": store.profile_partition(profile_db, profile_id), ":v": "V#"},
        )
        return sorted((_view_from(item) for item in found), key=lambda v: v.product_id)

    def cart_stage(self, profile_db: str, profile_id: str) -> CartStage | None:
        item = store.profiles.get(_cart_key(profile_db, profile_id))
        if item is None:
            return None
        at = time_value(item["at"])
        assert at is not None
        return CartStage(item.get("stage"), at)

    def set_cart_stage(self, profile_db: str, profile_id: str, stage: CartStage) -> bool:
        item = {**_cart_key(profile_db, profile_id), "stage": stage.stage,
                "at": format_datetime(stage.at)}  # fmt: skip
        try:
            store.profiles.put(
                item, "attribute_not_exists(sk) OR #at <= :at",
                names={"#at": "at"}, values={":at": item["at"]},
            )  # fmt: skip
        except ConditionFailed:
            return False
        return True

    def watchers(
        self, product_id: str, limit: int, token: str | None = None
    ) -> tuple[list[Watch], str | None]:
        found, following = store.profiles.page(
            "query", limit, token, key_condition="product_id = :p", index="watchers",
            values={":p": product_id},
        )  # fmt: skip
        return [_watch_from(item) for item in found], following

    def signal_settings(self) -> SignalSettings:
        item = store.scenarios.get(SIGNALS_KEY)
        if item is None:
            return SignalSettings()
        return SignalSettings(**item["signals"])

    def set_signal_settings(self, signals: SignalSettings, at: datetime) -> None:
        store.scenarios.put(
            {**SIGNALS_KEY, "signals": asdict(signals), "updated_at": format_datetime(at)}
        )

    def mark_price_change(self, product_id: str, before: dict[str, Any], version: int) -> None:
        store.scenarios.update(
            {"pk": PRICE_CHANGES_PK, "sk": product_id},
            "SET #b = if_not_exists(#b, :b), version = :v, product_id = :p",
            names={"#b": "base"},
            values={":b": before, ":v": version, ":p": product_id},
        )

    def price_changes(self) -> Iterator[PriceChange]:
        for item in store.scenarios.query("pk = :pk", values={":pk": PRICE_CHANGES_PK}):
            yield PriceChange(item["product_id"], item.get("base") or {}, int(item["version"]))

    def settle_price_change(self, product_id: str, version: int, checked: dict[str, Any]) -> None:
        key = {"pk": PRICE_CHANGES_PK, "sk": product_id}
        try:
            store.scenarios.delete(key, "version = :v", values={":v": version})
        except ConditionFailed:  # changed again meanwhile: compared from `checked` next time
            with suppress(ConditionFailed):
                store.scenarios.update(
                    key,
                    "SET #b = :b",
                    "attribute_exists(pk)",
                    names={"#b": "base"},
                    values={":b": checked},
                )

    def last_price_check(self) -> datetime | None:
        item = store.scenarios.get(PRICE_CHECK_KEY)
        return time_value(item["checked_at"]) if item else None

    def mark_price_check(self, moment: datetime) -> None:
        with suppress(ConditionFailed):  # a later check is recorded
            store.scenarios.put(
                {**PRICE_CHECK_KEY, "checked_at": format_datetime(moment),
                 "checked_us": _micros(moment - _EPOCH)},
                "attribute_not_exists(pk) OR checked_us < :us",
                values={":us": _micros(moment - _EPOCH)},
            )  # fmt: skip

    def abandon_timer(
        self, profile_db: str, profile_id: str, product_id: str | None
    ) -> AbandonTimer | None:
        item = store.timers.get({"instance_id": _abandon_id(profile_db, profile_id, product_id)})
        return _abandon_timer_from(item) if item else None

    def set_abandon_timer(self, timer: AbandonTimer) -> bool:
        item = _abandon_timer_item(timer)
        try:
            store.timers.put(
                item, "attribute_not_exists(instance_id) OR changed_us < :us",
                values={":us": item["changed_us"]},
            )  # fmt: skip
        except ConditionFailed:
            return False
        return True

    def due_abandon_timers(self, now: datetime) -> Iterator[AbandonTimer]:
        for shard in range(settings().timer_shards):
            for item in store.timers.query(
                "shard = :s AND due <= :now", index="by_due",
                values={":s": f"{ABANDON_SHARD}{shard}", ":now": epoch(now)},
            ):  # fmt: skip
                yield _abandon_timer_from(item)

    def disarm_abandon_timer(self, timer: AbandonTimer) -> None:
        key = {"instance_id": _abandon_id(timer.profile_db, timer.profile_id, timer.product_id)}
        with suppress(ConditionFailed):  # a later change re-set it
            store.timers.update(
                key, "REMOVE due, #shard, wake_at", "changed_us = :us",
                names={"#shard": "shard"}, values={":us": _micros(timer.changed_at - _EPOCH)},
            )  # fmt: skip

    # --- messages on their way: the channel worker, provider feedback, profile deletion
    # A message's row moves through its states in place (`status`, the claim, `feedback`
    # {status: at}); its entry in the profile's history is `M#<deliver_at>#<message id>`.

    def outbox_message(self, message_id: str) -> MessageRow | None:
        item = store.messages.get({"message_id": message_id})
        return _message_row(item) if item and item.get("kind") in MESSAGE_KINDS else None

    def claim_message(
        self, message_id: str, at: datetime, lease_until: datetime
    ) -> MessageRow | None:
        try:
            return _message_row(self._claim(message_id, at, lease_until, "#s = :queued", {}))
        except ConditionFailed:
            return None

    def claim_if_due(
        self, message_id: str, at: datetime, lease_until: datetime, due_by: datetime
    ) -> tuple[bool, MessageRow | None]:
        # `format_datetime` writes a whole second as `…:05Z`, which sorts after the
        # fractions of that second (`…:05.3Z`). A bound written with its fraction always
        # (`…:05.000000Z`) compares right with both, but for a whole second stamp in the
        # bound's own second: that one fails the condition, and the caller decides from
        # the row as it was.
        kinds = {f":kind{n}": kind for n, kind in enumerate(MESSAGE_KINDS)}
        due = (
            f"#s = :queued AND kind IN ({', '.join(kinds)}) AND (retry_at <= :due"
            " OR attribute_not_exists(retry_at)"
            " AND (attribute_not_exists(deliver_at) OR deliver_at <= :due))"
        )
        values = {":due": due_by.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **kinds}
        try:
            item = self._claim(message_id, at, lease_until, due, values, refused=True)
        except ConditionFailed as failed:
            found = failed.item
            if found is None or found.get("kind") not in MESSAGE_KINDS:
                return False, None
            return False, _message_row(found)
        return True, _message_row(item)

    def _claim(
        self,
        message_id: str,
        at: datetime,
        lease_until: datetime,
        condition: str,
        values: dict[str, Any],
        refused: bool = False,
    ) -> dict[str, Any]:
        """The claim's write, under `condition`; `refused`: a ConditionFailed carries the
        item as it was."""
        return store.messages.update(
            {"message_id": message_id},
            "SET #s = :sending, claimed_at = :now, dispatch_at = :lease,"
            " attempts = if_not_exists(attempts, :zero) + :one,"
            " feedback = if_not_exists(feedback, :none)",
            condition,
            old_if_refused=refused,
            names={"#s": "status"},
            values={
                ":sending": "sending", ":queued": "queued", ":now": format_datetime(at),
                ":lease": epoch(lease_until), ":zero": 0, ":one": 1, ":none": {}, **values,
            },
        )  # fmt: skip

    def move_message(self, move: MessageMove) -> None:
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":to": move.status, ":held": move.held, ":claimed": format_datetime(move.claimed_at),
        }  # fmt: skip
        sets = ["#s = :to"]
        for index, (name, value) in enumerate(_move_values(move).items()):
            names[f"#v{index}"], values[f":v{index}"] = name, value
            sets.append(f"#v{index} = :v{index}")
        removed = [*(("pending_shard", "dispatch_at") if move.final else ()),
                   *(("paced_at",) if move.unpaced else ())]  # fmt: skip
        condition = "#s = :held AND claimed_at = :claimed"
        recorded = move.recorded
        if recorded is not None:
            sets.append("feedback.#f = :recorded")
            names["#f"], values[":recorded"] = (
                recorded.record.status,
                format_datetime(recorded.record.at),
            )
            condition += " AND attribute_not_exists(feedback.#f)"
        key = {"message_id": move.message_id}
        update = "SET " + ", ".join(sets) + (f" REMOVE {', '.join(removed)}" if removed else "")
        try:
            if recorded is None:
                store.messages.update(key, update, condition, names=names, values=values)
            else:
                moved = store.messages.tx_update(key, update, condition, names=names, values=values)
                transact([moved, *self._status_writes(recorded)])
        except ConditionFailed as failed:
            raise Conflict(f"message {move.message_id} moved on") from failed

    def pace_message(self, message_id: str, slot: datetime, dispatch_at: int) -> bool:
        try:
            store.messages.update(
                {"message_id": message_id},
                "SET retry_at = :slot, paced_at = :slot, dispatch_at = :dispatch",
                "#s = :queued AND attribute_not_exists(paced_at)",
                names={"#s": "status"},
                values={":slot": format_datetime(slot), ":dispatch": dispatch_at,
                        ":queued": "queued"},
            )  # fmt: skip
        except ConditionFailed:
            return False
        return True

    def mark_pushed(self, message_id: str, endpoint: str) -> None:
        store.messages.update(
            {"message_id": message_id},
            "SET pushed = list_append(if_not_exists(pushed, :none), :one)",
            values={":none": [], ":one": [endpoint]},
        )

    def sent_messages(self) -> list[MessageRow]:
        found = store.messages.scan(
            filter="#s = :sent", names={"#s": "status"}, values={":sent": "sent"}
        )
        return [_message_row(item) for item in found if item.get("kind") in MESSAGE_KINDS]

    def forget_push_subscriptions(self, profile: Profile, endpoints: list[str]) -> bool:
        item = {"profile_db": profile.profile_db, "profile_id": profile.profile_id,
                "fields": profile.fields}  # fmt: skip
        return profile_items.remove_push_subscriptions(item, endpoints)

    def mark_history(self, mark: HistoryMark) -> bool:
        names = {"#s": mark.status}
        values: dict[str, Any] = {":at": format_datetime(mark.at)}
        update = "SET statuses.#s = :at"
        if mark.reason is not None:
            update += ", reason = :reason"
            values[":reason"] = mark.reason
        if mark.replaces is not None:
            update += " REMOVE statuses.#r"
            names["#r"] = mark.replaces
        key = {
            "pk": store.profile_partition(mark.profile_db, mark.profile_id),
            "sk": f"M#{time_text(mark.sent_at)}#{mark.message_id}",
        }
        try:
            store.profiles.update(key, update, "attribute_exists(pk)", names=names, values=values)
        except ConditionFailed:
            return False
        return True

    def record_status(self, write: StatusWrite) -> None:
        """One transaction of the flag, the counters and the event's row; a row without its
        map of statuses is given one first (an UpdateItem that a concurrent report or an
        erasure may have made pointless: the transaction's condition then decides)."""
        record = write.record
        key = {"message_id": record.message_id}
        if not record.started:
            with suppress(ConditionFailed):
                store.messages.update(
                    key, "SET feedback = :empty",
                    "attribute_exists(message_id) AND attribute_not_exists(feedback)",
                    values={":empty": {}},
                )  # fmt: skip
        flag = store.messages.tx_update(
            key,
            "SET feedback.#s = :at",
            "attribute_exists(message_id) AND attribute_not_exists(feedback.#s)",
            names={"#s": record.status},
            values={":at": format_datetime(record.at)},
        )
        try:
            transact([flag, *self._status_writes(write)])
        except ConditionFailed as failed:
            raise Conflict(f"{record.status} of message {record.message_id}") from failed

    def _status_writes(self, write: StatusWrite) -> list[dict[str, Any]]:
        """A recorded status's writes beside its flag: the counters, the event's row."""
        return self._writes(write.changes())

    def erase_profile(self, profile_db: str, profile_id: str, instance_ids: list[str]) -> bool:
        partition = store.profile_partition(profile_db, profile_id)
        rows = list(store.profiles.query("pk = :pk", values={":pk": partition}))
        for instance_id in instance_ids:
            store.timers.delete({"instance_id": instance_id})
            store.instances.delete({"instance_id": instance_id})
        for row in rows:
            if row["sk"].startswith("M#"):
                store.messages.delete({"message_id": row["message_id"]})
        store.profiles.batch_delete([{"pk": partition, "sk": row["sk"]} for row in rows])
        return bool(rows or instance_ids)

    # --- scenarios, versions, schedules and segments
    # In `scenarios`: the metadata `S#<id>`/`meta` (with `name`, `tags` and `search` for
    # the list's filter), versions `S#<id>`/`V#<version>`, the schedule index
    # `SCHEDULE`/`<scenario id>#<trigger id>` (`last_run`, `next_run`: "none" once it has
    # no run left).

    def listeners_listed(self) -> bool:
        return self._is_listed(LISTED)

    def add_listeners(self, scenario_id: str, event_types: Iterable[str]) -> None:
        _add_to_listeners(ADD_LISTENER, scenario_id, event_types)

    def mark_listeners_listed(self) -> None:
        self._mark_listed(LISTED)

    def triggers_listed(self) -> bool:
        return self._is_listed(TRIGGERS_LISTED)

    def add_triggers(self, scenario_id: str, event_types: Iterable[str]) -> None:
        _add_to_listeners(ADD_TRIGGERED, scenario_id, event_types)

    def mark_triggers_listed(self) -> None:
        self._mark_listed(TRIGGERS_LISTED)

    def _is_listed(self, marker: dict[str, str]) -> bool:
        if not self._listed[marker["sk"]]:
            self._listed[marker["sk"]] = store.scenarios.get(marker) is not None
        return self._listed[marker["sk"]]

    def _mark_listed(self, marker: dict[str, str]) -> None:
        store.scenarios.put({**marker, "at": format_datetime(clock_now())})
        self._listed[marker["sk"]] = True

    def scenario_record(self, scenario_id: str) -> ScenarioRecord | None:
        item = store.scenarios.get(store.scenario_key(scenario_id))
        return _scenario_from(item) if item else None

    def save_scenario(self, change: ScenarioChange) -> None:
        """One TransactWriteItems (one plain write for a new scenario's metadata)."""
        writes = []
        if change.version is not None:
            writes.append(
                store.scenarios.tx_put(_version_item(change.version), "attribute_not_exists(pk)")
            )
        meta = _meta_item(change.record)
        if change.seen is None:
            writes.append(store.scenarios.tx_put(meta, "attribute_not_exists(pk)"))
        else:
            seen = {":seen": format_datetime(change.seen)}
            writes.append(store.scenarios.tx_put(meta, "updated_at = :seen", values=seen))
        writes.extend(_index_writes(change.listed, change.unlisted))
        try:
            transact(writes)
        except ConditionFailed as failed:
            raise Conflict(str(failed)) from failed

    def scenario_page(
        self, where: ScenarioFilter, read: int, token: str | None
    ) -> tuple[list[ScenarioRecord], str | None]:
        """A Scan (scenarios are few) whose filter DynamoDB applies after reading.
        Attribute names go through placeholders: `status`, `group` and `search` are
        reserved words; the group is read from the document itself."""
        _check_token(token, pk=_any_text, sk=_any_text)
        condition, values, names = _scenario_filter(where)
        items, following = store.scenarios.page(
            "scan", read, token, filter=condition, values=values, names=names or None
        )
        return [_scenario_from(item) for item in items], following

    def token_after(self, record: ScenarioRecord) -> str:
        return encode_token(to_item(store.scenario_key(record.scenario_id)))

    def versions_page(
        self, scenario_id: str, limit: int, token: str | None
    ) -> tuple[list[VersionRecord], str | None]:
        partition = f"S#{scenario_id}"
        _check_token(token, pk=lambda pk: pk == partition, sk=lambda sk: sk.startswith("V#"))
        items, following = store.scenarios.page(
            "query",
            limit,
            token,
            key_condition="pk = :pk AND begins_with(sk, :v)",
            values={":pk": partition, ":v": "V#"},
        )
        return [_version_from(scenario_id, item) for item in items], following

    def active_instance_ids(self, scenario_id: str) -> list[str]:
        found = store.instances.query(
            "active_scenario = :s", index="by_scenario", values={":s": scenario_id}
        )
        return [values["instance_id"] for values in found]

    def instances_at_node(self, scenario_id: str, node: str) -> list[str]:
        found = store.instances.query(
            "node_key = :k", index="by_node", values={":k": f"{scenario_id}#{node}"}
        )
        return [values["instance_id"] for values in found]

    def node_page(
        self, scenario_id: str, node: str, limit: int, token: str | None
    ) -> tuple[list[AtNode], str | None]:
        node_key = f"{scenario_id}#{node}"
        _check_token(
            token,
            instance_id=_any_text,
            node_key=lambda key: key == node_key,
            node_entered_at=_any_text,
        )
        items, following = store.instances.page(
            "query",
            limit,
            token,
            index="by_node",
            key_condition="node_key = :k",
            values={":k": node_key},
        )
        return [_at_node_from(item) for item in items], following

    def schedules(self) -> list[ScheduleEntry]:
        found = store.scenarios.query("pk = :pk", values={":pk": SCHEDULE_PK})
        return [_schedule_from(item) for item in found]

    def claim_schedule_run(
        self, entry: ScheduleEntry, now: datetime, next_run: datetime | None
    ) -> bool:
        try:
            store.scenarios.update(
                schedule_key(entry.scenario_id, entry.trigger_id),
                "SET last_run = :now, next_run = :next",
                "next_run = :was",
                values={
                    ":now": format_datetime(now),
                    ":was": time_text(entry.next_run),
                    ":next": format_datetime(next_run) if next_run else NO_RUN,
                },
            )
        except ConditionFailed:
            return False
        return True

    def next_due(self, after: datetime) -> datetime | None:
        """The first item after `after` of each shard of the due-time indexes (a Query
        of one item each), and the schedule index (one Query)."""
        candidates: list[datetime] = []
        for number in map(str, range(settings().timer_shards)):
            for shard, table, index, hash_key, range_key in (
                (number, store.timers, "by_due", "shard", "due"),
                (ABANDON_SHARD + number, store.timers, "by_due", "shard", "due"),
                (SESSION_SHARD + number, store.timers, "by_due", "shard", "due"),
                (number, store.messages, "pending", "pending_shard", "dispatch_at"),
            ):
                first = next(
                    table.query(
                        f"{hash_key} = :s AND {range_key} > :t",
                        index=index,
                        values={":s": shard, ":t": epoch(after)},
                        limit=1,
                    ),
                    None,
                )
                if first is not None:
                    candidates.append(datetime.fromtimestamp(first[range_key], UTC))
        candidates.extend(
            entry.next_run
            for entry in self.schedules()
            if entry.next_run is not None and entry.next_run > after
        )
        return min(candidates, default=None)

    def profile_items_estimate(self) -> int:
        """DynamoDB's item count of the profiles table (updated about every six hours)."""
        table = client("dynamodb").describe_table(TableName=store.profiles.name)["Table"]
        return int(table.get("ItemCount", 0))

    def segment_definition(self, segment_id: str, consistent: bool = True) -> dict[str, Any] | None:
        item = store.segments.get({"segment_id": segment_id}, consistent=consistent)
        return item["definition"] if item else None

    def segment_profiles(
        self, profile_db: str, part: int = 0, parts: int | None = None
    ) -> Iterator[Profile]:
        """A Scan of the profile items of the database (one parallel Scan segment of
        `parts`, else the whole table)."""
        for item in store.profiles.scan(
            part if parts else None,
            parts,
            filter="sk = :p AND profile_db = :db",
            values={":p": "P", ":db": profile_db},
        ):
            yield Profile(item["profile_id"], item.get("fields") or {}, profile_db=profile_db)


def _due(
    table: Table, index: str, shard_key: str, time_key: str, now: datetime
) -> Iterator[dict[str, Any]]:
    """The items of a sharded time index due by `now`: one Query per shard, however long
    the sweeper was away."""
    for shard in map(str, range(settings().timer_shards)):
        yield from table.query(
            f"{shard_key} = :s AND {time_key} <= :now",
            index=index,
            values={":s": shard, ":now": epoch(now)},
        )


def _codes(pool: str, prefix: str) -> Iterator[dict[str, Any]]:
    return store.promo_codes.query(
        "pool = :p AND begins_with(code, :c)", values={":p": pool, ":c": prefix}
    )


def _once_write(once: Once) -> dict[str, Any]:
    return store.idempotency.tx_put(
        {"key": once.key, "at": format_datetime(once.at), "expires_at": epoch(once.expires)},
        "attribute_not_exists(#k)",
        names={"#k": "key"},
    )


def _dedup_key(event_id: str) -> dict[str, str]:
    return {"key": f"event#{event_id}"}


def _event_item(profile_db: str, profile_id: str, event: Event) -> dict[str, Any]:
    """The event's item in the profile's history: `E#<occurred at>#<event id>`."""
    return {
        "pk": store.profile_partition(profile_db, profile_id),
        "sk": f"E#{format_datetime(event.occurred_at)}#{event.id}",
        **event_to_values(event),
        "expires_at": epoch(event.occurred_at + EVENT_HISTORY),
    }


def _guard_key(profile_db: str, profile_id: str, scenario_id: str) -> dict[str, str]:
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": f"C#{scenario_id}"}


def _guard_from(item: dict[str, Any] | None) -> CaptureGuard | None:
    return CaptureGuard(item.get("captures", 0), item.get("latest")) if item else None


def _guard_write(guard: GuardWrite) -> dict[str, Any]:
    key = _guard_key(guard.profile_db, guard.profile_id, guard.scenario_id)
    item = {**key, "captures": guard.written().captures, "latest": guard.latest}
    if guard.expected is None:
        return store.profiles.tx_put(item, "attribute_not_exists(pk)")
    return store.profiles.tx_put(item, "captures = :n", values={":n": guard.expected})


def _timer_item(timer: Timer) -> dict[str, Any]:
    due = epoch(timer.wake_at) + (1 if timer.wake_at.microsecond else 0)  # never early
    return {
        "instance_id": timer.instance_id,
        "scenario_id": timer.scenario_id,
        "step": timer.step,
        "wake_at": format_datetime(timer.wake_at),
        "due": due,
        "shard": shard_of(timer.instance_id),
        "expires_at": due,
    }


def _row_item(row: OutboxRow) -> dict[str, Any]:
    item: dict[str, Any] = {
        "message_id": row.row_id,
        "kind": row.kind,
        "profile_db": row.profile_db,
        "profile_id": row.profile_id,
        "created_at": format_datetime(row.created_at),
        **row.values,
    }
    if row.instance is not None:
        item.update(
            instance_id=row.instance.instance_id,
            scenario_id=row.instance.scenario_id,
            version=row.instance.version,
        )
    if row.dispatch is not None:
        item.update(
            queue=row.dispatch.queue,
            payload=row.dispatch.message.model_dump(mode="json", exclude_none=True),
            deliver_at=time_text(row.dispatch.deliver_at),
            pending_shard=shard_of(row.row_id),
            dispatch_at=epoch(row.dispatch.dispatch_at),
        )
    return item


def shard_of(key: str, shards: int | None = None) -> str:
    """One of `shards` (the timer shards unless given), stable for the key."""
    count = shards or settings().timer_shards
    return str(hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % count)


# --- sending discipline ---
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENTRIES_KEPT = timedelta(days=1)  # an entry counter outlives its window by this


def _micros(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def _entries_key(scenario_id: str, start: datetime) -> dict[str, str]:
    return {"key": f"entries#{scenario_id}#{format_datetime(start)}"}


def _entry_write(count: EntryCount) -> dict[str, Any]:
    """One more capture in the window, unless `max` are counted already."""
    return store.idempotency.tx_update(
        _entries_key(count.scenario_id, count.window[0]),
        "ADD entries :one SET expires_at = :expires",
        "attribute_not_exists(entries) OR entries < :max",
        values={":one": 1, ":max": count.max, ":expires": epoch(count.window[1] + ENTRIES_KEPT)},
    )


def _meta(scenario_id: str, item: dict[str, Any] | None) -> ScenarioMeta | None:
    """A scenario's status and current version from its metadata item."""
    if item is None:
        return None
    return ScenarioMeta(scenario_id, item.get("status", "draft"), item.get("version", 0))


def _fields_record(profile_db: str, profile_id: str, item: dict[str, Any] | None) -> ProfileRecord:
    """The record of a profile's item alone (no history)."""
    view = Profile(profile_id, profile_db=profile_db)
    if item is not None:
        view.fields = item.get("fields") or {}
        view.invalid = item.get("invalid") or {}
    return _record(view, item, history=False)


def _record(view: Profile, item: dict[str, Any] | None, history: bool = True) -> ProfileRecord:
    consents = (item or {}).get("fields", {}).get("consents")
    segments = tuple((item or {}).get("segments") or ())
    exists = item is not None and "fields" in item  # not a merged profile's alias
    merged_into = (item or {}).get("merged_into")
    return ProfileRecord(view, exists, isinstance(consents, dict), segments, merged_into, history)


# --- measurement ---

CONTROL_KEY = {"pk": "SETTINGS", "sk": "control"}
EXPERIMENT_INDEX = "X#experiment"


def _percent(control: dict[str, Any] | None) -> float:
    """The control percent from its settings item (none: 0)."""
    return float(control.get("percent", 0)) if control else 0.0


def _decision_from(scenario_id: str, item: dict[str, Any]) -> ExperimentDecision:
    return ExperimentDecision(
        scenario_id,
        item["version"],
        item["node"],
        tuple(item.get("versions") or [item["version"]]),
        item.get("winner"),
        time_value(item.get("decided_at")),
        time_value(item.get("decide_again_at")),
        dict(item.get("p_best") or {}),
    )


# --- commerce ---

products = Table("products")
SIGNALS_KEY = {"pk": "SETTINGS", "sk": "signals"}
# Scheduled price checks: the moment of the latest, and one item per product changed since
# it (`PRICES`/<product>: `base`, the document at that check, and `version`, its latest).
PRICE_CHECK_KEY = {"pk": "SETTINGS", "sk": "price_check"}
PRICE_CHANGES_PK = "PRICES"


def _key_part(name: str) -> str:
    """A list name or product id inside a sort key: `%` and `#` percent-encoded, so
    `list#a#b#c` cannot be read two ways."""
    return name.replace("%", "%25").replace("#", "%23")


def _line_key(profile_db: str, profile_id: str, list_name: str, product_id: str) -> dict[str, str]:
    return {
        "pk": store.profile_partition(profile_db, profile_id),
        "sk": f"list#{_key_part(list_name)}#{_key_part(product_id)}",
    }


def _cart_key(profile_db: str, profile_id: str) -> dict[str, str]:
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": "CART"}


def _moment(text: Any) -> datetime:
    moment = time_value(text)
    assert moment is not None
    return moment


def _profile_of(partition: str) -> tuple[str, str]:
    """(database, id) of a profile partition `P#<database>#<id>` (see `profile_key`)."""
    database, _, profile_id = partition.removeprefix("P#").partition("#")
    return database.replace("%23", "#").replace("%25", "%"), profile_id


def _line_from(item: dict[str, Any]) -> ListLine:
    return ListLine(
        item["product_id"], item["quantity"], item.get("price"), _moment(item["added_at"]),
        _moment(item["at"]),
    )  # fmt: skip


def _view_from(item: dict[str, Any]) -> ProductView:
    return ProductView(item["product_id"], item.get("price"), _moment(item["viewed_at"]))


def _watch_from(item: dict[str, Any]) -> Watch:
    """A watcher from its row: the profile from the partition key, whichever profile the
    row was written for (a merge moves rows from one partition to another)."""
    viewed = item["sk"].startswith("V#")
    profile_db, profile_id = _profile_of(item["pk"])
    return Watch(
        profile_db, profile_id, item["product_id"],
        "viewed" if viewed else item["list_name"], item.get("price"),
        _moment(item["viewed_at"] if viewed else item["added_at"]),
    )  # fmt: skip


# --- segment membership ---
# Definitions: `segments` items by id (`definition`). Membership: the profile item's
# `segments` list, absent when none. The latest daily run: `scenarios` item
# `SETTINGS`/`membership_run`.

MEMBERSHIP_RUN_KEY = {"pk": "SETTINGS", "sk": "membership_run"}


def _membership_write(write: MembershipWrite) -> dict[str, Any]:
    return profile_items.membership_item(
        write.profile_db, write.profile_id, write.was, write.members
    )


# --- merges ---

FOLD_ATTEMPTS = 5


def _merge_key(merge_id: str) -> dict[str, str]:
    return {"key": f"merge#{merge_id}"}


def _fold_write(
    key: dict[str, str], source: dict[str, Any], target: dict[str, Any]
) -> dict[str, Any]:
    """The update adding `source`'s fields (and invalid addresses) `target` lacks: each
    set only if not there, consents channel by channel when `target` has a map of them."""
    names: dict[str, str] = {"#f": "fields"}
    values: dict[str, Any] = {":now": format_datetime(clock_now())}
    sets: list[str] = ["updated_at = :now"]
    conditions = ["attribute_exists(#f)", "attribute_not_exists(merged_into)"]
    fields = source.get("fields") or {}
    target_consents = (target.get("fields") or {}).get("consents")
    for index, (name, value) in enumerate(fields.items()):
        names[f"#n{index}"] = name
        if name == "consents" and isinstance(value, dict) and isinstance(target_consents, dict):
            conditions.append(f"attribute_type(#f.#n{index}, :map)")
            for channel_index, (channel, granted) in enumerate(value.items()):
                path = f"#f.#n{index}.#c{channel_index}"
                names[f"#c{channel_index}"] = channel
                values[f":c{channel_index}"] = granted
                sets.append(f"{path} = if_not_exists({path}, :c{channel_index})")
        else:
            if name == "consents":
                conditions.append(f"NOT attribute_type(#f.#n{index}, :map)")
            values[f":v{index}"] = value
            sets.append(f"#f.#n{index} = if_not_exists(#f.#n{index}, :v{index})")
    invalid = source.get("invalid") or {}
    if invalid and isinstance(target.get("invalid"), dict):
        conditions.append("attribute_type(invalid, :map)")
        for index, (channel, address) in enumerate(invalid.items()):
            names[f"#i{index}"] = channel
            values[f":i{index}"] = address
            sets.append(f"invalid.#i{index} = if_not_exists(invalid.#i{index}, :i{index})")
    elif invalid:
        conditions.append("attribute_not_exists(invalid)")
        values[":invalid"] = invalid
        sets.append("invalid = :invalid")
    if any(":map" in condition for condition in conditions):
        values[":map"] = "M"
    return store.profiles.tx_update(
        key, "SET " + ", ".join(sets), " AND ".join(conditions), names=names, values=values
    )


# --- loyalty ---

EVENT_TIMER = "event"  # the `kind` of a derived event's timer in the timers table


def _event_timer_item(timer: EventTimer) -> dict[str, Any]:
    due = epoch(timer.due_at) + (1 if timer.due_at.microsecond else 0)  # never early
    return {
        "instance_id": timer.timer_id,
        "kind": EVENT_TIMER,
        "event": timer.event.wire(),
        "wake_at": format_datetime(timer.due_at),
        "due": due,
        "shard": shard_of(timer.timer_id),
        "expires_at": due,
    }


def _timer_from(item: dict[str, Any]) -> Timer | EventTimer:
    """An instance's wake-up, or a derived event's timer, from its item."""
    wake_at = time_value(item["wake_at"])
    assert wake_at is not None
    if item.get("kind") == EVENT_TIMER:
        return EventTimer(item["instance_id"], wake_at, messages.parse_event(item["event"]))
    return Timer(item["instance_id"], item["scenario_id"], item["step"], wake_at)


def expired_timer(image: Mapping[str, Any]) -> Timer | EventTimer | None:
    """The timer a TTL deletion took, from the old image of its stream record (DynamoDB
    JSON): None for an abandonment timer, whose TTL only clears it (the sweeper fires
    those)."""
    item = from_item(image)
    return None if item.get("kind") == ABANDON_TIMER else _timer_from(item)


# --- abandonment ---
# A cart's or a viewed product's abandonment timer is the timers table's item
# `abandon#<profile>#cart` / `abandon#<profile>#view#<product>`, in the due-time index
# under shards `abandon-<n>` while it is armed; fired or ended, it stays out of the index
# (for its change, so an older change delivered late does not arm it again) until its
# TTL, a backstop the TTL stream handler ignores for this kind.
ABANDON_SHARD = "abandon-"
ABANDON_TIMER = "abandon"


def _abandon_id(profile_db: str, profile_id: str, product_id: str | None) -> str:
    what = "cart" if product_id is None else f"view#{_key_part(product_id)}"
    return f"abandon#{profile_key(profile_db, profile_id)}#{what}"


def _abandon_timer_item(timer: AbandonTimer) -> dict[str, Any]:
    timer_id = _abandon_id(timer.profile_db, timer.profile_id, timer.product_id)
    item: dict[str, Any] = {
        "instance_id": timer_id, "kind": ABANDON_TIMER, "profile_db": timer.profile_db,
        "profile_id": timer.profile_id, "changed_at": format_datetime(timer.changed_at),
        "changed_us": _micros(timer.changed_at - _EPOCH),
        "expires_at": epoch(timer.changed_at + VIEW_KEPT),
    }  # fmt: skip
    if timer.product_id is not None:
        item["product_id"] = timer.product_id
    if timer.due_at is not None:
        item["wake_at"] = format_datetime(timer.due_at)
        item["due"] = epoch(timer.due_at) + (1 if timer.due_at.microsecond else 0)  # never early
        item["shard"] = ABANDON_SHARD + shard_of(timer_id)
    return item


def _abandon_timer_from(item: dict[str, Any]) -> AbandonTimer:
    changed_at = time_value(item["changed_at"])
    assert changed_at is not None
    return AbandonTimer(
        item["profile_db"], item["profile_id"], item.get("product_id"), changed_at,
        time_value(item.get("wake_at")),
    )  # fmt: skip


# --- orders ---
# In the profile's partition: `order#<order id>` holds the order's state with `rev`;
# `B#<product id>` when the profile last ordered the product (`ordered_at`, and
# `ordered_us`, microseconds since the epoch, for the condition that keeps the latest);
# with no `product_id` attribute, so the sparse `watchers` index holds lines and views only.


def _order_key(profile_db: str, profile_id: str, order_id: str) -> dict[str, str]:
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": f"order#{order_id}"}


def _bought_key(profile_db: str, profile_id: str, product_id: str) -> dict[str, str]:
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": f"B#{product_id}"}


def _order_writes(changes: Changes) -> list[dict[str, Any]]:
    writes = []
    for write in changes.orders:
        key = _order_key(write.profile_db, write.profile_id, write.stored.state.order_id)
        item = {**key, "rev": write.stored.rev, "order": order_to_values(write.stored.state)}
        if write.rev is None:
            writes.append(store.profiles.tx_put(item, "attribute_not_exists(pk)"))
        else:
            writes.append(store.profiles.tx_put(item, "rev = :rev", values={":rev": write.rev}))
    writes.extend(_ordered_write(ordered) for ordered in changes.ordered)
    for session in changes.sessions:
        writes.extend(_session_writes(session))
    return writes


def _ordered_write(ordered: ProductOrdered) -> dict[str, Any]:
    item = {
        **_bought_key(ordered.profile_db, ordered.profile_id, ordered.product_id),
        "ordered_at": format_datetime(ordered.at),
        "ordered_us": _micros(ordered.at - _EPOCH),
    }
    return store.profiles.tx_put(
        item, "attribute_not_exists(ordered_us) OR ordered_us <= :us",
        values={":us": item["ordered_us"]},
    )  # fmt: skip


# Sessions: `W#session` in the profile's partition holds the open session with `rev`
# (past the profile item, so the engine's view never reads it); its timer is the timers
# table's item `session#<profile>`, in the due-time index under shards `session-<n>` (so
# instance timers and session timers are swept apart) and without a TTL attribute.
SESSION_SHARD = "session-"


def _session_key(profile_db: str, profile_id: str) -> dict[str, str]:
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": "W#session"}


def _session_writes(write: SessionWrite) -> list[dict[str, Any]]:
    key = _session_key(write.profile_db, write.profile_id)
    condition = "attribute_not_exists(pk)" if write.rev is None else "rev = :rev"
    values = {} if write.rev is None else {":rev": write.rev}
    timer_key = {"instance_id": f"session#{profile_key(write.profile_db, write.profile_id)}"}
    if write.stored is None:
        return [
            store.profiles.tx_delete(key, condition, values=values),
            store.timers.tx_delete(timer_key),
        ]
    item = {**key, "rev": write.stored.rev, "session": session_to_values(write.stored.state)}
    writes = [store.profiles.tx_put(item, condition, values=values)]
    if write.ends_at is not None:
        due = epoch(write.ends_at) + (1 if write.ends_at.microsecond else 0)  # never early
        timer = {
            **timer_key, "kind": "session", "profile_db": write.profile_db,
            "profile_id": write.profile_id, "wake_at": format_datetime(write.ends_at),
            "due": due, "shard": SESSION_SHARD + shard_of(timer_key["instance_id"]),
        }  # fmt: skip
        writes.append(store.timers.tx_put(timer))
    return writes


# --- messages on their way ---

MESSAGE_KINDS = ("message", "webhook")  # the outbox rows that go to a channel
_MESSAGE_TIMES = ("claimed_at", "retry_at", "paced_at", "sent_at", "ended_at")


def _message_row(item: dict[str, Any]) -> MessageRow:
    """A message's row from its item (its outbox bookkeeping left out)."""
    values = {
        name: value for name, value in item.items()
        if name not in ("pending_shard", "dispatch_at", "created_at")
    }  # fmt: skip
    feedback = values.pop("feedback", None)
    return MessageRow(
        values.pop("message_id"), values.pop("kind"), values.pop("status", None),
        values.pop("profile_db"), values.pop("profile_id"), values.pop("scenario_id"),
        int(values.pop("version")), values.pop("node"), values.pop("channel", None),
        values.pop("instance_id", None), values.pop("queue", None), values.pop("payload", None),
        time_value(values.pop("deliver_at", None)),
        attempts=int(values.pop("attempts", 0)),
        feedback=None if feedback is None else {s: _moment(at) for s, at in feedback.items()},
        pushed=tuple(values.pop("pushed", None) or ()),
        result=values.pop("result", None),
        last_error=values.pop("last_error", None),
        **{name: time_value(values.pop(name, None)) for name in _MESSAGE_TIMES},
        values=values,
    )  # fmt: skip


def _move_values(move: MessageMove) -> dict[str, Any]:
    """The attributes a move sets besides the status, as stored (None ones left out)."""
    values = {
        "sent_at": time_text(move.sent_at), "ended_at": time_text(move.ended_at),
        "provider_id": move.provider_id, "reason": move.reason, "result": move.result,
        "retry_at": time_text(move.retry_at), "dispatch_at": move.dispatch_at,
        "last_error": move.last_error,
    }  # fmt: skip
    return {name: value for name, value in values.items() if value is not None}


# --- scenarios and schedules ---

SCHEDULE_PK = "SCHEDULE"
NO_RUN = "none"  # a schedule entry's `next_run` once its trigger has no run left


def schedule_key(scenario_id: str, trigger_id: str) -> dict[str, str]:
    return {"pk": SCHEDULE_PK, "sk": f"{scenario_id}#{trigger_id}"}


def _meta_item(record: ScenarioRecord) -> dict[str, Any]:
    return {
        **store.scenario_key(record.scenario_id),
        "scenario_id": record.scenario_id,
        "status": record.status,
        "version": record.version,
        "document": record.document,
        "name": record.name,
        "tags": record.tags,
        "search": record.search,
        "created_at": format_datetime(record.created_at),
        "updated_at": format_datetime(record.updated_at),
        "webhook_secret": record.webhook_secret,
        "activated_at": time_text(record.activated_at),
        "stopped_at": time_text(record.stopped_at),
        "status_before_trash": record.status_before_trash,
    }


def _scenario_from(item: dict[str, Any]) -> ScenarioRecord:
    return ScenarioRecord(
        item["scenario_id"], item.get("status", "draft"), item.get("version", 0),
        item.get("document") or {}, _moment(item["created_at"]), _moment(item["updated_at"]),
        item.get("webhook_secret"), time_value(item.get("activated_at")),
        time_value(item.get("stopped_at")), item.get("status_before_trash"),
    )  # fmt: skip


def _version_item(version: VersionRecord) -> dict[str, Any]:
    return {
        **store.version_key(version.scenario_id, version.version),
        "version": version.version,
        "document": version.document,
        "created_at": format_datetime(version.created_at),
    }


def _version_from(scenario_id: str, item: dict[str, Any]) -> VersionRecord:
    return VersionRecord(
        scenario_id, item["version"], item.get("document") or {}, _moment(item["created_at"])
    )


def _scenario_filter(where: ScenarioFilter) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The Scan filter keeping the metadata items that `where` keeps."""
    conditions, values, names = ["sk = :meta"], {":meta": "meta"}, {}
    if where.groups:
        scope = ", ".join(f":scope{index}" for index in range(len(where.groups)))
        conditions.append(f"#document.#group IN ({scope})")
        values.update({f":scope{index}": group for index, group in enumerate(where.groups)})
        names.update({"#document": "document", "#group": "group"})
    if where.status:
        conditions.append("#status = :status")
        values[":status"], names["#status"] = where.status, "status"
    if where.tag:
        conditions.append("contains(#tags, :tag)")
        values[":tag"], names["#tags"] = where.tag, "tags"
    if where.group:
        conditions.append("#document.#group = :group")
        values[":group"], names["#document"], names["#group"] = where.group, "document", "group"
    if where.q:
        conditions.append("contains(#search, :q)")
        values[":q"], names["#search"] = where.q.lower(), "search"
    return " AND ".join(conditions), values, names


def _index_writes(
    listed: TriggerIndex | None, unlisted: TriggerIndex | None
) -> list[dict[str, Any]]:
    """Transaction items putting `listed`'s index entries and deleting `unlisted`'s others."""
    puts = _index_items(listed) if listed is not None else []
    kept = {(item["pk"], item["sk"]) for item in puts}
    gone = [
        {"pk": item["pk"], "sk": item["sk"]}
        for item in (_index_items(unlisted) if unlisted is not None else [])
        if (item["pk"], item["sk"]) not in kept
    ]
    listens = set(listed.listens) if listed else set()
    triggers = set(listed.event_types) if listed else set()
    untriggered = set(unlisted.event_types) - triggers if unlisted else set()
    owner = {":s": {index.scenario_id for index in (listed, unlisted) if index is not None}}
    listeners = []
    for event_type in sorted(listens | triggers | untriggered):  # each item once a transaction
        added = [name for name, wanted in (("scenarios", listens), ("triggered", triggers))
                 if event_type in wanted]  # fmt: skip
        clauses = ["ADD " + ", ".join(f"{name} :s" for name in added)] if added else []
        if event_type in untriggered:
            clauses.append("DELETE triggered :s")
        listeners.append(
            store.scenarios.tx_update(_listeners_key(event_type), " ".join(clauses), values=owner)
        )
    return [
        *(store.scenarios.tx_put(item) for item in puts),
        *(store.scenarios.tx_delete(key) for key in gone),
        *listeners,
    ]


# The listened event types: an item per type, `L#<type>`/`L`, with the set of scenarios
# whose journeys listen to it (`engine.listened_types`), added to at every activation and
# live edit and never taken from; `LISTED` says every scenario saved so far is in them.
LISTED = {"pk": "L#", "sk": "listed"}
ADD_LISTENER = "ADD scenarios :s"
# The same items hold `triggered`, the set of active scenarios with an event trigger on
# the type (added at activation, taken out when it stops or a version drops the trigger),
# which `read_ahead` reads in place of querying the trigger index `E#<type>` once
# `TRIGGERS_LISTED` says the active scenarios saved before it are in them.
TRIGGERS_LISTED = {"pk": "L#", "sk": "triggers"}
ADD_TRIGGERED = "ADD triggered :s"


def _add_to_listeners(update: str, scenario_id: str, event_types: Iterable[str]) -> None:
    """Add the scenario to a set (`update`: ADD_LISTENER or ADD_TRIGGERED) of each type's
    listener item."""
    for event_type in event_types:
        store.scenarios.update(_listeners_key(event_type), update, values={":s": {scenario_id}})


def _listeners_key(event_type: str) -> dict[str, str]:
    return {"pk": f"L#{event_type}", "sk": "L"}


def _index_items(index: TriggerIndex) -> list[dict[str, Any]]:
    """The trigger index `E#<type>`/<id>, the experiment index, the schedule index."""
    items: list[dict[str, Any]] = [
        {"pk": f"E#{event_type}", "sk": index.scenario_id} for event_type in index.event_types
    ]
    if index.experiment:
        items.append({"pk": EXPERIMENT_INDEX, "sk": index.scenario_id})
    items.extend(
        {
            **schedule_key(entry.scenario_id, entry.trigger_id),
            "scenario_id": entry.scenario_id,
            "trigger_id": entry.trigger_id,
            "last_run": format_datetime(entry.last_run),
            "next_run": time_text(entry.next_run),
        }
        for entry in index.schedules
    )
    return items


def _schedule_from(item: dict[str, Any]) -> ScheduleEntry:
    return ScheduleEntry(
        item["scenario_id"], item["trigger_id"], _moment(item["last_run"]),
        time_value(item.get("next_run")),
    )  # fmt: skip


def _at_node_from(item: dict[str, Any]) -> AtNode:
    return AtNode(
        item["instance_id"], item["profile_id"], time_value(item.get("node_entered_at")),
        time_value(item.get("wake_at")),
    )  # fmt: skip


def _any_text(_: str) -> bool:
    return True


def _check_token(token: str | None, **key: Callable[[str], bool]) -> None:
    """Refuse a page token that is not one of this list's (`UnknownToken`): it must decode
    to a start key of exactly the attributes `key` names, each a non-empty string that
    its test accepts (else DynamoDB would refuse it, or read outside the list)."""
    if token is None:
        return
    try:
        start = decode_token(token)
    except BadToken as error:
        raise UnknownToken(str(error)) from None
    for value in start.values():
        ((kind, text),) = value.items()
        if kind not in ("S", "N", "B") or not isinstance(text, str):
            raise UnknownToken("not a token this API issued")
    if set(start) != set(key) or not all(
        "S" in value and value["S"] and key[name](value["S"]) for name, value in start.items()
    ):
        raise UnknownToken("not a token this API issued for this list")
