"""Reading the stack's state from DynamoDB: scenarios, profiles, instances.

Writes that belong to a journey step are built in `chalicelib/runtime/commit.py` and
go out as one transaction; this module holds the item layout and the reads.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.engine.compiled import CompiledScenario
from chalicelib.engine.state import Instance
from chalicelib.scenarios.facts import Profile

from .aws import client
from .codec import event_from_values, instance_from_values, message_from_values, profile_key
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

EVENT_LIMIT = 300  # the newest events the engine sees per profile
MESSAGE_LIMIT = 200  # and the newest messages


# --- scenarios -------------------------------------------------------------------------


def scenario_key(scenario_id: str) -> dict[str, str]:
    return {"pk": f"S#{scenario_id}", "sk": "meta"}


def version_key(scenario_id: str, version: int) -> dict[str, str]:
    return {"pk": f"S#{scenario_id}", "sk": f"V#{version:06d}"}


def load_scenario(scenario_id: str) -> dict[str, Any] | None:
    """The scenario's metadata item: status, current version, draft, secret."""
    return scenarios.get(scenario_key(scenario_id))


@lru_cache(maxsize=256)
def compiled_version(scenario_id: str, version: int) -> CompiledScenario:
    """A stored version, compiled; versions never change, so they are cached for good."""
    item = scenarios.get(version_key(scenario_id, version))
    if item is None:
        raise LookupError(f"scenario {scenario_id} has no version {version}")
    return CompiledScenario.from_document(item["document"], scenario_id, version)


def scenarios_for_event(event_type: str) -> list[str]:
    """Active scenarios with an event trigger on this type (the trigger index)."""
    return [item["sk"] for item in scenarios.query("pk = :pk", values={":pk": f"E#{event_type}"})]


# --- profiles --------------------------------------------------------------------------


def profile_partition(profile_db: str, profile_id: str) -> str:
    return f"P#{profile_key(profile_db, profile_id)}"


def load_profile(profile_db: str, profile_id: str) -> tuple[Profile, dict[str, Any] | None]:
    """The engine's view of a profile (fields, newest events and messages) and its stored item.

    Two Queries, newest first, so a long message history never crowds out the events:
    the profile item (`P`) with its messages (`M#…`, which sort just before it), then
    its events (`E#…`).
    """
    view = Profile(profile_id, profile_db=profile_db)
    item = None
    partition = profile_partition(profile_db, profile_id)
    for values in profiles.query(
        "pk = :pk AND sk >= :m",
        values={":pk": partition, ":m": "M#"},
        forward=False,
        limit=1 + MESSAGE_LIMIT,
    ):
        if values["sk"] == "P":
            item = values
            view.fields = values.get("fields") or {}
            view.invalid = values.get("invalid") or {}
        elif values["sk"].startswith("M#"):
            view.messages.append(message_from_values(values))
    for values in profiles.query(
        "pk = :pk AND begins_with(sk, :e)",
        values={":pk": partition, ":e": "E#"},
        forward=False,
        limit=EVENT_LIMIT,
    ):
        view.events.append(event_from_values(values))
    view.events.reverse()
    view.messages.reverse()
    return view, item


# --- instances -------------------------------------------------------------------------


def load_instance(instance_id: str) -> tuple[Instance, int, list[str]] | None:
    values = instances.get({"instance_id": instance_id})
    return instance_from_values(values) if values else None


def instances_of_profile(
    profile_db: str, profile_id: str, scenario_id: str | None = None
) -> list[tuple[Instance, int, list[str]]]:
    condition = "profile_key = :p"
    values: dict[str, Any] = {":p": profile_key(profile_db, profile_id)}
    if scenario_id is not None:
        condition += " AND begins_with(scenario_key, :s)"
        values[":s"] = f"{scenario_id}#"
    return [
        instance_from_values(v)
        for v in instances.query(condition, index="by_profile", values=values)
    ]


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


def count_active(scenario_id: str) -> int:
    """Profiles now in a scenario: its active instances, counted on the index."""
    arguments: dict[str, Any] = {
        "TableName": instances.name,
        "IndexName": "by_scenario",
        "Select": "COUNT",
        "KeyConditionExpression": "active_scenario = :s",
        "ExpressionAttributeValues": {":s": {"S": scenario_id}},
    }
    count = 0
    while True:
        answer = client("dynamodb").query(**arguments)
        count += int(answer["Count"])
        if "LastEvaluatedKey" not in answer:
            return count
        arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
