"""The storage port on DynamoDB: the item layout, the indexes and the expressions.

- `scenarios`: `S#<id>`/`meta` (status, version), `S#<id>`/`V#<version>` (documents),
  the trigger index `E#<event type>`/`<scenario id>`.
- `profiles`, one partition per profile: `P` (fields), `M#<at>#<message id>` (messages
  sent), `E#<at>#<event id>` (events), `C#<scenario id>` (capture guards).
- `instances` by id, with the sparse indexes `by_profile`, `by_scenario`, `by_node`.
- `timers` by instance, in the sharded due-time index `by_due`.
- `messages`: the outbox, pending rows in the sharded `pending` index.
- `stats`: counters per scenario, `<version>#<day>#<shard>`.
- `idempotency`: event ids queued by the API, promo codes taken per request, once-only
  records (`Once`: their key as it is).

A commit is one TransactWriteItems (one plain write when it holds a single item).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.config import settings
from chalicelib.engine.compiled import CompiledScenario, WindowLimit
from chalicelib.runtime import messages
from chalicelib.runtime.commit import epoch
from chalicelib.runtime.pacing import spacing
from chalicelib.runtime.storage import (
    CaptureGuard,
    Changes,
    Conflict,
    DayCounters,
    EntryCount,
    ExperimentDecision,
    GuardWrite,
    Once,
    OutboxRow,
    PendingRow,
    ProfileCreate,
    ProfileRecord,
    ScenarioMeta,
    StoredInstance,
    Timer,
    VersionCounters,
)
from chalicelib.scenarios.durations import format_datetime
from chalicelib.scenarios.facts import Event, Message, Profile

from . import profiles as profile_items
from . import store
from .aws import client
from .codec import (
    event_from_values,
    event_to_values,
    instance_from_values,
    instance_to_values,
    message_from_values,
    profile_key,
    time_text,
    time_value,
)
from .dynamo import ConditionFailed, Table, transact

EVENT_LIMIT = 300  # the newest events the engine sees per profile
MESSAGE_LIMIT = 200  # and the newest messages
EVENT_HISTORY = timedelta(days=400)  # how long a profile keeps its events
STAT_SHARDS = 8  # items a scenario version's counters of one day are spread over
DEDUP_WINDOW = timedelta(days=7)  # how long an event id the API queued is remembered


class DynamoStorage:
    """`Storage` on the stack's tables (names from the settings)."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, int], CompiledScenario] = {}
        self._lock = threading.Lock()

    # --- scenarios -----------------------------------------------------------------------

    def scenario(self, scenario_id: str) -> ScenarioMeta | None:
        item = store.scenarios.get(store.scenario_key(scenario_id))
        if item is None:
            return None
        return ScenarioMeta(scenario_id, item.get("status", "draft"), item.get("version", 0))

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

    def scenarios_for_event(self, event_type: str) -> list[str]:
        found = store.scenarios.query("pk = :pk", values={":pk": f"E#{event_type}"})
        return [item["sk"] for item in found]

    # --- profiles ------------------------------------------------------------------------

    def profile(self, profile_db: str, profile_id: str) -> ProfileRecord:
        """One Query, newest first, from the profile item through its messages and events;
        a second one for the events only when messages filled the first."""
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
        consents = (item or {}).get("fields", {}).get("consents")
        return ProfileRecord(view, item is not None, isinstance(consents, dict))

    def record_event(self, profile_db: str, profile_id: str, event: Event) -> None:
        store.profiles.put(
            {
                "pk": store.profile_partition(profile_db, profile_id),
                "sk": f"E#{format_datetime(event.occurred_at)}#{event.id}",
                **event_to_values(event),
                "expires_at": epoch(event.occurred_at + EVENT_HISTORY),
            }
        )

    # --- instances -----------------------------------------------------------------------

    def instance(self, instance_id: str) -> StoredInstance | None:
        values = store.instances.get({"instance_id": instance_id})
        return StoredInstance(*instance_from_values(values)) if values else None

    def instances_of_profile(
        self, profile_db: str, profile_id: str, scenario_id: str | None = None
    ) -> list[StoredInstance]:
        condition = "profile_key = :p"
        values: dict[str, Any] = {":p": profile_key(profile_db, profile_id)}
        if scenario_id is not None:
            condition += " AND begins_with(scenario_key, :s)"
            values[":s"] = f"{scenario_id}#"
        found = store.instances.query(condition, index="by_profile", values=values)
        return [StoredInstance(*instance_from_values(v)) for v in found]

    def capture_guard(
        self, profile_db: str, profile_id: str, scenario_id: str
    ) -> CaptureGuard | None:
        item = store.profiles.get(_guard_key(profile_db, profile_id, scenario_id))
        return CaptureGuard(item.get("captures", 0), item.get("latest")) if item else None

    # --- commit --------------------------------------------------------------------------

    def commit(self, changes: Changes) -> None:
        try:
            transact(self._writes(changes))
        except ConditionFailed as failed:
            raise Conflict(str(failed)) from failed

    def _writes(self, changes: Changes) -> list[dict[str, Any]]:
        writes: list[dict[str, Any]] = []
        for write in changes.instances:
            item = instance_to_values(write.stored.instance, write.stored.rev, write.stored.seen)
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
        for change in changes.profiles:
            stamp = format_datetime(change.at)
            if isinstance(change, ProfileCreate):
                writes.append(
                    profile_items.create_item(
                        change.profile_db, change.profile_id, change.fields, stamp
                    )
                )
            else:
                writes.append(
                    profile_items.update_item(
                        change.profile_db, change.profile_id, stamp,
                        set_fields=change.set_fields, remove=change.remove, add=change.add,
                        consents=change.consents, has_consents=change.has_consents,
                    )
                )  # fmt: skip
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
        return writes

    # --- timers and the outbox -----------------------------------------------------------

    def due_timers(self, now: datetime) -> Iterator[Timer]:
        for item in _due(store.timers, "by_due", "shard", "due", now):
            wake_at = time_value(item["wake_at"])
            assert wake_at is not None
            yield Timer(item["instance_id"], item["scenario_id"], item["step"], wake_at)

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

    def consume_row(self, row_id: str) -> None:
        store.messages.delete({"message_id": row_id})

    def keep_pending(self, rows: list[OutboxRow]) -> None:
        store.messages.batch_put([_row_item(row) for row in rows])

    # --- promo codes ---------------------------------------------------------------------
    # Codes are items (pool, "A#<code>") while available and (pool, "T#<code>") once taken.

    def take_code(self, pool: str, request_id: str, at: datetime) -> str | None:
        key = {"key": f"promo#{request_id}"}
        for _ in range(20):
            done = store.idempotency.get(key)
            if done is not None:
                return str(done["code"])
            available = next(
                store.promo_codes.query(
                    "pool = :p AND begins_with(code, :a)", values={":p": pool, ":a": "A#"}, limit=1
                ),
                None,
            )
            if available is None:
                return None
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
            except ConditionFailed:
                continue  # someone took that code, or this request already got one: look again
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
            return "again" if store.promo_codes.get(taken) is not None else "unknown"

    # --- event ids the API queued --------------------------------------------------------

    def events_seen(self, event_ids: list[str]) -> set[str]:
        if not event_ids:
            return set()
        keys = [_dedup_key(event_id) for event_id in event_ids]
        return {
            values["key"].removeprefix("event#") for values in store.idempotency.batch_get(keys)
        }

    def mark_event_queued(self, event_id: str, at: datetime) -> None:
        values = {**_dedup_key(event_id), "status": "queued", "at": format_datetime(at),
                  "expires_at": epoch(at + DEDUP_WINDOW)}  # fmt: skip
        with suppress(ConditionFailed):  # seen already, by a retry
            store.idempotency.put(values, "attribute_not_exists(#k)", names={"#k": "key"})

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
        item = store.scenarios.get(CONTROL_KEY)
        return float(item.get("percent", 0)) if item else 0.0

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


def _guard_key(profile_db: str, profile_id: str, scenario_id: str) -> dict[str, str]:
    return {"pk": store.profile_partition(profile_db, profile_id), "sk": f"C#{scenario_id}"}


def _guard_write(guard: GuardWrite) -> dict[str, Any]:
    key = _guard_key(guard.profile_db, guard.profile_id, guard.scenario_id)
    item = {**key, "captures": (guard.expected or 0) + 1, "latest": guard.latest}
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


# --- measurement ---

CONTROL_KEY = {"pk": "SETTINGS", "sk": "control"}
EXPERIMENT_INDEX = "X#experiment"


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
