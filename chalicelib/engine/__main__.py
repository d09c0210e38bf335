"""`python -m chalicelib.engine SCENARIO.json [TIMELINE.json]`: simulate a journey and print it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from chalicelib.scenarios.durations import format_datetime

from .compiled import CompiledScenario
from .simulate import Simulation, simulate


def main(argv: list[str]) -> int:
    """`python -m chalicelib.engine.simulate SCENARIO.json [TIMELINE.json]`: print the journey."""
    if len(argv) not in (1, 2):
        print(main.__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as file:
        scenario = CompiledScenario.from_document(json.load(file))
    request = Simulation()
    if len(argv) == 2:
        with open(argv[1]) as file:
            request = Simulation.model_validate(json.load(file))
    show(scenario, request)
    return 0


def show(scenario: CompiledScenario, request: Simulation) -> None:
    """Simulate from June 1st 2026, 09:00 UTC (unless the request starts elsewhere) and
    print the path, the sends and how the journey ended."""
    start = request.start or datetime(2026, 6, 1, 9, tzinfo=UTC)
    report = simulate(scenario, request, start)
    print(f"Scenario {scenario.name!r}, from {format_datetime(start)}:")
    for entry in report["path"]:
        print(f"  {entry['at']}  {entry['node']:<16} {entry['outcome']}")
    for send in report["sends"]:
        print(
            f"  sent {send['channel']} to {send['to']} at {send['at']}: {send['subject'] or send['body']}"
        )
    print(f"Status: {report['status']} ({report['reason'] or 'end of graph'})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
