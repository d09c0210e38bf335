"""API Gateway (REST) in front of the Chalice app, as a WSGI application, so that
schemathesis and werkzeug's test client call the app as they call any WSGI app."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from chalice.config import Config
from chalice.local import LocalGateway, LocalGatewayException


class ApiGatewayWSGI:
    """API Gateway (REST) in front of a Chalice app, as a WSGI application.

    Chalice's `LocalGateway` builds the Lambda proxy event; as API Gateway does, path
    parameters are matched on the raw path and then percent-decoded, so an id holding
    `/` or `?` reaches its route whole.
    """

    def __init__(self, app: Any) -> None:
        self.gateway = LocalGateway(app, Config.create(chalice_stage="test", app_name="scenaria"))
        converter: Any = self.gateway.event_converter
        convert = converter.create_lambda_event

        def create_lambda_event(**kwargs: Any) -> dict[str, Any]:
            event = convert(**kwargs)
            event["pathParameters"] = {
                name: unquote(value) for name, value in event["pathParameters"].items()
            }
            event["requestContext"]["path"] = unquote(event["requestContext"]["path"])
            return event

        converter.create_lambda_event = create_lambda_event

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
        except LocalGatewayException as error:  # no such route: API Gateway's own answer
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
