"""The journey interpreter: walks one instance through the nodes of SPEC §1.3.

Pure: given a compiled scenario, an instance, the profile view and the time `now`, it
returns the instance's new state and the effects for the runtime to commit. A run of
instant nodes happens in one call; it stops at a waiting node, an external call
(webhook, promo code) or the end of the journey.

Time: every step has a *due* time, the journey clock. A capture is due at the event's
`occurred_at`, a pause's next node at the pause's end. Steps run at `now`; one whose
due time is more than `actuality` in the past is not run (the profile exits, `stale`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeGuard
from zoneinfo import ZoneInfo

from chalicelib.engine.signals import contact_signals
from chalicelib.scenarios.conditions import compile_path
from chalicelib.scenarios.durations import format_datetime, parse_datetime, parse_duration
from chalicelib.scenarios.facts import Event, Facts, Message, Predicate, Profile
from chalicelib.scenarios.model import (
    ABBranch,
    ABSplitNode,
    BestTimeNode,
    ConditionNode,
    ConsentOp,
    ExitNode,
    ExperimentBranch,
    ExperimentNode,
    JumpNode,
    PauseNode,
    PromoCodeNode,
    SendNode,
    SplitNode,
    UpdateProfileNode,
    WaitForNode,
    WebhookNode,
)
from chalicelib.scenarios.templates import RenderLimitExceeded, check_rendered_size

from . import delivery
from .compiled import CompiledScenario
from .effects import (
    CallWebhook,
    CountStat,
    Effect,
    EmitEvent,
    Exit,
    Jump,
    Send,
    SendSkipped,
    SetTimer,
    TakePromoCode,
    UpdateProfile,
)
from .state import (
    COMPLETED,
    ERROR,
    EVENT,
    EXITED,
    HELD_OUT,
    PATH_LIMIT,
    PROMO_CODE,
    REMOVED,
    TIMER,
    TREATMENT,
    WEBHOOK,
    BranchTaken,
    EventArrived,
    Instance,
    PromoCodeResult,
    Stimulus,
    WakeUp,
    WebhookResult,
)
from .timing import align, best_time, profile_zone

# A valid scenario has no cycle of instant nodes; this bounds a run all the same.
MAX_INSTANT_STEPS = 1000
_TICK = timedelta(microseconds=1)
# On the paths every transition takes, node kinds are tested with `type(node) is …` (or
# with isinstance for the kind expected, which is fast when it holds): isinstance against
# a pydantic model class the node is *not* an instance of takes a slow __instancecheck__
# (about 0.5 µs each). The node classes have no subclasses; the handlers dispatch on
# type(node) too.
_WAITING_NODES = frozenset({PauseNode, BestTimeNode, WaitForNode})

_STAT_OF_STATUS = {COMPLETED: "completed", EXITED: "exited", REMOVED: "removed", ERROR: "errors"}
# Effects are immutable, so the statistics effects are made once and shared.
_ENTERED = {group: CountStat("entered", group=group) for group in (TREATMENT, *HELD_OUT)}
_STATUS_STAT = {status: CountStat(name) for status, name in _STAT_OF_STATUS.items()}

WaitingNode = PauseNode | BestTimeNode | WaitForNode

# A handler's result: (outcome, next node id) to go on at once, or None when the run
# halts at this node (it waits, or the journey ended).
Go = tuple[str, str | None] | None


@dataclass(slots=True)
class Step:
    """The outcome of one engine call: the instance's new state and what to do."""

    instance: Instance
    effects: list[Effect] = field(default_factory=list)
    profile: Profile | None = None  # the profile view as the step left it


def start(
    scenario: CompiledScenario,
    profile: Profile,
    event: Event,
    *,
    instance_id: str,
    now: datetime,
    node: str,
    trigger_id: str | None = None,
    limit_key: str | None = None,
    segments: Mapping[str, Predicate] | None = None,
    group: str = TREATMENT,
    reentry_key: str | None = None,
    winners: Mapping[str, str] | None = None,
) -> Step:
    """Start a new instance at `node`, captured by `event` (see capture.capture).

    A profile of a held-out `group` (holdout, control) is counted entered and exits at
    once with its group as the reason, sent nothing; it is still measured (measure.py).
    """
    # Positional, in field order: keyword arguments made this about twice as slow.
    instance = Instance(
        instance_id, scenario.scenario_id, scenario.version, profile.profile_id, event,
        trigger_id, limit_key, profile.profile_db,
    )  # fmt: skip
    instance.group, instance.reentry_key = group, reentry_key
    run = _Run(scenario, instance, profile, now, segments, winners)
    run.effects.append(_ENTERED[group])
    if group in HELD_OUT:
        run.hold_out(node)
    else:
        run.go(node, event.occurred_at)
    return run.result()


ANY_EVENT = "*"  # in `listened_types`: a wait for a condition, which any event may make true


def listened_types(scenario: CompiledScenario) -> frozenset[str]:
    """The event types the scenario's journeys may take (its goals, its `wait_for` nodes'
    events, its conversion's; `ANY_EVENT` for a wait for a condition): events of other
    types move none of its instances, active or ended."""
    types = {goal.event for goal in scenario.goals}
    types |= {
        node.event or ANY_EVENT for node in scenario.nodes.values() if isinstance(node, WaitForNode)
    }
    if scenario.conversion is not None:
        types.add(scenario.conversion.event)
    return frozenset(types)


def reacts_to(scenario: CompiledScenario, instance: Instance, event_type: str) -> bool:
    """Whether an event of this type can move the instance at all: a goal on it, or the
    instance waiting for it (or for a condition, which any event may make true). The
    runtime feeds an event only to the instances that react to it."""
    if any(goal.event == event_type for goal in scenario.goals):
        return True
    if instance.waiting != EVENT:
        return False
    node = scenario.nodes.get(instance.node or "")
    return isinstance(node, WaitForNode) and node.event in (None, event_type)


def advance(
    scenario: CompiledScenario,
    instance: Instance,
    profile: Profile,
    stimulus: Stimulus,
    now: datetime,
    segments: Mapping[str, Predicate] | None = None,
    winners: Mapping[str, str] | None = None,
) -> Step:
    """Move an instance on after a wake-up, an event, a webhook result or a promo code.

    Anything that does not apply to the instance as it is now (an ended instance, a
    wake-up for another step or before its time, a result nobody waits for) changes
    nothing and returns no effects. `winners` are the decided winners of the scenario's
    experiments (node id → branch name), as `measure.decide` found them.
    """
    run = _Run(scenario, instance.copy(), profile, now, segments, winners)
    if instance.active:
        match stimulus:
            case WakeUp():
                run.on_wake_up(stimulus)
            case EventArrived():
                run.on_event(stimulus.event)
            case WebhookResult():
                run.on_webhook_result(stimulus)
            case PromoCodeResult():
                run.on_promo_code(stimulus)
    return run.result()


def end(
    scenario: CompiledScenario,
    instance: Instance,
    now: datetime,
    status: str = REMOVED,
    reason: str | None = "removed",
) -> Step:
    """End an active instance from outside: removal, erasure, stop, restart."""
    run = _Run(scenario, instance.copy(), Profile(instance.profile_id), now, None, None)
    if instance.active:
        run.end(status, reason)
    return run.result()


def resume(
    scenario: CompiledScenario,
    instance: Instance,
    profile: Profile,
    now: datetime,
    segments: Mapping[str, Predicate] | None = None,
    winners: Mapping[str, str] | None = None,
) -> Step:
    """After reactivation: a sleeping instance whose wait ran out while stopped goes on."""
    if instance.active and instance.wake_at is not None and instance.wake_at <= now:
        stimulus = WakeUp(instance.step)
        return advance(scenario, instance, profile, stimulus, now, segments, winners)
    return Step(instance, [], profile)


def migrate(
    scenario: CompiledScenario,
    instance: Instance,
    profile: Profile,
    now: datetime,
    segments: Mapping[str, Predicate] | None = None,
    winners: Mapping[str, str] | None = None,
) -> Step:
    """Move an instance onto a new version of its scenario (SPEC §1.6).

    It stays on the node with the same id; if that node is gone it exits
    (`node_removed`). A changed wait is counted from when the profile entered it.
    """
    run = _Run(scenario, instance.copy(), profile, now, segments, winners)
    if instance.active:
        run.instance.version = scenario.version
        run.migrate()
    return run.result()


def message_id(instance_id: str, step: int) -> str:
    """The deterministic id of the message of one node visit: each visit is a step of its
    own, and instance ids are unique. Readable, and cheaper than a hash of the two."""
    return f"{instance_id}-{step}"


class _Run:
    """One engine call on one instance: the mutable working state and the node handlers."""

    __slots__ = (
        "_context", "_facts", "_now_text", "_own_entry", "_tz", "actuality", "due", "effects",
        "inside", "instance", "now", "passed", "profile", "scenario", "segments", "winners",
    )  # fmt: skip

    def __init__(
        self,
        scenario: CompiledScenario,
        instance: Instance,
        profile: Profile,
        now: datetime,
        segments: Mapping[str, Predicate] | None,
        winners: Mapping[str, str] | None,
    ) -> None:
        self.scenario = scenario
        self.instance = instance
        self.profile = profile
        self.now = now
        self.effects: list[Effect] = []
        self.segments = segments
        self.winners = winners
        self.actuality = scenario.actuality_for(instance.trigger_id)
        self._context: dict[str, Any] | None = None
        self._tz: ZoneInfo | None = None
        self._facts: Facts | None = None
        self._now_text: str | None = None
        # The path entry this run appended last: its own, so changed in place (_set_outcome).
        self._own_entry: dict[str, Any] | None = None
        # Nodes this run has left, with the journey time it left them at (see next_lap).
        self.passed: dict[str, datetime] = {}
        # The node the instance is counted in (node_entered without node_exited yet).
        self.inside = instance.node if instance.active else None

    def result(self) -> Step:
        return Step(self.instance, self.effects, self.profile)

    # Made on first use: many calls need no condition, time zone or path entry.
    # (Not functools.cached_property: on Python 3.11 it takes a lock on every first use.)

    @property
    def tz(self) -> ZoneInfo:
        if self._tz is None:
            self._tz = profile_zone(self.profile, self.scenario.tz)
        return self._tz

    @property
    def facts(self) -> Facts:
        if self._facts is None:
            instance = self.instance
            # Positional, in field order (profile, now, tz, event, entry, vars, entered_at,
            # scenario_id, segments): keyword arguments made this call about twice as slow.
            self._facts = Facts(
                self.profile, self.now, self.tz, instance.entry, instance.entry, instance.vars,
                instance.entered_at, self.scenario.scenario_id, self.segments or {},
            )  # fmt: skip
        return self._facts

    @property
    def now_text(self) -> str:
        if self._now_text is None:
            self._now_text = format_datetime(self.now)
        return self._now_text

    # --- moving between nodes -----------------------------------------------------

    def go(self, node_id: str | None, due: datetime) -> None:
        """Run nodes from `node_id` until one waits or the journey ends."""
        for _ in range(MAX_INSTANT_STEPS):
            if node_id is None:
                return self.end(COMPLETED, None)
            node = self.scenario.nodes.get(node_id)
            if node is None:
                return self.end(ERROR, "unknown_node")
            # A waiting node runs nothing: what follows it is due when the wait ends.
            waits = type(node) in _WAITING_NODES
            if not waits and self.actuality is not None and self.now - due > self.actuality:
                self._append_path(node_id, "stale")
                self.instance.node = node_id
                return self.end(EXITED, "stale")
            self.enter(node_id, due)
            try:
                transition = self._HANDLERS[type(node)](self, node_id, node, due)
            except RenderLimitExceeded as error:
                transition = self.node_failed(node, error)
            if transition is not None and waits:
                transition = self.next_lap(node_id, node, transition)  # type: ignore[arg-type]
            if transition is None:
                return None
            outcome, node_id = transition
            due = self.due
            self.leave(outcome)
        return self.end(ERROR, "loop_limit")

    def hold_out(self, node_id: str) -> None:
        """A held-out profile stops before its first node: nothing of the journey runs."""
        reason = self.instance.group
        self._append_path(node_id, reason)
        self.instance.node = node_id
        self.end(EXITED, reason)

    def enter(self, node_id: str, due: datetime) -> None:
        instance = self.instance
        instance.node = node_id
        instance.node_entered_at = due
        instance.step += 1
        instance.waiting = instance.wake_at = None
        self.due = due
        self.inside = node_id
        self._append_path(node_id, None)
        self.effects.append(self.scenario.entered_stat[node_id])

    def leave(self, outcome: str) -> None:
        if self.inside is None:
            return
        self._set_outcome(outcome)
        stat = self.scenario.exited_stat.get(self.inside)  # None: a node a new version removed
        self.effects.append(stat or CountStat("node_exited", self.inside))
        self.inside = None

    def wait(self, kind: str, wake_at: datetime | None, outcome: str = "waiting") -> None:
        instance = self.instance
        instance.waiting, instance.wake_at = kind, wake_at
        self._set_outcome(outcome)
        if wake_at is not None:
            self.effects.append(SetTimer(instance.instance_id, instance.step, wake_at))

    def resume_after_wait(self, outcome: str, next_id: str | None, due: datetime) -> None:
        if self.instance.node is not None:
            self.passed[self.instance.node] = due
        self.leave(outcome)
        self.go(next_id, due)

    def node_failed(self, node: Any, error: RenderLimitExceeded) -> Go:
        """A node whose templates went past their limits (more than a message or call may
        hold, or too long to render) did nothing: the journey takes its `on_error`, else it
        ends with an error."""
        outcome = f"error: {error}"
        on_error = getattr(node, "on_error", None)
        if on_error is not None:
            return outcome, on_error
        self.leave(outcome)
        self.end(ERROR, "render_limit")
        return None

    def end(self, status: str, reason: str | None) -> None:
        instance = self.instance
        if self.inside is not None:
            self.leave(reason or "end")
        instance.status, instance.reason = status, reason
        instance.ended_at = self.now
        instance.waiting = instance.wake_at = None
        self.effects.append(Exit(instance.instance_id, status, reason, instance.node))
        self.effects.append(_STATUS_STAT[status])

    def _set_outcome(self, outcome: str, at: str | None = None) -> None:
        """Record the outcome of the current path entry (and restamp it `at`, if given). An
        entry from before this run is replaced, not changed: the instance is a copy whose
        path still shares its entries with the caller's instance, which must stay as it was."""
        path = self.instance.path
        entry = path[-1]
        if entry is not self._own_entry:
            entry = self._own_entry = path[-1] = dict(entry)
        entry["outcome"] = outcome
        if at is not None:
            entry["at"] = at

    def _append_path(self, node_id: str, outcome: str | None) -> None:
        path = self.instance.path
        at = self._now_text or self.now_text  # the property's call only the first time
        entry = self._own_entry = {"at": at, "node": node_id, "outcome": outcome}
        path.append(entry)
        if len(path) > PATH_LIMIT:
            del path[: len(path) - PATH_LIMIT]

    # --- stimuli ------------------------------------------------------------------

    def on_wake_up(self, wake: WakeUp) -> None:
        instance = self.instance
        wake_at = instance.wake_at
        if wake.step != instance.step or wake_at is None or self.now < wake_at:
            return
        node = self.scenario.nodes.get(instance.node or "")
        if type(node) is WaitForNode:
            self.resume_after_wait("timeout", node.timeout_next or node.next, wake_at)
        elif type(node) is PauseNode or type(node) is BestTimeNode:
            self.resume_after_wait("waited", node.next, wake_at)

    def on_event(self, event: Event) -> None:
        instance = self.instance
        if event.occurred_at < instance.entered_at or (event.id and event.id == instance.entry.id):
            return None
        facts = replace(self.facts, event=event)
        for goal in self.scenario.goals:
            if goal.event == event.type and goal.where(facts):
                # The path shows when the goal took the profile out, not when it got there.
                self._set_outcome("goal", at=self.now_text)
                return self.end(EXITED, "goal")
        if instance.waiting != EVENT or instance.node_entered_at is None:
            return None
        node = self.scenario.nodes.get(instance.node or "")
        if not isinstance(node, WaitForNode) or event.occurred_at < instance.node_entered_at:
            return None
        if node.event is not None and node.event != event.type:
            return None
        if self.scenario.conditions[instance.node or ""](facts):
            due = max(event.occurred_at, instance.node_entered_at)
            self.resume_after_wait("event" if node.event else "condition", node.next, due)
        return None

    def on_webhook_result(self, result: WebhookResult) -> None:
        instance = self.instance
        node = self.scenario.nodes.get(instance.node or "")
        if instance.waiting != WEBHOOK or result.step != instance.step:
            return
        assert isinstance(node, WebhookNode)
        if result.ok:
            if node.save_as:
                instance.vars[node.save_as] = result.body
            self.resume_after_wait("ok", node.next, self.now)
        elif node.on_error:
            why = result.status or result.failure or "timeout"
            self.resume_after_wait(f"error {why}", node.on_error, self.now)
        else:
            self.end(ERROR, "webhook_failed")

    def on_promo_code(self, result: PromoCodeResult) -> None:
        instance = self.instance
        node = self.scenario.nodes.get(instance.node or "")
        if instance.waiting != PROMO_CODE or result.step != instance.step:
            return
        assert isinstance(node, PromoCodeNode)
        if result.code is not None:
            instance.codes[instance.node or ""] = result.code
            instance.vars[node.save_as] = result.code
            issued = {"pool": node.pool, "code": result.code, "derived": True}
            self.emit("promo_code.issued", issued)
            self.resume_after_wait("code", node.next, self.now)
        elif node.on_empty:
            self.resume_after_wait("empty", node.on_empty, self.now)
        else:
            self.end(EXITED, "no_promo_code")

    def migrate(self) -> None:
        instance = self.instance
        node_id = instance.node or ""
        node = self.scenario.nodes.get(node_id)
        if node is None:
            return self.end(EXITED, "node_removed")
        if instance.waiting not in (TIMER, EVENT) or instance.node_entered_at is None:
            return None
        entered = instance.node_entered_at
        if instance.waiting == TIMER and isinstance(node, PauseNode | BestTimeNode):
            wake_at = self.pause_end(node, entered)
        elif instance.waiting == EVENT and isinstance(node, WaitForNode):
            wake_at = entered + parse_duration(node.timeout) if node.timeout else None
        else:  # the node changed its type: enter it again as it is now
            self.leave("changed")
            return self.go(node_id, entered)
        if wake_at == instance.wake_at:
            return None
        instance.step += 1  # the old timer is now stale
        instance.wake_at = wake_at
        if wake_at is not None:
            self.effects.append(SetTimer(instance.instance_id, instance.step, wake_at))
            if wake_at <= self.now:
                self.on_wake_up(WakeUp(instance.step))
        return None

    # --- node handlers --------------------------------------------------------------

    def do_send(self, node_id: str, node: SendNode, due: datetime) -> Go:
        instance, channel, scenario = self.instance, node.channel, self.scenario
        msg_id = message_id(instance.instance_id, instance.step)
        to = self.recipient(node)
        reason, deliver_at = delivery.decide(scenario, channel, to, self.profile, self.now)
        if reason is None and node.recheck is not None:
            reason = delivery.recheck(
                scenario, node_id, instance, self.profile, self.now, self.segments
            )
        if reason is not None:
            self.effects.append(SendSkipped(msg_id, instance.instance_id, node_id, channel, reason))
            return f"skipped: {reason}", node.next
        context = self.template_context()
        variant, renderers = None, scenario.send_renderers[node_id]
        variants = scenario.send_variants[node_id]
        if variants:
            key = delivery.variant_for(self.profile.fields.get("locale"), variants)
            if key is not None:
                variant, renderers = variants[key]
        subject, body, html, title, url, sender = renderers
        parts = (
            subject(context), body(context), html(context), title(context), url(context),
            sender(context),
        )  # fmt: skip
        check_rendered_size(parts if node.to is None else (*parts, to))
        # Positional, in field order: keyword arguments made this call about 2.5 times slower.
        self.effects.append(
            Send(
                msg_id, instance.instance_id, node_id, channel, to, *parts,
                parse_duration(node.ttl) if node.ttl else None,  # ttl
                deliver_at if deliver_at > self.now else None,  # deliver_at
                variant, node.recheck is not None,
            )
        )  # fmt: skip
        sent = Message(msg_id, self.scenario.scenario_id, node_id, channel, deliver_at,
                       {"sent": deliver_at}, instance.instance_id)  # fmt: skip
        profile = self.profile
        self.use_profile(
            Profile(
                profile.profile_id,
                profile.fields,
                profile.events,
                [*profile.messages, sent],
                profile.profile_db,
                profile.invalid,
            )
        )
        if deliver_at > self.now:
            return f"queued for {format_datetime(deliver_at)}", node.next
        return "sent", node.next

    def do_webhook(self, node_id: str, node: WebhookNode, due: datetime) -> Go:
        instance, context, render = self.instance, self.template_context(), self.scenario.render
        url = render(node.url, context) or ""
        headers = {name: render(value, context) or "" for name, value in node.headers.items()}
        body = render(node.body, context)
        check_rendered_size([url, body, *headers, *headers.values()], "the call")
        self.effects.append(
            CallWebhook(
                request_id=f"{instance.instance_id}:{instance.step}",
                instance_id=instance.instance_id,
                node=node_id,
                step=instance.step,
                method=node.method,
                url=url,
                headers=headers,
                body=body,
                timeout=parse_duration(node.timeout),
            )
        )
        self.wait(WEBHOOK, None, "calling")
        return None

    def do_pause(self, node_id: str, node: PauseNode, due: datetime) -> Go:
        wake_at = self.pause_end(node, due)
        if wake_at is None:
            return "no date", node.next
        if wake_at <= self.now:
            self.due = max(wake_at, due)
            return "elapsed", node.next
        self.wait(TIMER, wake_at)
        return None

    def do_best_time(self, node_id: str, node: BestTimeNode, due: datetime) -> Go:
        wake_at = self.pause_end(node, due)
        assert wake_at is not None
        if wake_at <= self.now:
            self.due = wake_at
            return "elapsed", node.next
        self.wait(TIMER, wake_at)
        return None

    def next_lap(self, node_id: str, node: WaitingNode, transition: Go) -> Go:
        """A waiting node that passed at once, with the journey clock no later than when this
        run last left it, is a loop come round without time passing. A clock-aligned wait
        (a daily `at: "10:00"` pause entered at 10:00 by its own loop) goes on to the next
        occurrence of its time instead; a wait with none (PT0S, a past `until`, a timeout
        of zero, a condition that holds) ends the journey with `instant_loop` rather than
        spinning through its loop until `loop_limit`, sending at every lap."""
        last = self.passed.get(node_id)
        if last is not None and self.due <= last:
            wake_at = self.next_occurrence(node, last)
            if wake_at is None:
                self.end(ERROR, "instant_loop")
                return None
            if wake_at > self.now:
                self.wait(TIMER, wake_at)
                return None
            self.due = wake_at
            transition = "elapsed", node.next
        self.passed[node_id] = self.due
        return transition

    def next_occurrence(self, node: WaitingNode, after: datetime) -> datetime | None:
        """The first time after `after` that a clock-aligned wait could end at, if any."""
        if isinstance(node, WaitForNode):
            return None
        if isinstance(node, BestTimeNode):
            within = parse_duration(node.within)
            if within <= timedelta(0):
                return None
            messages = self.profile.messages
            return min(best_time(after + _TICK, within, node.fallback, messages, self.tz),
                       after + within)  # fmt: skip
        if node.at is None and not node.days:
            return None
        return align(after + (_TICK if node.at else timedelta(days=1)), node.at, node.days, self.tz)

    def pause_end(self, node: PauseNode | BestTimeNode, entered: datetime) -> datetime | None:
        """When a pause or best_time node entered at `entered` ends; None: no date to wait for."""
        if not isinstance(node, PauseNode):  # best_time (tested second: see _WAITING_NODES)
            within = parse_duration(node.within)
            return best_time(entered, within, node.fallback, self.profile.messages, self.tz)
        moment: datetime | None = entered
        if node.duration:
            moment = entered + parse_duration(node.duration)
        elif node.until:
            moment = node.until
        elif node.until_field:
            moment = parse_datetime(compile_path(node.until_field)(self.facts))
            if moment is not None and node.offset:
                moment += parse_duration(node.offset)
        if moment is None:
            return None
        return align(moment, node.at, node.days, self.tz)

    def do_wait_for(self, node_id: str, node: WaitForNode, due: datetime) -> Go:
        if node.condition is not None and self.scenario.conditions[node_id](self.facts):
            return "condition", node.next
        wake_at = due + parse_duration(node.timeout) if node.timeout else None
        if wake_at is not None and wake_at <= self.now:
            self.due = wake_at
            return "timeout", node.timeout_next or node.next
        self.wait(EVENT, wake_at)
        return None

    def do_condition(self, node_id: str, node: ConditionNode, due: datetime) -> Go:
        if self.scenario.conditions[node_id](self.facts):
            return "then", node.then
        return "else", node.else_

    def do_split(self, node_id: str, node: SplitNode, due: datetime) -> Go:
        for index, (branch, matches) in enumerate(
            zip(node.branches, self.scenario.branches[node_id], strict=True)
        ):
            if matches(self.facts):
                return branch.name or f"branch {index + 1}", branch.next
        return "else", node.else_

    def do_ab_split(self, node_id: str, node: ABSplitNode | ExperimentNode, due: datetime) -> Go:
        key = f"{self.instance.instance_id}|{node_id}".encode()
        point = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 100
        branches: Sequence[ABBranch | ExperimentBranch] = node.branches
        for index, branch in enumerate(branches):
            if point < branch.percent:
                name = branch.name or f"branch {index + 1}"
                self.took_branch(node_id, name)
                return name, branch.next
            point -= branch.percent
        return "else", None  # unreachable when the percents sum to 100

    def do_experiment(self, node_id: str, node: ExperimentNode, due: datetime) -> Go:
        """Random like an ab_split until the experiment has a winner, then the winner's way.

        Profiles sent the winner's way are not counted in the experiment's branches: they
        were not assigned at random.
        """
        winner = self.winners.get(node_id) if self.winners else None
        for branch in node.branches:
            if branch.name == winner:
                return f"winner: {winner}", branch.next
        return self.do_ab_split(node_id, node, due)

    def took_branch(self, node_id: str, name: str) -> None:
        """Record the first branch taken at a split node, for the per-branch statistics."""
        branches = self.instance.branches
        if node_id not in branches:
            branches[node_id] = BranchTaken(name, self.now)
            self.effects.append(CountStat("branch_entered", node_id, name))

    def do_update_profile(self, node_id: str, node: UpdateProfileNode, due: datetime) -> Go:
        fields = dict(self.profile.fields)
        values: dict[str, Any] = {}
        removed: list[str] = []
        added: dict[str, float] = {}
        consents: dict[str, bool] = {}
        touched: dict[str, None] = {}  # fields the ops change, in order
        for op in node.ops:
            if isinstance(op, ConsentOp):
                granted = op.op == "grant"
                # Profile fields are free-form: `consents` that is not a map grants nothing
                # (Profile.consent) and is replaced by one here, never a crash.
                stored = fields.get("consents")
                current = dict(stored) if isinstance(stored, dict) else {}
                if current.get(op.consent) is not granted:
                    current[op.consent] = consents[op.consent] = granted
                    fields["consents"] = current
                    data = {"channel": op.consent, "granted": granted}
                    self.emit("consent.changed", data, key=op.consent)
                continue
            name, old = op.field, fields.get(op.field)
            if op.op in ("increment", "decrement"):
                step: float = op.value if op.value is not None else 1
                amount = step if op.op == "increment" else -step
                new: Any = amount + (old if _is_number(old) else 0)
                if name in values or name in removed:  # set or cleared earlier in this node
                    values[name] = new  # the sum is a plain value
                    if name in removed:
                        removed.remove(name)
                else:
                    added[name] = added.get(name, 0) + amount
            else:
                new = {"set": op.value, "now": self.now_text, "clear": None}[op.op]
                values.pop(name, None)
                added.pop(name, None)
                if name in removed:
                    removed.remove(name)
                if new is None:
                    removed.append(name)
                else:
                    values[name] = new
            if new is None:
                fields.pop(name, None)
            else:
                fields[name] = new
            touched[name] = None
        profile = self.profile
        # Old values are those before the node, so a field set twice reports one change.
        before = profile.fields
        changed = {
            name: {"old": before.get(name), "new": fields.get(name)}
            for name in touched
            if before.get(name) != fields.get(name)
        }
        self.effects.append(
            UpdateProfile(
                profile.profile_db, profile.profile_id, values, tuple(removed), added, consents
            )
        )
        self.use_profile(
            Profile(
                profile.profile_id,
                fields,
                profile.events,
                profile.messages,
                profile.profile_db,
                profile.invalid,
            )
        )
        if changed:
            self.emit("profile.field_changed", {"fields": changed, "source": "scenario"})
        for event_type, data in contact_signals(profile.fields, fields):
            self.emit(event_type, data)
        return "updated", node.next

    def do_promo_code(self, node_id: str, node: PromoCodeNode, due: datetime) -> Go:
        instance = self.instance
        code = instance.codes.get(node_id)
        if code is not None:  # once per instance: a loop back here reuses the code
            instance.vars[node.save_as] = code
            return "code", node.next
        self.effects.append(
            TakePromoCode(
                f"{instance.instance_id}:{node_id}",
                instance.instance_id,
                node_id,
                instance.step,
                node.pool,
            )
        )
        self.wait(PROMO_CODE, None, "taking code")
        return None

    def do_jump(self, node_id: str, node: JumpNode, due: datetime) -> Go:
        instance = self.instance
        event = Event(
            "jump", self.now, dict(instance.entry.data), id=f"{instance.instance_id}:jump"
        )
        self.effects.append(
            Jump(node.scenario, node.node, instance.profile_db, instance.profile_id, event)
        )
        self.leave(f"jump to {node.scenario}")
        self.end(COMPLETED, "jump")
        return None

    def do_exit(self, node_id: str, node: ExitNode, due: datetime) -> Go:
        self.leave("exit")
        self.end(COMPLETED, "exit")
        return None

    _HANDLERS: ClassVar[dict[type, Callable[[_Run, str, Any, datetime], Go]]] = {
        SendNode: do_send,
        WebhookNode: do_webhook,
        PauseNode: do_pause,
        BestTimeNode: do_best_time,
        WaitForNode: do_wait_for,
        ConditionNode: do_condition,
        SplitNode: do_split,
        ABSplitNode: do_ab_split,
        ExperimentNode: do_experiment,
        UpdateProfileNode: do_update_profile,
        PromoCodeNode: do_promo_code,
        JumpNode: do_jump,
        ExitNode: do_exit,
    }

    # --- helpers ------------------------------------------------------------------

    def use_profile(self, profile: Profile) -> None:
        """Go on with a changed copy of the profile view (the caller's stays as it was)."""
        self.profile = profile
        if self._facts is not None:
            self._facts.profile = profile
        self._context = None

    def template_context(self) -> dict[str, Any]:
        if self._context is None:
            scenario = self.scenario
            self._context = {
                "profile": {**self.profile.fields, "profile_id": self.profile.profile_id},
                # Read by no template (see CompiledScenario): left empty, unformatted.
                "event": self.instance.entry.as_dict() if scenario.templates_read_event else {},
                "vars": self.instance.vars,
                "scenario": scenario.template_scenario,
            }
        return self._context

    def recipient(self, node: SendNode) -> Any:
        """The address the message goes to: the rendered `to` override (None when it renders
        empty), else the profile's own (delivery.own_address)."""
        if node.to is not None:
            return (self.scenario.render(node.to, self.template_context()) or "").strip() or None
        return delivery.own_address(node.channel, self.profile)

    def emit(self, event_type: str, data: dict[str, Any], key: str | None = None) -> None:
        """Emit an event; `key` tells apart events of one type emitted by one node visit."""
        instance = self.instance
        event_id = f"{instance.instance_id}:{instance.step}:{event_type}"
        event = Event(event_type, self.now, data, id=f"{event_id}:{key}" if key else event_id)
        self.effects.append(EmitEvent(instance.profile_db, instance.profile_id, event))


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
