"""The diagram as SVG: well-formed, every box and counter where the console looks for it,
text escaped, and what a node does said in words."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

from chalicelib.diagram import layout, render_svg, scenario_graph
from chalicelib.diagram.words import condition, duration

ROOT = Path(__file__).resolve().parents[3]
WELCOME = json.loads((ROOT / "examples" / "welcome.json").read_text())
SVG = "{http://www.w3.org/2000/svg}"


def drawn(document: Any, stats: dict[str, Any] | None = None) -> ET.Element:
    return ET.fromstring(render_svg(layout(scenario_graph(document)), stats))


def boxes(svg: ET.Element) -> dict[str, ET.Element]:
    return {
        g.get("data-key", ""): g for g in svg.iter(f"{SVG}g") if "box" in g.get("class", "").split()
    }


def shown(box: ET.Element) -> dict[str, str]:
    return {
        t.get("data-counter", ""): t.text or ""
        for t in box.iter(f"{SVG}text")
        if t.get("data-counter")
    }


def test_every_node_shows_its_counters_and_every_send_its_messages() -> None:
    stats = {
        "nodes": {
            "welcome_email": {
                "entered": Decimal(12),
                "exited": Decimal(9),
                "current": Decimal(3),
                "channels": {"email": {"sent": 9, "delivered": 8, "opened": 5, "clicked": 1}},
            },
            "wait_day": {"entered": 9, "exited": 5, "current": 4},
        }
    }
    found = boxes(drawn(WELCOME, stats))
    assert set(found) == {"trigger/signup"} | {f"node/{n}" for n in WELCOME["nodes"]}
    assert shown(found["node/welcome_email"]) == {
        "entered": "12",
        "current": "3",
        "exited": "9",
        "sent": "9",
        "delivered": "8",
        "opened": "5",
        "clicked": "1",
    }
    assert shown(found["node/wait_day"]) == {"entered": "9", "current": "4", "exited": "5"}
    assert shown(found["node/bonus"]) == {"entered": "0", "current": "0", "exited": "0"}
    assert shown(found["trigger/signup"]) == {}
    assert found["node/reminder_sms"].get("data-channel") == "sms"
    assert found["node/welcome_email"].get("data-node") == "welcome_email"
    assert found["trigger/signup"].get("data-trigger") == "signup"


def test_arrows_name_their_ends_and_say_which_loop_back() -> None:
    svg = drawn(WELCOME)
    arrows = {
        (g.get("data-source"), g.get("data-target")): g
        for g in svg.iter(f"{SVG}g")
        if "arrow" in g.get("class", "").split()
    }
    assert "back" in arrows["node/wait_sms", "node/sms_sent"].get("class", "")
    assert "back" not in arrows["node/confirmed", "node/bonus"].get("class", "")
    labels = {key: "".join(g.itertext()) for key, g in arrows.items()}
    assert labels["node/confirmed", "node/bonus"].startswith("then")
    assert labels["node/confirmed", "node/sms_sent"].startswith("else")


def test_text_is_escaped_and_long_text_shortened() -> None:
    subject = 'Hi <script>alert("x")</script> & welcome to a very long subject line indeed'
    document = {
        "name": "<b>Bold</b> & co",
        "entry": "hello",
        "nodes": {"hello": {"type": "send", "channel": "email", "template": {"subject": subject}}},
    }
    text = render_svg(layout(scenario_graph(document)))
    svg = ET.fromstring(text)
    assert not [e for e in svg.iter() if e.tag.endswith(("script", "}b"))]
    assert svg.find(f"{SVG}title").text == "<b>Bold</b> & co"  # type: ignore[union-attr]
    (box,) = [b for key, b in boxes(svg).items() if key == "node/hello"]
    texts = [t.text or "" for t in box.iter(f"{SVG}text")]
    summary = next(t for t in texts if t.startswith("email:"))
    assert summary.endswith("…")
    assert len(summary) <= 34
    assert subject in (box.find(f"{SVG}title").text or "")  # type: ignore[union-attr]


def test_the_same_document_draws_the_same_picture() -> None:
    assert render_svg(layout(scenario_graph(WELCOME))) == render_svg(
        layout(scenario_graph(WELCOME))
    )


def test_durations_and_conditions_in_words() -> None:
    assert duration("P1D") == "1 day"
    assert duration("PT2H30M") == "2 hours 30 min"
    assert duration("P2W") == "2 weeks"
    assert duration("-P1D") == "minus 1 day"
    assert duration("soon") == "soon"
    assert condition({"field": "profile.age", "op": "gte", "value": 18}) == "profile.age ≥ 18"
    assert condition({"field": "profile.email", "op": "exists"}) == "profile.email exists"
    assert (
        condition(
            {"event_count": {"type": "order.created", "since": "P30D"}, "op": "eq", "value": 0}
        )
        == "order.created events in the last 30 days = 0"
    )
    assert (
        condition({"message": {"channel": "sms", "status": "sent"}, "exists": False})
        == "no sms sent since entry"
    )
    assert (
        condition(
            {
                "all": [
                    {"segment": "vip"},
                    {
                        "any": [
                            {"consent": "email"},
                            {
                                "not": {
                                    "field": "profile.city",
                                    "op": "in",
                                    "value": ["Rome", "Oslo"],
                                }
                            },
                        ]
                    },
                ]
            }
        )
        == "in segment vip and (email consent granted or not profile.city in 'Rome', 'Oslo')"
    )
    assert condition({"field": "profile.birthday", "op": "on_day", "value": {"today": 14}}) == (
        "profile.birthday on the day today + 14 days"
    )
    assert condition("nonsense") == "?"
