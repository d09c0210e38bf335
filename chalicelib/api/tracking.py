"""Tracking links (no API key, SPEC §3): the open pixel and the click redirect of e-mails.

Each records its status through delivery feedback, which counts it once per message
however often the link is followed. A link of an unknown or erased message still
answers (a reader's click must not break) but records nothing; a token this stack did
not sign is a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.adapters.clock import now
from chalicelib.runtime import feedback, tracking

from .errors import NotFoundError, answers_problems

logger = logging.getLogger(__name__)

blueprint = Blueprint(__name__)

GIF = "image/gif"
BINARY_TYPES = (GIF, "image/*")  # for `app.api.binary_types`: the pixel, to `Accept: image/*`
PIXEL = (  # a transparent 1×1 GIF
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NOT_CACHED = {"Cache-Control": "no-store, max-age=0"}


def route(path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A public GET route whose errors are problem documents (tokens are longer than
    the ids other routes take, so their length is not checked)."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        return blueprint.route(path, methods=["GET"])(answers_problems(view))

    return register


@route("/t/o/{token}")
def track_open(token: str) -> Response:
    """The open pixel: a 1×1 GIF; the message is `opened`.

    A binary answer needs an `Accept` header that admits it (API Gateway and Chalice
    refuse one otherwise); an image fetch without one gets a 204, and the open counts."""
    message_id, _ = _verified(tracking.OPEN, token)
    _record(message_id, "opened")
    if not admits_gif(blueprint.current_request.headers.get("accept")):
        return Response(body="", status_code=204, headers=NOT_CACHED)
    return Response(body=PIXEL, status_code=200, headers={"Content-Type": GIF, **NOT_CACHED})


def admits_gif(accept: str | None) -> bool:
    """Whether an `Accept` header names the pixel's type, `image/*` or `*/*`."""
    kinds = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    return bool(kinds & {*BINARY_TYPES, "*/*"})


@route("/t/c/{token}")
def track_click(token: str) -> Response:
    """A tracked link: a redirect to its URL; the message is `clicked` (and `opened`)."""
    message_id, url = _verified(tracking.CLICK, token)
    assert url is not None
    _record(message_id, "clicked", url=url)
    return Response(body="", status_code=302, headers={"Location": url, **NOT_CACHED})


def _verified(kind: str, token: str) -> tuple[str, str | None]:
    try:
        return tracking.verify(kind, token)
    except tracking.BadLink:
        raise NotFoundError("no such tracking link") from None


def _record(message_id: str, status: str, **details: Any) -> None:
    """Record the status; a reader following a link gets an answer whatever happens here."""
    try:
        feedback.record(message_id, status, now(), **details)
    except feedback.UnknownMessage:
        logger.info("tracking hit for unknown message %s", message_id)
    except Exception:
        logger.exception("tracking hit for message %s not recorded", message_id)
