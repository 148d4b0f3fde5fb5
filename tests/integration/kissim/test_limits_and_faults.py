"""Rate limits (EGW00201), market hours and the admin fault switches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from kissim.hours import new_york_time
from kissim.protocol import KST

from .helpers import DOMESTIC, Kis, SimServer, base_config


@pytest.fixture
def rate_limited(real_server: SimServer) -> Iterator[None]:
    real_server.admin("/admin/rate-limit", {"enabled": True})
    yield
    real_server.admin("/admin/rate-limit", {"enabled": False})


def quote(kis: Kis) -> httpx.Response:
    params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    return kis.get(f"{DOMESTIC}/quotations/inquire-price", "FHKST01010100", params)


def test_virtual_when_two_calls_in_a_second_then_egw00201(virtual_server: SimServer, virtual: Kis) -> None:
    virtual_server.admin("/admin/rate-limit", {"enabled": True})
    try:
        assert virtual.balance().status_code == 200
        second = virtual.balance()
        assert second.status_code == 500
        assert second.json() == {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}
        time.sleep(1.05)
        assert virtual.balance().status_code == 200
    finally:
        virtual_server.admin("/admin/rate-limit", {"enabled": False})


@pytest.mark.usefixtures("rate_limited")
def test_real_when_more_than_18_per_second_then_egw00201(real: Kis) -> None:
    statuses = [real.balance().status_code for _ in range(19)]
    if statuses.count(500) == 0:  # a very slow machine may spread 19 calls over more than a second
        pytest.skip("19 calls took longer than one second")
    assert statuses[:18] == [200] * 18
    assert real_server_stats_rate_limited(real) >= 1


def real_server_stats_rate_limited(kis: Kis) -> int:
    count: int = kis.server.admin("/admin/stats")["counters"].get("rate_limited", 0)
    return count


def test_faults_when_bursts_set_then_next_calls_fail_then_recover(real_server: SimServer, real: Kis) -> None:
    real_server.admin("/admin/faults", {"http500_burst": 1, "egw00201_burst": 1})
    first, second, third = quote(real), quote(real), quote(real)
    assert (first.status_code, first.json()["rt_cd"]) == (500, "1")
    assert (second.status_code, second.json()["msg_cd"]) == (500, "EGW00201")
    assert third.status_code == 200


def test_faults_when_one_tr_id_fails_then_only_its_calls_answer_500(real_server: SimServer, real: Kis) -> None:
    try:
        real_server.admin("/admin/faults", {"http500_tr_ids": {"TTTC0081R": 2}})
        statuses = [call(real).status_code for call in (Kis.daily_ccld, quote, Kis.daily_ccld, Kis.daily_ccld)]
        assert statuses == [500, 200, 500, 200]
        refused = httpx.post(f"{real_server.url}/admin/faults", json={"http500_tr_ids": {"TTTC0081R": -1}})
        assert refused.status_code == 400
    finally:
        real_server.admin("/admin/faults/clear", {})


def test_faults_when_latency_then_calls_slower(real_server: SimServer, real: Kis) -> None:
    real_server.admin("/admin/faults", {"latency_ms": 200})
    try:
        started = time.monotonic()
        assert quote(real).status_code == 200
        assert time.monotonic() - started >= 0.2
    finally:
        real_server.admin("/admin/faults/clear", {})


def test_drop_order_response_when_set_then_order_booked_but_no_answer(real_server: SimServer, real: Kis) -> None:
    real_server.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    real_server.admin("/admin/faults", {"drop_order_response": 1})
    since = time.time_ns()
    body = real.acct | {"PDNO": "005930", "ORD_DVSN": "00", "ORD_QTY": "1", "ORD_UNPR": "60000"}
    with pytest.raises(httpx.ReadTimeout):
        real.post(f"{DOMESTIC}/trading/order-cash", "TTTC0012U", body, timeout=0.5)
    [order] = real_server.admin(f"/admin/orders?since_ns={since}")
    assert (order["response_dropped"], order["state"]) == (True, "open")
    assert order["received_at_ns"] >= since
    assert real.order_cash("buy", "005930", 1, "60000").json()["rt_cd"] == "0"


def test_drop_before_booking_when_set_then_no_order_and_no_answer(real_server: SimServer, real: Kis) -> None:
    real_server.admin("/admin/faults", {"drop_before_booking": 1})
    since = time.time_ns()
    body = real.acct | {"PDNO": "005930", "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"}
    with pytest.raises(httpx.ReadTimeout):
        real.post(f"{DOMESTIC}/trading/order-cash", "TTTC0012U", body, timeout=0.5)
    assert real_server.admin(f"/admin/orders?since_ns={since}") == []
    assert real_server.admin("/admin/stats")["faults"]["drop_before_booking"] == 0
    assert real.order_cash("buy", "005930", 1, "0", ord_dvsn="01").json()["rt_cd"] == "0"


@pytest.fixture(scope="module")
def closed_server() -> Iterator[SimServer]:
    now = datetime.now(KST)
    krx_days = frozenset({now.date(), (now + timedelta(days=1)).date()})
    us_days = frozenset({new_york_time(now).date()})
    config = base_config(mode="virtual", always_open=False, krx_holidays=krx_days, us_holidays=us_days)
    server = SimServer(config).start()
    yield server
    server.stop()


def test_order_when_market_closed_then_virtual_40580000(closed_server: SimServer, make_kis: Callable[..., Kis]) -> None:
    kis = make_kis(closed_server).login()
    body = kis.order_cash("buy", "005930", 1, "0", ord_dvsn="01").json()
    assert (body["rt_cd"], body["msg_cd"], body["msg1"].strip()) == ("1", "40580000", "모의투자 장종료 입니다.")
    assert kis.us_order("VTTT1002U", "AAPL", 1, "190.00").json()["msg_cd"] == "40580000"
    closed_server.admin("/admin/market", {"always_open": True})
    assert kis.order_cash("buy", "005930", 1, "0", ord_dvsn="01").json()["rt_cd"] == "0"
