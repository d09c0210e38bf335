"""Statistics: the sharded per-day counters summed into SPEC §3.3's shape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from chalicelib.adapters import store

TOTALS = ("entered", "completed", "exited", "removed", "errors")


def scenario_stats(
    scenario_id: str, version: int | None = None, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Counters of a scenario, for one version or summed over all, between two days."""
    totals = dict.fromkeys(TOTALS, 0)
    nodes: dict[str, dict[str, int]] = {}
    for item in _counter_items(scenario_id, version):
        day = date.fromisoformat(item["sk"].split("#")[1])
        if (start and day < start) or (end and day > end):
            continue
        for name, count in item.items():
            if name in TOTALS:
                totals[name] += count
            elif name.startswith("node_"):
                kind, _, node = name.partition("|")
                counters = nodes.setdefault(node, {"entered": 0, "exited": 0, "current": 0})
                counters[kind.removeprefix("node_")] += count
    for counters in nodes.values():
        counters["current"] = counters["entered"] - counters["exited"]
    ended = sum(totals[name] for name in TOTALS if name != "entered")
    return {
        **totals,
        "active": totals["entered"] - ended,
        "nodes": nodes,
        "channels": {},
        "revenue": 0.0,
    }


def _counter_items(scenario_id: str, version: int | None) -> Iterator[dict[str, Any]]:
    """The scenario's counter items, of one version or all (DynamoDB refuses an empty
    `begins_with` prefix on a key, so all versions is a plain key query)."""
    if version is None:
        return store.stats.query("scenario_id = :s", values={":s": scenario_id})
    return store.stats.query(
        "scenario_id = :s AND begins_with(sk, :p)",
        values={":s": scenario_id, ":p": f"{version:06d}#"},
    )
