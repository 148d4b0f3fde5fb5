"""Realised P/L at the holding's average cost, per-strategy lines and per-currency equity (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from yquant import pnl
from yquant.messages import Market, OrderState, OrderType, Position, Side
from yquant.orders import OrderRecord

START = datetime(2025, 3, 7, tzinfo=UTC)


def filled(
    side: Side,
    quantity: int,
    price: str,
    minute: int,
    *,
    ticker: str = "005930",
    market: Market = Market.KRX,
    strategy: str = "momentum",
    account: str = "main",
    fee: str = "0",
    ordered_quantity: int | None = None,
    created_minute: int | None = None,
) -> OrderRecord:
    at = START + timedelta(minutes=minute)
    return OrderRecord(
        client_order_id=f"yq-{ticker}-{minute}",
        account=account,
        market=market,
        ticker=ticker,
        side=side,
        quantity=ordered_quantity or quantity,
        order_type=OrderType.MARKET,
        strategy=strategy,
        origin="signal",
        state=OrderState.FILLED if quantity else OrderState.REJECTED,
        created_at=START + timedelta(minutes=minute if created_minute is None else created_minute),
        updated_at=at,
        filled_quantity=quantity,
        average_price=Decimal(price) if quantity else None,
        fee=Decimal(fee),
    )


def test_a_sell_realises_against_the_average_cost_of_the_holding() -> None:
    records = [
        filled(Side.BUY, 10, "100", 0),
        filled(Side.BUY, 10, "200", 1),  # average cost 150
        filled(Side.SELL, 15, "170", 2),  # (170 - 150) x 15
        filled(Side.BUY, 5, "110", 3),  # 5 left at 150, 5 more at 110: average 130
        filled(Side.SELL, 10, "120", 4),  # (120 - 130) x 10
    ]
    book = pnl.realise(records)
    assert [(r.quantity, r.average_cost, r.pnl) for r in book.realisations] == [
        (15, Decimal(150), Decimal(300)),
        (10, Decimal(130), Decimal(-100)),
    ]
    assert book.realised() == {"KRW": Decimal(200)}
    assert book.holdings[("main", "KRX", "005930")].quantity == 0
    assert not book.unmatched


def test_fills_are_replayed_in_the_order_they_happened_not_the_order_they_were_sent() -> None:
    # The buy was sent first but filled after the sell: the sell took nothing of its cost.
    records = [
        filled(Side.BUY, 10, "100", 0),
        filled(Side.BUY, 10, "300", 5, created_minute=1),
        filled(Side.SELL, 10, "150", 2),
    ]
    book = pnl.realise(records)
    assert [r.pnl for r in book.realisations] == [Decimal(500)]


def test_a_sell_beyond_the_recorded_buys_is_unmatched_not_guessed() -> None:
    records = [filled(Side.BUY, 4, "100", 0), filled(Side.SELL, 10, "120", 1, fee="50")]
    book = pnl.realise(records)
    assert [(r.quantity, r.pnl, r.fee) for r in book.realisations] == [(4, Decimal(80), Decimal(20))]
    assert [(u.client_order_id, u.quantity) for u in book.unmatched] == [("yq-005930-1", 6)]


def test_realised_pl_stays_in_each_currency_and_can_be_taken_since_a_time() -> None:
    records = [
        filled(Side.BUY, 10, "70000", 0),
        filled(Side.SELL, 10, "71000", 1),
        filled(Side.BUY, 3, "190.10", 2, ticker="AAPL", market=Market.NASD),
        filled(Side.SELL, 3, "187.60", 60, ticker="AAPL", market=Market.NASD),
    ]
    book = pnl.realise(records)
    assert book.realised() == {"KRW": Decimal(10_000), "USD": Decimal("-7.50")}
    assert book.realised(since=START + timedelta(minutes=30)) == {"USD": Decimal("-7.50")}
    assert book.realised_of("other") == {}


def test_accounts_and_tickers_are_separate_holdings() -> None:
    records = [
        filled(Side.BUY, 10, "100", 0, account="main"),
        filled(Side.BUY, 10, "300", 1, account="isa"),
        filled(Side.SELL, 10, "200", 2, account="main"),
        filled(Side.SELL, 10, "200", 3, account="isa"),
    ]
    book = pnl.realise(records)
    assert book.realised_of("main") == {"KRW": Decimal(1000)}
    assert book.realised_of("isa") == {"KRW": Decimal(-1000)}


def test_each_strategy_has_its_orders_fills_realised_pl_and_fees() -> None:
    records = [
        filled(Side.BUY, 10, "100", 0, strategy="momentum", fee="15"),
        filled(Side.SELL, 10, "130", 1, strategy="momentum", fee="20"),
        filled(Side.BUY, 0, "0", 2, strategy="momentum"),  # refused: an order, no fill
        filled(Side.BUY, 2, "50.00", 3, strategy="dca", ticker="QQQ", market=Market.NASD, fee="0.10"),
        filled(Side.SELL, 5, "90", 4, strategy="manual", ticker="000660"),  # bought before any record
    ]
    book = pnl.realise(records)
    lines = {line.strategy: line for line in pnl.by_strategy(records, book)}
    assert list(lines) == ["dca", "manual", "momentum"]
    momentum = lines["momentum"]
    assert (momentum.orders, momentum.filled, momentum.sells, momentum.winning) == (3, 2, 1, 1)
    assert momentum.realised == {"KRW": Decimal(300)}
    assert momentum.fees == {"KRW": Decimal(35)}
    assert lines["dca"].realised == {}
    assert lines["dca"].fees == {"USD": Decimal("0.10")}
    assert lines["manual"].unmatched_quantity == 5


def _position(market: Market, quantity: int, average: str, current: str) -> Position:
    avg, now = Decimal(average), Decimal(current)
    return Position(
        market=market,
        ticker="X",
        quantity=quantity,
        sellable_quantity=quantity,
        average_price=avg,
        current_price=now,
        market_value=now * quantity,
        unrealized_pnl=(now - avg) * quantity,
        return_pct=Decimal(0),
        currency=market.currency,
    )


def test_equity_and_its_day_change_are_per_currency() -> None:
    positions = [_position(Market.KRX, 10, "70000", "71000"), _position(Market.NASD, 2, "100", "150")]
    now = pnl.equity({"KRW": Decimal(1_000_000), "USD": Decimal(100)}, positions)
    assert now == {"KRW": Decimal(1_710_000), "USD": Decimal(400)}
    assert pnl.unrealised(positions) == {"KRW": Decimal(10_000), "USD": Decimal(100)}
    day = pnl.change(now, {"KRW": Decimal(1_700_000), "USD": Decimal(410), "HKD": Decimal(0)})
    assert day == {"KRW": Decimal(10_000), "USD": Decimal(-10), "HKD": Decimal(0)}
    assert pnl.change(now, None) is None


def test_krw_and_usd_are_added_only_at_a_given_rate() -> None:
    amounts = {"KRW": Decimal(10_000), "USD": Decimal("-7.50")}
    assert pnl.converted(amounts, Decimal(1400)) == Decimal(-500)
    assert [c for c, _ in pnl.ordered({"USD": Decimal(1), "KRW": Decimal(2)})] == ["KRW", "USD"]
    with pytest.raises(ValueError, match="HKD"):
        pnl.converted({"HKD": Decimal(1)}, Decimal(1400))


def test_stored_amounts_are_read_back_or_refused() -> None:
    assert pnl.parse_amounts({"KRW": "1", "USD": "2.5"}) == {"KRW": Decimal(1), "USD": Decimal("2.5")}
    assert pnl.parse_amounts({"KRW": "NaN"}) is None
    assert pnl.parse_amounts({"KRW": "abc"}) is None
    assert pnl.parse_amounts("12") is None


def test_a_partly_filled_buy_cancelled_later_is_replayed_at_its_fill_not_its_cancel() -> None:
    """Bought 10 of 20 at 09:00, sold the 10 at 09:05, the rest of the buy cancelled at 15:20: the
    sell realised against the buy, whatever the record's last update says."""
    buy = filled(Side.BUY, 10, "100", 0, ordered_quantity=20).model_copy(
        update={
            "state": OrderState.CANCELLED,
            "updated_at": START + timedelta(hours=6, minutes=20),
            "last_fill_at": START,
        }
    )
    book = pnl.realise([buy, filled(Side.SELL, 10, "130", 5)])
    assert [(r.quantity, r.pnl) for r in book.realisations] == [(10, Decimal(300))]
    assert not book.unmatched
