"""Pacing a scenario's sends under its rate limit (SPEC §1.1 `rate_limit`).

The limit is a token bucket that holds one token and refills at `max` tokens per
`window`: kept as the moment its next token is there (`free_at`). A send that asks for
a slot takes the token if it is there and leaves at once; otherwise it reserves the
next one and waits for it, so slots are handed out in the order they were asked for and
a later send never overtakes one that is waiting. Slots are `spacing` apart: never more
than `max` of them fall in any span of `window` (a bucket holding up to `max` tokens
would let nearly twice that through one window, after a quiet one).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.engine.compiled import WindowLimit

MICROSECOND = timedelta(microseconds=1)


def spacing(limit: WindowLimit) -> timedelta:
    """The time between two slots: the window over `max`, rounded up to a microsecond."""
    return -(-limit.window // MICROSECOND // limit.max) * MICROSECOND


def next_slot(
    free_at: datetime | None, now: datetime, limit: WindowLimit
) -> tuple[datetime, datetime]:
    """The slot a send asking at `now` gets, and the bucket's `free_at` after it
    (`free_at` None: the bucket was never used)."""
    leave = now if free_at is None or free_at <= now else free_at
    return leave, leave + spacing(limit)
