"""Operating a stack: its dead-letter queues, their depths and their redrive."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.runtime import dead_letters

from .errors import Conflict, NotFoundError
from .http import routes

blueprint = Blueprint(__name__)
route = routes(blueprint)


@route("/admin/dead-letters", methods=["GET"])
def list_dead_letters() -> dict[str, Any]:
    """Every queue's dead-letter queue and how many messages wait in it."""
    return {"queues": [found.as_dict() for found in dead_letters.depths()]}


@route("/admin/dead-letters/{queue}/redrive", methods=["POST"])
def redrive_dead_letters(queue: str) -> Response:
    """Move a dead-letter queue's messages back to their queue (202: SQS moves them)."""
    try:
        started = dead_letters.redrive(queue)
    except dead_letters.UnknownQueue as error:
        raise NotFoundError(str(error)) from None
    except dead_letters.RedriveRefused as error:
        raise Conflict(f"{queue}: {error}") from None
    return Response(started, status_code=202)
