"""The local stack's memory over a long run: `python -m bench.soak` (part of `make bench`).

The stack's machinery as `make run` has it (the real handlers, the queue pumps, the
schedules, the TTL reaping) on in-process moto — the same backends `make run` serves on
loopback, without an HTTP hop per request — on a virtual clock, driven for SOAK_DAYS
days (120; 365 for a year): each day a schedule trigger puts every profile of a segment into a journey
(an e-mail, a day's pause, an SMS), each of them sends an event, and every third day a
new profile signs up, captured into a welcome e-mail: about SOAK_JOURNEYS journeys in
all. The resident memory is read after a warm-up month and at the end; the bench fails
when the peak passes SOAK_LIMIT_MB (1 GB). What the stack keeps is bounded by what TTL
removes, not by how long it runs.

Prints `name: value unit` lines and merges them into bench/results.json.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
# Days of virtual time: 120 keep `make bench` to minutes; SOAK_DAYS=365 runs a year, which
# takes about 25 minutes on two busy cores (moto's queries read whole tables, which grow).
DAYS = int(os.environ.get("SOAK_DAYS", "120"))
# Journeys in all, about (one sign-up a day, the rest the daily run's): each costs moto
# some 0.25 s and more as its tables grow (moto reads a whole table for every query), so
# `make bench` runs one or two a day; SOAK_JOURNEYS=10000 over a year takes hours.
JOURNEYS = int(os.environ.get("SOAK_JOURNEYS", str(DAYS + DAYS // 3)))
SIGNUP_EVERY = 3  # days
WARM_UP_DAYS = 30
LIMIT_MB = float(os.environ.get("SOAK_LIMIT_MB", "1024"))
START = datetime(2026, 1, 1, 6, tzinfo=UTC)


def rss_mb() -> float:
    """Resident memory now, in MB (Linux: /proc; elsewhere the peak stands in)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_mb()


def peak_mb() -> float:
    """Peak resident memory so far, in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def newsletter(members: int) -> dict[str, Any]:
    """A daily newsletter to the `soak` segment: e-mail, a day's pause, an SMS."""
    return {
        "name": "Daily newsletter",
        "profile_db": "customers",
        "reentry": "parallel",
        "entry": "letter",
        "triggers": [
            {
                "id": "daily",
                "type": "schedule",
                "daily": "10:00",
                "segment": {"field": "profile.segment", "op": "eq", "value": "soak"},
                "next": "letter",
            }
        ],
        "nodes": {
            "letter": {
                "type": "send",
                "channel": "email",
                "template": {
                    "subject": "News of the day",
                    "body": "Hello {{ profile.first_name }}",
                },
                "next": "wait",
            },
            "wait": {"type": "pause", "duration": "P1D", "next": "reminder"},
            "reminder": {"type": "send", "channel": "sms", "template": {"body": "Read it?"}},
        },
    }


def person(profile_id: str) -> dict[str, Any]:
    return {
        "first_name": profile_id.title(),
        "email": f"{profile_id}@example.com",
        "phone": "+14155550100",
        "consents": {"email": True, "sms": True},
    }


def soak() -> dict[str, tuple[float, str]]:
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.bootstrap import bootstrap
    from chalicelib.local.stack import Runtime

    os.environ.pop("SCENARIA_AWS_ENDPOINT", None)
    os.environ.update(
        SCENARIA_STAGE="soak", SCENARIA_API_KEY="soak", SCENARIA_PRECISE_DELAYS="0",
        SCENARIA_TIMER_SHARDS="2", AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak",
        AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_LOG_LEVEL="ERROR",
        POWERTOOLS_METRICS_DISABLED="true",
    )  # fmt: skip
    aws = mock_aws()
    aws.start()
    bootstrap()
    from chalicelib.adapters.clock import VirtualClock, use_clock
    from chalicelib.local import routes
    from chalicelib.local.clock import advance_to
    from chalicelib.local.stack import create_resources

    clock = VirtualClock(START)
    use_clock(clock)
    create_resources()
    from app import app

    app.register_blueprint(routes.blueprint)
    runtime = Runtime(app)
    routes.runtime = runtime
    http = Client(app).http
    key = {"X-Api-Key": os.environ["SCENARIA_API_KEY"], "Content-Type": "application/json"}

    def call(method: str, path: str, body: Any = None) -> Any:
        answer = http.request(method, path, headers=key, body=json.dumps(body).encode())
        assert answer.status_code < 300, (method, path, answer.status_code, answer.body)
        return answer.json_body

    members = max(1, (JOURNEYS - DAYS // SIGNUP_EVERY) // DAYS)
    for n in range(members):
        call("PUT", f"/profiles/customers/m{n}", {"fields": {**person(f"m{n}"), "segment": "soak"}})
    welcome = {
        "name": "Welcome",
        "profile_db": "customers",
        "entry": "hello",
        "triggers": [
            {"id": "signup", "type": "event", "event": "profile.created", "next": "hello"}
        ],
        "nodes": {"hello": {"type": "send", "channel": "email", "template": {"subject": "Hi"}}},
    }
    welcome_id = call("POST", "/scenarios", welcome)["id"]
    call("POST", f"/scenarios/{welcome_id}/activate")
    newsletter_id = call("POST", "/scenarios", newsletter(members))["id"]
    call("POST", f"/scenarios/{newsletter_id}/activate")

    began, warm, signups = time.monotonic(), 0.0, 0
    for day in range(1, DAYS + 1):
        if day % SIGNUP_EVERY == 0:  # a sign-up: the welcome e-mail, captured on creation
            signups += 1
            call("PUT", f"/profiles/customers/s{signups}", {"fields": person(f"s{signups}")})
        events = [
            {"type": "page.visited", "profile_id": f"m{n}", "data": {"day": day}}
            for n in range(members)
        ]
        call("POST", "/events", {"events": events})
        advance_to(runtime, clock, START + timedelta(days=day))
        if day == WARM_UP_DAYS:
            warm = rss_mb()
        if day % 30 == 0 or os.environ.get("SOAK_VERBOSE"):
            print(f"  day {day}: {rss_mb():.0f} MB resident", file=sys.stderr, flush=True)
    end = rss_mb()
    stats = call("GET", f"/scenarios/{newsletter_id}/stats")
    welcome_stats = call("GET", f"/scenarios/{welcome_id}/stats")
    journeys = stats["entered"] + welcome_stats["entered"]
    aws.stop()
    return {
        "soak_days": (DAYS, "days"),
        "soak_journeys": (journeys, "journeys"),
        "soak_rss_after_warm_up": (round(warm, 1), "MB"),
        "soak_rss_at_end": (round(end, 1), "MB"),
        "soak_peak_rss": (round(peak_mb(), 1), "MB"),
        "soak_growth_after_warm_up": (round(end / warm if warm else 0.0, 2), "ratio"),
        "soak_seconds": (round(time.monotonic() - began, 1), "s"),
    }


def main() -> int:
    figures = soak()
    for name, (value, unit) in figures.items():
        print(f"{name}: {value} {unit}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(
        {name: {"value": value, "unit": unit} for name, (value, unit) in figures.items()}
    )
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    peak = figures["soak_peak_rss"][0]
    if peak > LIMIT_MB:
        print(f"FAIL: peak resident memory {peak} MB is over {LIMIT_MB:.0f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
