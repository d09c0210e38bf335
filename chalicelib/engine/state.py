"""A journey instance: one profile's walk through one scenario, and the stimuli that move it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.scenarios.facts import Event

# Instance statuses. An instance is `active` while it runs or waits; the others are final.
ACTIVE, COMPLETED, EXITED, REMOVED, ERROR = "active", "completed", "exited", "removed", "error"

# What an active instance waits for.
TIMER, EVENT, WEBHOOK, PROMO_CODE = "timer", "event", "webhook", "promo_code"

# The measurement group of an instance (SPEC §8): it received the journey, or was held out
# of it by the scenario's holdout or by the stack's global control group.
TREATMENT, HOLDOUT, CONTROL = "treatment", "holdout", "control"
HELD_OUT = (HOLDOUT, CONTROL)

PATH_LIMIT = 200  # the newest path entries kept on an instance


@dataclass(frozen=True, slots=True)
class BranchTaken:
    """The branch an instance took at an `ab_split` or `experiment` node, and when."""

    name: str
    at: datetime


@dataclass(slots=True)
class Instance:
    """The state of one journey. The engine never mutates one it is given: it returns a copy."""

    instance_id: str
    scenario_id: str
    version: int
    profile_id: str
    entry: Event  # the capturing event; the journey clock starts at its occurred_at
    trigger_id: str | None = None  # None for the default capture
    limit_key: str | None = None
    profile_db: str = "default"
    status: str = ACTIVE
    node: str | None = None  # the current node, or the exit node once ended
    node_entered_at: datetime | None = None  # journey time the profile reached `node`
    waiting: str | None = None  # TIMER, EVENT, WEBHOOK or PROMO_CODE while it waits
    wake_at: datetime | None = None
    step: int = 0  # bumped on every transition; wake-ups and results carry it
    vars: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # promo code taken, by node
    path: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    ended_at: datetime | None = None
    group: str = TREATMENT  # TREATMENT, HOLDOUT or CONTROL
    reentry_key: str | None = None  # the value of the scenario's reentry_key (per_key)
    # The first branch taken at each ab_split / experiment node, by node id.
    branches: dict[str, BranchTaken] = field(default_factory=dict)
    # What was measured once for this instance, with when: "conversion", and per split
    # node "opened|<node>" / "clicked|<node>" (see measure.py).
    measured: dict[str, datetime] = field(default_factory=dict)

    @property
    def entered_at(self) -> datetime:
        return self.entry.occurred_at

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def copy(self) -> Instance:
        """A copy whose mutable parts can change without touching this one."""
        return Instance(
            self.instance_id,
            self.scenario_id,
            self.version,
            self.profile_id,
            self.entry,
            self.trigger_id,
            self.limit_key,
            self.profile_db,
            self.status,
            self.node,
            self.node_entered_at,
            self.waiting,
            self.wake_at,
            self.step,
            dict(self.vars),
            dict(self.codes),
            list(self.path),
            self.reason,
            self.ended_at,
            self.group,
            self.reentry_key,
            dict(self.branches),
            dict(self.measured),
        )


# --- stimuli ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WakeUp:
    """A timer fired. Stale (another step) or early wake-ups are no-ops."""

    step: int


@dataclass(frozen=True, slots=True)
class EventArrived:
    """An event of the instance's profile (already added to the profile's history)."""

    event: Event


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """The outcome of a webhook node's call, after the runtime's retries."""

    step: int
    ok: bool
    status: int | None = None
    body: Any = None
    failure: str | None = None  # without an HTTP answer: `refused`, else a timeout


@dataclass(frozen=True, slots=True)
class PromoCodeResult:
    """The code taken from the pool for a promo_code node, or None when the pool is empty."""

    step: int
    code: str | None


Stimulus = WakeUp | EventArrived | WebhookResult | PromoCodeResult
