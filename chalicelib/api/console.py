"""The console (SPEC §9): its page and static files, and a scenario's diagram as SVG.

The page and its files are public (`auth.PUBLIC_PREFIXES`): they hold no data. The page
asks for the API key and sends it on every call it makes to the API, so it can do only
what the key may do. The diagram is an API call like any other and needs the key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from chalice import Blueprint, Response

from chalicelib.bootstrap import services
from chalicelib.diagram import layout, render_svg, scenario_graph
from chalicelib.runtime import stats

from .errors import NotFoundError
from .http import routes
from .scenarios import scenario_in_scope, stats_query

blueprint = Blueprint(__name__)
route = routes(blueprint)

STATIC = Path(__file__).resolve().parents[1] / "console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}
SVG = "image/svg+xml; charset=utf-8"
PAGE_HEADERS = {
    # Everything comes from the stack itself; the diagram's inline <style> needs 'unsafe-inline'.
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def static_files() -> dict[str, tuple[str, str]]:
    """Name → (content type, text) of every file the console is made of."""
    return {
        path.name: (CONTENT_TYPES[path.suffix], path.read_text(encoding="utf-8"))
        for path in sorted(STATIC.iterdir())
        if path.suffix in CONTENT_TYPES
    }


def _static(name: str) -> Response:
    found = static_files().get(name)
    if found is None:
        raise NotFoundError(f"the console has no file {name!r}")
    content_type, text = found
    return Response(text, headers={"Content-Type": content_type, **PAGE_HEADERS})


@route("/console", methods=["GET"])
def console_page() -> Response:
    return _static("index.html")


@route("/console/{name}", methods=["GET"])
def console_file(name: str) -> Response:
    return _static(name)


@route("/scenarios/{scenario_id}/diagram.svg", methods=["GET"])
def scenario_diagram(scenario_id: str) -> Response:
    """The scenario's graph with its counters (`version`, `from`, `to` as for its stats):
    the latest saved document, or the document of `version`."""
    meta = scenario_in_scope(scenario_id)
    version, start, end = stats_query(blueprint.current_request)
    document: Any = meta.get("document")
    if version is not None:
        document = services().storage.version_document(scenario_id, version)
        if document is None:
            raise NotFoundError(
                f"query parameter 'version': scenario {scenario_id} has no version {version}"
            )
    counters = stats.scenario_stats(scenario_id, version, start, end)
    svg = render_svg(layout(scenario_graph(document)), counters)
    return Response(svg, headers={"Content-Type": SVG, "Cache-Control": "no-store"})
