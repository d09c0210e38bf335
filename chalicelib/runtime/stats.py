"""Statistics: the sharded per-day counters summed into SPEC §3.3's shape."""

from __future__ import annotations

from datetime import date
from typing import Any

from chalicelib.adapters import store

TOTALS = ("entered", "completed", "exited", "removed", "errors")


def scenario_stats(
    scenario_id: str, version: int | None = None, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Counters of a scenario, for one version or summed over all, between two days."""
    prefix = f"{version:06d}#" if version is not None else ""
    totals = dict.fromkeys(TOTALS, 0)
    nodes: dict[str, dict[str, int]] = {}
    for item in store.stats.query(
        "scenario_id = :s AND begins_with(sk, :p)", values={":s": scenario_id, ":p": prefix}
    ):
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
