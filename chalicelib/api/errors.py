"""One error hierarchy, mapped to `application/problem+json` (RFC 9457) in one place."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from chalice import Response
from chalice.app import BadRequestError, ChaliceUnhandledError
from pydantic import ValidationError

from chalicelib.adapters.dynamo import BadToken
from chalicelib.adapters.idempotency import KeyReused, StillRunning
from chalicelib.runtime.journeys import Contention
from chalicelib.runtime.profiles import ProfileTooLarge
from chalicelib.runtime.scenarios import LifecycleError, NotFound
from chalicelib.runtime.storage import ProfileContention
from chalicelib.scenarios.validation import ScenarioInvalid, json_path

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiError(ChaliceUnhandledError):
    """An answer other than success. Chalice lets it through to the middleware."""

    status = 400
    title = "Bad request"
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def response(self) -> Response:
        answer = problem(self.status, self.title, self.detail, **self.extra)
        if self.retry_after is not None:
            answer.headers["Retry-After"] = str(self.retry_after)
        return answer


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class NotFoundError(ApiError):
    status, title = 404, "Not found"


class UnsupportedMediaType(ApiError):
    status, title = 415, "Unsupported media type"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class Unprocessable(ApiError):
    status, title = 422, "Unprocessable scenario"


class KeyConflict(ApiError):
    """An `Idempotency-Key` used before for another request."""

    status, title = 422, "Idempotency-Key reused"


class KeyInUse(Conflict):
    retry_after = 1


class Busy(ApiError):
    """Writers kept colliding on one item: nothing was written, a retry will do."""

    status, title, retry_after = 503, "Busy, retry", 1


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(
        body=json.dumps(body), status_code=status, headers={"Content-Type": PROBLEM_JSON}
    )


def translate(error: Exception) -> ApiError:
    """Map what the layers below raise onto API errors."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ValidationError):
        return invalid_input(error)
    if isinstance(error, ScenarioInvalid):
        problems = [p.as_dict() for p in error.problems]
        first = problems[0] if problems else {"path": "$", "message": "invalid"}
        return Unprocessable(
            f"{first['path']}: {first['message']}"
            + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""),
            problems=problems,
        )
    if isinstance(error, NotFound):
        return NotFoundError(str(error))
    if isinstance(error, ProfileTooLarge):
        return BadRequest(str(error))
    if isinstance(error, KeyReused):
        return KeyConflict(str(error))
    if isinstance(error, StillRunning):
        return KeyInUse(str(error))
    if isinstance(error, ProfileContention | Contention):
        return Busy(str(error))
    if isinstance(error, LifecycleError):
        return Conflict(str(error))
    if isinstance(error, BadToken):
        return BadRequest(f"next_token: {error}")
    if isinstance(error, BadRequestError):
        return BadRequest(f"the request body is not valid JSON ({error})")
    if isinstance(error, ClientError) and _bad_start_key(error):
        return BadRequest("next_token: not a token this API issued")
    raise error


def _bad_start_key(error: ClientError) -> bool:
    """DynamoDB refusing a page's start key: a next_token that decodes but is not ours."""
    answer = error.response.get("Error", {})
    return answer.get("Code") == "ValidationException" and bool(
        re.search(r"start(ing)?\s*key", answer.get("Message", ""), re.IGNORECASE)
    )


def invalid_input(error: ValidationError, prefix: tuple[Any, ...] = ()) -> BadRequest:
    """A 400 naming every field at fault, the first one in `detail`."""
    problems = [
        {
            "path": json_path([*prefix, *item["loc"]]),
            "message": item["msg"].removeprefix("Value error, "),
        }
        for item in error.errors(include_url=False)
    ]
    first = problems[0]
    return BadRequest(f"{first['path']}: {first['message']}", problems=problems)


def answers_problems(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a route so every error it raises leaves as a problem document."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except Exception as error:
            raise translate(error) from error

    return guarded
