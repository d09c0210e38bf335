"""`python -m chalicelib.local` (what `make run` starts): the whole stack on loopback.

Environment: PORT (default 8000), SCENARIA_API_KEY (default local-dev-key),
SCENARIA_CLOCK=virtual for virtual time (SCENARIA_CLOCK_START sets its start).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer
from moto import mock_aws

from .stack import Runtime, configure_environment, create_resources

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "welcome.json"
CRM = "https://crm.example/api/callback"  # the example's call center
LISTEN_BACKLOG = 128  # connections waiting to be accepted: a burst of clients is not reset
STOP_WITHIN = 0.5  # seconds the queue pumps get to finish their batch on Ctrl-C or SIGTERM


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    port = int(os.environ.get("PORT", "8000"))
    virtual = os.environ.get("SCENARIA_CLOCK", "real") == "virtual"

    url = f"http://127.0.0.1:{port}"
    configure_environment(virtual, public_url=url)
    mock_aws().start()  # AWS in this process's memory, called without HTTP

    from chalice.config import Config
    from chalice.local import LocalChalice, LocalDevServer

    from chalicelib.adapters.clock import VirtualClock, use_clock
    from chalicelib.config import settings

    if virtual:
        start = os.environ.get("SCENARIA_CLOCK_START")
        use_clock(
            VirtualClock(
                datetime.fromisoformat(start) if start else datetime.now(UTC).replace(microsecond=0)
            )
        )
    create_resources()

    from app import app

    from . import routes

    app.register_blueprint(routes.blueprint)
    runtime = Runtime(app)
    routes.runtime = runtime
    example = load_example(url)
    runtime.start(clock_is_real=not virtual)
    config = Config.create(chalice_stage="local", app_name="scenaria")
    # current_request per thread, as chalice.local.create_local_server does
    app.__class__ = type("LocalScenaria", (LocalChalice, app.__class__), {})
    server = LocalDevServer(
        app, config, "127.0.0.1", port, handler_cls=GatewayRequestHandler, server_cls=HTTPServer
    )

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    key = settings().api_key
    print(f"Scenaria local stack on {url} ({'virtual' if virtual else 'real'} clock)", flush=True)
    print(f"API key: {key}")
    print(f"Console: {url}/console (enter the key there)")
    print(f"Example scenario {example!r} (Welcome series) is active. Try:")
    print(
        f"  curl -s -X PUT {url}/profiles/customers/ada -H 'X-Api-Key: {key}' -H 'Content-Type: application/json' "
        '-d \'{"fields": {"first_name": "Ada", "email": "ada@example.com", "consents": {"email": true}}}\''
        f" && sleep 2 && curl -s {url}/profiles/customers/ada/journeys -H 'X-Api-Key: {key}'"
    )
    print("The example keeps quiet hours (21:00-09:00 UTC): at night the welcome e-mail's step")
    print("says 'queued for' 09:00. GET /local/sent lists what the channels delivered.")
    print("Stop with Ctrl-C.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        # Nothing outlives the process: moto is in this process, in memory, and ends with
        # it; a batch still running when the time is up is not waited for.
        runtime.stop(timeout=STOP_WITHIN)
        server.server.server_close()
        print("Stopped.")
    return 0


class HTTPServer(ThreadedHTTPServer):
    """Chalice's threaded server, with a listen backlog for bursts (the default is 5)."""

    request_queue_size = LISTEN_BACKLOG


class GatewayRequestHandler(ChaliceRequestHandler):
    """Chalice's request handler behind `ApiGateway` (decoded path parameters, 404 and
    405 problems), for every method: http.server answers a method without a `do_*`
    handler (TRACE, any other token) with a 501 HTML page; API Gateway, and so this,
    with a 405 problem naming the route's methods."""

    def __init__(self, *args: Any, app_object: Any, config: Any) -> None:
        from .gateway import ApiGateway

        self.local_gateway = ApiGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, *args)  # handles the request

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)


def load_example(url: str) -> str:
    """Create and activate the welcome series and give its promo pool some codes. Its call
    center API is the local stack's own webhook sink (`GET /local/webhooks` lists calls)."""
    from chalicelib.runtime import promo, scenarios

    document = json.loads(EXAMPLE.read_text().replace(CRM, f"{url}/local/webhooks/crm"))
    meta = scenarios.create(document)
    scenarios.activate(meta["scenario_id"])
    promo.add_codes("WELCOME10", [f"WELCOME10-{n:04d}" for n in range(1, 101)])
    return str(meta["scenario_id"])


if __name__ == "__main__":
    status = main()
    # Nothing is left to save: skip tearing moto's in-memory AWS down object by object,
    # which would make Ctrl-C wait on the garbage collector.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
