"""The delivery policy: whether a message may go out to a profile, to which address, when,
and in which of its node's templates.

One set of rules, asked twice with the same functions: by the engine when a journey
reaches a send node, and by the channel worker when the message actually leaves (the
profile may have changed meanwhile: a consent withdrawn, an address bounced, a field
the node's `recheck` reads). Pure: the callers bring the profile and the time.

- **Consent.** A message to the profile's own address (its `email`, its `phone`, its push
  subscriptions) needs its consent to the channel: `consents.<channel>` is JSON `true`.
  A `to` override that renders to another address (a manager's) is not a message to the
  customer, and the customer's consent does not apply to it; one that renders to the
  profile's own address is, and does need it (e-mail addresses compared without case).
  A push always goes to the profile's own subscriptions (`to` is refused there).
- **Address.** The address is valid (`scenarios.addresses`): an e-mail address, an
  E.164 phone number, at least one valid push subscription. An address that
  hard-bounced (the profile's `invalid.<channel>`) counts as none. Both: `no_address`.
- **Frequency cap**, **quiet hours.** When the journey queues the message: the cap may
  skip it (`capped`) or hold it until the cap allows; quiet hours hold it to their end,
  in the profile's time zone. A held message keeps the time it was given, and already
  counts against the cap from then.
- **Recheck.** A send's `recheck` condition is evaluated when the journey queues the
  message and again, with the profile as it is then, when the message leaves: false at
  either moment skips it (`recheck`).
- **Variants.** The template for the profile's `locale` (see `variant_for`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.scenarios.addresses import valid_email, valid_phone, valid_push_subscription
from chalicelib.scenarios.facts import Facts, Message, Predicate, Profile

from .timing import after_quiet_hours, profile_zone

if TYPE_CHECKING:
    from .compiled import CompiledScenario
    from .state import Instance

NO_CONSENT = "no_consent"
NO_ADDRESS = "no_address"
CAPPED = "capped"
RECHECK = "recheck"

ADDRESS_FIELDS = {"email": "email", "sms": "phone", "push": "push"}


class Verdict(NamedTuple):
    """What the policy says of one message: `reason` it may not go out (None: it may),
    and when it goes out (`deliver_at`, `now` unless held)."""

    reason: str | None
    deliver_at: datetime


def own_address(channel: str, profile: Profile) -> Any:
    """The profile's own address on the channel, as the message would carry it: the
    `email` or `phone` field as it is, for push its valid subscriptions (None: none)."""
    value = profile.fields.get(ADDRESS_FIELDS[channel])
    if channel != "push":
        return value
    if not isinstance(value, list):
        return None
    return [s for s in value if valid_push_subscription(s)] or None


def refusal(channel: str, to: Any, profile: Profile) -> str | None:
    """Why a message on `channel` to the address `to` may not go out to this profile now
    (`no_consent`, `no_address`), or None. `to` is what the message carries: the
    profile's own address, a `to` override, for push the subscriptions it goes to."""
    if channel == "push":
        if not profile.consent(channel):
            return NO_CONSENT
        return None if to else NO_ADDRESS
    if is_own_address(channel, to, profile) and not profile.consent(channel):
        return NO_CONSENT
    if not (valid_email(to) if channel == "email" else valid_phone(to)):
        return NO_ADDRESS
    if _same_address(channel, profile.invalid.get(channel), to):
        return NO_ADDRESS  # it hard-bounced
    return None


def is_own_address(channel: str, to: Any, profile: Profile) -> bool:
    """Whether `to` is the profile's own address on the channel (None: no address at all,
    which is the profile's own missing one)."""
    return to is None or _same_address(channel, profile.fields.get(ADDRESS_FIELDS[channel]), to)


def _same_address(channel: str, one: Any, other: Any) -> bool:
    if not isinstance(one, str) or not isinstance(other, str):
        return False
    if channel == "email":  # the domain is case-insensitive, and providers treat the local part so
        return one.strip().casefold() == other.strip().casefold()
    return one.strip() == other.strip()


def decide(
    scenario: CompiledScenario, channel: str, to: Any, profile: Profile, now: datetime
) -> Verdict:
    """The verdict on a message the journey is about to queue at `now`: `refusal`, then
    the scenario's frequency cap (skip, or hold until it allows), then its quiet hours."""
    reason = refusal(channel, to, profile)
    if reason is not None:
        return Verdict(reason, now)
    deliver_at = now
    cap = scenario.frequency_cap
    if cap is not None and scenario.cap_window is not None:
        until = capped_until(
            profile.messages, channel, now, cap.max, scenario.cap_window, cap.channel
        )
        if until is not None:
            if cap.on_cap != "delay":
                return Verdict(CAPPED, now)
            deliver_at = until
    if scenario.quiet_hours is not None:
        start, end = scenario.quiet_hours
        deliver_at = after_quiet_hours(deliver_at, start, end, profile_zone(profile, scenario.tz))
    return Verdict(None, deliver_at)


def capped_until(
    messages: Sequence[Message],
    channel: str,
    now: datetime,
    most: int,
    window: timedelta,
    only: str | None = None,
) -> datetime | None:
    """None when a frequency cap of `most` sends per `window` (of the channel `only`, else
    of every channel) allows one more at `now`, else the earliest time it allows one."""
    if only is not None and only != channel:
        return None
    since = now - window
    sent = []
    for message in messages:
        at = message.statuses.get("sent")
        if at is not None and at > since and (only is None or message.channel == only):
            sent.append(at)
    if len(sent) < most:
        return None
    sent.sort()
    return sent[len(sent) - most] + window


def recheck(
    scenario: CompiledScenario,
    node_id: str,
    instance: Instance | None,
    profile: Profile,
    now: datetime,
    segments: Mapping[str, Predicate] | None,
) -> str | None:
    """`recheck` when the send node's recheck condition is false for the profile as it is
    `now` (in the journey of `instance`: its entry event and vars), else None."""
    condition = scenario.rechecks.get(node_id)
    if condition is None:
        return None
    facts = Facts(
        profile,
        now,
        profile_zone(profile, scenario.tz),
        instance.entry if instance else None,
        instance.entry if instance else None,
        instance.vars if instance else {},
        instance.entered_at if instance else None,
        scenario.scenario_id,
        segments or {},
    )
    return None if condition(facts) else RECHECK


def locale_key(tag: str) -> str:
    """A locale tag as variants are matched: case-insensitive, `_` taken for `-`."""
    return tag.strip().replace("_", "-").lower()


def variant_for(locale: Any, variants: Mapping[str, Any]) -> str | None:
    """The key (of `variants`, keyed by `locale_key`) of the template for a profile's
    `locale`: the tag itself, else the tag with its last subtag dropped, and so on down
    to the language (`pt-BR` → `pt`; `zh-Hant-TW` → `zh-Hant` → `zh`). A more general
    profile locale never takes a more specific variant: a `pt` profile does not get
    `pt-BR`, there is no telling it is Brazilian. None: the node's own template."""
    if not variants or not isinstance(locale, str) or not locale.strip():
        return None
    key = locale_key(locale)
    while key:
        if key in variants:
            return key
        key = key.rpartition("-")[0]
    return None
