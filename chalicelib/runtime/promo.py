"""Promo code pools: add codes, count what is left, take one code once per request."""

from __future__ import annotations

from chalicelib.adapters import store
from chalicelib.adapters.clock import now as clock_now
from chalicelib.adapters.dynamo import ConditionFailed, transact
from chalicelib.scenarios.durations import format_datetime

# Codes are items (pool, "A#<code>") while available and (pool, "T#<code>") once taken.


def add_codes(pool: str, codes: list[str]) -> int:
    """Add codes to a pool (a code already there, taken or not, is not added again)."""
    taken = {
        item["code"][2:]
        for item in store.promo_codes.query(
            "pool = :p AND begins_with(code, :t)", values={":p": pool, ":t": "T#"}
        )
    }
    fresh = sorted(set(codes) - taken)
    store.promo_codes.batch_put([{"pool": pool, "code": f"A#{code}"} for code in fresh])
    return len(fresh)


def codes_left(pool: str) -> int:
    return sum(
        1
        for _ in store.promo_codes.query(
            "pool = :p AND begins_with(code, :a)", values={":p": pool, ":a": "A#"}
        )
    )


def pool_exists(pool: str) -> bool:
    """A pool exists once codes were added to it, even when all of them are taken."""
    return (
        next(store.promo_codes.query("pool = :p", values={":p": pool}, limit=1), None) is not None
    )


def take_code(pool: str, request_id: str) -> str | None:
    """One unused code for `request_id`, the same one if asked again; None when the pool is empty."""
    key = {"key": f"promo#{request_id}"}
    for _ in range(20):
        done = store.idempotency.get(key)
        if done is not None:
            return done["code"]
        available = next(
            store.promo_codes.query(
                "pool = :p AND begins_with(code, :a)", values={":p": pool, ":a": "A#"}, limit=1
            ),
            None,
        )
        if available is None:
            return None
        code = available["code"][2:]
        try:
            transact(
                [
                    store.promo_codes.tx_delete(
                        {"pool": pool, "code": f"A#{code}"}, "attribute_exists(code)"
                    ),
                    store.promo_codes.tx_put(
                        {
                            "pool": pool,
                            "code": f"T#{code}",
                            "taken_by": request_id,
                            "taken_at": format_datetime(clock_now()),
                        }
                    ),
                    store.idempotency.tx_put(
                        {**key, "code": code}, "attribute_not_exists(#k)", names={"#k": "key"}
                    ),
                ]
            )
        except ConditionFailed:
            continue  # someone took that code, or this request already got one: look again
        return code
    raise RuntimeError(f"could not take a code from pool {pool!r}")
