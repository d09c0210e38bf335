"""Valid addresses: one definition for the journey and the channel workers."""

from __future__ import annotations

import pytest

from chalicelib.scenarios.addresses import valid_email, valid_phone


@pytest.mark.parametrize(
    "address",
    [
        "ada@example.com",
        "a.b+tag@mail.example.co.uk",
        "x@xn--bcher-kva.example",
        "o'neil@ex-ample.io",
    ],
)
def test_valid_emails(address: str) -> None:
    assert valid_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "a b@example.com",
        ".ada@example.com",
        "ada.@example.com",
        "a..da@example.com",
        "ada@-example.com",
        "ada@example.c0m",
        "ada@exa_mple.com",
        "adä@example.com",
        "Ada <ada@example.com>",
        "x" * 65 + "@example.com",
    ],
)
def test_invalid_emails(address: str) -> None:
    assert not valid_email(address)


@pytest.mark.parametrize(
    "number", ["+14155550100", "+33612345678", "+12345678", "+123456789012345", "+6834321"]
)
def test_valid_phones(number: str) -> None:
    assert valid_phone(number)


@pytest.mark.parametrize(
    "number",
    [
        "",
        "14155550100",
        "+0123456789",
        "+123456",
        "+1234567890123456",
        "+1 415 555 0100",
        "+1415555010a",
        "++14155550100",
    ],
)
def test_invalid_phones(number: str) -> None:
    assert not valid_phone(number)
