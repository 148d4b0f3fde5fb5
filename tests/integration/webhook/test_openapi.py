"""Schemathesis against /openapi.json, over real HTTP to uvicorn (httptools) on a free port.

The app runs in a thread with its own event loop and Valkey client; nothing that
schemathesis generates may reach the signal stream (it cannot know the secret).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from redis import Redis
from schemathesis import GenerationMode

from tests.integration.webhook.conftest import configure
from webhook.app import create_app
from webhook.openapi import document
from yquant import __version__, keys, valkey
from yquant.settings import Settings


class ServerThread:
    """uvicorn serving the webhook app from a background thread, on a socket bound here."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        config = uvicorn.Config(
            "webhook.app:create_app",  # replaced below: the app is built inside the thread's loop
            http="httptools",
            ws="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        client = valkey.connect(self.settings.valkey)
        self.server.config.app = create_app(self.settings, client)
        try:
            await self.server.serve(sockets=[self.listener])
        finally:
            await client.aclose()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "webhook stopped"
            assert time.monotonic() < deadline, "webhook did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def webhook_server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(configure(settings, rate_limit_per_min=0, rejections_per_min=0)) as server:
        yield server


@pytest.fixture(scope="module")
def webhook_schema() -> schemathesis.BaseSchema:
    """Loaded once per module (validating the document takes a second or two)."""
    return schemathesis.openapi.from_dict(document(__version__))


def test_served_document_is_the_one_tested(
    webhook_server: ServerThread, webhook_schema: schemathesis.BaseSchema
) -> None:
    served = httpx.get(f"{webhook_server.base_url}/openapi.json", timeout=5).json()
    assert served == webhook_schema.raw_schema


def signals_appended(valkey_url: str) -> int:
    with Redis.from_url(valkey_url, driver_info=None) as client:
        return int(client.xlen(keys.SIGNALS_WEBHOOK))


# Schemathesis's pytest plugin (``@schema.parametrize``) does not run on pytest 9 (it reads
# ``request.node._nodeid``), so its strategies drive a plain Hypothesis test instead.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
def test_api_conforms_to_its_openapi_document(
    webhook_server: ServerThread, webhook_schema: schemathesis.BaseSchema, valkey_url: str, mode: GenerationMode
) -> None:
    labels: set[str] = set()

    @given(case=webhook_schema.as_strategy(generation_mode=mode))
    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case: schemathesis.Case[Any]) -> None:
        labels.add(case.operation.label)
        case.call_and_validate(base_url=webhook_server.base_url)

    conforms()
    assert signals_appended(valkey_url) == 0
    assert "POST /webhook" in labels
    assert "POST /webhook/{token}" in labels
