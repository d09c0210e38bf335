"""The project's own promises: pinned dependencies in step, the published schema current."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from chalicelib.scenarios import scenario_json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_txt_pins_exactly_the_runtime_dependencies() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = set(pyproject["project"]["dependencies"])
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    packaged = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert packaged == declared
    assert all("==" in requirement for requirement in declared | packaged)


def test_published_scenario_schema_is_generated_from_the_model() -> None:
    published = json.loads((ROOT / "docs" / "scenario.schema.json").read_text())
    assert published == scenario_json_schema(), "run `make schema` and commit docs/"
