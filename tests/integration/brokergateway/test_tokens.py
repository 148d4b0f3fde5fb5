"""One KIS token per app key, shared through Valkey: issued once, reused, re-issued once on expiry."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from brokergateway.bootstrap import key_pair
from brokergateway.kis import inquiry
from brokergateway.kis.tokens import TokenManager
from tests.integration.kissim.helpers import SimServer, base_config
from yquant import keys
from yquant.errors import TokenThrottled

from .conftest import MakeHarness, new_account


@pytest.fixture(scope="module")
def strict_sim() -> Iterator[SimServer]:
    """KIS's issuance rule: a second tokenP call within 60 s is refused with EGW00133."""
    server = SimServer(base_config(mode="real", token_throttle_seconds=60.0)).start()
    yield server
    server.stop()


def issued(sim: SimServer, app_key: str) -> int:
    count: int = sim.admin("/admin/stats")["tokens_issued"].get(app_key, 0)
    return count


def gateway_process(sim: SimServer, valkey_url: str, accounts: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
    env.update(
        {
            "YQ_VALKEY__URL": valkey_url,
            "YQ_KIS__REST_URL": sim.url,
            "YQ_KIS__WS_URL": sim.ws_url,
            "YQ_ACCOUNTS": accounts,
            "YQ_INSTANCE": name,
            "YQ_GATEWAY__METRICS_PORT": "0",
            "YQ_LOG_JSON": "true",
        }
    )
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "brokergateway"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_two_gateway_processes_starting_together_issue_exactly_one_token(
    strict_sim: SimServer, valkey_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    account = new_account()
    app_key, app_secret = key_pair("main", account)
    accounts = json.dumps(
        {"main": {"cano": account.cano, "product_code": "01", "app_key": app_key,
                  "app_secret": app_secret, "env": "real", "hts_id": "yqtest"}}
    )  # fmt: skip
    logs = [tmp_path / "gw-a.log", tmp_path / "gw-b.log"]
    processes = [gateway_process(strict_sim, valkey_url, accounts, f"gw-{i}", log) for i, log in enumerate(logs)]
    try:
        deadline = time.monotonic() + 30
        while not all("broker gateway started" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
            assert all(p.poll() is None for p in processes), [log.read_text()[-2000:] for log in logs]
            await asyncio.sleep(0.1)
        while not await redis_client.exists(keys.account("main")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # both start-up syncs done (each needs a token)
        stats = strict_sim.admin("/admin/stats")
        assert stats["tokens_issued"].get(app_key) == 1
        assert stats["token_throttled"] == 0
        assert stats["counters"]["requests"] >= 6  # each process synced KRW, US positions and USD with it
        output = "".join(log.read_text() for log in logs)
        assert "EGW00133" not in output
        assert "account sync failed" not in output
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=15) for process in processes]
    assert codes == [0, 0]


async def test_token_expired_mid_session_is_reissued_once_and_the_request_succeeds(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim, start=False)
    kis = harness.gateway.workers[harness.alias].kis
    app_key = kis.account.app_key
    await inquiry.domestic_balance(kis)
    assert issued(sim, app_key) == 1
    sim.admin("/admin/expire-token", {})

    _rows, summary = await inquiry.domestic_balance(kis)
    assert summary  # the request succeeded after the re-issue
    assert issued(sim, app_key) == 2
    balance_calls = [r for r in harness.sent if r.url.path.endswith("/inquire-balance")]
    assert len(balance_calls) == 3  # the first, the expired one, and its single retry
    await inquiry.domestic_balance(kis)
    assert issued(sim, app_key) == 2


async def test_token_is_reused_from_valkey_by_another_manager(sim: SimServer, redis_client: aioredis.Redis) -> None:
    app_key, secret = f"PS{uuid.uuid4().hex}", "secret"
    async with httpx.AsyncClient(trust_env=False) as first_http, httpx.AsyncClient(trust_env=False) as second_http:
        first = TokenManager(redis_client, first_http, sim.url, app_key, secret)
        second = TokenManager(redis_client, second_http, sim.url, app_key, secret)
        tokens = list(await asyncio.gather(first.get(), second.get(), first.get()))
        later = TokenManager(redis_client, second_http, sim.url, app_key, secret)  # a restarted process
        tokens.append(await later.get())
    assert len(set(tokens)) == 1
    assert issued(sim, app_key) == 1
    assert first.issued_count + second.issued_count + later.issued_count == 1


async def test_issuance_is_never_asked_more_often_than_kis_allows(sim: SimServer, redis_client: aioredis.Redis) -> None:
    app_key = f"PS{uuid.uuid4().hex}"
    async with httpx.AsyncClient(trust_env=False) as http:
        manager = TokenManager(redis_client, http, sim.url, app_key, "secret", min_issue_interval_s=61)
        await manager.get()
        await redis_client.delete(keys.token(app_key))  # the token is gone (e.g. a flushed cache) ...
        fresh = TokenManager(redis_client, http, sim.url, app_key, "secret", min_issue_interval_s=61)
        with pytest.raises(TokenThrottled):
            await fresh.get()  # ... but the last issuance was seconds ago: wait rather than hammer KIS
    assert issued(sim, app_key) == 1
