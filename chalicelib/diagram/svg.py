"""The laid-out graph drawn as one SVG document, with its counters.

The same document is `GET /scenarios/{id}/diagram.svg` and the console's picture. So the
console can update it in place, every box is a `<g class="box" data-key=…>` (with
`data-node` for nodes, `data-trigger` for triggers, `data-channel` for sends), every
counter a `<text data-counter=…>`, every arrow a `<g class="arrow" data-source=… data-target=…>`; the
styles are inside, so the file looks the same on its own, in a chat or in a document.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from .graph import ENTRY, MISSING, NODE, TRIGGER
from .layout import Layout, Placed, Point, Route
from .words import number

NODE_COUNTERS = (("entered", "entered"), ("current", "now"), ("exited", "exited"))
SEND_COUNTERS = (
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("opened", "opened"),
    ("clicked", "clicked"),
)
SUMMARY_CHARACTERS = 34
ID_CHARACTERS = 22
LABEL_CHARACTERS = 24
KIND_OF_TYPE = {  # the colour family of a node type
    "send": "message",
    "webhook": "call",
    "pause": "wait",
    "best_time": "wait",
    "wait_for": "wait",
    "condition": "branch",
    "split": "branch",
    "ab_split": "branch",
    "experiment": "branch",
    "update_profile": "change",
    "promo_code": "change",
    "jump": "end",
    "exit": "end",
}

STYLE = """
.scenaria-diagram { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.scenaria-diagram .box rect { fill: #fff; stroke: #6b7280; stroke-width: 1.5; }
.scenaria-diagram .box .band { stroke: none; }
.scenaria-diagram .kind-trigger .band, .scenaria-diagram .kind-entry .band { fill: #2563eb; }
.scenaria-diagram .kind-trigger rect.frame, .scenaria-diagram .kind-entry rect.frame { fill: #eff6ff; }
.scenaria-diagram .family-message .band { fill: #059669; }
.scenaria-diagram .family-call .band { fill: #4b5563; }
.scenaria-diagram .family-wait .band { fill: #d97706; }
.scenaria-diagram .family-branch .band { fill: #7c3aed; }
.scenaria-diagram .family-change .band { fill: #0891b2; }
.scenaria-diagram .family-end .band { fill: #374151; }
.scenaria-diagram .kind-missing rect.frame { fill: #fef2f2; stroke: #dc2626; stroke-dasharray: 6 4; }
.scenaria-diagram .kind-missing .band { fill: #dc2626; }
.scenaria-diagram text { fill: #111827; font-size: 12px; }
.scenaria-diagram .id { font-weight: 600; font-size: 13px; }
.scenaria-diagram .type { fill: #4b5563; font-size: 10px; text-transform: uppercase; letter-spacing: .04em; }
.scenaria-diagram .summary { fill: #374151; }
.scenaria-diagram .caption { fill: #6b7280; font-size: 10px; }
.scenaria-diagram .count { font-weight: 700; font-size: 13px; font-variant-numeric: tabular-nums; }
.scenaria-diagram .arrow path { fill: none; stroke: #6b7280; stroke-width: 1.5; }
.scenaria-diagram .arrow.back path { stroke-dasharray: 5 4; }
.scenaria-diagram .arrow.role-else path, .scenaria-diagram .arrow.role-timeout_next path { stroke: #9ca3af; }
.scenaria-diagram .arrow.role-on_error path, .scenaria-diagram .arrow.role-on_empty path { stroke: #dc2626; }
.scenaria-diagram .arrow text { font-size: 11px; fill: #374151; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
.scenaria-diagram #arrow-head path { fill: #6b7280; stroke: none; }
.scenaria-diagram .box.selected rect.frame { stroke: #1d4ed8; stroke-width: 3; }
.scenaria-diagram .box.on-path rect.frame { stroke: #16a34a; stroke-width: 3; fill: #f0fdf4; }
.scenaria-diagram .arrow.on-path path { stroke: #16a34a; stroke-width: 3; }
.scenaria-diagram .box.problem rect.frame { stroke: #dc2626; stroke-width: 3; fill: #fef2f2; }
.scenaria-diagram .box:focus { outline: none; }
.scenaria-diagram .box:focus rect.frame { stroke: #1d4ed8; stroke-width: 3; }
"""


def render_svg(layout: Layout, stats: Mapping[str, Any] | None = None) -> str:
    """The diagram as an SVG document; `stats` (the shape of `GET /scenarios/{id}/stats`)
    fills the counters, which are zero without it."""
    nodes = (stats or {}).get("nodes") or {}
    width, height = round(layout.width), round(layout.height)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="scenaria-diagram" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="diagram-title">',
        f'<title id="diagram-title">{_text(layout.graph.name)}</title>',
        f"<style>{STYLE}</style>",
        '<defs><marker id="arrow-head" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#f9fafb"/>',
        '<g class="arrows">',
        *(_arrow(route) for route in layout.routes),
        "</g>",
        '<g class="boxes">',
        *(_box(placed, nodes.get(placed.box.id) or {}) for placed in layout.boxes.values()),
        "</g>",
        "</svg>",
    ]
    return "\n".join(parts)


def _arrow(route: Route) -> str:
    arrow = route.arrow
    classes = f"arrow role-{arrow.role}" + (" back" if route.back else "")
    label = ""
    if arrow.label:
        x, y = route.label_at
        anchor = "start" if route.back else "middle"
        label = (
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="{anchor}">'
            f"<title>{_text(arrow.label)}</title>{_text(_short(arrow.label, LABEL_CHARACTERS))}</text>"
        )
    return (
        f'<g class="{classes}" data-source="{_attr(arrow.source)}" data-target="{_attr(arrow.target)}" '
        f'data-role="{arrow.role}"><path d="{_path(route.points, route.back)}" '
        f'marker-end="url(#arrow-head)"/>{label}</g>'
    )


def _path(points: tuple[Point, ...], back: bool) -> str:
    """Straight stretches for back edges; forward ones as vertical S-curves between layers."""
    (x0, y0), rest = points[0], points[1:]
    path = f"M{x0:.1f},{y0:.1f}"
    for x, y in rest:
        if back:
            path += f" L{x:.1f},{y:.1f}"
        else:
            middle = (y0 + y) / 2
            path += f" C{x0:.1f},{middle:.1f} {x:.1f},{middle:.1f} {x:.1f},{y:.1f}"
        x0, y0 = x, y
    return path


def _box(placed: Placed, counters: Mapping[str, Any]) -> str:
    box = placed.box
    family = "trigger" if box.kind in (TRIGGER, ENTRY) else KIND_OF_TYPE.get(box.type, "end")
    which = {NODE: "node", MISSING: "node", TRIGGER: "trigger", ENTRY: "trigger"}[box.kind]
    kind_label = box.type + (f" · {box.channel}" if box.channel else "")
    if box.kind in (TRIGGER, ENTRY):
        kind_label = "entry" if box.kind == ENTRY else f"trigger · {box.type}"
    parts = [
        f'<g class="box kind-{box.kind} type-{_attr(box.type)} family-{family}" '
        f'data-key="{_attr(box.key)}" data-{which}="{_attr(box.id)}" '
        + (f'data-channel="{_attr(box.channel)}" ' if box.channel else "")
        + f'transform="translate({placed.x:.1f},{placed.y:.1f})">',
        f"<title>{_text(box.id)} ({_text(kind_label)}): {_text(box.summary)}</title>",
        f'<rect class="frame" width="{placed.width:.0f}" height="{placed.height:.0f}" rx="8"/>',
        f'<rect class="band" width="6" height="{placed.height:.0f}" rx="3"/>',
        f'<text class="id" x="16" y="20">{_text(_short(box.id, ID_CHARACTERS))}</text>',
        f'<text class="type" x="{placed.width - 10:.0f}" y="20" text-anchor="end">'
        f"{_text(kind_label)}</text>",
        f'<text class="summary" x="16" y="40">{_text(_short(box.summary, SUMMARY_CHARACTERS))}</text>',
    ]
    if box.kind == NODE:
        parts.extend(_counter_row(NODE_COUNTERS, counters, 56, placed.width))
        if box.channel:
            channel = ((counters.get("channels") or {}).get(box.channel)) or {}
            parts.extend(_counter_row(SEND_COUNTERS, channel, 88, placed.width))
    parts.append("</g>")
    return "".join(parts)


def _counter_row(
    names: tuple[tuple[str, str], ...], counts: Mapping[str, Any], y: int, width: float
) -> list[str]:
    """A row of counters, a caption above each number, in equal columns."""
    column = (width - 24) / len(names)
    row = []
    for index, (name, caption) in enumerate(names):
        x = 16 + index * column
        row.append(f'<text class="caption" x="{x:.0f}" y="{y}">{caption}</text>')
        row.append(
            f'<text class="count" x="{x:.0f}" y="{y + 16}" data-counter="{name}">'
            f"{number(counts.get(name, 0))}</text>"
        )
    return row


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _text(text: str) -> str:
    return escape(text, quote=False)


def _attr(text: str) -> str:
    return escape(text, quote=True)
