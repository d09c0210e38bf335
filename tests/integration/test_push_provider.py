"""Web Push end to end on loopback: pywebpush (through the guarded HTTP adapter) encrypts
and signs, the local push sink verifies, decrypts and keeps the payload; a gone
subscription raises Gone; the sink's routes on the real local server (Chalice's), the
receiving one without the API key.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.adapters import secrets
from chalicelib.adapters.channels import DeliveryError, Gone, Unanswered, send_push
from chalicelib.adapters.channels.push import MAX_PAYLOAD_BYTES
from chalicelib.bootstrap import bootstrap
from chalicelib.config import settings
from chalicelib.local.push_sink import LoopbackPushService, PushSink
from chalicelib.local.stack import configure_environment, new_vapid_key
from chalicelib.scenarios.addresses import valid_push_subscription
from tests.loopback import serving


def _vapid_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loopback allowed, a VAPID key of the stack; caches cleared before and after."""
    monkeypatch.setenv("SCENARIA_WEBHOOK_ALLOW", "127.0.0.0/8,::1/128")
    monkeypatch.setenv("SCENARIA_VAPID_PRIVATE_KEY", _vapid_pem())
    monkeypatch.delenv("SCENARIA_VAPID_KEY_PARAMETER", raising=False)
    settings.cache_clear()
    secrets.forget()
    yield
    settings.cache_clear()
    secrets.forget()


@pytest.fixture
def sink_server(configured: None) -> Iterator[LoopbackPushService]:
    with LoopbackPushService() as service:
        yield service


def test_a_push_reaches_the_sink_decrypted(sink_server: LoopbackPushService) -> None:
    subscription = sink_server.sink.subscribe("ada's laptop")
    assert valid_push_subscription(subscription)
    payload = {"title": "Welcome", "body": "Hello, Ada — €10 off", "url": None}

    send_push(subscription=subscription, payload=payload, ttl_seconds=3600, urgency="high")

    (got,) = sink_server.sink.received()
    assert got["payload"] == payload
    assert got["subscription_id"] == subscription["endpoint"].rsplit("/", 1)[-1]
    assert got["name"] == "ada's laptop"
    assert (got["ttl"], got["urgency"]) == (3600, "high")
    assert got["at"]


def test_a_gone_subscription_raises_gone(sink_server: LoopbackPushService) -> None:
    subscription = sink_server.sink.subscribe()
    assert sink_server.sink.unsubscribe(subscription["endpoint"].rsplit("/", 1)[-1])

    with pytest.raises(Gone) as raised:
        send_push(subscription=subscription, payload={"body": "hi"}, ttl_seconds=60)

    assert (raised.value.status, raised.value.retryable) == (410, False)
    assert sink_server.sink.received() == []


def test_keys_of_another_subscription_do_not_decrypt(sink_server: LoopbackPushService) -> None:
    mine, other = sink_server.sink.subscribe(), sink_server.sink.subscribe()
    forged = {"endpoint": mine["endpoint"], "keys": other["keys"]}

    with pytest.raises(DeliveryError) as raised:
        send_push(subscription=forged, payload={"body": "hi"}, ttl_seconds=60)

    assert (raised.value.status, raised.value.retryable) == (400, False)
    assert not isinstance(raised.value, Gone)


def test_a_base64url_der_key_signs_as_well(
    sink_server: LoopbackPushService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENARIA_VAPID_PRIVATE_KEY", new_vapid_key())
    settings.cache_clear()
    secrets.forget()
    send_push(subscription=sink_server.sink.subscribe(), payload={"n": 1}, ttl_seconds=0)
    assert [got["payload"] for got in sink_server.sink.received()] == [{"n": 1}]


def test_the_largest_payload_fits_and_a_larger_one_is_refused(
    sink_server: LoopbackPushService,
) -> None:
    subscription = sink_server.sink.subscribe()
    frame = len('{"t":""}')
    send_push(
        subscription=subscription,
        payload={"t": "x" * (MAX_PAYLOAD_BYTES - frame)},
        ttl_seconds=60,
    )
    assert len(sink_server.sink.received()) == 1
    with pytest.raises(DeliveryError) as raised:
        send_push(
            subscription=subscription,
            payload={"t": "x" * (MAX_PAYLOAD_BYTES - frame + 1)},
            ttl_seconds=60,
        )
    assert not raised.value.retryable


def test_a_push_service_that_is_down_is_retryable(configured: None) -> None:
    with LoopbackPushService() as server:
        subscription = server.sink.subscribe()
    # the server is closed: nothing listens on its port any more
    with pytest.raises(DeliveryError) as raised:
        send_push(subscription=subscription, payload={"n": 1}, ttl_seconds=60, timeout=5)
    assert raised.value.retryable


def test_a_push_service_that_does_not_answer_is_unanswered(configured: None) -> None:
    release = threading.Event()

    class Holding(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            release.wait(30)  # until the test ends

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Holding)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    subscription = PushSink(f"http://127.0.0.1:{server.server_address[1]}").subscribe()
    try:
        # the push went out: it may have arrived, so the worker must not push it again
        with pytest.raises(Unanswered, match="timed out"):
            send_push(subscription=subscription, payload={"n": 1}, ttl_seconds=60, timeout=0.3)
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_push_endpoint_on_a_private_address_is_refused(configured: None) -> None:
    subscription = PushSink("http://10.0.0.1:8000").subscribe()
    with pytest.raises(DeliveryError, match=r"10\.0\.0\.1 is a private address") as raised:
        send_push(subscription=subscription, payload={"n": 1}, ttl_seconds=60)
    assert not raised.value.retryable


def test_without_a_vapid_key_nothing_is_pushed(
    sink_server: LoopbackPushService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCENARIA_VAPID_PRIVATE_KEY")
    settings.cache_clear()
    secrets.forget()
    with pytest.raises(DeliveryError, match="VAPID") as raised:
        send_push(subscription=sink_server.sink.subscribe(), payload={"n": 1}, ttl_seconds=60)
    assert not raised.value.retryable
    assert sink_server.sink.received() == []


@pytest.mark.parametrize(
    "subscription",
    [
        None,
        "https://push.example/x",
        {"endpoint": "https://push.example/x"},
        {"endpoint": "https://push.example/x", "keys": {"p256dh": "abc"}},
        {"endpoint": "ftp://push.example/x", "keys": {"p256dh": "abc", "auth": "def"}},
        {"endpoint": "https:///x", "keys": {"p256dh": "abc", "auth": "def"}},
        {"endpoint": "https://push.example:port/x", "keys": {"p256dh": "abc", "auth": "def"}},
        {"endpoint": "https://push.example/x", "keys": {"p256dh": "", "auth": "def"}},
    ],
)
def test_malformed_subscriptions_are_not_valid(subscription: Any) -> None:
    assert not valid_push_subscription(subscription)


def test_a_browser_subscription_is_valid() -> None:
    assert valid_push_subscription(
        {
            "endpoint": "https://fcm.googleapis.com/fcm/send/abc:def",
            "expirationTime": None,
            "keys": {
                "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA",
                "auth": "tBHItJI5svbpez7KI4CCXg",
            },
        }
    )


@pytest.fixture
def on_the_local_stack(
    sink_server: LoopbackPushService, monkeypatch: pytest.MonkeyPatch
) -> LoopbackPushService:
    """Pushes go to the sink whatever their endpoint, as the local stack sets it."""
    monkeypatch.setenv("SCENARIA_PUSH_SINK", f"{sink_server.url}/local/push")
    settings.cache_clear()
    return sink_server


def test_on_the_local_stack_a_browser_s_subscription_is_pushed_to_the_sink(
    on_the_local_stack: LoopbackPushService,
) -> None:
    with serving() as browser_service:  # a real push service, as far as the stack can tell
        subscription = PushSink(browser_service.url).subscribe()

        send_push(subscription=subscription, payload={"title": "Hi"}, ttl_seconds=60)

        assert browser_service.requests == []  # nothing left for it
    (got,) = on_the_local_stack.sink.received()
    assert got["endpoint"] == subscription["endpoint"]
    assert (got["payload"], got["decrypted"], got["ttl"]) == (None, False, 60)


def test_on_the_local_stack_the_sink_s_own_subscriptions_still_decrypt(
    on_the_local_stack: LoopbackPushService,
) -> None:
    subscription = on_the_local_stack.sink.subscribe("phone")
    send_push(subscription=subscription, payload={"title": "Hi"}, ttl_seconds=60)
    (got,) = on_the_local_stack.sink.received()
    assert (got["name"], got["payload"], got["decrypted"]) == ("phone", {"title": "Hi"}, True)


def test_the_local_stack_sends_every_push_to_its_own_sink(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))  # whatever it sets goes with the test
    try:
        configure_environment(virtual=True, public_url="http://127.0.0.1:8123")
        assert settings().push_sink == "http://127.0.0.1:8123/local/push"
        assert settings().ses_sandbox
    finally:
        monkeypatch.undo()
        bootstrap()


def test_a_forwarded_push_is_checked_like_any_other() -> None:
    sink = PushSink("http://127.0.0.1:9")
    forwarded = {"X-Push-Endpoint": "https://push.example/abc", "TTL": "60"}
    assert sink.receive("forwarded", forwarded, b"x" * 200) == 400  # no VAPID token
    assert sink.receive("forwarded", {"TTL": "60"}, b"x" * 200) == 400  # for no endpoint
    assert sink.receive("forwarded", forwarded, b"x" * 4097) == 413
    assert sink.received() == []


# --- the sink alone -----------------------------------------------------------------------


def test_the_sink_answers_410_for_an_unknown_id_and_400_without_vapid() -> None:
    sink = PushSink("http://127.0.0.1:9")
    subscription_id = sink.subscribe()["endpoint"].rsplit("/", 1)[-1]
    assert sink.receive("nope", {"TTL": "60"}, b"x") == 410
    assert (
        sink.receive(subscription_id, {"TTL": "60", "Content-Encoding": "aes128gcm"}, b"x") == 400
    )
    assert sink.receive(subscription_id, {}, b"x" * 4097) == 413
    assert sink.received() == []


# --- the routes on the local stack's own server -------------------------------------------


@pytest.fixture
def local_server(aws_stack: None, configured: None) -> Iterator[str]:
    """The app with the local routes behind Chalice's local HTTP server on a free port."""
    from chalice.config import Config
    from chalice.local import create_local_server

    from app import app
    from chalicelib.local import routes

    if "/local/sent" not in app.routes:
        app.register_blueprint(routes.blueprint)
    server = create_local_server(
        app, Config.create(chalice_stage="local", app_name="scenaria"), "127.0.0.1", 0
    )
    url = f"http://127.0.0.1:{server.server.server_address[1]}"
    previous = routes.push_sink
    routes.push_sink = PushSink(url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.server.shutdown()
        server.server.server_close()
        thread.join()
        routes.push_sink = previous


def test_the_local_routes_subscribe_receive_list_and_unsubscribe(local_server: str) -> None:
    key = {"X-Api-Key": "test-key"}
    made = requests.post(
        f"{local_server}/local/push/subscriptions", json={"name": "phone"}, headers=key, timeout=10
    )
    assert made.status_code == 201
    subscription = made.json()
    assert subscription["endpoint"].startswith(f"{local_server}/local/push/")

    send_push(subscription=subscription, payload={"title": "Hi"}, ttl_seconds=60)

    listed = requests.get(f"{local_server}/local/push", headers=key, timeout=10).json()
    assert [(p["name"], p["payload"]) for p in listed["pushes"]] == [("phone", {"title": "Hi"})]

    # the receiving route is public, its DELETE is not; the list is not either
    assert requests.delete(subscription["endpoint"], timeout=10).status_code == 401
    assert requests.get(f"{local_server}/local/push", timeout=10).status_code == 401
    assert requests.post(f"{local_server}/local/push/subscriptions", timeout=10).status_code == 401
    assert requests.delete(subscription["endpoint"], headers=key, timeout=10).status_code == 204

    with pytest.raises(Gone):
        send_push(subscription=subscription, payload={"title": "Hi"}, ttl_seconds=60)
    refused = requests.post(
        subscription["endpoint"],
        data=b"x",
        headers={"Content-Type": "application/octet-stream", "TTL": "0"},
        timeout=10,
    )
    assert refused.status_code == 410
    assert refused.headers["Content-Type"] == "application/problem+json"
