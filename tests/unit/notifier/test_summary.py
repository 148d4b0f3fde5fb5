"""The daily summary's pure parts: which day is due, the figures of a day, and how they read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from notifier.summary import VENUES, DaySummary, due_day, figures, render_summary
from yquant.markets import NEW_YORK, SEOUL
from yquant.messages import Market, OrderState, OrderType, Side
from yquant.orders import OrderRecord

KRX, US = VENUES


def record(
    cid: str, side: Side, quantity: int, price: str, at: datetime, *, market: Market = Market.KRX, fee: str = "0"
) -> OrderRecord:
    return OrderRecord(
        client_order_id=cid,
        account="main",
        market=market,
        ticker="005930" if market is Market.KRX else "AAPL",
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET,
        strategy="trend",
        origin="signal",
        state=OrderState.FILLED,
        created_at=at,
        updated_at=at,
        filled_quantity=quantity,
        average_price=Decimal(price),
        fee=Decimal(fee),
    )


def test_the_us_summary_follows_new_york_across_the_change_of_daylight_saving() -> None:
    # 2026-11-02, the Monday after the clocks went back: the close is 21:00 UTC, no longer 20:00.
    assert due_day(US, datetime(2026, 11, 2, 21, 5, tzinfo=UTC), 600) == (
        date(2026, 10, 30),
        datetime(2026, 10, 30, 16, 10, tzinfo=NEW_YORK),
    )
    found = due_day(US, datetime(2026, 11, 2, 21, 10, tzinfo=UTC), 600)
    assert found is not None
    assert found[0] == date(2026, 11, 2)


def test_a_weekend_points_back_to_friday() -> None:
    found = due_day(KRX, datetime(2026, 12, 6, 12, 0, tzinfo=SEOUL), 600)  # Sunday
    assert found is not None
    assert found[0] == date(2026, 12, 4)


def test_a_loss_reads_with_a_minus_and_each_currency_in_its_precision() -> None:
    day = date(2026, 12, 7)
    records = [
        record("b", Side.BUY, 3, "70000.4", datetime(2026, 12, 4, 10, tzinfo=SEOUL)),
        record("s", Side.SELL, 3, "69000", datetime(2026, 12, 7, 10, tzinfo=SEOUL), fee="103.5"),
        record("u", Side.BUY, 1, "100", datetime(2026, 12, 7, 10, tzinfo=NEW_YORK)),  # not KRX
    ]
    lines = figures(KRX, day, records, [], [], {"main": (Decimal("996999.6"), Decimal(1_000_000))})
    en, ko = render_summary(DaySummary(KRX, day, False, lines))
    assert en == (
        "📊 KRX daily summary 2026-12-07\n"
        "main: orders 1, filled 1, refused 0, denied 0 · realised P/L -₩3,001 · fees ₩104"
        " · equity ₩997,000 (day start ₩1,000,000, -₩3,000)"
    )
    assert ko == (
        "📊 KRX 일일 요약 2026-12-07\n"
        "main: 주문 1건, 체결 1건, 거부 0건, 신호 거부 0건 · 실현손익 -₩3,001 · 수수료 ₩104"
        " · 평가금액 ₩997,000 (시작 ₩1,000,000, -₩3,000)"
    )


def test_a_sell_without_a_recorded_buy_is_counted_not_guessed() -> None:
    day = date(2026, 12, 7)
    sold = record("s", Side.SELL, 4, "190.5", datetime(2026, 12, 7, 11, tzinfo=NEW_YORK), market=Market.NASD)
    en, _ = render_summary(DaySummary(US, day, True, figures(US, day, [sold], ["main"], [], {})))
    assert en == (
        "📊 US daily summary 2026-12-07 — sent late: the notifier was down at the close\n"
        "main: orders 1, filled 1, refused 0, denied 1 · realised P/L +$0.00"
        " (4 shares sold without a recorded cost) · fees $0.00"
    )


def test_a_signal_denied_for_every_account_at_once_has_a_line_of_its_own() -> None:
    day = date(2026, 12, 7)
    en, ko = render_summary(DaySummary(KRX, day, False, figures(KRX, day, [], ["*"], [], {})))
    assert en.splitlines()[1] == "all accounts: orders 0, filled 0, refused 0, denied 1 · realised P/L +₩0 · fees ₩0"
    assert ko.splitlines()[1].startswith("전체 계좌: 주문 0건")
