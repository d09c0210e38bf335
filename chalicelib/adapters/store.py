"""The stack's DynamoDB tables and the keys shared by their users.

The storage port's adapter (`dynamodb_storage.py`) reads and writes what journeys
need through these; the code that still reaches the tables directly (the scenario
lifecycle, statistics, channels, feedback) does too.
"""

from __future__ import annotations

from typing import Any

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


def load_scenario(scenario_id: str) -> dict[str, Any] | None:
    """The scenario's metadata item: status, current version, draft, secret."""
    return scenarios.get(scenario_key(scenario_id))


# --- profiles --------------------------------------------------------------------------


def profile_partition(profile_db: str, profile_id: str) -> str:
    return f"P#{profile_key(profile_db, profile_id)}"


# --- instances -------------------------------------------------------------------------


def active_instance_ids(scenario_id: str) -> list[str]:
    found = instances.query("active_scenario = :s", index="by_scenario", values={":s": scenario_id})
    return [values["instance_id"] for values in found]


def instances_at_node(
    scenario_id: str, node: str, limit: int | None = None
) -> list[dict[str, Any]]:
    return list(
        instances.query(
            "node_key = :k", index="by_node", values={":k": f"{scenario_id}#{node}"}, limit=limit
        )
    )
