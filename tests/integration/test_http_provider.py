"""The HTTP adapter of webhook nodes against loopback servers: answers of every status come
back, transport failures are retryable, and addresses that are not allowed are refused
before any connection; the connection goes to the address that was checked."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chalicelib.adapters.channels import DeliveryError, Response, Unanswered, call
from chalicelib.adapters.channels import http as adapter
from chalicelib.config import settings

Reply = tuple[int, dict[str, str], bytes]


class Server:
    """A loopback HTTP(S) server: records requests, answers with `reply(request)`."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply], tls: ssl.SSLContext | None = None):
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()  # lets a held answer go (set when the test ends)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": self.rfile.read(length).decode() if length else None,
                }
                server.requests.append(request)
                status, headers, body = reply(request)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def json_reply(status: int, document: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


@pytest.fixture
def allow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set SCENARIA_WEBHOOK_ALLOW for the test (loopback by default)."""

    def set_allowed(networks: str) -> None:
        monkeypatch.setenv("SCENARIA_WEBHOOK_ALLOW", networks)
        settings.cache_clear()

    set_allowed("127.0.0.0/8,::1/128")
    yield set_allowed
    settings.cache_clear()


@pytest.fixture
def serve(allow: Any) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(
        reply: Callable[[dict[str, Any]], Reply], tls: ssl.SSLContext | None = None
    ) -> Server:
        servers.append(Server(reply, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the test gives addresses to (others resolve as usual); counts look-ups."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in names:
            return real(host, port, *args, **kwargs)
        names.setdefault(f"looked up {host}", []).append("x")
        answers = []
        for address in names[host]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            answers.append((family, socket.SOCK_STREAM, 6, "", (address, int(port))))
        return answers

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def test_json_answers_come_back_parsed(serve: Callable[..., Server]) -> None:
    server = serve(lambda request: json_reply(201, {"echo": request["body"], "ok": True}))

    answer = call(
        method="POST",
        url=f"{server.url}/api/callback?x=1",
        headers={"Content-Type": "application/json", "Authorization": "Bearer t"},
        body='{"phone": "+33612345678"}',
        timeout=5,
    )

    assert answer == Response(201, {"echo": '{"phone": "+33612345678"}', "ok": True})
    (request,) = server.requests
    assert (request["method"], request["path"]) == ("POST", "/api/callback?x=1")
    assert request["headers"]["Authorization"] == "Bearer t"
    assert request["headers"]["Host"] == f"127.0.0.1:{server.port}"


def test_every_status_is_an_answer_and_redirects_are_not_followed(
    serve: Callable[..., Server],
) -> None:
    replies = {
        "/404": json_reply(404, {"error": "no such customer"}),
        "/503": (503, {"Content-Type": "text/plain; charset=utf-8"}, "busy – retry".encode()),
        "/302": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
    }
    server = serve(lambda request: replies[request["path"]])

    answers = {
        path: call(method="GET", url=server.url + path, headers={}, body=None, timeout=5)
        for path in replies
    }

    assert answers["/404"] == Response(404, {"error": "no such customer"})
    assert answers["/503"] == Response(503, "busy – retry")
    assert answers["/302"] == Response(302, None)
    assert len(server.requests) == 3


def test_a_slow_server_times_out_unanswered(serve: Callable[..., Server]) -> None:
    holder: list[Server] = []

    def hold(_: dict[str, Any]) -> Reply:
        holder[0].release.wait(30)  # until the test ends
        return json_reply(200, {})

    holder.append(serve(hold))
    with pytest.raises(DeliveryError, match="timed out") as raised:
        call(method="POST", url=holder[0].url, headers={}, body="{}", timeout=0.2)
    assert raised.value.retryable  # a webhook call is tried again
    assert isinstance(raised.value, Unanswered)  # the request went out: it may have arrived


def test_nothing_listening_is_retryable(allow: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # the port is free again: nothing listens there
    with pytest.raises(DeliveryError, match="no connection") as raised:
        call(method="GET", url=f"http://127.0.0.1:{port}/", headers={}, body=None, timeout=5)
    assert raised.value.retryable
    assert not isinstance(raised.value, Unanswered)  # nothing was sent


def test_a_big_body_is_cut_and_kept_as_text(serve: Callable[..., Server]) -> None:
    big = json.dumps({"data": "x" * (adapter.MAX_RESPONSE_BYTES + 10)}).encode()
    server = serve(lambda _: (200, {"Content-Type": "application/json"}, big))

    answer = call(method="GET", url=server.url, headers={}, body=None, timeout=5)

    assert answer.truncated
    assert answer.body == big[: adapter.MAX_RESPONSE_BYTES].decode()


def test_an_empty_or_text_body(serve: Callable[..., Server]) -> None:
    bodies = {"/empty": (204, {}, b""), "/text": (200, {"Content-Type": "text/html"}, b"<p>ok")}
    server = serve(lambda request: bodies[request["path"]])
    get = {
        path: call(method="GET", url=server.url + path, headers={}, body=None, timeout=5)
        for path in bodies
    }
    assert get == {"/empty": Response(204, None), "/text": Response(200, "<p>ok")}


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
        ("http://169.254.10.1/", "169.254.10.1 is a link-local address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://192.168.1.1:8080/", "192.168.1.1 is a private address"),
        ("http://172.16.0.5/", "172.16.0.5 is a private address"),
        ("http://100.64.0.1/", "100.64.0.1 is a private address"),
        ("http://0.0.0.0/", "0.0.0.0 is the unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[::ffff:10.0.0.1]/", "an IPv6 form of 10.0.0.1, a private address"),
        ("http://[::ffff:169.254.169.254]/", "an IPv6 form of 169.254.169.254, a cloud metadata"),
        ("http://[64:ff9b::a9fe:a9fe]/", "an IPv6 form of 169.254.169.254, a cloud metadata"),
        ("http://[fc00::1]/", "fc00::1 is a private address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ],
)  # fmt: skip
def test_internal_addresses_are_refused(allow: Any, url: str, named: str) -> None:
    with pytest.raises(DeliveryError, match=named.replace(".", r"\.")) as raised:
        call(method="GET", url=url, headers={}, body=None, timeout=5)
    assert not raised.value.retryable


def test_loopback_is_refused_unless_allowed(
    serve: Callable[..., Server], allow: Callable[[str], None]
) -> None:
    server = serve(lambda _: json_reply(200, {}))
    allow("10.0.0.0/8")
    with pytest.raises(DeliveryError, match=r"127\.0\.0\.1 is a loopback address") as raised:
        call(method="GET", url=server.url, headers={}, body=None, timeout=5)
    assert not raised.value.retryable
    assert server.requests == []
    allow("127.0.0.1/32")
    assert call(method="GET", url=server.url, headers={}, body=None, timeout=5).status == 200


def test_the_metadata_address_stays_refused_inside_an_allowed_network(
    allow: Callable[[str], None],
) -> None:
    allow("0.0.0.0/0,169.254.0.0/16")
    with pytest.raises(DeliveryError, match="cloud metadata"):
        call(method="GET", url="http://169.254.169.254/", headers={}, body=None, timeout=5)


def test_a_name_is_refused_when_any_of_its_addresses_is(
    serve: Callable[..., Server], resolver: dict[str, list[str]]
) -> None:
    server = serve(lambda _: json_reply(200, {}))
    resolver["crm.example"] = ["127.0.0.1", "10.1.2.3"]
    with pytest.raises(DeliveryError, match=r"refused to call crm\.example: 10\.1\.2\.3"):
        call(
            method="GET", url=f"http://crm.example:{server.port}/", headers={}, body=None, timeout=5
        )
    assert server.requests == []


def test_the_checked_address_is_the_one_connected_to(
    serve: Callable[..., Server], resolver: dict[str, list[str]]
) -> None:
    """One look-up per call, and the connection goes to its answer with the name as Host:
    a DNS answer changing after the check (a rebind) is never seen."""
    server = serve(lambda request: json_reply(200, {"host": request["headers"]["Host"]}))
    resolver["crm.example"] = ["127.0.0.1"]

    answer = call(
        method="GET",
        url=f"http://crm.example:{server.port}/x",
        headers={"Host": "evil"},
        body=None,
        timeout=5,
    )

    assert answer.body == {"host": f"crm.example:{server.port}"}
    assert resolver["looked up crm.example"] == ["x"]


def test_https_keeps_the_name_for_sni_and_the_certificate(
    serve: Callable[..., Server],
    resolver: dict[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    certificate, tls = _tls_for("hooks.test", tmp_path)
    seen_names: list[str | None] = []
    tls.sni_callback = lambda _sock, name, _ctx: seen_names.append(name)  # type: ignore[assignment,func-returns-value]
    monkeypatch.setattr(adapter, "_ca_bundle", lambda: str(certificate))
    server = serve(lambda request: json_reply(200, {"host": request["headers"]["Host"]}), tls)
    resolver["hooks.test"] = ["127.0.0.1"]
    resolver["other.test"] = ["127.0.0.1"]

    answer = call(
        method="GET", url=f"https://hooks.test:{server.port}/", headers={}, body=None, timeout=5
    )

    assert answer.body == {"host": f"hooks.test:{server.port}"}
    assert seen_names == ["hooks.test"]
    with pytest.raises(DeliveryError, match=r"doesn't match 'hooks\.test'") as raised:
        call(
            method="GET", url=f"https://other.test:{server.port}/", headers={}, body=None, timeout=5
        )
    assert raised.value.retryable


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "http:///x", "example.com"]
)
def test_only_http_urls(url: str) -> None:
    with pytest.raises(DeliveryError, match="not an http") as raised:
        call(method="GET", url=url, headers={}, body=None, timeout=5)
    assert not raised.value.retryable


def test_a_header_with_a_line_break_is_not_sent(serve: Callable[..., Server]) -> None:
    server = serve(lambda _: json_reply(200, {}))
    with pytest.raises(DeliveryError, match="cannot send") as raised:
        call(method="GET", url=server.url, headers={"X-A": "1\r\nX-B: 2"}, body=None, timeout=5)
    assert not raised.value.retryable
    assert server.requests == []


def test_a_bad_allowed_network_is_a_configuration_error(allow: Callable[[str], None]) -> None:
    allow("not-a-network")
    with pytest.raises(ValueError, match="SCENARIA_WEBHOOK_ALLOW"):
        call(method="GET", url="http://127.0.0.1:9/", headers={}, body=None, timeout=5)


def _tls_for(name: str, directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for `name` (its own trust anchor) and a server context."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context
