"""Scenarios as code against a real `make run` stack: `python -m chalicelib.cli` validates a
folder, applies it, shows a changed file in `diff`, makes a new version of it with
`apply`, and refuses a broken file with its path, changing nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib import templates
from tests.local_process import KEY, ROOT, call, free_port


def cli(*arguments: str) -> tuple[int, str]:
    """Run the CLI as CI would; (exit status, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))


def template(template_id: str, name: str) -> dict[str, Any]:
    found = templates.find(template_id)
    assert found is not None
    return {**found.describe()["scenario"], "name": name}  # a copy: tests change it


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two scenarios from templates, one with a timeline, in a folder and a subfolder."""
    write(tmp_path / "cart.json", template("abandoned_cart", "Cart from Git"))
    found = templates.find("abandoned_cart")
    assert found is not None
    write(tmp_path / "cart.timeline.json", found.timeline)
    write(tmp_path / "loyalty" / "points.json", template("points_available", "Points from Git"))
    return tmp_path


def scenario_named(url: str, name: str) -> dict[str, Any]:
    _, _, listed = call(url, "GET", "/scenarios?limit=1000")
    (found,) = [s for s in listed["scenarios"] if s["name"] == name]
    return found


def test_apply_a_folder_change_a_file_and_refuse_a_broken_one(
    local_stack: str, folder: Path
) -> None:
    stack = ["--url", local_stack, "--key", KEY]
    status, output = cli("validate", str(folder))
    assert (status, output.splitlines()[-1]) == (0, "2 files, no problems")
    status, output = cli("simulate", str(folder))
    assert status == 0
    assert "promo_email" in output
    assert "points.json: no points.timeline.json, not simulated" in output

    status, output = cli("diff", str(folder), *stack, "--exit-code")
    assert status == 1
    assert f"{folder / 'cart.json'}: create, then activate" not in output  # diff never activates
    assert f"{folder / 'cart.json'}: create: 'Cart from Git'" in output
    assert output.splitlines()[-1] == "2 of 2 scenarios would change"

    status, output = cli("apply", str(folder), *stack, "--activate")
    assert status == 0, output
    cart = scenario_named(local_stack, "Cart from Git")
    assert f"{folder / 'cart.json'}: created {cart['id']}, activated (version 1)" in output
    assert (cart["status"], cart["version"]) == ("active", 1)
    assert scenario_named(local_stack, "Points from Git")["status"] == "active"

    status, output = cli("diff", str(folder), *stack, "--exit-code")
    assert (status, output.splitlines()[-1]) == (0, "0 of 2 scenarios would change")

    changed = template("abandoned_cart", "Cart from Git")
    changed["nodes"]["help_email"]["template"]["subject"] = "Need a hand?"
    write(folder / "cart.json", changed)
    status, output = cli("diff", str(folder), *stack, "--exit-code")
    assert status == 1
    assert f"{folder / 'cart.json'}: new version: 'Cart from Git' {cart['id']}" in output
    changed_lines = [" ".join(line.split()) for line in output.splitlines() if "subject" in line]
    assert changed_lines == [
        '- "subject": "Can we help with your order?"',
        '+ "subject": "Need a hand?"',
    ]
    assert "points.json: unchanged" in output

    status, output = cli("apply", str(folder), *stack)
    assert status == 0, output
    assert f"{folder / 'cart.json'}: version 2 of {cart['id']}" in output
    _, _, stored = call(local_stack, "GET", f"/scenarios/{cart['id']}")
    assert (stored["status"], stored["version"]) == ("active", 2)
    assert stored["scenario"]["nodes"]["help_email"]["template"]["subject"] == "Need a hand?"

    # a file naming its scenario by id: renamed in Git, still the same scenario
    write(folder / "cart.json", {**changed, "id": cart["id"], "name": "Cart, renamed"})
    status, output = cli("apply", str(folder), *stack)
    assert status == 0, output
    assert f"version 3 of {cart['id']}" in output

    _, _, before = call(local_stack, "GET", "/scenarios?limit=1000")
    broken = template("back_in_stock", "Broken")
    broken["nodes"]["wait_2_days"]["duration"] = "P1M"
    broken["nodes"]["back_email"]["next"] = "nowhere"
    write(folder / "broken" / "stock.json", broken)
    status, output = cli("validate", str(folder))
    stock = folder / "broken" / "stock.json"
    assert status == 1
    assert f"{stock}: $.nodes.wait_2_days.duration: 'P1M'" in output
    assert f"{stock}: $.nodes.back_email.next: 'nowhere' is not a node" in output
    assert f"{folder / 'cart.json'}: ok" in output
    status, output = cli("apply", str(folder), *stack, "--activate")
    assert status == 1
    assert str(stock) in output
    _, _, after = call(local_stack, "GET", "/scenarios?limit=1000")
    assert after == before


def test_usage_and_connection_errors_exit_with_2(folder: Path, tmp_path: Path) -> None:
    assert cli("validate", str(tmp_path / "none"))[0] == 2
    assert cli("diff", str(folder))[0] == 2  # no --url, no --key
    status, output = cli(
        "diff", str(folder), "--url", f"http://127.0.0.1:{free_port()}", "--key", "k"
    )
    assert status == 2
    assert "cannot reach" in output


def test_a_wrong_key_is_an_error_that_names_the_key(local_stack: str, folder: Path) -> None:
    status, output = cli("apply", str(folder), "--url", local_stack, "--key", "wrong")
    assert status == 2
    assert "401" in output
    assert "X-Api-Key" in output
