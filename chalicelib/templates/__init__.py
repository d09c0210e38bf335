"""The built-in scenario templates (SPEC §9): one JSON file each in this folder.

A file holds the template's `name`, `category`, `description`, the `scenario` document
and a `timeline` — a simulation of one profile (`profile`, `events`, `until`, as
`POST /scenarios/simulate` takes them) that walks the scenario's intended path. Events
the stack derives itself (`cart.abandoned`, `product.price_dropped`, ...) are given in
the timeline as they would arrive. The id of a template is its file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CATEGORIES = (
    "welcome",
    "abandoned_cart",
    "abandoned_browse",
    "price_drop",
    "back_in_stock",
    "post_purchase",
    "birthday",
    "win_back",
    "loyalty",
)
FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    category: str
    description: str
    scenario: dict[str, Any]
    timeline: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """As the API shows it (a copy: the caller may change it)."""
        return json.loads(
            json.dumps(
                {
                    "id": self.id,
                    "name": self.name,
                    "category": self.category,
                    "description": self.description,
                    "scenario": self.scenario,
                    "timeline": self.timeline,
                }
            )
        )


@cache
def catalogue() -> dict[str, Template]:
    """Every template by id, in the order of `CATEGORIES` (files are read once)."""
    found = []
    for path in sorted(FOLDER.glob("*.json")):
        document = json.loads(path.read_text())
        found.append(Template(id=path.stem, **document))
    found.sort(key=lambda template: CATEGORIES.index(template.category))
    return {template.id: template for template in found}


def find(template_id: str) -> Template | None:
    return catalogue().get(template_id)
