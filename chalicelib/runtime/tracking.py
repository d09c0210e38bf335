"""Tracking links: opens and clicks of e-mails, reported to the stack itself.

`instrument` rewrites an e-mail's HTML before it goes out: every absolute http(s) link
of an `<a>` or `<area>` becomes `{public_url}/t/c/{token}` and an invisible open pixel
`{public_url}/t/o/{token}` is added. A token is the message id (and, for a click, the
link's URL) with an HMAC-SHA256 signature keyed with the stack's link key, all
base64url: the routes need no API key, and since only this stack can make a token that
verifies, a click link is no open redirect and nobody can report opens of others' mail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re

from chalicelib.adapters.secrets import link_key
from chalicelib.config import settings

OPEN, CLICK = "o", "c"
SIGNATURE_BYTES = 16  # 128 bits of HMAC-SHA256: unforgeable, and the links stay short
TRACKED_TAG = re.compile(r"<(?:a|area)\b[^>]*>", re.IGNORECASE)
HREF = re.compile(
    r"""(?P<lead>\bhref\s*=\s*)(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"'>]+))""",
    re.IGNORECASE,
)
ABSOLUTE = re.compile(r"^https?://", re.IGNORECASE)
BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class BadLink(ValueError):
    """A token this stack did not sign (forged, altered or for the other route)."""


def instrument(html_text: str, message_id: str) -> str:
    """The e-mail's HTML with tracked links and an open pixel (before `</body>`, or last)."""
    base = settings().public_url
    tracked = TRACKED_TAG.sub(lambda tag: _track_hrefs(tag.group(0), message_id, base), html_text)
    pixel = f'<img src="{base}/t/{OPEN}/{sign(OPEN, message_id)}" width="1" height="1" alt="">'
    ends = list(BODY_END.finditer(tracked))
    if not ends:
        return tracked + pixel
    last = ends[-1].start()
    return tracked[:last] + pixel + tracked[last:]


def _track_hrefs(tag: str, message_id: str, base: str) -> str:
    def replace(match: re.Match[str]) -> str:
        raw = next(v for v in (match["dq"], match["sq"], match["bare"]) if v is not None)
        url = html.unescape(raw).strip()
        if not ABSOLUTE.match(url):
            return match.group(0)  # mailto:, tel:, anchors and relative links stay
        return f'{match["lead"]}"{base}/t/{CLICK}/{sign(CLICK, message_id, url)}"'

    return HREF.sub(replace, tag)


def sign(kind: str, message_id: str, url: str | None = None) -> str:
    """A token for an open (`o`, the message id) or a click (`c`, the id and the URL)."""
    payload = message_id if url is None else f"{message_id}\n{url}"
    data = payload.encode()
    return f"{_encode(data)}.{_encode(_signature(kind, data))}"


def verify(kind: str, token: str) -> tuple[str, str | None]:
    """The message id and (for a click) the URL of a token; BadLink unless this stack
    signed it for `kind`."""
    encoded, dot, signature = token.partition(".")
    if not dot:
        raise BadLink("not a tracking token")
    try:
        data, given = _decode(encoded), _decode(signature)
    except (ValueError, binascii.Error):
        raise BadLink("not a tracking token") from None
    if not hmac.compare_digest(given, _signature(kind, data)):
        raise BadLink("the token's signature does not verify")
    try:
        payload = data.decode()
    except UnicodeDecodeError:
        raise BadLink("not a tracking token") from None
    if kind == OPEN:
        return payload, None
    message_id, newline, url = payload.partition("\n")
    if not newline or not ABSOLUTE.match(url):
        raise BadLink("not a click token")
    return message_id, url


def _signature(kind: str, data: bytes) -> bytes:
    digest = hmac.new(link_key(), kind.encode() + b"\0" + data, hashlib.sha256).digest()
    return digest[:SIGNATURE_BYTES]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
