"""Unit tests of the pure parts: tick table, price limits, sessions, matching and bookkeeping."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

import pytest

from kissim.config import SimConfig
from kissim.engine import Engine
from kissim.hours import krx_is_open, us_is_open, us_session_kst
from kissim.market import PriceBook, base_price, is_on_tick, krx_limits, krx_tick
from kissim.orders import AmendRequest, OrderDenied, OrderRequest, Refusal, Side
from kissim.protocol import KST


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (1_999, 1),
        (2_000, 5),
        (4_995, 5),
        (5_000, 10),
        (19_990, 10),
        (20_000, 50),
        (49_950, 50),
        (50_000, 100),
        (199_900, 100),
        (200_000, 500),
        (499_500, 500),
        (500_000, 1_000),
    ],
)
def test_krx_tick_when_price_band_then_2023_table(price: int, tick: int) -> None:
    assert krx_tick(Decimal(price)) == tick


def test_krx_limits_when_base_70000_then_30_percent_on_tick() -> None:
    assert krx_limits(Decimal(70_000)) == (Decimal(91_000), Decimal(49_000))
    upper, lower = krx_limits(Decimal(33_350))
    assert (upper, lower) == (Decimal(43_350), Decimal(23_350))
    assert is_on_tick("KRX", upper)
    assert is_on_tick("KRX", lower)


def test_base_price_when_unknown_ticker_then_deterministic_and_on_tick() -> None:
    first, second = base_price("KRX", "123456"), base_price("KRX", "123456")
    assert first == second
    assert is_on_tick("KRX", first)
    assert 5_000 <= first <= 200_000
    us = base_price("US", "ZZZZ")
    assert Decimal(100) <= us <= Decimal(300)
    assert us == us.quantize(Decimal("0.01"))


def test_sessions_when_summer_and_winter_then_us_hours_shift_in_kst() -> None:
    summer_open, summer_close = us_session_kst(datetime(2026, 7, 7, tzinfo=KST).date())
    winter_open, _ = us_session_kst(datetime(2026, 1, 6, tzinfo=KST).date())
    assert (summer_open.hour, summer_open.minute, summer_close.hour) == (22, 30, 5)
    assert (winter_open.hour, winter_open.minute) == (23, 30)
    assert us_is_open(datetime(2026, 1, 6, 23, 45, tzinfo=KST))
    assert not us_is_open(datetime(2026, 1, 6, 23, 15, tzinfo=KST))
    assert not us_is_open(datetime(2026, 7, 4, 0, 0, tzinfo=KST))  # Friday 3 July: Independence Day observed


def test_krx_hours_when_weekday_holiday_and_weekend_then_open_only_in_session() -> None:
    assert krx_is_open(datetime(2026, 11, 25, 9, 0, tzinfo=KST))
    assert not krx_is_open(datetime(2026, 11, 25, 15, 30, tzinfo=KST))
    assert not krx_is_open(datetime(2026, 11, 28, 10, 0, tzinfo=KST))  # Saturday
    assert not krx_is_open(datetime(2026, 9, 24, 10, 0, tzinfo=KST))  # Chuseok


def make_engine(**overrides: object) -> Engine:
    config = SimConfig(always_open=True, price_step_seconds=0, **overrides)  # type: ignore[arg-type]
    return Engine(config, PriceBook(config.seed, 0), lambda _family: True)


def buy(engine: Engine, quantity: int, price: str, ord_dvsn: str = "00", ticker: str = "005930") -> OrderRequest:
    return OrderRequest(
        "12345678",
        "01",
        "TTTC0012U",
        "KRX",
        "KRX",
        ticker,
        Side.BUY,
        ord_dvsn,
        quantity,
        Decimal(price),
        time.time_ns(),
    )


def test_partial_fills_when_enabled_then_half_now_rest_on_next_match() -> None:
    engine = make_engine(partial_fills=True)
    order = engine.submit(buy(engine, 10, "0", "01"))
    assert (order.filled_quantity, order.state.value) == (5, "partially_filled")
    engine.match_all()
    assert (order.filled_quantity, order.state.value) == (10, "filled")


def test_revise_buy_when_price_raised_then_reservation_moves_and_cash_is_exact() -> None:
    engine = make_engine()
    order = engine.submit(buy(engine, 10, "60000"))
    ledger = engine.account("12345678", "01").krw
    assert ledger.reserved == Decimal(60000) * 10 * Decimal("1.00015")
    engine.amend(
        AmendRequest(
            "12345678", "01", "TTTC0013U", "KRX", order.odno, "", False, "00", None, Decimal("65000"), time.time_ns()
        )
    )
    assert ledger.reserved == Decimal(65000) * 10 * Decimal("1.00015")
    engine.prices.set_price("KRX", "005930", Decimal(64900))
    engine.match("KRX", "005930")
    assert ledger.reserved == 0
    assert ledger.cash == Decimal(100_000_000) - 650_000 - 97  # fee 0.015 % floored to the won


def test_amend_when_refused_then_logged_as_rejected() -> None:
    engine = make_engine()
    with pytest.raises(OrderDenied) as denied:
        engine.amend(
            AmendRequest(
                "12345678", "01", "TTTC0013U", "KRX", "0000009999", "", True, "00", None, Decimal(0), time.time_ns()
            )
        )
    assert denied.value.reason is Refusal.ORDER_NOT_FOUND
    assert engine.orders[-1].state.value == "rejected"


def test_sell_when_holding_reserved_by_open_sell_then_second_sell_refused() -> None:
    engine = make_engine()
    engine.submit(buy(engine, 5, "0", "01"))
    sell = OrderRequest(
        "12345678", "01", "TTTC0011U", "KRX", "KRX", "005930", Side.SELL, "00", 5, Decimal(80000), time.time_ns()
    )
    engine.submit(sell)
    with pytest.raises(OrderDenied) as denied:
        engine.submit(sell)
    assert denied.value.reason is Refusal.NO_HOLDING


def test_random_walk_when_same_seed_then_same_path() -> None:
    now = [0.0]
    books = [PriceBook(7, 1.0, clock=lambda: now[0]) for _ in range(2)]
    paths: list[list[Decimal]] = [[], []]
    for step in range(1, 30):
        now[0] = float(step)
        for book, path in zip(books, paths, strict=True):
            path.append(book.quote("KRX", "005930").price)
    assert paths[0] == paths[1]
    assert len(set(paths[0])) > 1
    assert all(is_on_tick("KRX", price) for price in paths[0])


def test_day_orders_when_trading_day_over_then_expired_and_cash_released() -> None:
    now = [datetime(2026, 11, 25, 10, 0, tzinfo=KST).timestamp()]
    config = SimConfig(always_open=True, price_step_seconds=0)
    engine = Engine(config, PriceBook(config.seed, 0), lambda _family: True, clock=lambda: now[0])
    request = OrderRequest(
        "12345678", "01", "TTTC0012U", "KRX", "KRX", "005930", Side.BUY, "00", 3, Decimal(60000), int(now[0] * 1e9)
    )
    order = engine.submit(request)
    engine.match_all()
    assert order.state.value == "open"
    now[0] += 86_400
    engine.match_all()
    assert (order.state.value, order.remaining) == ("cancelled", 0)
    assert engine.account("12345678", "01").krw.reserved == 0
