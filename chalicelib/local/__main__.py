"""`python -m chalicelib.local` (what `make run` starts): the whole stack on loopback.

Environment: PORT (default 8000), SCENARIA_API_KEY (default local-dev-key),
SCENARIA_CLOCK=virtual for virtual time (SCENARIA_CLOCK_START sets its start).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalice.local import ChaliceRequestHandler, LocalGatewayException
from moto.server import ThreadedMotoServer

from .stack import Runtime, configure_environment, create_resources

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "welcome.json"
CRM = "https://crm.example/api/callback"  # the example's call center


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    port = int(os.environ.get("PORT", "8000"))
    virtual = os.environ.get("SCENARIA_CLOCK", "real") == "virtual"

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, moto_port = moto.get_host_and_port()
    url = f"http://127.0.0.1:{port}"
    configure_environment(f"http://{host}:{moto_port}", virtual, public_url=url)

    from chalice.config import Config
    from chalice.local import create_local_server

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
    server = create_local_server(app, config, "127.0.0.1", port)
    server.server.RequestHandlerClass = functools.partial(  # unknown routes: 404 problems
        ProblemRequestHandler, app_object=app, config=config
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
        runtime.stop()
        moto.stop()
        print("Stopped.")
    return 0


class ProblemRequestHandler(ChaliceRequestHandler):
    """Chalice's local server answers an unknown route as API Gateway does by default
    (403, a missing authentication token); the deployed stack's gateway responses make
    that a 404 problem (infra/template.py), and so does this."""

    def _send_error_response(self, error: LocalGatewayException) -> None:
        if error.CODE == 403 and b"Missing Authentication Token" in (error.body or b""):
            detail = f"no route {self.command} {self.path.split('?')[0]}"
            body = {"type": "about:blank", "title": "Not found", "status": 404, "detail": detail}
            headers = {"Content-Type": "application/problem+json"}
            self._send_http_response(404, headers, json.dumps(body).encode())
            return
        super()._send_error_response(error)


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
    sys.exit(main())
