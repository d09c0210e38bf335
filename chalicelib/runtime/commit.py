"""Committing engine steps: one transaction, then dispatch.

A step's instance, its profile update, its timer, its statistics and every outgoing
message (sends, webhook calls, promo code requests, emitted events, jumps) are written
in one TransactWriteItems. Outgoing messages are rows of the `messages` table — the
outbox — in its sparse `pending` index. After the commit they are dispatched to their
queues; a consumer takes a row out of `pending` when it handles it, and the sweeper
re-dispatches rows still pending past their `dispatch_at` (a crash between commit and
dispatch, or a send held until quiet hours end).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters import profiles as profile_items
from chalicelib.adapters import store
from chalicelib.adapters.codec import event_to_values, instance_to_values, time_text
from chalicelib.adapters.dynamo import transact
from chalicelib.adapters.queues import MAX_DELAY_SECONDS, send_batch
from chalicelib.config import settings
from chalicelib.engine import (
    CallWebhook,
    CountStat,
    EmitEvent,
    Instance,
    Jump,
    Send,
    SendSkipped,
    SetTimer,
    Step,
    TakePromoCode,
    UpdateProfile,
)
from chalicelib.scenarios.durations import format_datetime

logger = logging.getLogger(__name__)

REDISPATCH_AFTER = timedelta(minutes=15)  # a dispatched row still pending then is sent again
STAT_SHARDS = 8


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def shard_of(key: str, shards: int) -> str:
    return str(hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % shards)


@dataclass
class Outgoing:
    queue: str
    body: dict[str, Any]
    delay: int = 0


@dataclass
class Commit:
    """The writes and dispatches of one or more steps, built up and then applied."""

    now: datetime
    items: list[dict[str, Any]] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    _stats: dict[tuple[str, int, str], dict[str, int]] = field(default_factory=dict)

    def add(
        self,
        step: Step,
        before: Instance | None,
        rev: int | None,
        seen: list[str] | None = None,
        stored_profile: dict[str, Any] | None = None,
    ) -> None:
        """Add a step. `rev` is the instance's stored revision (None: a new instance);
        `stored_profile` the profile's item as the step read it (None: there was none)."""
        instance = step.instance
        condition = "attribute_not_exists(instance_id)" if rev is None else "rev = :rev"
        self.items.append(
            store.instances.tx_put(
                instance_to_values(instance, (rev or 0) + 1, seen or []),
                condition,
                values={":rev": rev} if rev is not None else None,
            )
        )
        if before is not None and before.active and before.version != instance.version:
            self._move(before, instance.version)
        updates: list[UpdateProfile] = []
        timer: SetTimer | None = None
        for effect in step.effects:
            match effect:
                case SetTimer():
                    timer = effect
                case Send():
                    self._send(instance, effect)
                case SendSkipped():
                    self._outbox_row(
                        effect.message_id,
                        "message",
                        instance,
                        None,
                        channel=effect.channel,
                        node=effect.node,
                        status="skipped",
                        reason=effect.reason,
                    )
                    self._count_skipped(instance, effect)
                case CallWebhook():
                    self._call_webhook(instance, effect)
                case TakePromoCode():
                    body = {
                        "kind": "promo",
                        "instance_id": instance.instance_id,
                        "step": effect.step,
                        "pool": effect.pool,
                        "request_id": effect.request_id,
                    }
                    self._outbox_row(
                        _row_id("promo", effect.request_id), "promo", instance, ("steps", body)
                    )
                case EmitEvent():
                    body = {
                        "kind": "event",
                        "event": {
                            **event_to_values(effect.event),
                            "profile_db": effect.profile_db,
                            "profile_id": effect.profile_id,
                        },
                    }
                    self._outbox_row(
                        _row_id("event", effect.event.id or ""), "event", instance, ("events", body)
                    )
                case Jump():
                    body = {
                        "kind": "capture",
                        "scenario_id": effect.scenario_id,
                        "node": effect.node,
                        "profile_db": effect.profile_db,
                        "profile_id": effect.profile_id,
                        "event": event_to_values(effect.event),
                    }
                    self._outbox_row(
                        _row_id("jump", effect.event.id or ""), "jump", instance, ("steps", body)
                    )
                case UpdateProfile():
                    updates.append(effect)
                case CountStat():
                    self._count(instance, effect)
        if timer is not None and timer.step == instance.step and instance.wake_at is not None:
            self._set_timer(instance, timer)
        elif before is not None and before.wake_at is not None and instance.wake_at is None:
            self.items.append(store.timers.tx_delete({"instance_id": instance.instance_id}))
        if updates:
            assert step.profile is not None
            self._update_profile(updates, step.profile.fields, stored_profile)

    # --- effects -----------------------------------------------------------------------

    def _send(self, instance: Instance, send: Send) -> None:
        at = send.deliver_at or self.now
        self._outbox_row(
            send.message_id,
            "message",
            instance,
            (send.channel, {"kind": "message", "message_id": send.message_id}),
            deliver_at=at,
            channel=send.channel,
            node=send.node,
            status="queued",
            to=send.to,
            subject=send.subject,
            body=send.body,
            html=send.html,
            title=send.title,
            url=send.url,
            sender=send.sender,
            ttl_seconds=int(send.ttl.total_seconds()) if send.ttl else None,
            variant=send.variant,
            recheck=True if send.recheck else None,  # the channel worker evaluates it again
        )
        history = {
            "pk": store.profile_partition(instance.profile_db, instance.profile_id),
            "sk": f"M#{format_datetime(at)}#{send.message_id}",
            "message_id": send.message_id,
            "scenario_id": instance.scenario_id,
            "instance_id": instance.instance_id,
            "node": send.node,
            "channel": send.channel,
            "at": format_datetime(at),
            "statuses": {"sent": format_datetime(at)},
        }
        self.items.append(store.profiles.tx_put(history))

    def _call_webhook(self, instance: Instance, call: CallWebhook) -> None:
        row_id = _row_id("webhook", call.request_id)
        self._outbox_row(
            row_id,
            "webhook",
            instance,
            ("webhook", {"kind": "webhook", "message_id": row_id}),
            node=call.node,
            status="queued",
            step=call.step,
            method=call.method,
            url=call.url,
            headers=call.headers,
            body=call.body,
            timeout_seconds=call.timeout.total_seconds(),
        )

    def _outbox_row(
        self,
        row_id: str,
        kind: str,
        instance: Instance,
        dispatch: tuple[str, dict[str, Any]] | None,
        deliver_at: datetime | None = None,
        **values: Any,
    ) -> None:
        """A `messages` row; with `dispatch` (queue, body) it is pending until consumed."""
        row: dict[str, Any] = {
            "message_id": row_id,
            "kind": kind,
            "instance_id": instance.instance_id,
            "scenario_id": instance.scenario_id,
            "version": instance.version,
            "profile_db": instance.profile_db,
            "profile_id": instance.profile_id,
            "created_at": format_datetime(self.now),
            **values,
        }
        if dispatch is not None:
            queue, body = dispatch
            body = {**body, "row_id": row_id}
            due = deliver_at or self.now
            delay = int((due - self.now).total_seconds())
            # without precise delays (virtual time) anything later goes through the sweeper
            soon = delay <= 0 or (settings().precise_delays and delay <= MAX_DELAY_SECONDS)
            row.update(
                queue=queue,
                payload=body,
                deliver_at=time_text(due),
                pending_shard=shard_of(row_id, settings().timer_shards),
                dispatch_at=epoch(self.now + REDISPATCH_AFTER if soon else due),
            )
            if soon:
                self.outgoing.append(Outgoing(queue, body, max(0, delay)))
        self.items.append(store.messages.tx_put(row, "attribute_not_exists(message_id)"))

    def _set_timer(self, instance: Instance, timer: SetTimer) -> None:
        due = epoch(timer.wake_at) + (1 if timer.wake_at.microsecond else 0)  # never early
        item = {
            "instance_id": instance.instance_id,
            "scenario_id": instance.scenario_id,
            "step": timer.step,
            "wake_at": format_datetime(timer.wake_at),
            "due": due,
            "shard": shard_of(instance.instance_id, settings().timer_shards),
            "expires_at": due,
        }
        self.items.append(store.timers.tx_put(item))
        delay = (timer.wake_at - self.now).total_seconds()
        if settings().precise_delays and delay <= MAX_DELAY_SECONDS:
            # SQS delays are whole seconds. Rounded up, a wake-up comes up to a second late;
            # rounded down, early, and the steps consumer waits out the rest (steps.wake).
            # Down unless that wait would be 0.75 s or more: then at most 0.25 s late.
            seconds = math.floor(delay)
            if delay - seconds >= 0.75:
                seconds += 1
            body = {
                "kind": "wake",
                "instance_id": instance.instance_id,
                "step": timer.step,
                "wake_at": format_datetime(timer.wake_at),
            }
            self.outgoing.append(Outgoing("steps", body, max(0, seconds)))

    def _update_profile(
        self, updates: list[UpdateProfile], final: dict[str, Any], stored: dict[str, Any] | None
    ) -> None:
        """The step's profile changes as one write of the fields they touch (the engine's
        `final` fields are written whole only when the profile did not exist yet)."""
        first = updates[0]
        stamp = format_datetime(self.now)
        if stored is None:  # captured before it was ever upserted: the engine's view is all of it
            self.items.append(
                profile_items.create_item(first.profile_db, first.profile_id, final, stamp)
            )
            return
        values: dict[str, Any] = {}
        removed: list[str] = []
        added: dict[str, float] = {}
        consents: dict[str, bool] = {}
        for update in updates:  # later operations win, as the engine applied them
            for name, value in update.set.items():
                values[name] = value
                added.pop(name, None)
                removed = [r for r in removed if r != name]
            for name in update.remove:
                values.pop(name, None)
                added.pop(name, None)
                removed.append(name)
            for name, amount in update.add.items():
                if name in values:
                    values[name] = final.get(name)
                else:
                    added[name] = added.get(name, 0) + amount
            consents.update(update.consents)
        if consents and "consents" in values:  # the map itself was set: write it as it ends
            values["consents"] = final.get("consents") or {}
            consents = {}
        self.items.append(
            profile_items.update_item(
                first.profile_db,
                first.profile_id,
                stamp,
                set_fields=values,
                remove=removed,
                add=added,
                consents=consents,
                has_consents=isinstance((stored.get("fields") or {}).get("consents"), dict),
            )
        )

    def _count(self, instance: Instance, stat: CountStat) -> None:
        name = stat.name if stat.node is None else f"{stat.name}|{stat.node}"
        self._add(instance, instance.version, name)

    def _count_skipped(self, instance: Instance, skipped: SendSkipped) -> None:
        from .stats import channel_counter  # stats builds on this module

        self._add(
            instance, instance.version, channel_counter("skipped", skipped.channel, skipped.node)
        )

    def _move(self, before: Instance, version: int) -> None:
        """The step moved an instance onto a newer `version` of its scenario (a live edit):
        its old version counts it out and the new one in, at the node it is on, so that each
        version's `active` and nodes' `current` count the profiles now in it; in the sum
        over versions the two cancel out."""
        for counted_in, counter in ((before.version, "moved_out"), (version, "moved_in")):
            self._add(before, counted_in, counter)
            if before.node is not None:
                self._add(before, counted_in, f"node_{counter}|{before.node}")

    def _add(self, instance: Instance, version: int, name: str) -> None:
        key = (instance.scenario_id, version, shard_of(instance.instance_id, STAT_SHARDS))
        counters = self._stats.setdefault(key, {})
        counters[name] = counters.get(name, 0) + 1

    # --- applying ----------------------------------------------------------------------

    def write_items(self) -> list[dict[str, Any]]:
        """Every write of the commit, statistics last."""
        day = self.now.date().isoformat()
        items = list(self.items)
        for (scenario_id, version, shard), counters in self._stats.items():
            names = {f"#c{i}": name for i, name in enumerate(counters)}
            values = {f":c{i}": amount for i, amount in enumerate(counters.values())}
            expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counters)))
            key = {"scenario_id": scenario_id, "sk": f"{version:06d}#{day}#{shard}"}
            items.append(store.stats.tx_update(key, expression, names=names, values=values))
        return items

    def apply(self) -> None:
        """Write atomically, then dispatch. A failed condition raises and writes nothing."""
        transact(self.write_items())
        self.dispatch()

    def dispatch(self) -> None:
        by_queue: dict[str, list[tuple[dict[str, Any], int]]] = {}
        for outgoing in self.outgoing:
            by_queue.setdefault(outgoing.queue, []).append((outgoing.body, outgoing.delay))
        for queue, batch in by_queue.items():
            send_batch(queue, batch)


def _row_id(kind: str, key: str) -> str:
    return f"{kind}-" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
