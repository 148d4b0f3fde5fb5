"""``yquant up``, an alert that trades, Ctrl-C, ``yquant up`` again: the embedded simulator (the
default broker) still holds the position and the cash it had, and the system agrees with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import eventually
from tests.harness.devsystem import DevSystem


def account_view(system: DevSystem) -> dict[str, Any] | None:
    """What ``yquant positions --json`` shows of the account: cash, holdings, when it was synced."""
    result = system.yquant("positions", "--json")
    assert result.returncode == 0, result.stderr
    for account in json.loads(result.stdout):
        held = [(p["ticker"], p["quantity"], p["average_price"]) for p in account["positions"]]
        if held:
            return {"cash": account["cash"], "held": held, "synced_at": account["synced_at"]}
    return None


def sim_accounts(system: DevSystem) -> list[dict[str, Any]]:
    response = httpx.get(f"{system.kissim_url}/admin/accounts", timeout=5)
    response.raise_for_status()
    accounts: list[dict[str, Any]] = response.json()
    return accounts


def test_restart_when_position_held_then_broker_still_has_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    state = tmp_path_factory.mktemp("restart")
    with DevSystem(state) as system:
        body = {
            "secret": system.secret,
            "strategy": "demo",
            "ticker": "035720",
            "exchange": "KRX",
            "action": "buy",
            "quantity": 3,
            "id": "restart-buy",
        }
        assert httpx.post(system.webhook_url, json=body, timeout=5).json()["status"] == "accepted"
        eventually(lambda: [o for o in system.sim_orders() if o["state"] == "filled"], 30)
        seen = eventually(lambda: account_view(system), 30)
        before = sim_accounts(system)
    assert [h["quantity"] for a in before for h in a["holdings"]] == [3]
    assert [tuple(h[:2]) for h in seen["held"]] == [("035720", 3)]

    with DevSystem(state) as system:
        assert sim_accounts(system) == before
        assert [o["ticker"] for o in system.sim_orders()] == ["035720"]
        # The gateway's first sync after the restart reads the broker: same cash, same holdings.
        after = eventually(lambda: (v := account_view(system)) and v["synced_at"] > seen["synced_at"] and v, 30)
        assert (after["cash"], after["held"]) == (seen["cash"], seen["held"])
    assert (Path(state) / "kissim" / "state.sqlite3").exists()
