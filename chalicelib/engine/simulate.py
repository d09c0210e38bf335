"""Simulation: one profile through a scenario in virtual time, with nothing sent or stored.

This is what `POST /scenarios/simulate` serves, and `make run` prints for the example.
The profile is captured by the first timeline event that matches an event trigger; with
none, it enters at `entry` at the start. Webhook nodes answer 200 with the response
given for them in `webhooks` (else `{}`), promo code nodes get `<POOL>-SIMULATED`.

Measurement shows in the path: a profile that the scenario's holdout (or the global
control group, at `control_percent`) holds out has one entry with outcome `holdout`
(`control`) and exits so; an experiment's entry names the branch it drew, or `winner: B`
when `winners` gives the experiment a decided winner.

A send held by quiet hours or the frequency cap whose node has a `recheck` is checked
again when it would leave, as the channel worker does (delivery.py): it is reported sent,
or skipped, then. Each send names the `variant` (locale) it was rendered from, if any.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from chalicelib.scenarios.durations import format_datetime, parse_duration
from chalicelib.scenarios.facts import Event, Profile
from chalicelib.scenarios.model import Duration, EventTrigger

from . import delivery
from .capture import capture
from .compiled import CompiledScenario
from .effects import CallWebhook, EmitEvent, Send, SendSkipped, SetTimer, TakePromoCode
from .interpreter import Step, advance
from .state import EventArrived, Instance, PromoCodeResult, Stimulus, WakeUp, WebhookResult

MAX_SIMULATED_STEPS = 10_000  # bounds a timeline whose journeys keep emitting events


class TimelineEvent(BaseModel):
    """An event of the simulated profile: `at` is an offset from the start or a datetime."""

    model_config = ConfigDict(extra="forbid")
    at: Duration | AwareDatetime = "PT0S"
    type: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)


class SimulatedProfile(BaseModel):
    """The simulated profile, as `PUT /profiles` takes it: `{"profile_id", "fields"}`.

    Its fields may also come flat beside `profile_id` (a request without `fields`), the
    shape the examples' timelines use; a request giving both names the stray field.
    """

    # The schema admits other keys: the flat shape's fields.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"additionalProperties": True})
    profile_id: str = Field(default="simulated", min_length=1, max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_fields(cls, value: Any) -> Any:
        if isinstance(value, dict) and "fields" not in value:
            fields = dict(value)
            shaped = {"fields": fields}
            if "profile_id" in fields:
                shaped["profile_id"] = fields.pop("profile_id")
            return shaped
        return value


class Simulation(BaseModel):
    """A simulation request: the scenario, the profile and its events."""

    model_config = ConfigDict(extra="forbid")
    profile: SimulatedProfile = Field(
        default=SimulatedProfile(),
        description='`{"profile_id", "fields": {...}}` as `PUT /profiles` takes it, '
        "or the fields flat beside `profile_id`",
    )
    events: list[TimelineEvent] = Field(default_factory=list)
    until: Duration = "P30D"
    start: AwareDatetime | None = None
    webhooks: dict[str, Any] = Field(default_factory=dict, description="response body per node")
    winners: dict[str, str] = Field(
        default_factory=dict,
        description="a decided winner (branch name) per experiment node, to simulate after "
        "the decision",
    )


def simulate(
    scenario: CompiledScenario, request: Simulation, now: datetime, control_percent: float = 0.0
) -> dict[str, Any]:
    """Run the simulation; `now` is the start unless the request gives one.

    `control_percent` is the stack's global control group, as capture takes it.
    """
    return _Simulator(scenario, request, request.start or now, control_percent).run()


class _Simulator:
    def __init__(
        self,
        scenario: CompiledScenario,
        request: Simulation,
        start: datetime,
        control_percent: float,
    ) -> None:
        self.scenario = scenario
        self.control_percent = control_percent
        self.request = request
        self.start = start
        self.end = start + parse_duration(request.until)
        # As a new profile holds them: `PUT /profiles` takes null for "no such field".
        fields = {
            name: value for name, value in request.profile.fields.items() if value is not None
        }
        self.profile = Profile(
            request.profile.profile_id, fields, profile_db=scenario.model.profile_db
        )
        self.instances: dict[str, Instance] = {}
        self.queue: list[tuple[datetime, int, str, Any]] = []
        self.order = itertools.count()
        self.sends: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.refused: str | None = None

    def schedule(self, at: datetime, kind: str, payload: Any) -> None:
        heapq.heappush(self.queue, (at, next(self.order), kind, payload))

    def run(self) -> dict[str, Any]:
        timeline = [self._event(index, item) for index, item in enumerate(self.request.events)]
        for event in timeline:
            self.schedule(event.occurred_at, "event", event)
        triggered = any(self._trigger_for(event) for event in timeline)
        if not triggered:
            self.schedule(self.start, "enter", Event("api", self.start, {}, id="simulated-entry"))
        for _ in range(MAX_SIMULATED_STEPS):
            if not self.queue or self.queue[0][0] > self.end:
                break
            at, _, kind, payload = heapq.heappop(self.queue)
            now = max(at, self.start)
            if kind == "event":
                self._on_event(payload, now)
            elif kind == "enter":
                self._capture(payload, None, now)
            elif kind == "leave":
                instance_id, send = payload
                self._leave(instance_id, send, now)
            else:
                instance_id, stimulus = payload
                self._advance(self.instances[instance_id], stimulus, now)
        return self._report()

    def _event(self, index: int, item: TimelineEvent) -> Event:
        at = item.at if isinstance(item.at, datetime) else self.start + parse_duration(item.at)
        return Event(item.type, at.astimezone(UTC), item.data, id=f"simulated-{index}")

    def _trigger_for(self, event: Event) -> str | None:
        for trigger in self.scenario.triggers.values():
            if isinstance(trigger, EventTrigger) and trigger.event == event.type:
                return trigger.id
        return None

    def _on_event(self, event: Event, now: datetime) -> None:
        self.profile.events.append(event)
        for instance in list(self.instances.values()):
            if instance.active:
                self._advance(instance, EventArrived(event), now)
        for trigger in self.scenario.triggers.values():
            if isinstance(trigger, EventTrigger) and trigger.event == event.type:
                self._capture(event, trigger.id, now)

    def _capture(self, event: Event, trigger_id: str | None, now: datetime) -> None:
        admission = capture(
            self.scenario,
            self.profile,
            event,
            instance_id=f"instance-{len(self.instances) + 1}",
            now=now,
            trigger_id=trigger_id,
            existing=list(self.instances.values()),
            control_percent=self.control_percent,
            winners=self.request.winners,
        )
        if admission.refused and not self.instances:
            self.refused = admission.refused
        for step in admission.steps:
            self._apply(step, now)

    def _advance(self, instance: Instance, stimulus: Stimulus, now: datetime) -> None:
        winners = self.request.winners
        self._apply(
            advance(self.scenario, instance, self.profile, stimulus, now, None, winners), now
        )

    def _apply(self, step: Step, now: datetime) -> None:
        instance = step.instance
        self.instances[instance.instance_id] = instance
        if step.profile is not None:
            self.profile = step.profile
        for effect in step.effects:
            match effect:
                case SetTimer():
                    self.schedule(
                        effect.wake_at, "stimulus", (instance.instance_id, WakeUp(effect.step))
                    )
                case Send() if effect.recheck and effect.deliver_at is not None:
                    self.schedule(effect.deliver_at, "leave", (instance.instance_id, effect))
                case Send():
                    self.sends.append(_send_report(effect, now))
                case SendSkipped():
                    self._skip(effect.node, effect.channel, effect.reason, now)
                case CallWebhook():
                    body = self.request.webhooks.get(effect.node, {})
                    result = WebhookResult(effect.step, ok=True, status=200, body=body)
                    self.schedule(now, "stimulus", (instance.instance_id, result))
                case TakePromoCode():
                    code = PromoCodeResult(effect.step, f"{effect.pool}-SIMULATED")
                    self.schedule(now, "stimulus", (instance.instance_id, code))
                case EmitEvent():
                    self.schedule(now, "event", effect.event)

    def _leave(self, instance_id: str, send: Send, now: datetime) -> None:
        """A held send leaves: the checks the channel worker makes then, on the profile now."""
        to = delivery.own_address(send.channel, self.profile) if send.channel == "push" else send.to
        reason = delivery.refusal(send.channel, to, self.profile) or delivery.recheck(
            self.scenario, send.node, self.instances[instance_id], self.profile, now, None
        )
        if reason is None:
            self.sends.append(_send_report(send, now))
        else:
            self._skip(send.node, send.channel, reason, now)

    def _skip(self, node: str, channel: str, reason: str, now: datetime) -> None:
        self.skipped.append(
            {"at": format_datetime(now), "node": node, "channel": channel, "reason": reason}
        )

    def _report(self) -> dict[str, Any]:
        instances = list(self.instances.values())
        path = sorted(
            (entry for instance in instances for entry in instance.path), key=lambda e: e["at"]
        )
        last = instances[-1] if instances else None
        return {
            "path": path,
            "sends": self.sends,
            "skipped": self.skipped,
            "status": last.status if last else "not_captured",
            "reason": last.reason if last else self.refused,
            "exit_node": last.node if last else None,
        }


def _send_report(send: Send, now: datetime) -> dict[str, Any]:
    return {
        "at": format_datetime(send.deliver_at or now),
        "node": send.node,
        "channel": send.channel,
        "to": send.to,
        "subject": send.subject if send.channel == "email" else send.title,
        "body": send.body,
        "variant": send.variant,
    }
