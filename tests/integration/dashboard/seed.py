"""Realistic dashboard data written the way the services write it (for pages and screenshots)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from dashboard.performance import store_snapshot
from tests.order_paths import walk_to
from yquant import decisions, orders, portfolio
from yquant.messages import (
    AccountSynced,
    Market,
    OrderState,
    OrderType,
    Position,
    Side,
    Signal,
    SignalAccepted,
    SignalAction,
    SignalDenied,
    SubmitOrder,
)

SEOUL = ZoneInfo("Asia/Seoul")
MAXLEN = 10_000


def position(market: Market, ticker: str, name: str, quantity: int, average: str, current: str) -> Position:
    avg, now = Decimal(average), Decimal(current)
    return Position(
        market=market,
        ticker=ticker,
        name=name,
        quantity=quantity,
        sellable_quantity=quantity,
        average_price=avg,
        current_price=now,
        market_value=now * quantity,
        unrealized_pnl=(now - avg) * quantity,
        return_pct=((now / avg - 1) * 100).quantize(Decimal("0.01")),
        currency=market.currency,
    )


async def seed_accounts(client: aioredis.Redis) -> None:
    main = AccountSynced(
        account="main",
        cash={"KRW": Decimal(12_450_000), "USD": Decimal("3250.55")},
        positions=[
            position(Market.KRX, "005930", "Samsung Electronics", 120, "71200", "74300"),
            position(Market.KRX, "035720", "Kakao", 40, "52100", "48950"),
            position(Market.NASD, "AAPL", "Apple", 15, "187.20", "194.85"),
        ],
    )
    isa = AccountSynced(
        account="isa",
        cash={"KRW": Decimal(3_100_000)},
        positions=[position(Market.KRX, "069500", "KODEX 200", 200, "35210", "36020")],
    )
    for event in (main, isa):
        await portfolio.store_snapshot(client, event, MAXLEN)


async def seed_orders(client: aioredis.Redis) -> list[str]:
    specs = [
        ("main", Market.KRX, "005930", Side.BUY, 10, OrderState.FILLED, "71200"),
        ("main", Market.KRX, "005930", Side.SELL, 5, OrderState.FILLED, "74000"),
        ("main", Market.NASD, "AAPL", Side.BUY, 3, OrderState.ACCEPTED, None),
        ("isa", Market.KRX, "069500", Side.BUY, 20, OrderState.REJECTED, None),
    ]
    ids = []
    for index, (account, market, ticker, side, quantity, state, fill) in enumerate(specs):
        coid = f"yq-seed{index:017d}"
        command = SubmitOrder(
            client_order_id=coid,
            account=account,
            market=market,
            ticker=ticker,
            side=side,
            quantity=quantity,
            order_type=OrderType.MARKET,
            # The order manager prices a US market order as a marketable limit (ADR 0007).
            limit_price=Decimal("191.90") if market.is_us else None,
            strategy="demo",
            origin="signal",
        )
        await orders.create_order(client, command, MAXLEN)
        fields: dict[str, object] = {"broker_order_id": f"{index:010d}"}
        if fill:
            fields.update({"filled_quantity": quantity, "average_price": fill, "fee": "107"})
        if state is OrderState.REJECTED:
            fields["reason"] = "APBK0915 주문가능금액을 초과 했습니다"
        if state is not OrderState.NEW:
            await walk_to(client, coid, state, fields=fields, maxlen=MAXLEN)
        ids.append(coid)
    return ids


async def seed_signal(client: aioredis.Redis, signal_id: str, ticker: str, *, denied: bool = False) -> None:
    signal = Signal(
        signal_id=signal_id,
        strategy="demo",
        ticker=ticker,
        market=Market.KRX,
        action=SignalAction.BUY,
        quantity=Decimal(1),
        fired_at=datetime.now(UTC),
    )
    await decisions.record_received(client, signal)
    decision: SignalAccepted | SignalDenied
    if denied:
        decision = SignalDenied(
            signal_id=signal_id,
            strategy="demo",
            ticker=ticker,
            account="main",
            reason_code="MAX_ORDER_VALUE",
            reason="order value ₩12,000,000 is above the limit ₩10,000,000",
        )
    else:
        decision = SignalAccepted(
            signal_id=signal_id, strategy="demo", ticker=ticker, client_order_ids=["yq-seed00000000000000000"]
        )
    await decisions.record_decision(client, signal, decision, MAXLEN)


async def seed_snapshots(client: aioredis.Redis, days: int = 40) -> None:
    today = datetime.now(SEOUL).date()
    value = Decimal(40_000_000)
    for offset in range(days, 0, -1):
        day: date = today - timedelta(days=offset)
        step = Decimal((offset * 7919) % 13 - 5) / 100  # a deterministic wiggle
        value = (value * (1 + step / 4)).quantize(Decimal(1))
        snapshot = {
            "date": day.isoformat(),
            "taken_at": datetime.now(UTC).isoformat(),
            "fx_usdkrw": "1385.20",
            "fx_source": "default",
            "equity_krw": str(value),
            "accounts": {"main": str(value - 10_000_000), "isa": "10000000"},
        }
        await store_snapshot(client, snapshot, SEOUL)


async def seed_all(client: aioredis.Redis) -> None:
    await seed_accounts(client)
    await seed_orders(client)
    await seed_signal(client, "seed-accepted", "005930")
    await seed_signal(client, "seed-denied", "000660", denied=True)
    await seed_snapshots(client)
