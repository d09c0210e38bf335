"""`python -m chalicelib.cli validate | simulate` on a folder, without a stack: every
problem of every file with its path, the exit status CI reads, the simulated path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib import templates
from chalicelib.cli.__main__ import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, list[str]]:
    status = main(list(arguments))
    output = capsys.readouterr()
    return status, (output.out + output.err).splitlines()


def test_every_problem_of_every_file_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "welcome.json", (EXAMPLES / "welcome.json").read_text())
    write(tmp_path / "a" / "again.json", (EXAMPLES / "welcome.json").read_text())
    write(tmp_path / "a" / "cut.json", '{"name": ')
    write(tmp_path / "a" / "list.json", [])
    write(
        tmp_path / "b" / "two.json",
        {
            "name": "Two",
            "id": 7,
            "entry": "x",
            "nodes": {"a": {"type": "pause", "duration": "P1M"}},
        },
    )
    write(tmp_path / "b" / "two.timeline.json", {"events": [{"type": "x", "at": "soon"}]})
    status, lines = run(capsys, "validate", str(tmp_path))
    assert status == 1
    problems = [line.replace(f"{tmp_path}/", "") for line in lines]
    assert "a/again.json: ok" in problems
    assert "a/cut.json: $: not JSON: Expecting value at line 1, column 10" in problems
    assert "a/list.json: $: a scenario file holds a JSON object" in problems
    assert "b/two.json: $.id: the id of a scenario on the stack, a string" in problems
    assert "b/two.json: $.entry: 'x' is not a node of this scenario" in problems
    assert any(p.startswith("b/two.json: $.nodes.a.duration: 'P1M'") for p in problems)
    assert any(p.startswith("b/two.timeline.json: $.events[0].at") for p in problems)
    assert (
        "welcome.json: $.name: 'Welcome series' is the name of a/again.json too: "
        "each scenario is one file" in problems
    )
    assert problems[-1] == "8 problems in 4 of 5 files"


def test_a_good_folder_validates_and_simulates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cart = templates.find("abandoned_cart")
    assert cart is not None
    write(tmp_path / "cart.json", {**cart.scenario, "id": "3801e7ddcb11"})
    write(tmp_path / "cart.timeline.json", cart.timeline)
    write(tmp_path / "welcome.json", (EXAMPLES / "welcome.json").read_text())
    assert run(capsys, "validate", str(tmp_path)) == (
        0,
        [f"{tmp_path}/cart.json: ok", f"{tmp_path}/welcome.json: ok", "2 files, no problems"],
    )
    status, lines = run(capsys, "simulate", str(tmp_path))
    assert status == 0
    assert lines[0] == f"{tmp_path}/cart.json with cart.timeline.json:"
    nodes = [line.split()[1] for line in lines if line.startswith("  2026-")]
    assert nodes == [
        "reminder_email",
        "wait_1_day",
        "help_email",
        "wait_2_days",
        "cart_code",
        "promo_email",
    ]
    assert lines[-1] == f"{tmp_path}/welcome.json: no welcome.timeline.json, not simulated"


def test_usage_errors_exit_with_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", str(tmp_path / "none"))[0] == 2
    assert run(capsys, "validate", str(tmp_path))[0] == 2  # no scenario files
    write(tmp_path / "welcome.json", (EXAMPLES / "welcome.json").read_text())
    status, lines = run(capsys, "apply", str(tmp_path))
    assert (status, lines) == (
        2,
        ["error: give --url and --key (or SCENARIA_URL, SCENARIA_API_KEY)"],
    )
    with pytest.raises(SystemExit) as exited:
        main(["deploy", str(tmp_path)])
    assert exited.value.code == 2
