"""API Gateway's share of a request, for the local stack and the in-process tests.

Chalice's `LocalGateway` builds the Lambda proxy event from an HTTP request. `ApiGateway`
makes it answer as the deployed API Gateway (REST) in front of the app does:

- path parameters are matched on the raw path and then percent-decoded, so
  `/profiles/customers/ada%40example.com` reaches its route with the id
  `ada@example.com`, and an id holding an encoded `/` or `?` reaches it whole;
- an unknown route is a 404 problem, as the deployed stack's gateway responses make
  API Gateway's "missing authentication token" (`infra/template.py`);
- a method the route does not have is a 405 problem with `Allow`, answered before the
  app runs (so before its key check), as API Gateway never calls a function for it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from chalice.local import ForbiddenError, LocalGateway, LocalGatewayException

from chalicelib.api.errors import problem


class GatewayAnswer(LocalGatewayException):
    """An answer of the gateway itself, a problem document: the app is not called."""

    def __init__(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        answer = problem(status, title, detail)
        super().__init__({**answer.headers, **(headers or {})}, answer.body.encode())
        self.CODE = status


class ApiGateway(LocalGateway):
    """`LocalGateway` answering as API Gateway does: see the module's docstring."""

    def handle_request(
        self, method: str, path: str, headers: dict[str, Any], body: bytes | None
    ) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = super().handle_request(method, path, headers, body)
        except ForbiddenError as error:
            if b"Missing Authentication Token" not in (error.body or b""):
                raise
            route = unquote(path.split("?", 1)[0])
            raise GatewayAnswer(404, "Not found", f"no route {method} {route}") from None
        return answer

    def _generate_lambda_event(
        self, method: str, path: str, headers: dict[str, Any], body: bytes | None
    ) -> dict[str, Any]:
        event: dict[str, Any] = super()._generate_lambda_event(method, path, headers, body)
        context = event["requestContext"]
        allowed = sorted(self._app_object.routes[context["resourcePath"]])
        if method not in allowed and method != "OPTIONS":  # OPTIONS: Chalice's CORS answer
            raise GatewayAnswer(
                405,
                "Method not allowed",
                f"{context['resourcePath']} takes {', '.join(allowed)}, not {method}",
                {"Allow": ", ".join(allowed)},
            )
        event["pathParameters"] = {
            name: unquote(value) for name, value in (event["pathParameters"] or {}).items()
        }
        context["path"] = unquote(context["path"])
        return event
