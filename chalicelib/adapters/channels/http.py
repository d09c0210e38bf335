"""Outbound HTTP to addresses that scenarios name: `webhook` nodes, and Web Push endpoints.

A scenario's author (or a profile's data, for a push subscription) chooses the URL, so
every call is guarded against server-side request forgery: the host is resolved once,
every address it resolves to is checked, and the connection goes to a checked address
(the Host header, TLS SNI and the certificate check keep the name). A DNS answer that
changes between the check and the connection cannot redirect the call, and redirects are
never followed. Refused whatever the configuration: cloud metadata services, link-local,
unspecified and multicast addresses. Refused unless inside one of
`settings().webhook_allowed_networks` (SCENARIA_WEBHOOK_ALLOW): private, loopback,
shared (100.64/10), reserved and every other address that is not globally routable.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3 import exceptions as transport

from chalicelib.config import settings

from .exceptions import DeliveryError, Unanswered

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 256 * 1024  # of a response body; the rest is not read
_CHUNK = 16 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack...
        "169.254.170.2",  # ECS task metadata and credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses reached through DNS64/NAT64


@dataclass(frozen=True)
class Response:
    """An HTTP answer: its status and body (parsed JSON when the response says it is JSON,
    else text, None when empty). `truncated`: the body ran past MAX_RESPONSE_BYTES and was
    cut there (and is then kept as text)."""

    status: int
    body: Any
    truncated: bool = False


@dataclass(frozen=True)
class RawResponse:
    """An HTTP answer as bytes, for callers that parse it themselves (Web Push)."""

    status: int
    reason: str
    headers: dict[str, str]
    data: bytes
    truncated: bool


def call(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: str | None,
    timeout: float,
) -> Response:
    """Make one HTTP request to `url` and return whatever the server answered.

    Every HTTP answer comes back as a Response, 4xx and 5xx too: the caller decides that
    a non-2xx status is a failure, and treats a status of 500 or more as worth retrying.
    Redirects are answers too (3xx), never followed. `timeout` bounds the whole call,
    reading the body included.

    Raises DeliveryError only when there is no answer: retryable for a refused connection
    or a failed DNS look-up, `Unanswered` (retryable too) for a timeout or a connection
    dropped after the request went out; not retryable for a URL that is not
    http(s), a host that resolves to a refused address (the message names it) or a
    request that cannot be sent as given (a header with a line break).
    """
    raw = request(
        method=method,
        url=url,
        headers=headers,
        body=body.encode() if body is not None else None,
        timeout=timeout,
    )
    return Response(raw.status, _parse_body(raw), raw.truncated)


def request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
) -> RawResponse:
    """`call` for bytes: the guarded request, the body unparsed (at most MAX_RESPONSE_BYTES)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"not an http(s) URL: {_safe(url)!r}", retryable=False)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DeliveryError(f"not a valid port in {_safe(url)!r}", retryable=False) from None
    deadline = time.monotonic() + timeout
    addresses = resolve(host, port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent_headers = {
        str(k): str(v)
        for k, v in headers.items()
        if str(k).lower() not in ("host", "content-length")
    }
    sent_headers["Host"] = parts.netloc.rsplit("@", 1)[-1]  # never the user:password part
    label = f"{method.upper()} {_safe(url)}"
    failure: DeliveryError | None = None
    for address in addresses:  # the next address only when this one took no connection
        try:
            return _send(
                parts.scheme, host, address, port, method, path, sent_headers, body, deadline, label
            )
        except _NoConnection as error:
            failure = DeliveryError(f"{label}: {error}", retryable=True)
    assert failure is not None
    raise failure


class _NoConnection(Exception):
    """Connecting to one of the host's addresses failed: try the next."""


def _send(
    scheme: str,
    host: str,
    address: IPAddress,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
    label: str,
) -> RawResponse:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeliveryError(f"{label}: timed out", retryable=True)
    pool_timeout = urllib3.Timeout(connect=remaining, read=remaining)
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        named = not _is_ip_literal(host)
        pool = urllib3.HTTPSConnectionPool(
            str(address),
            port,
            timeout=pool_timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=_ca_bundle(),
            assert_hostname=host if named else None,
            server_hostname=host if named else None,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            str(address), port, timeout=pool_timeout, retries=False, maxsize=1
        )
    try:
        with pool:
            answer = pool.urlopen(
                method.upper(),
                path,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                data, truncated = _read_limited(answer, deadline)
            finally:
                answer.release_conn()
    except transport.NewConnectionError as error:
        raise _NoConnection(f"no connection to {address}") from error
    except transport.ConnectTimeoutError as error:
        raise _NoConnection(f"connecting to {address} timed out") from error
    except transport.TimeoutError as error:  # the request was sent: it may have arrived
        raise Unanswered(f"{label}: timed out") from error
    except transport.HTTPError as error:  # a connection dropped mid-call
        raise Unanswered(f"{label}: {error}") from error
    except (ValueError, TypeError, UnicodeError) as error:  # a header http.client refuses
        raise DeliveryError(f"{label}: cannot send: {error}", retryable=False) from error
    except OSError as error:
        raise DeliveryError(f"{label}: {error}", retryable=True) from error
    logger.debug("%s (%s) answered %s", label, address, answer.status)
    return RawResponse(
        status=answer.status,
        reason=answer.reason or "",
        headers=dict(answer.headers.items()),
        data=data,
        truncated=truncated,
    )


def _read_limited(answer: Any, deadline: float) -> tuple[bytes, bool]:
    """At most MAX_RESPONSE_BYTES of the (decoded) body, read before `deadline`."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_RESPONSE_BYTES:
        if time.monotonic() > deadline:
            raise transport.TimeoutError("reading the response took longer than the timeout")
        chunk = answer.read(_CHUNK)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:MAX_RESPONSE_BYTES], True


def _parse_body(raw: RawResponse) -> Any:
    if not raw.data:
        return None
    content_type = {k.lower(): v for k, v in raw.headers.items()}.get("content-type", "")
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    charset = "utf-8"
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        text = raw.data.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        text = raw.data.decode("utf-8", errors="replace")
    is_json = media_type == "application/json" or media_type.endswith("+json")
    if is_json and not raw.truncated:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, every one of them checked with `check_address`.

    Raises DeliveryError: not retryable (naming the address) when any address is refused,
    retryable when the name does not resolve.
    """
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise DeliveryError(f"cannot resolve {host!r}: {error}", retryable=True) from error
    addresses: list[IPAddress] = []
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        check_address(host, address)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DeliveryError(f"cannot resolve {host!r}: no addresses", retryable=True)
    return addresses


def check_address(host: str, address: IPAddress) -> None:
    """Raise DeliveryError (not retryable) unless calls may go to `address`."""
    reason = refusal(address, allowed_networks(settings().webhook_allowed_networks))
    if reason:
        raise DeliveryError(f"refused to call {host}: {address} is {reason}", retryable=False)


def refusal(address: IPAddress, allowed: Iterable[Network]) -> str | None:
    """Why calls may not go to `address` (None when they may)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = refusal(embedded, allowed)
        return f"an IPv6 form of {embedded}, {inner}" if inner else None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_global and not address.is_reserved:
        return None
    if any(address in network for network in allowed):
        return None
    kind = (
        "a loopback"
        if address.is_loopback
        else "a reserved"
        if address.is_reserved
        else "a private"
    )
    return f"{kind} address (allow its network in SCENARIA_WEBHOOK_ALLOW to call it)"


@cache
def allowed_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The configured CIDRs as networks; a malformed one is a configuration error."""
    networks: list[Network] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as error:
            raise ValueError(f"SCENARIA_WEBHOOK_ALLOW: {cidr!r} is not a network") from error
    return tuple(networks)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _safe(url: str) -> str:
    """The URL without its query and credentials, for messages that may be logged."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}"


@cache
def _ca_bundle() -> str | None:
    """certifi's CA bundle (requests brings it), so TLS trusts the same roots everywhere."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - the system's default roots then
        return None
    return str(certifi.where())
