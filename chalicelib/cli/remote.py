"""A stack's API as the CLI uses it (urllib, JSON), and the plan of what `apply` changes."""

from __future__ import annotations

import difflib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from .folder import ScenarioFile

TIMEOUT = 30  # seconds per call


class StackError(Exception):
    """The stack could not be reached, or refused a call: `detail` says why."""


@dataclass(frozen=True)
class Stack:
    """A stack's base URL and the API key the calls carry."""

    url: str
    key: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of one call; StackError on any failure (with the problem's
        `detail` when the stack answered one)."""
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"X-Api-Key": self.key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                text = answer.read()
        except urllib.error.HTTPError as error:
            raise StackError(f"{method} {path} answered {error.code}: {_detail(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise StackError(f"cannot reach {self.url}: {reason}") from None
        return json.loads(text) if text else None

    def scenarios(self) -> list[dict[str, Any]]:
        """Every scenario the key sees (every page of `GET /scenarios`)."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = {"limit": "1000", **({"next_token": token} if token else {})}
            page = self.call("GET", f"/scenarios?{urllib.parse.urlencode(query)}")
            found += page["scenarios"]
            token = page.get("next_token")
            if not token:
                return found


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        problem = json.loads(error.read())
    except ValueError:
        return str(error.reason)
    detail = str(problem.get("detail", error.reason)) if isinstance(problem, dict) else ""
    more = [p["path"] + ": " + p["message"] for p in (problem.get("problems") or [])[1:]]
    return "; ".join([detail, *more])


@dataclass
class Change:
    """What `apply` does with one file: `create`, `update` (a new version when active)
    or `none`; `activate` when it will be activated too."""

    file: ScenarioFile
    action: str
    scenario_id: str | None = None
    status: str | None = None  # on the stack, before
    version: int | None = None
    diff: list[str] | None = None
    activate: bool = False

    def line(self) -> str:
        what = {
            "create": "create",
            "update": "new version" if self.status == "active" else f"update {self.status}",
            "none": "unchanged",
        }[self.action]
        where = (
            f" {self.scenario_id} (version {self.version}, {self.status})"
            if self.scenario_id
            else ""
        )
        then = ", then activate" if self.activate else ""
        return f"{self.file.path}: {what}{then}: {self.file.name!r}{where}"


def plan(stack: Stack, files: list[ScenarioFile], activate: bool) -> list[Change]:
    """What applying `files` would change: by `id` in the file, else by `name` among the
    scenarios the key sees (trashed ones aside). StackError when a file's id is not on the
    stack or its name is ambiguous: nothing is planned then."""
    listed = [s for s in stack.scenarios() if s["status"] != "trashed"]
    changes = []
    for found in files:
        scenario_id = found.scenario_id or _by_name(listed, found)
        if scenario_id is None:
            changes.append(Change(found, "create", activate=activate))
            continue
        try:
            current = stack.call("GET", f"/scenarios/{urllib.parse.quote(scenario_id, safe='')}")
        except StackError as error:
            raise StackError(f"{found.path}: $.id {scenario_id!r}: {error}") from None
        if current["status"] == "trashed":
            raise StackError(f"{found.path}: scenario {scenario_id} is trashed: restore it first")
        diff = _diff(current["scenario"] or {}, found.document, str(found.path))
        changes.append(
            Change(
                found,
                "update" if diff else "none",
                scenario_id,
                current["status"],
                current["version"],
                diff,
                activate=activate and current["status"] != "active",
            )
        )
    return changes


def _by_name(listed: list[dict[str, Any]], found: ScenarioFile) -> str | None:
    named = [s["id"] for s in listed if s["name"] == found.name]
    if len(named) > 1:
        raise StackError(
            f"{found.path}: {len(named)} scenarios are named {found.name!r} on the stack "
            f'({", ".join(named)}): give the file the "id" of one'
        )
    return named[0] if named else None


def _diff(stored: dict[str, Any], wanted: dict[str, Any], path: str) -> list[str]:
    """A unified diff of the two documents as sorted, indented JSON; empty when equal."""
    if stored == wanted:
        return []
    return list(
        difflib.unified_diff(
            json.dumps(stored, indent=2, sort_keys=True).splitlines(),
            json.dumps(wanted, indent=2, sort_keys=True).splitlines(),
            "stack",
            path,
            lineterm="",
        )
    )


def apply(stack: Stack, change: Change) -> str:
    """Make one change on the stack; a line saying what it did."""
    document = change.file.document
    scenario_id = change.scenario_id
    if change.action == "create":
        scenario_id = stack.call("POST", "/scenarios", document)["id"]
        done = f"created {scenario_id}"
    elif change.action == "update":
        answer = stack.call("PUT", f"/scenarios/{scenario_id}", document)
        done = (
            f"version {answer['version']} of {scenario_id}"
            if answer["status"] == "active"
            else f"updated {scenario_id} ({answer['status']})"
        )
    else:
        done = f"{scenario_id} unchanged"
    if change.activate:
        answer = stack.call("POST", f"/scenarios/{scenario_id}/activate")
        done += f", activated (version {answer['version']})"
    return f"{change.file.path}: {done}"
