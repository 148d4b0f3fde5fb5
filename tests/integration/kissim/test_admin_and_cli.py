"""Admin API odds and ends, and ``python -m kissim`` as a process."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

import httpx

from .helpers import Kis, SimServer


def test_admin_fill_when_resting_order_then_partial_then_full(real_server: SimServer, real: Kis) -> None:
    real_server.admin("/admin/price", {"ticker": "035720", "price": "45000"})
    odno = real.order_cash("buy", "035720", 10, "40000").json()["output"]["ODNO"]
    partial = real_server.admin("/admin/fill", {"odno": odno, "quantity": 4})
    assert (partial["state"], partial["filled_quantity"], partial["avg_price"]) == ("partially_filled", 4, "40000")
    assert real_server.admin("/admin/fill", {"odno": odno})["state"] == "filled"
    holdings = next(a for a in real_server.admin("/admin/accounts") if a["account"] == real.cano + "01")["holdings"]
    assert holdings[0]["quantity"] == 10


def test_admin_stats_when_orders_then_counts(real_server: SimServer, real: Kis) -> None:
    real.order_cash("buy", "005930", 1, "0", ord_dvsn="01")
    stats = real_server.admin("/admin/stats")
    assert stats["orders"] >= 1
    assert stats["tokens_issued"][real.appkey] == 1
    assert {"rate_limited", "requests"} & set(stats["counters"])


def test_admin_reset_when_called_then_orders_and_tokens_gone(
    virtual_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = make_kis(virtual_server).login()
    kis.order_cash("buy", "005930", 1, "0", ord_dvsn="01")
    virtual_server.admin("/admin/reset", {})
    assert virtual_server.admin("/admin/orders") == []
    assert kis.balance().json()["msg_cd"] == "EGW00121"


def test_cli_when_started_then_prints_listening_line_and_serves() -> None:
    command = [sys.executable, "-m", "kissim", "--port", "0", "--mode", "virtual", "--always-open"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            match = re.fullmatch(r"kissim listening on (http://127\.0\.0\.1:(\d+)) mode=virtual", line)
            assert match, line
            health = httpx.get(f"{match.group(1)}/healthz", trust_env=False, timeout=5).json()
            assert health == {"status": "ok", "mode": "virtual"}
        finally:
            process.terminate()
            returncode = process.wait(timeout=10)
    assert returncode == 0
