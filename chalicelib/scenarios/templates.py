"""Message and webhook templates: Jinja2 in a sandbox, with limits.

Templates see `profile`, `event` (the entry event), `vars` and `scenario`. An undefined
variable renders empty and a failing expression renders the template empty: a template
error never crashes a journey.

What a template may cost is capped. Nothing of it is computed when it compiles (Jinja
would fold a constant `{{ 'x' * 10**8 }}` then, outside any limit, and keep the result).
A render stops with `RenderLimitExceeded` once its output passes `MAX_RENDERED_BYTES`
or its CPU time `MAX_RENDER_SECONDS`; repetition (`*`, `**`, `+` of sequences) that would
build more than that is refused before it is built. `check_template` renders the
template once with no data, so what is too much whatever the data is refused on saving;
what only the data makes too much fails the node at run time (see the engine).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, overload

from jinja2 import ChainableUndefined, TemplateError, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, safe_range

logger = logging.getLogger(__name__)

# What one message (all its parts) or webhook call may render: its outbox row holds it,
# and a DynamoDB item holds at most 400 KB with the row's other attributes.
MAX_RENDERED_BYTES = 256 * 1024
MAX_RENDER_SECONDS = 0.25  # CPU time of one render: the thread's, so a busy host does not count
_TIME_CHECK_EVERY = 256  # steps of a render (output pieces, calls, operators, loop turns)
_DIGITS_PER_BIT = math.log10(2)


class RenderLimitExceeded(Exception):
    """A template rendered, or was about to build, more than its limits allow."""


def check_template(source: str) -> str:
    """Raise ValueError when the template does not compile (naming the line) or, with no
    data at all, already renders more than its limits allow."""
    try:
        template = _compile(source, False)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ValueError(f"template does not compile{where}: {error.message}") from None
    try:
        _render(template, {})
    except RenderLimitExceeded as error:
        raise ValueError(f"template {error}") from None
    except Exception:  # with no data many templates fail: the data will decide
        pass
    return source


def is_static(source: str) -> bool:
    """True when the template has no Jinja2 syntax, so rendering can be skipped."""
    return "{" not in source


def render(source: str | None, context: dict[str, Any], html: bool = False) -> str | None:
    """Render a template; None stays None. Raises RenderLimitExceeded past the limits."""
    if source is None:
        return None
    if is_static(source):
        return source
    try:
        return _render(_compile(source, html), context)
    except RenderLimitExceeded:
        raise
    except Exception:  # a template must never stop a journey
        logger.warning("template failed to render", exc_info=True)
        return ""


def check_rendered_size(parts: Sequence[str | None], what: str = "the message") -> None:
    """Raise RenderLimitExceeded when the rendered parts of one message or call, together,
    take more than MAX_RENDERED_BYTES in UTF-8."""
    characters = sum(map(len, filter(None, parts)))
    if characters * 4 <= MAX_RENDERED_BYTES:  # no character takes more than 4 bytes
        return
    size = sum(len(part.encode("utf-8", "surrogatepass")) for part in parts if part)
    if size > MAX_RENDERED_BYTES:
        raise RenderLimitExceeded(f"{what} renders {size} bytes, more than {MAX_RENDERED_BYTES}")


# --- the limits, while a render runs -------------------------------------------------


class _Budget:
    """The CPU time a render may still take, and its steps so far."""

    __slots__ = ("deadline", "steps")

    def __init__(self) -> None:
        self.deadline = time.thread_time() + MAX_RENDER_SECONDS
        self.steps = 0

    def step(self) -> None:
        """Count a step; every few steps, look at the CPU clock (a look costs a few steps)."""
        self.steps += 1
        if self.steps % _TIME_CHECK_EVERY == 0 and time.thread_time() > self.deadline:
            raise RenderLimitExceeded(f"takes more than {MAX_RENDER_SECONDS} s to render")


_budget: ContextVar[_Budget | None] = ContextVar("template_render_budget", default=None)


def _step() -> None:
    """Count a step of the running render, if any."""
    budget = _budget.get()
    if budget is not None:
        budget.step()


def _render(template: JinjaTemplate, context: dict[str, Any]) -> str:
    """Render piece by piece, stopping as soon as the output or the time is too much."""
    budget = _Budget()
    token = _budget.set(budget)
    try:
        pieces: list[str] = []
        size = 0
        for piece in template.generate(context):
            size += len(piece)
            if size > MAX_RENDERED_BYTES:  # characters: each is at least a byte
                raise RenderLimitExceeded(f"renders more than {MAX_RENDERED_BYTES} bytes")
            pieces.append(piece)
            budget.step()
        return "".join(pieces)
    finally:
        _budget.reset(token)


def _size(value: Any, limit: float = MAX_RENDERED_BYTES) -> float:
    """About how many characters `value` renders as, counted until past `limit`: a
    string's length, an integer's digits, a collection's items and what they hold (a
    list of a list repeated is as large as it prints)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() * _DIGITS_PER_BIT
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple | set | frozenset):
        size: float = len(value)
        for item in value:
            if size > limit:
                break
            size += _size(item, limit - size)
        return size
    return 0


def _result_size(operator: str, left: Any, right: Any) -> float:
    """How long the result of `left <operator> right` would be (see `_size`)."""
    if operator == "+":
        return _size(left) + _size(right)
    if operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            return _size(left) + _size(right)
        count, sequence = (left, right) if isinstance(left, int) else (right, left)
        return max(count, 0) * _size(sequence) if isinstance(count, int) else 0
    # `**`: an integer power has about exponent × log10(base) digits
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        return right * math.log10(abs(left))
    return 0


class _TimedRange(Sequence[int]):
    """The sandbox's `range`, looking at the render's clock as a loop goes through it: a
    loop within a loop does nothing visible yet may run for minutes."""

    def __init__(self, numbers: range) -> None:
        self._numbers = numbers

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> _TimedRange: ...
    def __getitem__(self, index: int | slice) -> int | _TimedRange:
        if isinstance(index, slice):
            return _TimedRange(self._numbers[index])
        return self._numbers[index]

    def __contains__(self, value: object) -> bool:
        return value in self._numbers

    def __iter__(self) -> Iterator[int]:
        for number in self._numbers:
            _step()
            yield number

    def __repr__(self) -> str:
        return repr(self._numbers)


def _range(*args: int) -> _TimedRange:
    return _TimedRange(safe_range(*args))


class _RenderTimeOnly(CodeGenerator):
    """Jinja's code generator, computing no expression while it compiles: it would fold
    constant ones (output, filters, `{% autoescape %}` values) outside a render's limits."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    def visit_EvalContextModifier(self, node: nodes.EvalContextModifier, frame: Frame) -> None:
        frame.eval_ctx.volatile = True  # filters refuse to fold in a volatile context
        super().visit_EvalContextModifier(node, frame)


class _LimitedSandbox(SandboxedEnvironment):
    """The sandbox with the limits above. Intercepted operators are not folded either."""

    code_generator_class = _RenderTimeOnly
    intercepted_binops = frozenset({"+", "*", "**"})

    def __init__(self, autoescape: bool) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=autoescape, optimized=False)
        self.globals["range"] = _range

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _step()
        if _result_size(operator, left, right) > MAX_RENDERED_BYTES:
            raise RenderLimitExceeded(
                f"{operator!r} would build more than {MAX_RENDERED_BYTES} characters or digits"
            )
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _step()
        return super().call(context, obj, *args, **kwargs)


_TEXT = _LimitedSandbox(autoescape=False)
_HTML = _LimitedSandbox(autoescape=True)


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool) -> JinjaTemplate:
    return (_HTML if html else _TEXT).from_string(source)
