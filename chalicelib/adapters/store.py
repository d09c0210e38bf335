"""The stack's DynamoDB tables and the keys shared by their users.

The storage port's adapter (`dynamodb_storage.py`) reads and writes what journeys
need through these; the code that still reaches the tables directly (statistics,
channels, feedback) does too.
"""

from __future__ import annotations

from .codec import profile_key
from .dynamo import Table

scenarios = Table("scenarios")
segments = Table("segments")
profiles = Table("profiles")
instances = Table("instances")
timers = Table("timers")
messages = Table("messages")
stats = Table("stats")
promo_codes = Table("promo_codes")
idempotency = Table("idempotency")

# --- scenarios -------------------------------------------------------------------------


def scenario_key(scenario_id: str) -> dict[str, str]:
    return {"pk": f"S#{scenario_id}", "sk": "meta"}


def version_key(scenario_id: str, version: int) -> dict[str, str]:
    return {"pk": f"S#{scenario_id}", "sk": f"V#{version:06d}"}


# --- profiles --------------------------------------------------------------------------


def profile_partition(profile_db: str, profile_id: str) -> str:
    return f"P#{profile_key(profile_db, profile_id)}"
