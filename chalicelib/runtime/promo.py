"""Promo code pools: add codes, count what is left (taking one is `Storage.take_code`)."""

from __future__ import annotations

from chalicelib.adapters import store

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
