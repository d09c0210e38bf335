"""Small helpers the route modules share: parsing bodies and query strings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Blueprint
from chalice.app import Request
from pydantic import BaseModel, ValidationError

from .errors import BadRequest, answers_problems, invalid_input

Model = TypeVar("Model", bound=BaseModel)


def routes(
    blueprint: Blueprint,
) -> Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """`@route(path, methods=[...])`: a blueprint route whose errors become problems."""

    def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(view: Callable[..., Any]) -> Callable[..., Any]:
            return blueprint.route(path, **options)(answers_problems(view))

        return register

    return route


def body(request: Request, model: type[Model]) -> Model:
    """The JSON body as `model`; a 400 naming the field when it does not fit."""
    document = json_document(request)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise invalid_input(error) from None


def json_document(request: Request) -> Any:
    if not request.raw_body:
        raise BadRequest("the request needs a JSON body")
    return request.json_body


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = (request.query_params or {}).get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"query parameter {name!r} must be a whole number from {low} to {high}")
    return int(raw)


def page_params(request: Request, default: int = 100) -> tuple[int, str | None]:
    """`limit` (1–1000) and `next_token` of a list call."""
    limit = query_int(request, "limit", default, 1, 1000)
    return limit, (request.query_params or {}).get("next_token")
