"""A crash between reading a signal and acknowledging it loses nothing and duplicates nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from tests.e2e.helpers import eventually
from tests.harness.devsystem import DevSystem
from yquant import keys

FAULTS = Path(__file__).resolve().parents[1] / "faults"


@pytest.mark.parametrize("crash_point", ["after_read", "after_order_append"])
def test_ordermanager_killed_before_ack_then_restarted_places_exactly_one_order(
    tmp_path_factory: pytest.TempPathFactory, crash_point: str
) -> None:
    state = tmp_path_factory.mktemp(f"crash-{crash_point}")
    env = {
        "PYTHONPATH": str(FAULTS),  # tests/faults/sitecustomize.py: nothing of it ships
        "YQ_FAULT_CRASH_AT": crash_point,
        "YQ_FAULT_MARKER": str(state / "crashed-once"),
    }
    with DevSystem(state, env) as system:
        first_pid = system.pid_of("ordermanager")
        body: dict[str, Any] = {
            "secret": system.secret,
            "strategy": "demo",
            "ticker": "035420",
            "exchange": "KRX",
            "action": "buy",
            "quantity": 2,
            "id": f"crash-{crash_point}",
        }
        response = httpx.post(system.webhook_url, json=body, timeout=5)
        assert response.json()["status"] == "accepted"

        # The order manager read the signal and died before acknowledging it ...
        eventually(lambda: (state / "crashed-once").exists(), 60)
        eventually(lambda: "ordermanager exited with code 137" in system.output(), 60)
        # ... the supervisor started it again, and it finished the work exactly once.
        eventually(lambda: system.pid_of("ordermanager") != first_pid, 60)

        def filled(ticker: str) -> list[dict[str, Any]]:
            result = system.yquant("orders", "--json")
            return [o for o in json.loads(result.stdout) if o["ticker"] == ticker and o["state"] == "FILLED"]

        eventually(lambda: filled("035420"), 60)
        # A later alert through the same streams, once FILLED, shows that everything queued before
        # it, a redelivered signal and any command it gave, has been handled: a duplicate would be
        # at the simulator by now.
        marker = body | {"ticker": "005930", "quantity": 1, "id": f"after-crash-{crash_point}"}
        assert httpx.post(system.webhook_url, json=marker, timeout=5).json()["status"] == "accepted"
        eventually(lambda: filled("005930"), 60)
        sim = [o for o in system.sim_orders() if o["ticker"] == "035420"]
        assert len(sim) == 1
        assert int(sim[0]["quantity"]) == 2
        assert len(filled("035420")) == 1

        valkey = Redis.from_url(system.valkey_url, driver_info=None)
        try:
            eventually(lambda: valkey.xpending(keys.SIGNALS_WEBHOOK, keys.GROUP_ORDERMANAGER)["pending"] == 0, 60)
        finally:
            valkey.close()
