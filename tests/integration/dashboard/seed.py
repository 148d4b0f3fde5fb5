"""Realistic dashboard data written the way the services write it (for pages and screenshots)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from dashboard.performance import store_snapshot
from tests.order_paths import walk_to
from yquant import decisions, orders, pnl, portfolio
from yquant.messages import (
    AccountSynced,
    Market,
    OrderFilled,
    OrderState,
    OrderType,
    Position,
    Side,
    Signal,
    SignalAccepted,
    SignalAction,
    SignalDenied,
    SubmitOrder,
    utcnow,
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


async def seed_accounts(client: aioredis.Redis, synced_at: datetime | None = None) -> None:
    """Two synced accounts, "main" (KRW and USD) and "isa"; synced now unless ``synced_at``."""
    when = synced_at or utcnow()
    main = AccountSynced(
        occurred_at=when,
        account="main",
        cash={"KRW": Decimal(12_450_000), "USD": Decimal("3250.55")},
        positions=[
            position(Market.KRX, "005930", "Samsung Electronics", 120, "71200", "74300"),
            position(Market.KRX, "035720", "Kakao", 40, "52100", "48950"),
            position(Market.NASD, "AAPL", "Apple", 15, "187.20", "194.85"),
        ],
    )
    isa = AccountSynced(
        occurred_at=when,
        account="isa",
        cash={"KRW": Decimal(3_100_000)},
        positions=[position(Market.KRX, "069500", "KODEX 200", 200, "35210", "36020")],
    )
    for event in (main, isa):
        await portfolio.store_snapshot(client, event, MAXLEN)


async def create_market_order(
    client: aioredis.Redis,
    client_order_id: str,
    account: str,
    market: Market,
    ticker: str,
    side: Side,
    quantity: int,
    strategy: str,
    us_limit: str,
) -> None:
    """A market order of a signal recorded NEW, as the order manager records it; a US one carries
    ``us_limit``, its marketable limit (the order manager prices US market orders, ADR 0007)."""
    command = SubmitOrder(
        client_order_id=client_order_id,
        account=account,
        market=market,
        ticker=ticker,
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET,
        limit_price=Decimal(us_limit) if market.is_us else None,
        strategy=strategy,
        origin="signal",
    )
    await orders.create_order(client, command, MAXLEN)


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
        await create_market_order(client, coid, account, market, ticker, side, quantity, "demo", "191.90")
        fields: dict[str, object] = {"broker_order_id": f"{index:010d}"}
        if fill:
            fields.update({"filled_quantity": quantity, "average_price": fill, "fee": "107"})
        if state is OrderState.REJECTED:
            fields["reason"] = "APBK0915 주문가능금액을 초과 했습니다"
        if state is not OrderState.NEW:
            await walk_to(client, coid, state, fields=fields, maxlen=MAXLEN)
        ids.append(coid)
    return ids


async def seed_fill(
    client: aioredis.Redis,
    client_order_id: str,
    account: str,
    market: Market,
    ticker: str,
    side: Side,
    quantity: int,
    price: str,
    fee: str,
    strategy: str,
) -> None:
    """An order filled in full, stored as the broker gateway stores a fill: the cumulative
    quantity, average price and fee on the record, with its OrderFilled event (brokergateway/fills.py)."""
    await create_market_order(client, client_order_id, account, market, ticker, side, quantity, strategy, price)
    broker_order_id = client_order_id[-10:]
    await walk_to(client, client_order_id, OrderState.ACCEPTED, fields={"broker_order_id": broker_order_id})
    event = OrderFilled(
        correlation_id=client_order_id,
        client_order_id=client_order_id,
        account=account,
        broker_order_id=broker_order_id,
        market=market,
        ticker=ticker,
        side=side,
        fill_quantity=quantity,
        fill_price=Decimal(price),
        cumulative_quantity=quantity,
        average_price=Decimal(price),
        remaining_quantity=0,
        fee=Decimal(fee),
    )
    fields = {"filled_quantity": quantity, "average_price": event.average_price, "fee": event.fee}
    await walk_to(client, client_order_id, OrderState.FILLED, fields=fields, event=event, maxlen=MAXLEN)


async def seed_yesterday(client: aioredis.Redis, equity: dict[str, dict[str, str]], fx: str = "1385.20") -> None:
    """Yesterday's equity snapshot, per account and currency, as ``take_snapshot`` stores it."""
    day = datetime.now(SEOUL).date() - timedelta(days=1)
    rate = Decimal(fx)
    accounts = {
        alias: pnl.converted({c: Decimal(v) for c, v in amounts.items()}, rate) for alias, amounts in equity.items()
    }
    snapshot = {
        "date": day.isoformat(),
        "taken_at": datetime.now(UTC).isoformat(),
        "fx_usdkrw": fx,
        "fx_source": "default",
        "equity_krw": str(sum(accounts.values(), Decimal(0))),
        "accounts": {alias: str(value) for alias, value in accounts.items()},
        "equity": equity,
    }
    await store_snapshot(client, snapshot, SEOUL)


TRADING_DAY = [  # (order, market, ticker, side, quantity, price, fee, strategy), all on "main"
    (1, Market.KRX, "005930", Side.BUY, 10, "70000", "105", "momentum"),
    (2, Market.KRX, "005930", Side.BUY, 10, "76000", "114", "momentum"),
    (3, Market.KRX, "005930", Side.SELL, 15, "80000", "120", "momentum"),
    (4, Market.NASD, "AAPL", Side.BUY, 4, "190.25", "0.19", "us-tech"),
    (5, Market.NASD, "AAPL", Side.SELL, 4, "195.10", "0.20", "us-tech"),
]
# What the accounts held at yesterday's snapshot. Now (seed_accounts): main ₩23,324,000 and
# $6,173.30, isa ₩10,304,000.
YESTERDAY = {"main": {"KRW": "23000000", "USD": "6200"}, "isa": {"KRW": "10000000"}}


async def seed_trading_day(client: aioredis.Redis) -> None:
    """The accounts, yesterday's snapshot and today's fills: two buys of 005930 at different
    prices and a sell of part of them (average cost 73,000), and a US round trip in AAPL."""
    await seed_accounts(client)
    await seed_yesterday(client, YESTERDAY)
    for number, market, ticker, side, quantity, price, fee, strategy in TRADING_DAY:
        await seed_fill(client, f"yq-pnl{number:017d}", "main", market, ticker, side, quantity, price, fee, strategy)


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
