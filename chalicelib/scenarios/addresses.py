"""What counts as a valid address: the journey checks it before queuing a send, the
channel worker again before handing the message to its provider. One definition, so the
two never disagree. Syntax only: no DNS, no carrier lookup."""

from __future__ import annotations

import re
from typing import Any

# SES takes 7-bit addresses, an international domain in its punycode (xn--) form. The
# local part is a dot-atom: no leading, trailing or double dot.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LABEL = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")
# E.164: a country code that does not start with 0, at most 15 digits in all; the
# shortest numbers in use (small island states) have 7.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def valid_email(address: Any) -> bool:
    """Whether `address` is a deliverable-looking `local@domain.tld`."""
    if not isinstance(address, str) or len(address) > 254 or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    labels = domain.split(".")
    return (
        len(local) <= 64
        and _LOCAL.fullmatch(local) is not None
        and len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels)
        and _TOP_LABEL.fullmatch(labels[-1]) is not None
    )


def valid_phone(number: Any) -> bool:
    """Whether `number` is in E.164 form: `+`, then 7 to 15 digits, the first not 0."""
    return isinstance(number, str) and _E164.fullmatch(number) is not None
