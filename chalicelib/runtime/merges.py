"""Profile merges (SPEC §7 `profile.merged`): `POST /profiles/{db}/merge`.

A merge of `from` profiles into `into` is a record first (its id derives from the
database, `into` and the sorted `from`, so the same request is the same merge), with a
pending outbox row that brings a `Merge` message to the steps queue if the request dies
on the way. Then each step, each safe to repeat, for every `from` profile:

1. **alias** — its item becomes an alias of `into`: from then on events, upserts and
   reads of it resolve to `into` (`resolve`);
2. **fold** — the fields `into` lacks are added to it (`into` wins; consents channel
   by channel), and the `from` item keeps only the alias;
3. **rows** — every other row of its partition (history, messages, and whatever else a
   profile holds) moves to `into`'s, a row `into` has already keeping `into`'s, and the
   records of its messages point at `into` (later feedback applies to `into`);

then the **instances**: in each scenario the active instance furthest along survives —
the one whose current node was entered latest (`node_entered_at`; then the higher step,
then the instance id) — and the other active ones exit with reason `merged`; every
instance of a `from` profile, ended or not, moves to `into`. Last, `profile.merged` is
emitted for `into` (`data.merged`: the ids, `data.derived`: true) with an id derived from
the merge's, so a retry announces it once, and the record is marked done.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.clock import now as clock_now
from chalicelib.engine import EXITED, Instance, Step, end
from chalicelib.scenarios.facts import Event, Profile

from .commit import Commit
from .messages import EventBody, EventMessage, Merge
from .storage import Conflict, Dispatch, MergeRecord, OutboxRow, StoredInstance
from .unit_of_work import UnitOfWork

MAX_MERGED = 100  # `from` ids of one merge
RESUME_AFTER = timedelta(minutes=1)  # a merge a crash left is finished by the steps queue
ATTEMPTS = 5
MERGED = "merged"  # the exit reason of the instances that do not survive
ALIAS_HOPS = 10  # a chain of merges followed this far


class MergeRefused(ValueError):
    """A merge the API refuses, nothing changed: `status` and the field at fault."""

    def __init__(self, status: int, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.status = status


def merge_id(profile_db: str, into: str, merged: list[str]) -> str:
    """The merge's idempotency key: the same database, `into` and `from` ids, one merge."""
    key = json.dumps([profile_db, into, sorted(set(merged))], separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def event_id(record: MergeRecord) -> str:
    return f"profile.merged:{record.merge_id}"


def merge(profile_db: str, into: str, merged: list[str], uow: UnitOfWork | None = None) -> dict:
    """Merge the `merged` profiles into `into`, or finish that merge if it was begun."""
    uow = uow or UnitOfWork()
    ids = sorted(set(merged))
    _check(uow, profile_db, into, merged)
    now = clock_now()
    record = MergeRecord(merge_id(profile_db, into, ids), profile_db, into, tuple(ids), now)
    row_id = f"merge-{record.merge_id}"
    message = Merge(merge_id=record.merge_id, row_id=row_id)
    row = OutboxRow(
        row_id, "merge", now, profile_db, into,
        dispatch=Dispatch("steps", message, now, now + RESUME_AFTER),
    )  # fmt: skip
    record = uow.storage.begin_merge(record, row)
    if not record.done:
        try:
            run(uow, record)
        except Conflict as raced:  # another merge took one of these profiles first
            raise MergeRefused(409, "$.from", str(raced)) from None
    uow.consume_row(row_id)
    return {"into": into, "merged": list(record.merged), "event_id": event_id(record)}


def finish(uow: UnitOfWork, message: Merge) -> None:
    """The steps queue's `Merge`: finish a merge a crash left half done."""
    record = uow.storage.merge_record(message.merge_id)
    if record is not None and not record.done:
        run(uow, record)


def run(uow: UnitOfWork, record: MergeRecord) -> None:
    """Every step of the merge, each of them idempotent."""
    storage, db = uow.storage, record.profile_db
    for from_id in record.merged:
        storage.alias_profile(db, from_id, record.into)
    for from_id in record.merged:
        storage.fold_profile(db, from_id, record.into)
        storage.move_profile_rows(db, from_id, record.into)
    settle_instances(uow, record)
    uow.send("events", [_announcement(record)])
    uow.flush()
    storage.finish_merge(record.merge_id)


def furthest_along(instance: Instance) -> tuple[datetime, int, str]:
    """The order of "furthest along": the current node entered latest, then the higher
    step, then the instance id (so every retry picks the same one)."""
    return (instance.node_entered_at or instance.entered_at, instance.step, instance.instance_id)


def settle_instances(uow: UnitOfWork, record: MergeRecord) -> None:
    """One active instance per scenario survives; every `from` instance moves to `into`."""
    db, into = record.profile_db, record.into
    found = [
        stored.instance
        for profile_id in (into, *record.merged)
        for stored in uow.storage.instances_of_profile(db, profile_id)
    ]
    active: dict[str, list[Instance]] = {}
    for instance in found:
        if instance.active:
            active.setdefault(instance.scenario_id, []).append(instance)
    losers = {
        instance.instance_id
        for instances in active.values()
        for instance in sorted(instances, key=furthest_along)[:-1]
    }
    for instance in found:
        if instance.instance_id in losers or instance.profile_id != into:
            _settle(uow, instance.instance_id, into, instance.instance_id in losers)


def _settle(uow: UnitOfWork, instance_id: str, into: str, ends: bool) -> None:
    """End the instance with reason `merged` (when `ends`) and move it to `into`."""
    for _ in range(ATTEMPTS):
        uow.forget_instance(instance_id)
        stored: StoredInstance | None = uow.instance(instance_id)
        if stored is None:
            return
        instance = stored.instance
        ending = ends and instance.active
        if instance.profile_id == into and not ending:
            return
        now = clock_now()
        if ending:
            scenario = uow.version(instance.scenario_id, instance.version)
            step = end(scenario, instance, now, EXITED, MERGED)
        else:
            step = Step(instance.copy(), [], Profile(into, profile_db=instance.profile_db))
        step.instance.profile_id = into
        commit = Commit(now)
        commit.add(step, stored)
        try:
            uow.commit(commit)
        except Conflict:
            continue
        return
    raise Conflict(f"instance {instance_id} kept changing while it was merged")


def _announcement(record: MergeRecord) -> EventMessage:
    data: dict[str, Any] = {"merged": list(record.merged), "derived": True}
    event = Event("profile.merged", record.started_at, data, id=event_id(record))
    return EventMessage(
        profile_db=record.profile_db, profile_id=record.into, event=EventBody.of(event)
    )


def _check(uow: UnitOfWork, profile_db: str, into: str, merged: list[str]) -> None:
    """Refuse what cannot be merged, naming the field."""
    if not merged:
        raise MergeRefused(400, "$.from", "name at least one profile to merge")
    if len(merged) > MAX_MERGED:
        raise MergeRefused(400, "$.from", f"at most {MAX_MERGED} profiles in one merge")
    if into in merged:
        raise MergeRefused(400, f"$.from[{merged.index(into)}]", "is `into` itself")
    target = uow.storage.profile_state(profile_db, into)
    if target.merged_into is not None:
        raise MergeRefused(409, "$.into", f"was merged into {target.merged_into!r}")
    if not target.exists:
        raise MergeRefused(404, "$.into", f"no profile {into!r} in {profile_db!r}")
    for index, from_id in enumerate(merged):
        state = uow.storage.profile_state(profile_db, from_id)
        if state.merged_into not in (None, into):
            raise MergeRefused(409, f"$.from[{index}]", f"was merged into {state.merged_into!r}")
        if not (state.exists or state.history or state.merged_into):
            raise MergeRefused(404, f"$.from[{index}]", f"no profile {from_id!r} in {profile_db!r}")


def resolve(uow: UnitOfWork, profile_db: str, profile_id: str) -> str:
    """The profile events, upserts and reads of `profile_id` apply to: itself, or the
    profile it was merged into (along a chain of merges). A profile the unit of work has
    read answers from that read; else only its alias is read."""
    for _ in range(ALIAS_HOPS):
        merged_into = uow.merged_into(profile_db, profile_id)
        if merged_into is None:
            return profile_id
        profile_id = merged_into
    return profile_id
