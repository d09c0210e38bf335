"""Tracking links: e-mail HTML rewritten to signed links and a pixel; tokens verified."""

from __future__ import annotations

import re

import pytest

from chalicelib.config import settings
from chalicelib.runtime.tracking import CLICK, OPEN, BadLink, instrument, sign, verify

TRACKED = re.compile(r"/t/([oc])/([A-Za-z0-9_.-]+)")


def tokens(html: str) -> list[tuple[str, str]]:
    return TRACKED.findall(html)


def test_absolute_links_become_signed_click_links_and_a_pixel_goes_before_body_end() -> None:
    html = (
        "<html><head><link rel=stylesheet href='https://cdn.example/s.css'></head><body>"
        '<a class="b" href="https://shop.example/sale?a=1&amp;b=2">Sale</a> '
        "<A HREF='http://shop.example/old'>Old</A> "
        '<a href="mailto:help@shop.example">Help</a> <a href="#top">Top</a> '
        '<a href="/relative">Relative</a></body></html>'
    )
    out = instrument(html, "msg-1")
    base = settings().public_url
    assert "https://cdn.example/s.css" in out  # a stylesheet is no link a reader clicks
    assert 'href="mailto:help@shop.example"' in out
    assert 'href="#top"' in out
    assert 'href="/relative"' in out
    assert "shop.example/sale" not in out
    found = tokens(out)
    clicks = [verify(CLICK, token) for kind, token in found if kind == "c"]
    assert clicks == [
        ("msg-1", "https://shop.example/sale?a=1&b=2"),
        ("msg-1", "http://shop.example/old"),
    ]
    assert f'class="b" href="{base}/t/c/' in out
    ((_, pixel),) = [(k, t) for k, t in found if k == "o"]
    assert verify(OPEN, pixel) == ("msg-1", None)
    assert out.endswith(f'<img src="{base}/t/o/{pixel}" width="1" height="1" alt=""></body></html>')


def test_html_without_a_body_gets_the_pixel_at_the_end() -> None:
    out = instrument("<p>Hi</p>", "msg-2")
    assert out.startswith("<p>Hi</p><img ")
    assert out.endswith('alt="">')


def test_an_altered_token_does_not_verify() -> None:
    token = sign(CLICK, "msg-1", "https://shop.example/")
    payload, signature = token.split(".")
    forged_payload = sign(CLICK, "msg-1", "https://evil.example/").split(".")[0]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in (f"{forged_payload}.{signature}", f"{payload}.{flipped}", payload, "", "a.b.c"):
        with pytest.raises(BadLink):
            verify(CLICK, bad)


def test_an_open_token_is_no_click_token_and_back() -> None:
    with pytest.raises(BadLink):
        verify(CLICK, sign(OPEN, "msg-1"))
    with pytest.raises(BadLink):
        verify(OPEN, sign(CLICK, "msg-1", "https://shop.example/"))


def test_tokens_are_compact_url_safe_text() -> None:
    token = sign(OPEN, "9f2c4e0b6a1d4c8e9f2c4e0b6a1d4c8e")
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert len(token) < 80
