"""What counts as a valid address: the journey checks it before queuing a send, the
channel worker again before handing the message to its provider. One definition, so the
two never disagree. Syntax only: no DNS, no carrier lookup."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

# SES takes 7-bit addresses, an international domain in its punycode (xn--) form. The
# local part (at most 64 characters) is a dot-atom: no leading, trailing or double dot;
# the domain has labels of letters, digits and inner hyphens and a top label of letters.
# One pattern, matched once: the journey checks every address it sends to.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})"
)
# E.164: a country code that does not start with 0, at most 15 digits in all; the
# shortest numbers in use (small island states) have 7.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def valid_email(address: Any) -> bool:
    """Whether `address` is a deliverable-looking `local@domain.tld`."""
    return isinstance(address, str) and len(address) <= 254 and bool(_EMAIL.fullmatch(address))


def valid_phone(number: Any) -> bool:
    """Whether `number` is in E.164 form: `+`, then 7 to 15 digits, the first not 0."""
    return isinstance(number, str) and _E164.fullmatch(number) is not None


def valid_push_subscription(subscription: Any) -> bool:
    """Whether `subscription` looks like a browser's PushSubscription JSON: an http(s)
    `endpoint` URL and the `keys` `p256dh` and `auth` as non-empty strings."""
    if not isinstance(subscription, Mapping):
        return False
    endpoint, keys = subscription.get("endpoint"), subscription.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, Mapping):
        return False
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and all(isinstance(keys.get(name), str) and keys[name] for name in ("p256dh", "auth"))
    )
