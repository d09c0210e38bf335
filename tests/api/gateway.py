"""API Gateway (REST) in front of the Chalice app, as a WSGI application, so that
schemathesis and werkzeug's test client call the app as they call any WSGI app."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit

from chalice.config import Config
from chalice.local import LocalGatewayException
from chalice.test import Client, TestHTTPClient

from chalicelib.local.gateway import ApiGateway


class ApiGatewayWSGI:
    """API Gateway (REST) in front of a Chalice app, as a WSGI application: the local
    stack's `ApiGateway` (path parameters decoded, 404 and 405 problems)."""

    def __init__(self, app: Any) -> None:
        self.gateway = ApiGateway(app, Config.create(chalice_stage="test", app_name="scenaria"))

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        path = urlsplit(raw).path if raw else quote(environ.get("PATH_INFO", "/"))
        query = environ.get("QUERY_STRING", "")
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        try:
            answer = self.gateway.handle_request(
                method=environ["REQUEST_METHOD"],
                path=f"{path}?{query}" if query else path,
                headers=headers,
                body=body or None,
            )
        except LocalGatewayException as error:  # API Gateway's own answer
            answer = {"statusCode": error.CODE, "headers": error.headers, "body": error.body}
        payload = answer.get("body") or b""
        if answer.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        elif isinstance(payload, str):
            payload = payload.encode()
        status = int(answer["statusCode"])
        pairs = [(k, str(v)) for k, v in (answer.get("headers") or {}).items()]
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            pairs.extend((name, str(v)) for v in values)
        if payload and not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(("Content-Type", "application/json"))  # as API Gateway and chalice local
        start_response(f"{status} {HTTPStatus(status).phrase}", pairs)
        return [payload]


def gateway_client(app: Any) -> TestHTTPClient:
    """`chalice.test`'s HTTP client with the local stack's `ApiGateway` in place of
    Chalice's own, so in-process calls are decoded and refused as `make run` does."""
    http = Client(app).http
    http._local_gateway = ApiGateway(app, http._config)
    return http
