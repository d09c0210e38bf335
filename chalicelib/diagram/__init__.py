"""The scenario diagram: a scenario's graph laid out in layers and drawn as SVG, with
its counters. One renderer for `GET /scenarios/{id}/diagram.svg` and the console."""

from .graph import Arrow, Box, Graph, scenario_graph
from .layout import Layout, Placed, Route, layout
from .svg import render_svg

__all__ = [
    "Arrow",
    "Box",
    "Graph",
    "Layout",
    "Placed",
    "Route",
    "layout",
    "render_svg",
    "scenario_graph",
]
