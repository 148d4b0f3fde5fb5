"""Contract test: python-kis, a KIS client from PyPI that this project does not control, walks a
trader's day against the simulator, domestic (KRX) and US: token, balance, quote, order book,
candles, a resting buy, open orders, revise, cancel, a filled buy and sell, daily orders, balance,
realised profit.

The client is installed, pinned by hash (pykis.lock), into a virtual environment of its own under
.yquant/contract/ (made once per lock file, then reused) and runs in a subprocess with that
environment's python; only its base URL, keys and account number are its own to this test. What
it showed at each step comes back as JSON (pykis_walk.py) and is asserted here as a trader would
read it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kissim.helpers import SimServer, base_config, fresh_cano

HERE = Path(__file__).resolve().parent
LOCK = HERE / "pykis.lock"
DRIVER = HERE / "pykis_walk.py"
CACHE = HERE.parents[1] / ".yquant" / "contract"
STEPS = (
    "balance_before",
    "stock",
    "quote",
    "orderbook",
    "daily_candles",
    "minute_candles",
    "buy",
    "open_orders",
    "revise",
    "open_orders_after_revise",
    "cancel",
    "open_orders_after_cancel",
    "buy_filled",
    "sell_filled",
    "daily_orders",
    "balance_after",
    "profits",
)


def client_python() -> Path:
    """The python of python-kis's own virtual environment, made from pykis.lock on first use."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    venv = CACHE / f"pykis-{digest}"
    python = venv / "bin" / "python"
    done = venv / ".complete"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # two pytest processes never build the same venv at once
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
            install += ["--require-hashes", "--only-binary=:all:", "-r", str(LOCK)]
            subprocess.run(install, check=True, timeout=600)
            done.write_text(digest)
    return python


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    python = client_python()
    server = SimServer(base_config(mode="real")).start()
    output = tmp_path_factory.mktemp("pykis") / "walk.json"
    account = f"{fresh_cano()}-01"
    # Nothing of the project on the client's path (-I); the trader's clock is Korean.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "Asia/Seoul", "HOME": str(output.parent)}
    try:
        done = subprocess.run(
            [str(python), "-I", str(DRIVER), server.url, account, str(output)],
            env=env,
            capture_output=True,
            text=True,
            timeout=110,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    walked: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return walked


def test_pykis_when_it_logs_in_then_it_holds_a_bearer_token(walk: dict[str, Any]) -> None:
    assert walk["token"] == {"type": "Bearer", "length": walk["token"]["length"], "expired": False}
    assert walk["token"]["length"] > 100


@pytest.mark.parametrize("market", ["KRX", "US"])
def test_pykis_when_it_walks_the_day_then_no_step_fails(walk: dict[str, Any], market: str) -> None:
    failed = {name: walk[market][name] for name in STEPS if "error" in walk[market][name]}
    assert failed == {}


MARKETS = {
    # market: (symbol, exchange python-kis names, quote price, cash currency, resting, revised)
    "KRX": ("005930", "KRX", "70000", "KRW", "60000", "61000"),
    "US": ("AAPL", "NASDAQ", "190", "USD", "150", "151"),
}


@pytest.mark.parametrize("market", ["KRX", "US"])
def test_pykis_when_it_reads_the_market_then_quote_book_and_candles_agree(walk: dict[str, Any], market: str) -> None:
    seen = walk[market]
    symbol, exchange, price, _, _, _ = MARKETS[market]
    assert seen["stock"] == {"symbol": symbol, "market": exchange}
    assert seen["quote"]["price"] == price
    assert seen["quote"]["name"]
    asks, bids = seen["orderbook"]["asks"], seen["orderbook"]["bids"]
    assert len(asks) == len(bids) == 10
    assert asks[0] == price  # best ask at the current price, best bid one tick below
    assert float(bids[0]) < float(asks[0])
    assert asks == sorted(asks, key=float)
    assert bids == sorted(bids, key=float, reverse=True)
    assert seen["daily_candles"]["bars"] >= 15  # 30 calendar days of trading days
    assert seen["daily_candles"]["last_close"] == price
    assert seen["minute_candles"]["bars"] >= 1


@pytest.mark.parametrize("market", ["KRX", "US"])
def test_pykis_when_it_buys_revises_and_cancels_then_open_orders_follow(walk: dict[str, Any], market: str) -> None:
    seen = walk[market]
    symbol, _, _, _, resting, revised = MARKETS[market]
    first, moved = seen["buy"]["number"], seen["revise"]["number"]
    assert seen["open_orders"] == [
        {
            "number": first,
            "symbol": symbol,
            "type": "buy",
            "unit_price": resting,
            "qty": "3",
            "executed_qty": "0",
            "pending_qty": "3",
        }
    ]
    assert moved != first
    assert seen["open_orders_after_revise"] == [seen["open_orders"][0] | {"number": moved, "unit_price": revised}]
    assert seen["cancel"]["number"] not in (first, moved)
    assert seen["open_orders_after_cancel"] == []


@pytest.mark.parametrize("market", ["KRX", "US"])
def test_pykis_when_it_lists_the_days_orders_then_each_shows_its_final_state(walk: dict[str, Any], market: str) -> None:
    seen = walk[market]
    _, _, price, _, resting, revised = MARKETS[market]
    rows = {row["number"]: row for row in seen["daily_orders"]}
    first, moved, cancel, filled, sold = (
        seen[s]["number"] for s in ("buy", "revise", "cancel", "buy_filled", "sell_filled")
    )
    assert set(rows) == {first, moved, cancel, filled, sold}
    assert rows[first]["unit_price"] == resting
    assert rows[moved]["unit_price"] == revised
    for number in (first, moved, cancel):
        assert (rows[number]["executed_qty"], rows[number]["pending_qty"]) == ("0", "0")
    assert rows[filled] | {"unit_price": price} == rows[filled]
    assert (rows[filled]["qty"], rows[filled]["executed_qty"], rows[filled]["pending_qty"]) == ("2", "2", "0")
    assert rows[filled]["price"] == price  # the average fill price
    assert (rows[sold]["type"], rows[sold]["qty"], rows[sold]["executed_qty"], rows[sold]["price"]) == (
        "sell",
        "1",
        "1",
        price,
    )
    assert not any(row["rejected"] for row in rows.values())


@pytest.mark.parametrize("market", ["KRX", "US"])
def test_pykis_when_two_bought_and_one_sold_then_the_balance_holds_one(walk: dict[str, Any], market: str) -> None:
    seen = walk[market]
    symbol, _, price, currency, _, _ = MARKETS[market]
    assert seen["balance_before"]["stocks"] == []
    assert seen["balance_after"]["stocks"] == [{"symbol": symbol, "qty": "1", "purchase_amount": f"{float(price):g}"}]
    before = float(seen["balance_before"]["deposits"][currency])
    after = float(seen["balance_after"]["deposits"][currency])
    if market == "US":
        assert before - 2 * float(price) < after < before - float(price)  # bought 2, sold 1, fees paid
    else:
        assert after == before  # dnca_tot_amt: KIS's deposit settles two days later (D+2)


@pytest.mark.parametrize("market", ["KRX", "US"])
def test_pykis_when_it_asks_for_period_profit_then_the_sell_is_realised(walk: dict[str, Any], market: str) -> None:
    symbol, _, price, _, _, _ = MARKETS[market]
    assert walk[market]["profits"] == [
        {"symbol": symbol, "qty": "1", "buy_price": price, "sell_price": price, "sell_amount": price}
    ]
