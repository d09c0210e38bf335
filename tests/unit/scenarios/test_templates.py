"""Message and webhook templates (SPEC §1.3): Jinja2 in a sandbox that never crashes a journey."""

import logging
import tracemalloc
from typing import Any

import pytest

from chalicelib.scenarios.templates import (
    MAX_RENDERED_BYTES,
    RenderLimitExceeded,
    check_rendered_size,
    check_template,
    is_static,
    render,
)

CONTEXT: dict[str, Any] = {
    "profile": {"first_name": "Ann", "phone": "+49 170 1", "address": {"city": "Berlin"}},
    "event": {"type": "order.created", "data": {"order_id": "o-1", "items": ["a", "b"]}},
    "vars": {"promo_code": "WELCOME10", "count": 3},
    "scenario": {"id": "welcome", "name": "Welcome series"},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Welcome, {{ profile.first_name }}", "Welcome, Ann"),
        ("{{ profile.address.city }}", "Berlin"),
        ("{{ profile['first_name'] }}", "Ann"),
        ("Order {{ event.data.order_id }} ({{ event.type }})", "Order o-1 (order.created)"),
        ("{{ event.data['items'] | join(',') }}", "a,b"),
        ("Use {{ vars.promo_code }}", "Use WELCOME10"),
        ("{{ vars.count + 1 }}", "4"),
        ("{% if vars.count > 2 %}many{% else %}few{% endif %}", "many"),
        ("{% for i in event.data['items'] %}[{{ i }}]{% endfor %}", "[a][b]"),
        ("{{ scenario.name | upper }}", "WELCOME SERIES"),
        ('{"phone": "{{ profile.phone }}"}', '{"phone": "+49 170 1"}'),
        ("{{ profile.nickname | default('friend') }}", "friend"),
    ],
)
def test_render_with_context(source: str, expected: str) -> None:
    assert render(source, CONTEXT) == expected


@pytest.mark.parametrize(
    "source",
    [
        "Hi {{ nobody }}!",
        "Hi {{ profile.nickname }}!",
        "Hi {{ profile.a.b.c }}!",
        "Hi {{ vars.response.body.items }}!",
        "Hi {{ event.data.missing.deeper }}!",
        "Hi {{ profile.first_name.nope.nope }}!",
    ],
)
def test_undefined_renders_empty(source: str) -> None:
    assert render(source, CONTEXT) == "Hi !"


def test_undefined_chain_when_the_root_is_absent() -> None:
    assert render("[{{ profile.a.b.c }}]", {}) == "[]"


def test_undefined_in_a_condition_is_false() -> None:
    source = "{% if profile.vip.level %}vip{% else %}regular{% endif %}"
    assert render(source, CONTEXT) == "regular"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ profile.__init__.__globals__ }}",
        "{{ render.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ vars.__class__.__init__.__globals__['sys'] }}",
    ],
)
def test_sandbox_blocks_unsafe_attributes(source: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="chalicelib.scenarios.templates")
    rendered = render(f"<{source}>", CONTEXT)
    assert rendered in ("<>", "")
    assert "class" not in rendered
    assert "module" not in rendered


def test_sandbox_blocks_unsafe_calls() -> None:
    # A blocked call fails the whole template, which renders empty rather than raising.
    assert render("a{{ ''.__class__.__mro__[1].__subclasses__() }}b", CONTEXT) == ""


def test_runtime_error_renders_empty() -> None:
    assert render("x {{ 1 / 0 }} y", CONTEXT) == ""
    assert render("{{ vars.promo_code + 1 }}", CONTEXT) == ""


def test_template_that_does_not_compile_renders_empty() -> None:
    assert render("{{ profile.first_name ", CONTEXT) == ""


def test_html_autoescapes() -> None:
    context = {"profile": {"first_name": "<script>alert('x')</script> & co"}}
    rendered = render("<p>Hi {{ profile.first_name }}</p>", context, html=True)
    assert rendered == "<p>Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</p>"


def test_text_does_not_escape() -> None:
    context = {"profile": {"first_name": "<b>Ann</b> & co"}}
    assert render("Hi {{ profile.first_name }}", context) == "Hi <b>Ann</b> & co"


def test_html_and_text_of_the_same_source_are_cached_apart() -> None:
    context = {"profile": {"first_name": "<i>"}}
    source = "{{ profile.first_name }}!"
    assert render(source, context, html=True) == "&lt;i&gt;!"
    assert render(source, context) == "<i>!"
    assert render(source, context, html=True) == "&lt;i&gt;!"


def test_html_safe_filter_is_honoured() -> None:
    assert render("{{ '<b>' | safe }}", {}, html=True) == "<b>"


def test_none_stays_none() -> None:
    assert render(None, CONTEXT) is None


def test_static_text_is_returned_as_is() -> None:
    assert is_static("Confirm your e-mail")
    assert not is_static("Hi {{ x }}")
    text = "Plain <b>text</b> & no markup"
    assert render(text, {}, html=True) == text


def test_check_template_returns_a_good_source() -> None:
    source = "Hi {{ profile.first_name }}{% if vars.x %}!{% endif %}"
    assert check_template(source) == source


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("Hi {{ profile.first_name ", 1),
        ("line one\nline two\n{{ x }", 3),
        ("a\n{% if x %}\nb", 2),  # unclosed block: Jinja names the line it opened on
        ("{% for %}", 1),
        ("a\nb\n{% endif %}", 3),
    ],
)
def test_check_template_names_the_line(source: str, line: int) -> None:
    with pytest.raises(ValueError, match=rf"^template does not compile \(line {line}\): \S"):
        check_template(source)


def test_check_template_error_is_not_chained() -> None:
    with pytest.raises(ValueError, match="does not compile") as caught:
        check_template("{{")
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# --- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**8 }}",
        "{{ [0] * 10**8 }}",
        "{{ 10**8 * 'x' }}",
        "{{ 2 ** (10 ** 8) }}",
        "{% set s = 'x' * 200000 %}{{ s + s }}",
        "{% if 'x' * 10**8 %}yes{% endif %}",
        "{{ [[0] * 100000] * 100000 }}",
        "{{ [{'a': 'x' * 100000}] * 100000 }}",
    ],
)
def test_a_huge_constant_is_refused_on_saving_without_being_built(source: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"^template .* would build more than"):
            check_template(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # bytes: the string, list or number was never made


def test_compiling_a_template_computes_nothing_of_it() -> None:
    # Jinja would fold the constant filter while compiling: 50 MB before any render.
    source = "{% if profile.vip %}{{ 'x' | center(50000000) }}{% endif %}"
    tracemalloc.start()
    try:
        assert check_template(source) == source
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # bytes
    assert render(source, {"profile": {}}) == ""
    with pytest.raises(RenderLimitExceeded):
        render(source, {"profile": {"vip": True}})


@pytest.mark.parametrize(
    "source",
    [
        "{{ range(100000) | join(',') }}",
        "{% for i in range(100000) %}0123456789{% endfor %}",
    ],
)
def test_a_template_that_renders_too_much_with_no_data_is_refused_on_saving(source: str) -> None:
    with pytest.raises(ValueError, match=f"^template renders more than {MAX_RENDERED_BYTES} bytes"):
        check_template(source)


def test_a_template_that_runs_too_long_with_no_data_is_refused_on_saving() -> None:
    # 10**8 loop turns with nothing to show: far more than the CPU time a render may take.
    source = "{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
    with pytest.raises(ValueError, match=r"^template takes more than .* s to render"):
        check_template(source)


def test_templates_that_only_the_data_makes_too_large_are_saved() -> None:
    for source in [
        "{{ profile.bio * 3 }}",
        "{% for order in profile.orders %}{{ order }}{% endfor %}",
        "{{ '-' * 40 }} {{ 2 ** 64 }} {{ [1, 2] * 3 }}",
    ]:
        assert check_template(source) == source


@pytest.mark.parametrize(
    ("source", "context"),
    [
        ("{{ profile.bio * 3 }}", {"profile": {"bio": "x" * 100_000}}),
        (
            "{% for o in profile.orders %}{{ o }}{% endfor %}",
            {"profile": {"orders": ["x" * 9] * 40_000}},
        ),
        ("{{ profile.bio ~ profile.bio }}", {"profile": {"bio": "x" * 200_000}}),
        ("{{ vars.n * 'ab' }}", {"vars": {"n": 10**9}}),
    ],
)
def test_a_render_past_the_limits_raises_rather_than_rendering_empty(
    source: str, context: dict[str, Any]
) -> None:
    with pytest.raises(RenderLimitExceeded, match="more than"):
        render(source, context)
    with pytest.raises(RenderLimitExceeded):
        render(source, context, html=True)


def test_a_render_that_runs_too_long_raises() -> None:
    source = "{% for i in range(vars.n) %}{% for j in range(vars.n) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderLimitExceeded, match="takes more than"):
        render(source, {"vars": {"n": 100_000}})


def test_renders_within_the_limits_are_as_before() -> None:
    assert render("{{ '-' * 3 }}{{ vars.count * 2 }}{{ 2 ** 10 }}", CONTEXT) == "---61024"
    assert render("{{ range(3) | list }} {{ range(5)[1:3] | list }}", {}) == "[0, 1, 2] [1, 2]"
    assert render("{{ range(3) | length }} {{ range(3) | reverse | join }}", {}) == "3 210"
    assert render("{{ ('x' * (MAX // 2)) | length }}", {"MAX": MAX_RENDERED_BYTES}) == str(
        MAX_RENDERED_BYTES // 2
    )


def test_the_size_of_a_message_counts_every_part_in_utf8() -> None:
    check_rendered_size(["x" * (MAX_RENDERED_BYTES // 2), "y" * (MAX_RENDERED_BYTES // 2), None])
    with pytest.raises(RenderLimitExceeded, match="the message renders 262145 bytes"):
        check_rendered_size(["x" * (MAX_RENDERED_BYTES // 2), "y" * (MAX_RENDERED_BYTES // 2 + 1)])
    with pytest.raises(RenderLimitExceeded, match="the call renders"):
        check_rendered_size(["é" * (MAX_RENDERED_BYTES // 2 + 1)], "the call")
