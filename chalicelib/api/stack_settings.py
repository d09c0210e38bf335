"""The stack's settings: its global control group (SPEC §8) and its signals (SPEC §6.3)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from chalice import Blueprint

from chalicelib.adapters.clock import now
from chalicelib.bootstrap import services
from chalicelib.runtime.commerce import set_signal_settings

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


@route("/settings/signals", methods=["GET"])
def read_signals() -> dict[str, Any]:
    """When the derived commerce and web signals fire (SPEC §6.3)."""
    return asdict(services().storage.signal_settings())


@route("/settings/signals", methods=["PUT"])
def set_signals() -> dict[str, Any]:
    """Set the keys given (`null`: back to the default), keep the others."""
    wanted = body(blueprint.current_request, models.SignalsIn)
    given = wanted.model_dump(mode="json", exclude_unset=True, exclude_none=False)
    if isinstance(given.get("price_check"), dict):
        given["price_check"] = {k: v for k, v in given["price_check"].items() if v is not None}
    return asdict(set_signal_settings(services().storage, given, now()))
