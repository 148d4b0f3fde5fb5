"""``--state-file``: accounts, cash, holdings, open orders, order history and tokens survive a restart
of the ``python -m kissim`` process (SIGTERM and SIGKILL); ``--reset`` starts over."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import OVERSEAS, Kis, SimProcess

ARGS = ("--always-open", "--no-rate-limit", "--price-step-seconds", "0")


def start(state: Path) -> SimProcess:
    return SimProcess(*ARGS, "--state-file", str(state)).start()


_open: list[Kis] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def client(server: SimProcess, cano: str, token: str = "") -> Kis:
    kis = Kis(server, cano=cano)  # type: ignore[arg-type]
    kis.token = token
    _open.append(kis)
    return kis


def us_balance(kis: Kis) -> Any:
    params = kis.acct | {"OVRS_EXCG_CD": "NASD", "TR_CRCY_CD": "USD", "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}
    return kis.get(f"{OVERSEAS}/trading/inquire-balance", "TTTS3012R", params).json()


def observed(kis: Kis) -> dict[str, Any]:
    """What a KIS client sees of its account, plus the simulator's own order log and ledgers."""
    domestic, us, daily = kis.balance().json(), us_balance(kis), kis.daily_ccld().json()
    assert (domestic["rt_cd"], us["rt_cd"], daily["rt_cd"]) == ("0", "0", "0"), (domestic, us, daily)
    accounts = [a for a in kis.server.admin("/admin/accounts") if a["account"] == kis.cano + "01"]
    return {
        "holdings": domestic["output1"],
        "totals": domestic["output2"],
        "us_holdings": us["output1"],
        "us_totals": us["output2"],
        "orders": daily["output1"],
        "log": kis.orders(),
        "ledgers": accounts,
    }


def test_restart_when_sigterm_then_accounts_orders_and_token_are_the_same(tmp_path: Path) -> None:
    state = tmp_path / "kissim" / "state.sqlite3"
    server = start(state)
    try:
        kis = client(server, "55500001").login()
        assert kis.order_cash("buy", "005930", 10, "0", ord_dvsn="01").json()["rt_cd"] == "0"
        resting = kis.order_cash("buy", "005930", 5, "60000").json()["output"]
        revised = kis.rvsecncl(resting["ODNO"], resting["KRX_FWDG_ORD_ORGNO"], cancel=False, price="61000")
        assert revised.json()["rt_cd"] == "0"
        assert kis.order_cash("sell", "005930", 3, "0", ord_dvsn="01").json()["rt_cd"] == "0"
        assert kis.us_order("TTTT1002U", "AAPL", 4, "195.00").json()["rt_cd"] == "0"
        assert kis.us_order("TTTT1002U", "AAPL", 2, "150.00").json()["rt_cd"] == "0"
        before = observed(kis)
    finally:
        assert server.stop() == 0
    assert [h["hldg_qty"] for h in before["holdings"]] == ["7"]
    assert [o["state"] for o in before["log"]] == ["filled", "cancelled", "open", "filled", "filled", "open"]

    server = start(state)
    try:
        again = client(server, kis.cano, kis.token)  # the token issued before the restart still works
        assert observed(again) == before
        # The open order is still in the book: it fills, and new order numbers do not repeat old ones.
        odno = revised.json()["output"]["ODNO"]
        assert server.admin("/admin/fill", {"odno": odno})["state"] == "filled"
        assert [h["hldg_qty"] for h in again.balance().json()["output1"]] == ["12"]
        new = again.order_cash("buy", "005930", 1, "0", ord_dvsn="01").json()["output"]["ODNO"]
        assert int(new) > max(int(o["odno"]) for o in before["log"])
    finally:
        assert server.stop() == 0


def test_restart_when_killed_then_every_answered_order_is_there(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    server = start(state)
    try:
        kis = client(server, "55500002").login()
        answered = [kis.order_cash("buy", "000660", 1, "150000").json()["output"]["ODNO"] for _ in range(5)]
        reserved = server.admin("/admin/accounts")[0]["krw"]["reserved"]
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    server = start(state)
    try:
        again = client(server, kis.cano, kis.token)
        assert [(o["odno"], o["state"]) for o in again.orders()] == [(odno, "open") for odno in answered]
        assert server.admin("/admin/accounts")[0]["krw"]["reserved"] == reserved
    finally:
        server.stop()


def test_reset_when_asked_then_next_start_has_fresh_accounts(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    server = start(state)
    try:
        kis = client(server, "55500003").login()
        assert kis.order_cash("buy", "005930", 2, "0", ord_dvsn="01").json()["rt_cd"] == "0"
    finally:
        server.stop()
    done = subprocess.run(
        [sys.executable, "-m", "kissim", "--state-file", str(state), "--reset"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "deleted" in done.stdout
    server = start(state)
    try:
        assert server.admin("/admin/orders") == []
        again = client(server, kis.cano, kis.token)
        assert again.balance().json()["msg_cd"] == "EGW00121"  # the old token is gone too
        fresh = client(server, kis.cano).login()
        assert fresh.balance().json()["output1"] == []
    finally:
        server.stop()


def test_start_when_state_file_is_not_kissim_then_clear_error_and_file_kept(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    state.write_bytes(b"not a database, and not to be lost" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "kissim", "--port", "0", "--mode", "real", "--state-file", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78
    assert str(state) in done.stderr
    assert "--reset" in done.stderr
    assert state.read_bytes() == b"not a database, and not to be lost" * 100
