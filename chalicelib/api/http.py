"""Small helpers the route modules share: parsing bodies and query strings."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from decimal import Decimal, DecimalException
from typing import Any, TypeVar

from boto3.dynamodb.types import DYNAMODB_CONTEXT
from chalice import Blueprint
from chalice.app import Request
from pydantic import BaseModel, ValidationError

from chalicelib.scenarios.validation import json_path

from .errors import BadRequest, UnsupportedMediaType, answers_problems, invalid_input

Model = TypeVar("Model", bound=BaseModel)

MAX_DEPTH = 24  # levels of a JSON body; DynamoDB allows 32 in an item, which adds a few
MAX_PATH_PARAMETER = 200  # characters of an id in a path: keys stay far below DynamoDB's limits
PAGE_LIMIT = 1000
MAX_DOCUMENT_BYTES = 128 * 1024  # a scenario: its metadata item holds it and its text again
MAX_CONDITION_BYTES = 64 * 1024  # a segment's condition


def routes(
    blueprint: Blueprint,
) -> Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """`@route(path, methods=[...])`: a blueprint route whose errors become problems."""

    def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(view: Callable[..., Any]) -> Callable[..., Any]:
            return blueprint.route(path, **options)(answers_problems(checked_ids(view)))

        return register

    return route


def checked_ids(view: Callable[..., Any]) -> Callable[..., Any]:
    """Path parameters are ids: 1 to MAX_PATH_PARAMETER characters, else a 400."""

    @functools.wraps(view)
    def checked(**ids: str) -> Any:
        for name, value in ids.items():
            if not 1 <= len(value) <= MAX_PATH_PARAMETER:
                raise BadRequest(
                    f"path parameter {name!r} must have 1 to {MAX_PATH_PARAMETER} characters"
                )
        return view(**ids)

    return checked


def body(request: Request, model: type[Model]) -> Model:
    """The JSON body as `model`; a 400 naming the field when it does not fit."""
    document = json_document(request)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise invalid_input(error) from None


def json_document(request: Request) -> Any:
    """The parsed JSON body, checked to be storable as it is (see `check_storable`)."""
    if not request.raw_body:
        raise BadRequest("the request needs a JSON body")
    if "content-type" not in request.headers:  # Chalice would read the body as no JSON at all
        raise UnsupportedMediaType("the body has no Content-Type: send it as application/json")
    try:
        document = request.json_body
    except RecursionError:
        raise BadRequest(f"the JSON body nests deeper than {MAX_DEPTH} levels") from None
    check_storable(document)
    return document


def check_storable(value: Any, path: tuple[int | str, ...] = ()) -> None:
    """Bodies end up in DynamoDB as they are: what it cannot hold is a 400 here rather
    than a failure when it is stored: a number with more than 38 digits or beyond
    1E±126 (or NaN, Infinity), a string that is not Unicode (a lone surrogate escape
    such as "\\ud800"), an empty key, or nesting deeper than MAX_DEPTH."""
    if isinstance(value, str):
        if not _is_unicode(value):
            raise BadRequest(f"{json_path(path)}: the string holds a lone surrogate (not Unicode)")
        return
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if not _storable_number(value):
            raise BadRequest(
                f"{json_path(path)}: {value!r} cannot be stored: numbers have at most 38 "
                "significant digits and a magnitude from 1E-130 to 1E+125"
            )
        return
    if len(path) >= MAX_DEPTH:
        raise BadRequest(f"{json_path(path)}: the JSON body nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, inner in value.items():
            if not key or not _is_unicode(key):
                raise BadRequest(
                    f"{json_path(path)}: keys must be non-empty Unicode strings, got {key!r}"
                )
            check_storable(inner, (*path, key))
    else:
        for index, inner in enumerate(value):
            check_storable(inner, (*path, index))


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable_number(number: int | float) -> bool:
    if isinstance(number, float) and not math.isfinite(number):
        return False
    try:
        DYNAMODB_CONTEXT.create_decimal(Decimal(repr(number)))
    except DecimalException:
        return False
    return True


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = (request.query_params or {}).get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadRequest(f"query parameter {name!r} must be a whole number from {low} to {high}")
    return int(raw)


def page_params(request: Request, default: int = 100) -> tuple[int, str | None]:
    """`limit` (1–1000) and `next_token` of a list call. The storage checks that a token
    is one its list issued (`UnknownToken`, a 400 naming `next_token`)."""
    limit = query_int(request, "limit", default, 1, PAGE_LIMIT)
    token = (request.query_params or {}).get("next_token") or None  # empty: the first page
    return limit, token


def check_size(value: Any, path: str, limit: int) -> None:
    """A 400 when `value` takes more than `limit` bytes as JSON: what is stored must fit
    in a DynamoDB item (400 KB), what is queued in an SQS message."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise BadRequest(f"{path}: {size} bytes of JSON, at most {limit} are allowed")


MAX_IDEMPOTENCY_KEY = 200  # characters: the key is part of a DynamoDB key


def idempotency_key(request: Request) -> str | None:
    """The request's `Idempotency-Key` header, if any (a 400 unless 1 to 200 characters)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return key
