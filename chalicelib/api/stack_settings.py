"""The stack's settings: its global control group (SPEC §8)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.adapters.clock import now
from chalicelib.bootstrap import services

from . import models
from .http import body, routes

blueprint = Blueprint(__name__)
route = routes(blueprint)


@route("/settings/control", methods=["GET"])
def read_control() -> dict[str, Any]:
    """The share of profiles in the global control group (0: none)."""
    return {"percent": services().storage.control_percent()}


@route("/settings/control", methods=["PUT"])
def set_control() -> dict[str, Any]:
    """Set the global control group: the same profiles in every non-transactional scenario."""
    wanted = body(blueprint.current_request, models.ControlIn)
    services().storage.set_control_percent(wanted.percent, now())
    return {"percent": wanted.percent}
