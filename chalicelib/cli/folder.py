"""A folder of scenario files and their timelines, read and checked without a stack."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chalicelib.engine.simulate import Simulation
from chalicelib.scenarios.validation import check_scenario, json_path

TIMELINE_SUFFIX = ".timeline.json"


@dataclass
class ScenarioFile:
    """One scenario file: its document (without `id`), the stack id it names, if any, and
    its timeline's path when there is one."""

    path: Path
    document: dict[str, Any]
    scenario_id: str | None = None
    timeline: Path | None = None
    problems: list[str] = field(default_factory=list)  # "<file>: <json path>: <message>"

    @property
    def name(self) -> str:
        return str(self.document.get("name") or "")


def scenario_paths(folder: Path) -> list[Path]:
    """Every scenario file under `folder` (recursively, in name order), timelines aside."""
    return sorted(
        path
        for path in folder.rglob("*.json")
        if path.is_file() and not path.name.endswith(TIMELINE_SUFFIX)
    )


def read_folder(folder: Path) -> list[ScenarioFile]:
    """Every scenario file with every problem of it and of its timeline, and the problems
    between files (two files of one scenario name or id)."""
    files = [_read(path) for path in scenario_paths(folder)]
    _duplicates(files, "id", lambda f: f.scenario_id)
    _duplicates(files, "name", lambda f: None if f.scenario_id else f.name or None)
    return files


def _read(path: Path) -> ScenarioFile:
    document, problem = _json(path)
    if problem:
        return ScenarioFile(path, {}, problems=[f"{path}: {problem}"])
    if not isinstance(document, dict):
        return ScenarioFile(path, {}, problems=[f"{path}: $: a scenario file holds a JSON object"])
    document = dict(document)
    scenario_id = document.pop("id", None)
    found = ScenarioFile(path, document)
    if scenario_id is not None and not (isinstance(scenario_id, str) and scenario_id):
        found.problems.append(f"{path}: $.id: the id of a scenario on the stack, a string")
    else:
        found.scenario_id = scenario_id
    _, problems = check_scenario(document)
    found.problems += [f"{path}: {p.path}: {p.message}" for p in problems]
    timeline = path.with_name(path.name.removesuffix(".json") + TIMELINE_SUFFIX)
    if timeline.is_file():
        found.timeline = timeline
        found.problems += [f"{timeline}: {problem}" for problem in timeline_problems(timeline)]
    return found


def timeline_problems(path: Path) -> list[str]:
    """What keeps a timeline file from being simulated, each with its JSON path."""
    document, problem = _json(path)
    if problem:
        return [problem]
    try:
        Simulation.model_validate(document)
    except ValidationError as error:
        return [
            f"{json_path(item['loc'])}: {item['msg'].removeprefix('Value error, ')}"
            for item in error.errors(include_url=False)
        ]
    return []


def _json(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except json.JSONDecodeError as error:
        return None, f"$: not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
    except (OSError, UnicodeDecodeError) as error:
        return None, f"$: cannot be read: {error}"


def _duplicates(files: list[ScenarioFile], what: str, key: Any) -> None:
    seen: dict[str, Path] = {}
    for found in files:
        value = key(found)
        if value is None:
            continue
        if value in seen:
            found.problems.append(
                f"{found.path}: $.{what}: {value!r} is the {what} of {seen[value]} too: each scenario is one file"
            )
        else:
            seen[value] = found.path
