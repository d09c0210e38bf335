"""`python -m chalicelib.cli COMMAND DIR`: scenarios as code (docs/cli.md).

  validate DIR                       every problem of every file, with its path
  simulate DIR                       each scenario against its <name>.timeline.json
  diff DIR --url URL --key KEY       what apply would create, change or leave alone
  apply DIR --url URL --key KEY      create and update (a new version when active)

Exit status: 0 when all is well, 1 when files have problems (or, with `diff
--exit-code`, when changes are pending), 2 for usage errors and a stack that cannot be
reached or refuses a call. `--url` and `--key` default to SCENARIA_URL and
SCENARIA_API_KEY.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from chalicelib.engine import CompiledScenario, Simulation
from chalicelib.engine.__main__ import show

from .folder import ScenarioFile, read_folder
from .remote import Stack, StackError, apply, plan

OK, PROBLEMS, USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    folder = Path(arguments.folder)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return USAGE
    files = read_folder(folder)
    if not files:
        print(f"error: no scenario files (*.json) in {folder}", file=sys.stderr)
        return USAGE
    if arguments.command in ("diff", "apply") and not (arguments.url and arguments.key):
        print("error: give --url and --key (or SCENARIA_URL, SCENARIA_API_KEY)", file=sys.stderr)
        return USAGE
    if not _valid(files, quiet=arguments.command != "validate"):
        return PROBLEMS
    if arguments.command == "validate":
        return OK
    if arguments.command == "simulate":
        return _simulate(files)
    stack = Stack(arguments.url, arguments.key)
    try:
        changes = plan(stack, files, activate=arguments.command == "apply" and arguments.activate)
        if arguments.command == "diff":
            for change in changes:
                print(change.line())
                for line in change.diff or ():
                    print(f"    {line}")
            pending = [c for c in changes if c.action != "none" or c.activate]
            print(f"{len(pending)} of {len(changes)} scenarios would change")
            return PROBLEMS if pending and arguments.exit_code else OK
        for change in changes:
            print(apply(stack, change), flush=True)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE
    return OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.cli",
        description="Scenarios as code: validate, simulate, diff and apply a folder of "
        "scenario files.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("validate", "list every problem of every scenario and timeline file"),
        ("simulate", "simulate each scenario against its <name>.timeline.json"),
        ("diff", "show what apply would create, change or leave alone on a stack"),
        ("apply", "create new scenarios and save changed ones (a new version when active)"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("folder", metavar="DIR", help="the folder of scenario files")
        if name in ("diff", "apply"):
            command.add_argument(
                "--url", default=os.environ.get("SCENARIA_URL"), help="the stack's API URL"
            )
            command.add_argument(
                "--key", default=os.environ.get("SCENARIA_API_KEY"), help="an editor's API key"
            )
        if name == "diff":
            command.add_argument(
                "--exit-code", action="store_true", help="exit with 1 when changes are pending"
            )
        if name == "apply":
            command.add_argument(
                "--activate", action="store_true", help="activate every scenario not active"
            )
    return parser


def _valid(files: list[ScenarioFile], quiet: bool) -> bool:
    """Print every problem (and, unless `quiet`, every good file); True when none."""
    count = 0
    for found in files:
        for problem in found.problems:
            print(problem)
        count += len(found.problems)
        if not found.problems and not quiet:
            print(f"{found.path}: ok")
    if count:
        print(f"{count} problems in {sum(1 for f in files if f.problems)} of {len(files)} files")
    elif not quiet:
        print(f"{len(files)} files, no problems")
    return count == 0


def _simulate(files: list[ScenarioFile]) -> int:
    for found in files:
        if found.timeline is None:
            print(f"{found.path}: no {found.path.stem}.timeline.json, not simulated")
            continue
        print(f"{found.path} with {found.timeline.name}:")
        timeline = Simulation.model_validate_json(found.timeline.read_text(encoding="utf-8"))
        show(CompiledScenario.from_document(found.document), timeline)
    return OK


if __name__ == "__main__":
    sys.exit(main())
