"""Effects: what the engine asks the runtime to do. Plain data; the engine performs none.

Plain slotted dataclasses, not frozen ones: a frozen dataclass sets each field through
`object.__setattr__`, which made building a `Send` several times slower, and effects
are built on every transition. Treat them as read-only all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.scenarios.facts import Event


@dataclass(slots=True)
class Send:
    """Queue one message. `message_id` is deterministic per node visit, for exactly-once."""

    message_id: str
    instance_id: str
    node: str
    channel: str
    to: Any  # an address, or for push the list of subscriptions
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    title: str | None = None
    url: str | None = None
    sender: str | None = None
    ttl: timedelta | None = None
    deliver_at: datetime | None = None  # later than now when quiet hours or the cap delay it
    variant: str | None = None  # the locale of the node's variant it was rendered from
    recheck: bool = False  # the node's recheck condition is evaluated again when it leaves


@dataclass(slots=True)
class SendSkipped:
    """A send that may not go out, recorded with why: no_consent, no_address, capped or
    recheck (delivery.py)."""

    message_id: str
    instance_id: str
    node: str
    channel: str
    reason: str


@dataclass(slots=True)
class CallWebhook:
    """Call an external API; the runtime answers with a WebhookResult carrying `step`."""

    request_id: str
    instance_id: str
    node: str
    step: int
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    timeout: timedelta


@dataclass(slots=True)
class TakePromoCode:
    """Take one unused code from a pool; the runtime answers with a PromoCodeResult."""

    request_id: str
    instance_id: str
    node: str
    step: int
    pool: str


@dataclass(slots=True)
class UpdateProfile:
    """Change profile fields: `set` values, `remove` fields, `add` to numbers, set consents."""

    profile_db: str
    profile_id: str
    set: dict[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    add: dict[str, float] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)


@dataclass(slots=True)
class SetTimer:
    """Wake the instance at `wake_at` with WakeUp(step)."""

    instance_id: str
    step: int
    wake_at: datetime


@dataclass(slots=True)
class EmitEvent:
    """An event the journey caused (profile.field_changed, consent.changed)."""

    profile_db: str
    profile_id: str
    event: Event


@dataclass(slots=True)
class Jump:
    """Capture the profile into another scenario at its entry or at `node`."""

    scenario_id: str
    node: str | None
    profile_db: str
    profile_id: str
    event: Event


@dataclass(slots=True)
class CountStat:
    """Add one to a statistics counter of the instance's version.

    `name`: entered, completed, exited, removed, errors, conversions; node_entered or
    node_exited (with `node`); branch_entered, branch_conversions, branch_opened or
    branch_clicked (with `node` and `branch`: the ab_split / experiment branch). `entered`
    and `conversions` carry the instance's measurement `group` (treatment, holdout,
    control), so the control profiles are counted apart.
    """

    name: str
    node: str | None = None
    branch: str | None = None
    group: str | None = None


@dataclass(slots=True)
class Exit:
    """The journey ended: status completed / exited / removed / error, and why."""

    instance_id: str
    status: str
    reason: str | None
    node: str | None


Effect = (
    Send
    | SendSkipped
    | CallWebhook
    | TakePromoCode
    | UpdateProfile
    | SetTimer
    | EmitEvent
    | Jump
    | CountStat
    | Exit
)
