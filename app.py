"""Scenaria's Chalice application: blueprints and middleware, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.api import (
    admin,
    auth,
    commerce,
    console,
    events,
    hooks,
    keys,
    openapi,
    profiles,
    scenarios,
    stack_settings,
    templates,
    tracking,
)
from chalicelib.api.errors import PROBLEM_JSON, ApiError, problem
from chalicelib.handlers import queues, timers

app = Chalice(app_name="scenaria")
app.api.binary_types.extend(tracking.BINARY_TYPES)  # the open pixel

for blueprint in (
    scenarios.blueprint,
    events.blueprint,
    profiles.blueprint,
    hooks.blueprint,
    tracking.blueprint,
    admin.blueprint,
    templates.blueprint,
    keys.blueprint,
    console.blueprint,
    stack_settings.blueprint,
    commerce.blueprint,
):
    app.register_blueprint(blueprint)
app.register_blueprint(openapi.blueprint)
app.register_blueprint(queues.blueprint)
app.register_blueprint(timers.blueprint)


@app.middleware("http")
def problems(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Authenticate, and turn every error into an RFC 9457 problem document."""
    try:
        auth.check(event.method, event.path, event.headers)
        response = get_response(event)
    except ApiError as error:
        return error.response()
    if response.status_code >= 400 and response.headers.get("Content-Type") != PROBLEM_JSON:
        return _as_problem(response)
    return response


def _as_problem(response: Response) -> Response:
    """Chalice's own errors (unknown route, wrong method, 500) in the same shape."""
    body = response.body
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError:
            body = {"Message": body}
    detail = (
        body.get("Message") or body.get("message") or "error"
        if isinstance(body, dict)
        else str(body)
    )
    title = {404: "Not found", 405: "Method not allowed", 415: "Unsupported media type"}.get(
        response.status_code,
        "Internal server error" if response.status_code >= 500 else "Bad request",
    )
    return problem(response.status_code, title, str(detail))
