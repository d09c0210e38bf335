"""Promo code pools: add codes, count what is left (taking one is `Storage.take_code`)."""

from __future__ import annotations

from chalicelib.adapters.clock import now as clock_now
from chalicelib.bootstrap import services
from chalicelib.scenarios.facts import Event

from .profiles import publish


def add_codes(pool: str, codes: list[str]) -> int:
    """Add codes to a pool (a code already there, taken or not, is not added again)."""
    return services().storage.add_codes(pool, codes)


def codes_left(pool: str) -> int:
    return services().storage.codes_left(pool)


def pool_exists(pool: str) -> bool:
    """A pool exists once codes were added to it, even when all of them are taken."""
    return services().storage.pool_exists(pool)


class UnknownCode(LookupError):
    """No such code in the pool."""


class AlreadyRedeemed(ValueError):
    """The code was redeemed before."""


def redeem(pool: str, code: str, profile_db: str, profile_id: str) -> Event:
    """Mark a code redeemed, once, and announce it with `promo_code.redeemed` (its id is
    the code's, so the event is one however the announcement is retried). The profile's
    own second call is refused too, but announces it again first, in case the first call
    died before it did."""
    now = clock_now()
    outcome = services().storage.redeem_code(pool, code, profile_db, profile_id, now)
    if outcome == "unknown":
        raise UnknownCode(f"no code {code!r} in promo pool {pool!r}")
    if outcome == "again":
        raise AlreadyRedeemed(f"code {code!r} of promo pool {pool!r} was redeemed already")
    event = Event(
        "promo_code.redeemed", now, {"pool": pool, "code": code, "derived": True},
        id=f"promo_code.redeemed:{pool}:{code}",
    )  # fmt: skip
    publish(profile_db, [(profile_id, event)])
    if outcome == "repeated":
        raise AlreadyRedeemed(f"code {code!r} of promo pool {pool!r} was redeemed already")
    return event
