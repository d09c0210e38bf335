"""A layered (Sugiyama) layout of a scenario's graph, by grandalf.

Triggers are the roots, on top; every other box lies below the boxes that lead to it.
Edges that close a loop are the feedback edges grandalf turns round to get an acyclic
graph: they are drawn as back edges, up the right-hand side of the boxes. Parts of the
graph that nothing links (an unreachable node, a draft's loose ends) are laid out on
their own and placed side by side, left to right in document order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from .graph import ENTRY, TRIGGER, Arrow, Box
from .graph import Graph as ScenarioGraph

BOX_WIDTH = 240.0
TRIGGER_HEIGHT = 58.0
NODE_HEIGHT = 80.0
SEND_HEIGHT = 112.0  # a second row of counters: the messages' statuses
LAYER_GAP = 64.0  # vertical room between layers, where the edge labels go
BOX_GAP = 36.0  # horizontal room between boxes of a layer
PART_GAP = 72.0  # between parts of the graph that nothing links
MARGIN = 24.0
ORDERING_ROUNDS = 4  # grandalf's crossing-reduction sweeps: more is tidier and slower
BACK_EDGE_BULGE = 28.0

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Placed:
    """A box and where it is: its top-left corner and its size."""

    box: Box
    x: float
    y: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def center_x(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True, slots=True)
class Route:
    """An arrow's path: its points from source to target, whether it closes a loop, and
    where its label goes."""

    arrow: Arrow
    points: tuple[Point, ...]
    back: bool
    label_at: Point


@dataclass(slots=True)
class Layout:
    """Every box placed and every arrow routed, in a canvas of `width` × `height`."""

    graph: ScenarioGraph
    boxes: dict[str, Placed] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


class _View:
    """What grandalf reads (`w`, `h`) and writes (`xy`, the centre) for a vertex."""

    def __init__(self, width: float, height: float) -> None:
        self.w, self.h = width, height
        self.xy: Point = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[Point] = []

    def setpath(self, points: list[Point]) -> None:
        self.points = list(points)


def box_height(box: Box) -> float:
    if box.kind in (TRIGGER, ENTRY):
        return TRIGGER_HEIGHT
    return SEND_HEIGHT if box.channel else NODE_HEIGHT


def layout(graph: ScenarioGraph) -> Layout:
    """Place the boxes and route the arrows of a scenario's graph."""
    vertices = {key: Vertex(key) for key in graph.boxes}
    for key, vertex in vertices.items():
        vertex.view = _View(BOX_WIDTH, box_height(graph.boxes[key]))
    pairs = {(a.source, a.target) for a in graph.arrows if a.source != a.target}
    edges: dict[tuple[str, str], Edge] = {}
    order = {key: index for index, key in enumerate(graph.boxes)}
    for source, target in sorted(pairs, key=lambda pair: (order[pair[0]], order[pair[1]])):
        edge = Edge(vertices[source], vertices[target])
        edge.view = _EdgeView()
        edges[source, target] = edge
    whole = Graph(list(vertices.values()), list(edges.values()))
    result = Layout(graph)
    back: set[tuple[str, str]] = set()
    left = MARGIN
    for part in sorted(whole.C, key=lambda part: min(order[v.data] for v in part.sV)):
        back |= _lay_out_part(graph, part, order)
        placed = [vertices[v.data] for v in part.sV]
        low = min(v.view.xy[0] - v.view.w / 2 for v in placed)
        for vertex in placed:
            x, y = vertex.view.xy
            box = graph.boxes[vertex.data]
            width, height = vertex.view.w, vertex.view.h
            result.boxes[vertex.data] = Placed(
                box, x - width / 2 - low + left, y - height / 2 + MARGIN, width, height
            )
        shift = left - low
        for edge in part.sE:
            edge.view.points = [(x + shift, y + MARGIN) for x, y in edge.view.points]
        right = max(result.boxes[v.data].right for v in placed)
        left = right + PART_GAP
    for arrow in graph.arrows:
        result.routes.append(_route(result, arrow, edges.get((arrow.source, arrow.target)), back))
    _spread_starts(result)
    xs = [p[0] for r in result.routes for p in r.points] + [b.right for b in result.boxes.values()]
    ys = [p[1] for r in result.routes for p in r.points] + [b.bottom for b in result.boxes.values()]
    result.width = max(xs, default=0.0) + MARGIN + BACK_EDGE_BULGE
    result.height = max(ys, default=0.0) + MARGIN
    return result


def _lay_out_part(graph: ScenarioGraph, part: Graph, order: dict[str, int]) -> set[tuple[str, str]]:
    """Lay out one connected part; returns the (source, target) of its back edges."""
    sugiyama = SugiyamaLayout(part)
    sugiyama.xspace, sugiyama.yspace = BOX_GAP, LAYER_GAP
    vertices = sorted(part.sV, key=lambda v: order[v.data])
    roots = [v for v in vertices if graph.boxes[v.data].kind in (TRIGGER, ENTRY)]
    if not roots:  # a loose part: start where nothing leads in, else at its first box
        roots = [v for v in vertices if not v.e_in()] or vertices[:1]
    sugiyama.init_all(roots=roots, optimize=True)
    sugiyama.draw(ORDERING_ROUNDS)
    return {(e.v[0].data, e.v[1].data) for e in sugiyama.alt_e}


def _route(result: Layout, arrow: Arrow, edge: Edge | None, back: set[tuple[str, str]]) -> Route:
    source, target = result.boxes[arrow.source], result.boxes[arrow.target]
    if edge is None:  # a node that leads to itself: a small loop on its right
        x, top, bottom = source.right, source.y + 12, source.bottom - 12
        points = ((x, bottom), (x + BACK_EDGE_BULGE, bottom), (x + BACK_EDGE_BULGE, top), (x, top))
        return Route(arrow, points, True, (x + BACK_EDGE_BULGE + 4, (top + bottom) / 2))
    inner = edge.view.points[1:-1]  # grandalf's points through the dummy vertices
    if (arrow.source, arrow.target) in back:  # up the right-hand sides
        start = (source.right, source.y + source.height / 2)
        end = (target.right, target.y + target.height / 2)
        if inner:  # through the slots grandalf kept free for it in the layers between
            middle = [
                (start[0] + BACK_EDGE_BULGE, start[1]),
                *inner,
                (end[0] + BACK_EDGE_BULGE, end[1]),
            ]
        else:
            bulge = max(source.right, target.right) + BACK_EDGE_BULGE
            middle = [(bulge, start[1]), (bulge, end[1])]
        label = ((middle[0][0] + middle[-1][0]) / 2 + 4, (start[1] + end[1]) / 2)
        return Route(arrow, (start, *middle, end), True, label)
    start = (source.center_x, source.bottom)
    end = (target.center_x, target.y)
    points = (start, *inner, end)
    return Route(arrow, points, False, _label_point(start, points[1], source.bottom))


def _label_point(start: Point, towards: Point, below: float) -> Point:
    """Where a forward arrow's label goes: on its first stretch, in the gap below its
    source, far enough along that the labels of a many-way split fan apart."""
    y = below + LAYER_GAP * 0.55
    (x0, y0), (x1, y1) = start, towards
    t = (y - y0) / (y1 - y0) if y1 != y0 else 0.0
    return (x0 + (x1 - x0) * t, y)


def _spread_starts(result: Layout) -> None:
    """Forward arrows leave their source's bottom side spread out, left to right in the
    order they head, rather than from one point."""
    by_source: dict[str, list[int]] = {}
    for index, route in enumerate(result.routes):
        if not route.back:
            by_source.setdefault(route.arrow.source, []).append(index)
    for source, indices in by_source.items():
        if len(indices) < 2:
            continue
        box = result.boxes[source]
        indices.sort(key=lambda i: result.routes[i].points[1][0])
        for slot, index in enumerate(indices, start=1):
            route = result.routes[index]
            x = box.x + box.width * slot / (len(indices) + 1)
            points = ((x, box.bottom), *route.points[1:])
            label = _label_point(points[0], points[1], box.bottom)
            result.routes[index] = Route(route.arrow, points, False, label)
