"""Message and webhook templates: Jinja2 in a sandbox.

Templates see `profile`, `event` (the entry event), `vars` and `scenario`. An undefined
variable renders empty and a failing expression renders the template empty: a template
never crashes a journey.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2 import Template as JinjaTemplate
from jinja2.sandbox import SandboxedEnvironment

logger = logging.getLogger(__name__)

_TEXT = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
_HTML = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=True)


def check_template(source: str) -> str:
    """Raise ValueError naming the line when the template does not compile."""
    try:
        _compile(source, html=False)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ValueError(f"template does not compile{where}: {error.message}") from None
    return source


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool) -> JinjaTemplate:
    return (_HTML if html else _TEXT).from_string(source)


def is_static(source: str) -> bool:
    """True when the template has no Jinja2 syntax, so rendering can be skipped."""
    return "{" not in source


def render(source: str | None, context: dict[str, Any], html: bool = False) -> str | None:
    """Render a template; None stays None."""
    if source is None:
        return None
    if is_static(source):
        return source
    try:
        return _compile(source, html).render(context)
    except Exception:  # a template must never stop a journey
        logger.warning("template failed to render", exc_info=True)
        return ""
