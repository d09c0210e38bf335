"""Engine speed: `python -m bench.engine` (`make bench` pins it to one core).

Prints one `name: value unit` line per figure, then whether each is within its budget,
and merges them into bench/results.json as {name: {"value", "unit", "budget"}}. It is a report:
it exits 0 whatever the figures are.

- engine_us_per_transition: the welcome series (examples/welcome.json) for
  BENCH_INSTANCES profiles (default 100,000, in 5 rounds with a fresh store each),
  each driven from capture through its pauses to the end in virtual time, with in-memory ports: a dict of instances, a list
  of effects and a heap of timers. Webhook and promo code requests are answered at
  once. Half the profiles confirm their subscription (the event is in their history
  before the first wake-up), so both branches of `confirmed` run. A transition is a
  CountStat("node_entered") effect; only the engine calls are timed. The store is
  moved out of the garbage collector's sight (gc.freeze) after each commit, outside the
  timed calls: a Lambda holds no store of 100,000 instances, and scanning one on every
  full collection would be charged to whichever engine call triggered it (about +20%).
- capture_us: µs per `capture` of a profile into the welcome series (the captures
  of the run above: trigger checks, the welcome e-mail and entering the first pause).
- conditions_per_second: a compiled 4-rule segment (city, age, last order within
  30 days, e-mail consent) evaluated over varied profiles.
"""

from __future__ import annotations

import gc
import heapq
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from chalicelib.engine import (
    CallWebhook,
    CompiledScenario,
    CountStat,
    Effect,
    Instance,
    PromoCodeResult,
    SetTimer,
    TakePromoCode,
    WakeUp,
    WebhookResult,
    advance,
    capture,
)
from chalicelib.scenarios.conditions import compile_condition
from chalicelib.scenarios.durations import zone
from chalicelib.scenarios.facts import Event, Facts, Profile
from chalicelib.scenarios.model import Condition

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
INSTANCES = int(os.environ.get("BENCH_INSTANCES", "100000"))
ROUNDS = 5  # the figure is over all of them; the spread between rounds shows the noise
CONDITION_EVALUATIONS = int(os.environ.get("BENCH_CONDITIONS", "1000000"))
START = datetime(2026, 6, 1, 8, tzinfo=UTC)
HORIZON = timedelta(days=30)  # journeys still waiting after this are left (and reported)
ZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "UTC")

# name: (unit, budget, "max" when the value must stay at or below it, "min" at or above)
BUDGETS: dict[str, tuple[str, float | None, str]] = {
    "engine_us_per_transition": ("µs", 20.0, "max"),
    "capture_us": ("µs", None, "max"),
    "conditions_per_second": ("/s", 200_000.0, "min"),
}


def welcome_profile(index: int, entered: datetime) -> Profile:
    """Profile `index`: every other one confirms its subscription two hours in."""
    fields: dict[str, Any] = {
        "first_name": f"Ada{index}",
        "email": f"ada{index}@example.com",
        "phone": f"+1415555{index % 10000:04d}",
        "timezone": ZONES[index % len(ZONES)],
        # Without SMS consent the reminder is skipped, `sms_sent` never holds and the
        # welcome series sends (skips) a reminder every day for ever: give them all consent.
        "consents": {"email": True, "sms": True},
        "loyalty_points": index % 50,
    }
    events = [Event("profile.imported", entered, {"source": "bench"}, id=f"imp-{index}")]
    if index % 2 == 0:
        confirmed = entered + timedelta(hours=2)
        events.append(Event("subscription.confirmed", confirmed, {}, id=f"conf-{index}"))
    return Profile(f"p{index}", fields, events, [], "customers")


def bench_journeys(count: int, first: int = 0) -> dict[str, Any]:
    """Drive welcome-series journeys `first`… to their end; time the engine calls only."""
    with open(ROOT / "examples" / "welcome.json") as file:
        scenario = CompiledScenario.from_document(json.load(file), "welcome", 1)
    instances: dict[str, Instance] = {}
    profiles: dict[str, Profile] = {}
    effects: list[Effect] = []
    timers: list[tuple[datetime, int, str, Any]] = []  # (due, order, instance id, stimulus)
    order = 0
    engine_ns = capture_ns = captures = calls = transitions = 0
    statuses: dict[str, int] = {}
    perf, cpu = time.perf_counter_ns, time.thread_time_ns
    engine_cpu_ns = 0
    cpu_began = time.process_time_ns()

    def commit(instance: Instance, profile: Profile | None, now: datetime) -> None:
        """The in-memory runtime: store the step, queue the answers to its requests."""
        nonlocal order, transitions
        instances[instance.instance_id] = instance
        if profile is not None:
            profiles[instance.instance_id] = profile
        for effect in effects:
            if isinstance(effect, CountStat):
                if effect.name == "node_entered":
                    transitions += 1
                continue
            if isinstance(effect, SetTimer):
                stimulus: Any = WakeUp(effect.step)
                due = effect.wake_at
            elif isinstance(effect, CallWebhook):
                stimulus, due = WebhookResult(effect.step, True, 200, {"ok": True}), now
            elif isinstance(effect, TakePromoCode):
                stimulus, due = PromoCodeResult(effect.step, f"{effect.pool}-{order}"), now
            else:
                continue
            order += 1
            heapq.heappush(timers, (due, order, instance.instance_id, stimulus))
        effects.clear()
        gc.freeze()  # the store is the bench's, not the engine's: keep it out of full GCs
        if not instance.active:
            statuses[instance.status] = statuses.get(instance.status, 0) + 1

    # Captures arrive one every few seconds, interleaved with the wake-ups they cause.
    arrivals = [START + timedelta(seconds=3 * index) for index in range(count)]
    next_arrival = 0
    while next_arrival < count or timers:
        if next_arrival < count and (not timers or arrivals[next_arrival] <= timers[0][0]):
            index, now = first + next_arrival, arrivals[next_arrival]
            next_arrival += 1
            profile = welcome_profile(index, now)
            event = profile.events[0]
            cpu_before = cpu()
            began = perf()
            admission = capture(
                scenario, profile, event, instance_id=f"i{index}", now=now, trigger_id="signup"
            )
            spent = perf() - began
            engine_cpu_ns += cpu() - cpu_before
            engine_ns += spent
            capture_ns += spent
            captures += 1
            calls += 1
            for step in admission.steps:
                effects.extend(step.effects)
                commit(step.instance, step.profile, now)
            continue
        now, _, instance_id, stimulus = heapq.heappop(timers)
        if now > START + HORIZON:
            break
        instance, profile = instances[instance_id], profiles[instance_id]
        cpu_before = cpu()
        began = perf()
        step = advance(scenario, instance, profile, stimulus, now)
        engine_ns += perf() - began
        engine_cpu_ns += cpu() - cpu_before
        calls += 1
        effects.extend(step.effects)
        commit(step.instance, step.profile, now)
    cpu_ns = time.process_time_ns() - cpu_began
    active = sum(1 for instance in instances.values() if instance.active)
    return {
        "engine_ns": engine_ns,
        "engine_cpu_ns": engine_cpu_ns,
        "capture_ns": capture_ns,
        "captures": captures,
        "transitions": transitions,
        "cpu_ns": cpu_ns,
        "calls": calls,
        "instances": len(instances),
        "still_active": active,
        "statuses": statuses,
    }


def bench_rounds(count: int, rounds: int) -> dict[str, Any]:
    """`count` journeys in `rounds` rounds, summed; each round's µs per transition kept."""
    total: dict[str, Any] = {}
    per_round = []
    per_round_cpu = []  # thread CPU time: less swayed than wall time by other work on the machine
    size = -(-count // rounds)
    for first in range(0, count, size):
        result = bench_journeys(min(size, count - first), first)
        gc.unfreeze()
        gc.collect()
        per_round.append(result["engine_ns"] / result["transitions"] / 1000)
        per_round_cpu.append(result["engine_cpu_ns"] / result["transitions"] / 1000)
        for key, value in result.items():
            if isinstance(value, dict):
                merged = total.setdefault(key, {})
                for name, number in value.items():
                    merged[name] = merged.get(name, 0) + number
            else:
                total[key] = total.get(key, 0) + value
    total["engine_us_per_transition"] = total["engine_ns"] / total["transitions"] / 1000
    total["capture_us"] = total["capture_ns"] / total["captures"] / 1000
    total["engine_share"] = total["engine_ns"] / max(1, total["cpu_ns"])
    total["engine_cpu_us_per_transition"] = total["engine_cpu_ns"] / total["transitions"] / 1000
    total["rounds"] = per_round
    total["rounds_cpu"] = per_round_cpu
    return total


SEGMENT = {
    "all": [
        {"field": "profile.city", "op": "eq", "value": "Paris"},
        {"field": "profile.age", "op": "gte", "value": 30},
        {"field": "profile.last_order_at", "op": "gt", "value": {"now": "-P30D"}},
        {"consent": "email", "granted": True},
    ]
}


def bench_conditions(evaluations: int) -> dict[str, Any]:
    """Evaluate the 4-rule segment over 1,000 varied profiles, round after round."""
    predicate = compile_condition(TypeAdapter(Condition).validate_python(SEGMENT))
    now = START
    cities = ("Paris", "Berlin", "Paris", "Lyon")
    facts = []
    for index in range(1000):
        fields: dict[str, Any] = {
            "city": cities[index % len(cities)],
            "age": 18 + index % 50,
            "consents": {"email": index % 5 != 0},
        }
        if index % 7:
            last_order = now - timedelta(days=index % 60, hours=index % 24)
            fields["last_order_at"] = last_order.isoformat().replace("+00:00", "Z")
        facts.append(Facts(profile=Profile(f"p{index}", fields), now=now, tz=zone(None)))
    rounds = max(1, evaluations // len(facts))
    matched = 0
    began = time.perf_counter_ns()
    for _ in range(rounds):
        for item in facts:
            if predicate(item):
                matched += 1
    spent = time.perf_counter_ns() - began
    total = rounds * len(facts)
    return {
        "conditions_per_second": total / (spent / 1e9),
        "evaluations": total,
        "matched": matched,
    }


def within(name: str, value: float) -> bool | None:
    _, budget, kind = BUDGETS[name]
    if budget is None:
        return None
    return value <= budget if kind == "max" else value >= budget


def main() -> int:
    journeys = bench_rounds(INSTANCES, ROUNDS)
    conditions = bench_conditions(CONDITION_EVALUATIONS)
    figures = {
        "engine_us_per_transition": journeys["engine_us_per_transition"],
        "capture_us": journeys["capture_us"],
        "conditions_per_second": conditions["conditions_per_second"],
    }
    results = {}
    verdicts = []
    for name, value in figures.items():
        unit, budget, kind = BUDGETS[name]
        shown = round(value) if unit == "/s" else round(value, 2)
        print(f"{name}: {shown} {unit}")
        results[name] = {"value": shown, "unit": unit, "budget": budget}
        ok = within(name, value)
        if ok is not None:
            sign = "≤" if kind == "max" else "≥"
            verdicts.append(f"{name} {'within' if ok else 'OVER'} budget ({sign} {budget:g})")
    sys.stdout.flush()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# load average {load:.2f} (other work on the machine inflates these wall-clock "
        f"figures; engine time was {journeys['engine_share']:.0%} of the drive's CPU time); "
        f"µs per transition by round: {', '.join(f'{r:.1f}' for r in journeys['rounds'])}; "
        f"in thread CPU time: {journeys['engine_cpu_us_per_transition']:.1f} µs per transition "
        f"(best round {min(journeys['rounds_cpu']):.1f})",
        file=sys.stderr,
    )
    print(
        f"# CPython {platform.python_version()} at {sys.executable} (how it was built matters: "
        "see docs/engine.md); "
        f"{journeys['instances']} journeys, {journeys['calls']} engine calls, "
        f"{journeys['transitions']} transitions, ended {journeys['statuses']}, "
        f"{journeys['still_active']} still active; {conditions['evaluations']} condition "
        f"evaluations, {conditions['matched']} matched",
        file=sys.stderr,
    )
    sys.stderr.flush()
    # Merged: bench.runtime writes its own figures into the same file.
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged.update(results)
    RESULTS.write_text(json.dumps(merged, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    print("budgets: " + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
