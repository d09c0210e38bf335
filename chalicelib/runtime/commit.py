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

from . import messages
from .storage import (
    Changes,
    Dispatch,
    EntryCount,
    GuardWrite,
    InstanceWrite,
    OutboxRow,
    ProfileCreate,
    ProfileRecord,
    ProfileUpdate,
    SentMessage,
    StatsDelta,
    StoredInstance,
    Timer,
)

logger = logging.getLogger(__name__)

REDISPATCH_AFTER = timedelta(minutes=15)  # a dispatched row still pending then is sent again


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


MAX_DELAY_SECONDS = 900  # SQS's limit on a message's delay: 15 minutes


@dataclass(frozen=True)
class Outgoing:
    """A queue message to send once the commit is written."""

    queue: str
    message: messages.QueueMessage
    delay: int = 0


@dataclass
class Commit:
    """The writes and dispatches of one or more steps, built up and then committed."""

    now: datetime
    changes: Changes = field(default_factory=Changes)
    outgoing: list[Outgoing] = field(default_factory=list)
    _stats: dict[tuple[str, int], tuple[str, dict[str, int]]] = field(default_factory=dict)
    _firsts: dict[tuple[str, int], dict[str, datetime]] = field(default_factory=dict)
    # per profile: its updates in the order the steps made them, its fields after the last,
    # and the profile as the first step read it (one write per profile and commit)
    _profiles: dict[tuple[str, str], tuple[list[UpdateProfile], dict[str, Any],
                                           ProfileRecord | None]] = field(default_factory=dict)  # fmt: skip

    def add(
        self,
        step: Step,
        before: StoredInstance | None,
        event_id: str | None = None,
        profile: ProfileRecord | None = None,
    ) -> None:
        """Add a step of the instance read as `before` (None: a new instance); `event_id`
        is the event it applied, `profile` the profile as the step read it."""
        instance = step.instance
        seen = [*(before.seen if before else []), *([event_id] if event_id else [])]
        rev = before.rev if before else None
        self.changes.instances.append(
            InstanceWrite(StoredInstance(instance, (rev or 0) + 1, seen), rev)
        )
        old = before.instance if before else None
        if old is not None and old.active and old.version != instance.version:
            self._move(old, instance.version)
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
                        effect.message_id, "message", instance, None,
                        channel=effect.channel, node=effect.node, status="skipped",
                        reason=effect.reason,
                    )  # fmt: skip
                    self._count_skipped(instance, effect)
                case CallWebhook():
                    self._call_webhook(instance, effect)
                case TakePromoCode():
                    request = messages.PromoRequest(
                        instance_id=instance.instance_id, scenario_id=instance.scenario_id,
                        step=effect.step, pool=effect.pool, request_id=effect.request_id,
                    )  # fmt: skip
                    self._outbox_row(
                        _row_id("promo", effect.request_id), "promo", instance, ("steps", request)
                    )
                case EmitEvent():
                    emitted = messages.EventMessage(
                        profile_db=effect.profile_db, profile_id=effect.profile_id,
                        event=messages.EventBody.of(effect.event),
                    )  # fmt: skip
                    self._outbox_row(
                        _row_id("event", effect.event.id or ""), "event", instance,
                        ("events", emitted),
                    )  # fmt: skip
                case Jump():
                    capture = messages.Capture(
                        scenario_id=effect.scenario_id, node=effect.node,
                        profile_db=effect.profile_db, profile_id=effect.profile_id,
                        event=messages.EventBody.of(effect.event),
                    )  # fmt: skip
                    self._outbox_row(
                        _row_id("jump", effect.event.id or ""), "jump", instance,
                        ("steps", capture),
                    )  # fmt: skip
                case UpdateProfile():
                    updates.append(effect)
                case CountStat():
                    self._count(instance, effect)
        if timer is not None and timer.step == instance.step and instance.wake_at is not None:
            self._set_timer(instance, timer)
        elif old is not None and old.wake_at is not None and instance.wake_at is None:
            self.changes.timers_gone.append(instance.instance_id)
        if updates:
            assert step.profile is not None
            key = (updates[0].profile_db, updates[0].profile_id)
            earlier, _, read = self._profiles.get(key, ([], {}, profile))
            self._profiles[key] = ([*earlier, *updates], step.profile.fields, read)

    def guard(
        self, profile_db: str, profile_id: str, scenario_id: str, latest: str,
        expected: int | None,
    ) -> None:  # fmt: skip
        """Count a capture on the profile's guard for the scenario, expecting `expected`
        captures counted so far (None: no guard yet): of two captures at once, the second
        fails its commit and decides again."""
        self.changes.guards.append(
            GuardWrite(profile_db, profile_id, scenario_id, latest, expected)
        )

    def count_entry(self, scenario_id: str, window: tuple[datetime, datetime], max: int) -> None:
        """Count a capture in the scenario's entry-limit window; the commit fails when
        `max` are counted already (another capture took the last place)."""
        self.changes.entries.append(EntryCount(scenario_id, window, max))

    # --- effects -----------------------------------------------------------------------

    def _send(self, instance: Instance, send: Send) -> None:
        at = send.deliver_at or self.now
        self._outbox_row(
            send.message_id, "message", instance,
            (
                send.channel,
                messages.Deliver(
                    message_id=send.message_id, scenario_id=instance.scenario_id,
                    version=instance.version, profile_db=instance.profile_db,
                    profile_id=instance.profile_id,
                ),
            ),
            deliver_at=at, channel=send.channel, node=send.node, status="queued", to=send.to,
            subject=send.subject, body=send.body, html=send.html, title=send.title,
            url=send.url, sender=send.sender,
            ttl_seconds=int(send.ttl.total_seconds()) if send.ttl else None,
            variant=send.variant,
            recheck=True if send.recheck else None,  # the channel worker evaluates it again
        )  # fmt: skip
        self.changes.history.append(
            SentMessage(
                instance.profile_db, instance.profile_id, send.message_id, instance.scenario_id,
                instance.instance_id, send.node, send.channel, at,
            )
        )  # fmt: skip

    def _call_webhook(self, instance: Instance, call: CallWebhook) -> None:
        row_id = _row_id("webhook", call.request_id)
        self._outbox_row(
            row_id, "webhook", instance, ("webhook", messages.CallWebhook(message_id=row_id)),
            node=call.node, status="queued", step=call.step, method=call.method, url=call.url,
            headers=call.headers, body=call.body,
            timeout_seconds=call.timeout.total_seconds(),
        )  # fmt: skip

    def _outbox_row(
        self,
        row_id: str,
        kind: str,
        instance: Instance,
        dispatch: tuple[str, messages.QueueMessage] | None,
        deliver_at: datetime | None = None,
        **values: Any,
    ) -> None:
        """An outbox row; with `dispatch` (queue, message) it is pending until consumed."""
        pending = None
        if dispatch is not None:
            queue, message = dispatch
            message = message.with_row(row_id)
            due = deliver_at or self.now
            delay = int((due - self.now).total_seconds())
            # without precise delays (virtual time) anything later goes through the sweeper
            soon = delay <= 0 or (settings().precise_delays and delay <= MAX_DELAY_SECONDS)
            pending = Dispatch(queue, message, due, self.now + REDISPATCH_AFTER if soon else due)
            if soon:
                self.outgoing.append(Outgoing(queue, message, max(0, delay)))
        self.changes.rows.append(
            OutboxRow(
                row_id, kind, self.now, instance.profile_db, instance.profile_id, instance,
                {name: value for name, value in values.items() if value is not None}, pending,
            )
        )  # fmt: skip

    def _set_timer(self, instance: Instance, timer: SetTimer) -> None:
        self.changes.timers.append(
            Timer(instance.instance_id, instance.scenario_id, timer.step, timer.wake_at)
        )
        delay = (timer.wake_at - self.now).total_seconds()
        if settings().precise_delays and delay <= MAX_DELAY_SECONDS:
            # SQS delays are whole seconds. Rounded up, a wake-up comes up to a second late;
            # rounded down, early, and the steps consumer waits out the rest (steps.wake).
            # Down unless that wait would be 0.75 s or more: then at most 0.25 s late.
            seconds = math.floor(delay)
            if delay - seconds >= 0.75:
                seconds += 1
            wake = messages.Wake(
                instance_id=instance.instance_id, scenario_id=instance.scenario_id,
                step=timer.step, wake_at=format_datetime(timer.wake_at),
            )  # fmt: skip
            self.outgoing.append(Outgoing("steps", wake, max(0, seconds)))

    def _profile_write(
        self, updates: list[UpdateProfile], final: dict[str, Any], read: ProfileRecord | None
    ) -> ProfileCreate | ProfileUpdate:
        """A profile's changes as one write of the fields they touch (the engine's `final`
        fields are written whole only when the profile did not exist yet)."""
        first = updates[0]
        if read is None or not read.exists:  # captured before it was ever upserted
            return ProfileCreate(first.profile_db, first.profile_id, final, self.now)
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
        return ProfileUpdate(
            first.profile_db,
            first.profile_id,
            self.now,
            values,
            removed,
            added,
            consents,
            read.has_consents,
        )

    def _count(self, instance: Instance, stat: CountStat) -> None:
        """A counter named by the stat and its node and branch (`name|node|branch`); one
        with a group also counts `group_<name>|<group>`, and a branch entered marks the
        node's first entry (`first_entry|<node>`, kept at its first value)."""
        name = "|".join(part for part in (stat.name, stat.node, stat.branch) if part is not None)
        self._add(instance, instance.version, name)
        if stat.group is not None:
            self._add(instance, instance.version, f"group_{stat.name}|{stat.group}")
        if stat.name == "branch_entered" and stat.node is not None:
            firsts = self._firsts.setdefault((instance.scenario_id, instance.version), {})
            firsts.setdefault(f"first_entry|{stat.node}", self.now)

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
        _, counters = self._stats.setdefault(
            (instance.scenario_id, version), (instance.instance_id, {})
        )
        counters[name] = counters.get(name, 0) + 1

    def written(self) -> Changes:
        """Every write of the commit, profiles and statistics included."""
        self.changes.profiles = [
            self._profile_write(updates, final, read)
            for updates, final, read in self._profiles.values()
        ]
        day = self.now.date().isoformat()
        self.changes.stats = [
            StatsDelta(
                scenario_id,
                version,
                day,
                spread,
                counters,
                self._firsts.get((scenario_id, version), {}),
            )
            for (scenario_id, version), (spread, counters) in self._stats.items()
        ]
        return self.changes


def _row_id(kind: str, key: str) -> str:
    return f"{kind}-" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
