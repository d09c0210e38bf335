"""The local stack's memory over a long run: `python -m bench.soak` (part of `make bench`).

The local stack itself, as `make run` starts it (`python -m chalicelib.local`, here on a
virtual clock), driven through HTTP for SOAK_DAYS days (365): each day a schedule trigger
puts every profile of a segment into a journey (an e-mail, a day's pause, an SMS), each
of them sends an event, and a new profile signs up, captured into a welcome e-mail:
SOAK_JOURNEYS journeys (10,000) in all. Then SOAK_IDLE_DAYS (30) idle days: the
schedule still runs every day, but nobody is left in its segment. The server's resident
memory (VmRSS of its process) is read after a warm-up month, every day, and at the end,
with its peak (VmHWM).

The bench fails when the peak passes SOAK_LIMIT_MB (1 GB), or when the idle days grow
it by more than IDLE_LIMIT_MB per 100 days: what the stack keeps must be what TTL has
not removed yet and what the product keeps on purpose (the 400-day event history,
journeys, message records), not something that grows with time or with schedule runs.

`python -m bench.soak --quick` runs 10 days, 40 journeys and 5 idle days, for a check in
a minute. Prints `name: value unit` lines and merges them into bench/results.json.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results.json"
QUICK = "--quick" in sys.argv[1:]
DAYS = int(os.environ.get("SOAK_DAYS", "10" if QUICK else "365"))
JOURNEYS = int(os.environ.get("SOAK_JOURNEYS", "40" if QUICK else "10000"))
IDLE_DAYS = int(os.environ.get("SOAK_IDLE_DAYS", "5" if QUICK else "30"))
WARM_UP_DAYS = min(30, DAYS // 4 or 1)
LIMIT_MB = float(os.environ.get("SOAK_LIMIT_MB", "1024"))
IDLE_LIMIT_MB = 20.0  # per 100 idle days; a schedule run that kept 2 MB would grow 200
START = datetime(2026, 1, 1, 6, tzinfo=UTC)
KEY = "soak"


def newsletter() -> dict[str, Any]:
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


WELCOME = {
    "name": "Welcome",
    "profile_db": "customers",
    "entry": "hello",
    "triggers": [{"id": "signup", "type": "event", "event": "profile.created", "next": "hello"}],
    "nodes": {"hello": {"type": "send", "channel": "email", "template": {"subject": "Hi"}}},
}


def person(profile_id: str) -> dict[str, Any]:
    return {
        "first_name": profile_id.title(),
        "email": f"{profile_id}@example.com",
        "phone": "+14155550100",
        "consents": {"email": True, "sms": True},
    }


class Stack:
    """`python -m chalicelib.local` on a free port and a virtual clock, called with its key."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SCENARIA_", "AWS_"))  # the stack sets its own
        }
        environment.update(
            PORT=str(port),
            SCENARIA_API_KEY=KEY,
            SCENARIA_CLOCK="virtual",
            SCENARIA_CLOCK_START=START.isoformat(),
            POWERTOOLS_LOG_LEVEL="ERROR",
        )
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (open while the stack runs)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local"],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/openapi.json", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    output = self.output()
                    self.stop()
                    raise RuntimeError(f"the local stack did not start:\n{output}") from None
                time.sleep(0.2)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"X-Api-Key": KEY, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()!r}") from None

    def memory_mb(self) -> tuple[float, float]:
        """(resident now, resident at its peak) of the server's process, in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        resident, peak = (int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))
        return resident, peak

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


def soak(days: int, journeys: int, idle_days: int) -> dict[str, tuple[float, str]]:
    stack = Stack()
    try:
        return drive(stack, days, journeys, idle_days)
    except Exception:
        print(stack.output(), file=sys.stderr)
        raise
    finally:
        stack.stop()


def drive(stack: Stack, days: int, journeys: int, idle_days: int) -> dict[str, tuple[float, str]]:
    call = stack.call
    for scenario in call("GET", "/scenarios")["scenarios"]:  # the example: not this load
        if scenario["status"] == "active":
            call("POST", f"/scenarios/{scenario['id']}/deactivate", {"keep_profiles": False})
    members = max(1, math.ceil((journeys - days) / days))  # and one sign-up a day
    for n in range(members):
        call("PUT", f"/profiles/customers/m{n}", {"fields": {**person(f"m{n}"), "segment": "soak"}})
    ids = []
    for document in (WELCOME, newsletter()):
        ids.append(call("POST", "/scenarios", document)["id"])
        call("POST", f"/scenarios/{ids[-1]}/activate")

    def entered() -> int:
        return sum(call("GET", f"/scenarios/{i}/stats")["entered"] for i in ids)

    began = time.monotonic()

    def next_day(day: int) -> float:
        call("POST", "/local/clock", {"set": (START + timedelta(days=day)).isoformat()})
        resident, _ = stack.memory_mb()
        if day % 30 == 0 or day == days or os.environ.get("SOAK_VERBOSE"):
            print(
                f"  day {day}: {resident:.0f} MB resident, {time.monotonic() - began:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        return resident

    warm = warm_journeys = 0.0
    for day in range(1, days + 1):
        call("PUT", f"/profiles/customers/s{day}", {"fields": person(f"s{day}")})
        events = [
            {"type": "page.visited", "profile_db": "customers", "profile_id": f"m{n}"}
            for n in range(members)
        ]
        call("POST", "/events", {"events": events})
        resident = next_day(day)
        if day == WARM_UP_DAYS:
            warm, warm_journeys = resident, entered()
    seconds = time.monotonic() - began
    end, _ = stack.memory_mb()
    total = entered()
    # idle: the schedule still runs each day, with nobody left in its segment
    for n in range(members):
        call("PUT", f"/profiles/customers/m{n}", {"fields": {"segment": "left"}})
    idle_from = next_day(days + 1)  # the journeys of the last day end on this one
    idle_to = idle_from
    for day in range(days + 2, days + idle_days + 1):
        idle_to = next_day(day)
    _, peak = stack.memory_mb()
    return {
        "soak_days": (days, "days"),
        "soak_journeys": (total, "journeys"),
        "soak_seconds": (round(seconds, 1), "s"),
        "soak_rss_after_warm_up": (round(warm, 1), "MB"),
        "soak_rss_at_end": (round(end, 1), "MB"),
        "soak_peak_rss": (round(peak, 1), "MB"),
        "soak_growth_per_1000_journeys": (
            round((end - warm) * 1000 / max(1, total - warm_journeys), 1),
            "MB",
        ),
        "soak_growth_per_100_days": (
            round((end - warm) * 100 / max(1, days - WARM_UP_DAYS), 1),
            "MB",
        ),
        "soak_idle_days": (idle_days, "days"),
        "soak_idle_growth_per_100_days": (
            round((idle_to - idle_from) * 100 / max(1, idle_days - 1), 1),
            "MB",
        ),
    }


def main() -> int:
    figures = soak(DAYS, JOURNEYS, IDLE_DAYS)
    for name, (value, unit) in figures.items():
        print(f"{name}: {value} {unit}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(
        {name: {"value": value, "unit": unit} for name, (value, unit) in figures.items()}
    )
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    peak = figures["soak_peak_rss"][0]
    idle = figures["soak_idle_growth_per_100_days"][0]
    if peak > LIMIT_MB:
        print(f"FAIL: peak resident memory {peak} MB is over {LIMIT_MB:.0f} MB", file=sys.stderr)
        return 1
    if idle > IDLE_LIMIT_MB:
        print(f"FAIL: idle days grew {idle} MB per 100 days (over {IDLE_LIMIT_MB:.0f})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
