"""Slow and odd clients against ``python -m webhook`` over raw sockets: deadlines, no redirects."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.webhook.conftest import strategy_alert
from tests.integration.webhook.test_process import SECRET, WebhookProcess, start_webhook

DEADLINE_S = 30.0  # generous: the server's own deadlines are 1 s here


def start_slow_webhook(valkey_url: str, tmp_path: Path, **settings: str) -> Iterator[WebhookProcess]:
    yield from start_webhook(valkey_url, tmp_path, YQ_WEBHOOK__MAX_CONNECTIONS="8", YQ_LOG_LEVEL="DEBUG", **settings)


@pytest.fixture
def webhook(valkey_url: str, tmp_path: Path) -> Iterator[WebhookProcess]:
    """Deadlines of 1 s, so a test sees them close connections."""
    yield from start_slow_webhook(
        valkey_url, tmp_path, YQ_WEBHOOK__HEADER_TIMEOUT_S="1", YQ_WEBHOOK__BODY_TIMEOUT_S="1"
    )


@pytest.fixture
def patient_webhook(valkey_url: str, tmp_path: Path) -> Iterator[WebhookProcess]:
    """Deadlines far beyond any test, so held connections stay held however slow the machine."""
    yield from start_slow_webhook(valkey_url, tmp_path, YQ_WEBHOOK__HEADER_TIMEOUT_S="600")


def connect(webhook: WebhookProcess) -> socket.socket:
    port = int(webhook.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the socket timeout)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_trailing_slash_after_the_secret_is_not_redirected(webhook: WebhookProcess) -> None:
    with httpx.Client(base_url=webhook.base_url, timeout=5, follow_redirects=False) as http:
        response = http.post(f"/webhook/{SECRET}/", content=b"{}", headers={"content-type": "application/json"})
        plain = http.post("/webhook/", content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert plain.status_code == 404
    assert SECRET not in webhook.log_path.read_text()


def test_a_stalled_request_head_is_closed(webhook: WebhookProcess) -> None:
    with connect(webhook) as sock:
        sock.sendall(f"POST /webhook/{SECRET} HTTP/1.1\r\nHost: webhook\r\n".encode())
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # closed without an answer, well before our deadline
        assert time.monotonic() - started < DEADLINE_S
    with connect(webhook) as idle:  # nothing at all sent: closed too
        assert read_until_closed(idle) == b""
    assert SECRET not in webhook.log_path.read_text()


def test_a_slow_body_gets_408(webhook: WebhookProcess) -> None:
    head = (
        "POST /webhook HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
        "Content-Length: 200\r\nConnection: close\r\n\r\n"
    )
    with connect(webhook) as sock:
        sock.sendall(head.encode() + b'{"secret": "')
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code":"body_timeout"' in answer


def test_stalled_connections_do_not_lock_out_a_real_alert(webhook: WebhookProcess) -> None:
    """Stalled connections below the cap are held while a real alert is accepted; then the server
    closes every one of them on its own. (uvicorn answers 503 once the connections, this one
    included, reach the cap of 8.)"""
    stalled = [connect(webhook) for _ in range(6)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /webhook HTTP/1.1\r\n")
        with httpx.Client(base_url=webhook.base_url, timeout=5) as http:
            body, headers = strategy_alert(secret=SECRET)
            answer = http.post("/webhook", content=body, headers=headers)
        assert (answer.status_code, answer.json()["status"]) == (200, "accepted")
        for sock in stalled:
            assert read_until_closed(sock) == b""
    finally:
        for sock in stalled:
            sock.close()


def test_connections_beyond_the_cap_get_503_at_once(patient_webhook: WebhookProcess) -> None:
    webhook = patient_webhook
    held = [connect(webhook) for _ in range(8)]  # the cap, each with a request in progress
    try:
        for sock in held:
            sock.sendall(b"POST /webhook HTTP/1.1\r\n")
        with connect(webhook) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: webhook\r\nConnection: close\r\n\r\n")
            assert read_until_closed(extra).startswith(b"HTTP/1.1 503")
    finally:
        for sock in held:
            sock.close()
