"""Scenario templates (SPEC §9 "Templates"): read the built-in library, start a draft from one."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import templates

from .errors import BadRequest, NotFoundError
from .http import routes
from .models import FromTemplate

blueprint = Blueprint(__name__)
route = routes(blueprint)


@route("/templates", methods=["GET"])
def list_templates() -> dict[str, Any]:
    category = (blueprint.current_request.query_params or {}).get("category")
    if category is not None and category not in templates.CATEGORIES:
        raise BadRequest(
            f"query parameter 'category' must be one of {', '.join(templates.CATEGORIES)}"
        )
    return {
        "templates": [
            template.describe()
            for template in templates.catalogue().values()
            if category is None or template.category == category
        ]
    }


@route("/templates/{template_id}", methods=["GET"])
def read_template(template_id: str) -> dict[str, Any]:
    return _template(template_id).describe()


def draft(request: FromTemplate) -> dict[str, Any]:
    """The document `POST /scenarios {"template": ...}` saves: the template's scenario,
    with the `name` and `group` given."""
    document: dict[str, Any] = _template(request.template, "$.template: ").describe()["scenario"]
    if request.name is not None:
        document["name"] = request.name
    if request.group is not None:
        document["group"] = request.group
    return document


def _template(template_id: str, field: str = "") -> templates.Template:
    template = templates.find(template_id)
    if template is None:
        raise NotFoundError(f"{field}no template {template_id!r} (GET /templates lists them)")
    return template
