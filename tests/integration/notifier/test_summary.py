"""The daily summary after each market's close, on a Valkey that runs the production ACL.

The Valkey here is started by valkey/start.sh with valkey/users.acl.template rendered (as ``make
deploy-check`` starts it) and the notifier logs in as its own ACL user ``notifier``, so every read
the summary makes is one that user may make. What the other services would have written (order
records, decisions, account syncs, the order manager's daily baseline) is written as ``admin``.

The notifier's wall clock is the test's: it only moves when the test moves it, and the test waits
until the notifier has read the moved clock twice (a whole check ran at the new time) before it
concludes that nothing was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from tests.harness.clock import ManualClock
from tests.integration.notifier.loopback import TOKEN, FakeDiscord, FakeTelegram
from tests.integration.notifier.test_notifier import Running, until
from tests.replies import xrange
from yquant import keys
from yquant.bus import fields_of
from yquant.markets import NEW_YORK, SEOUL
from yquant.messages import Market, Position, Signal, SignalAction, SignalDenied
from yquant.settings import NotifierSettings, NotifyDestination


@pytest.fixture
async def clients(acl_valkey: tuple[int, dict[str, str]]) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    """(admin, notifier): the database emptied first."""
    port, passwords = acl_valkey
    admin = aioredis.Redis(host="127.0.0.1", port=port, username="admin", password=passwords["admin"])
    notifier = aioredis.Redis(host="127.0.0.1", port=port, username="notifier", password=passwords["notifier"])
    await admin.flushall()
    yield admin, notifier
    await admin.aclose()
    await notifier.aclose()


class Clock(ManualClock):
    """The project's manual clock, counting how often the notifier read it."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()

    async def move(self, moment: datetime) -> None:
        """Move to ``moment`` and wait until a whole check ran there (the clock read twice since)."""
        self.set(moment)
        seen = self.reads
        await until(lambda: self.reads >= seen + 2)


def seoul(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SEOUL)


def new_york(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=NEW_YORK)


def settings_for(telegram: FakeTelegram, discord: FakeDiscord | None = None) -> NotifierSettings:
    destinations = {
        "phone": NotifyDestination(
            kind="telegram", bot_token=SecretStr(TOKEN), chat_id="42", api_base=f"http://127.0.0.1:{telegram.port}"
        )
    }
    if discord is not None:
        destinations["channel"] = NotifyDestination(kind="discord", url=SecretStr(discord.url(version=10)))
    return NotifierSettings(destinations=destinations, retry_max_s=0.05, summary_poll_s=0.05)


async def order(
    admin: aioredis.Redis,
    cid: str,
    market: Market,
    ticker: str,
    side: str,
    quantity: int,
    created: datetime,
    *,
    state: str = "FILLED",
    filled: datetime | None = None,
    price: str = "",
    fee: str = "0",
) -> None:
    """An order record as the order manager and the gateway leave it, indexed by its creation time."""
    await admin.hset(
        keys.order(cid),
        mapping={
            "client_order_id": cid,
            "account": "main",
            "market": market.value,
            "ticker": ticker,
            "side": side,
            "quantity": str(quantity),
            "order_type": "market",
            "strategy": "trend",
            "origin": "signal",
            "state": state,
            "created_at": created.astimezone(UTC).isoformat(),
            "updated_at": (filled or created).astimezone(UTC).isoformat(),
            "filled_quantity": str(quantity if state == "FILLED" else 0),
            "average_price": price,
            "fee": fee,
        },
    )
    await admin.zadd(keys.ORDERS_INDEX, {cid: int(created.timestamp() * 1000)})


async def denial(
    admin: aioredis.Redis, signal_id: str, market: Market, ticker: str, at: datetime, *, recorded: bool = True
) -> None:
    """A denied signal, on the decisions stream at ``at``, and its signal's record (unless it is gone)."""
    signal = Signal(signal_id=signal_id, strategy="trend", ticker=ticker, market=market, action=SignalAction.BUY)
    if recorded:
        await admin.hset(keys.signal_record(signal_id), mapping={"signal": signal.model_dump_json()})
    denied = SignalDenied(
        signal_id=signal_id, strategy="trend", ticker=ticker, account="main", reason_code="HALTED", reason="halted"
    )
    fields: Any = fields_of(denied)  # XADD's parameter is a dict of any encodable key and value
    await admin.xadd(keys.DECISIONS, fields, id=f"{int(at.timestamp() * 1000)}-0")


async def seed_day(admin: aioredis.Redis) -> None:
    """Monday 2026-12-07 of account main, on KRX and on NASDAQ.

    KRX: 10 shares of 005930 bought on Friday at 70,000 (their cost); today a sell of 4 at 72,000
    (realised 4 x 2,000 = +8,000, fee 300), then a buy of 2 at 71,500 (fee 150: it fills after the
    sell, so it does not change the sell's cost), a rejected order and two denied signals (one whose
    record is gone).
    US: 5 AAPL bought on Friday at 190.10; today sold at 195.35 (realised 5 x 5.25 = +26.25, fee 1.23),
    and a denied signal. Equity: ₩5,000,000 cash + 8 shares at 72,000 = ₩5,576,000 against ₩5,500,000
    at the day's start; $1,000.50 cash against $980 at the start.
    """
    await order(admin, "k-0", Market.KRX, "005930", "buy", 10, seoul(4, 9, 30), price="70000", fee="105")
    await order(
        admin, "k-1", Market.KRX, "005930", "sell", 4, seoul(7, 9, 30), filled=seoul(7, 10), price="72000", fee="300"
    )
    await order(
        admin, "k-2", Market.KRX, "005930", "buy", 2, seoul(7, 10, 30), filled=seoul(7, 11), price="71500", fee="150"
    )
    await order(admin, "k-3", Market.KRX, "000660", "buy", 1, seoul(7, 11, 30), state="REJECTED")
    await denial(admin, "s-k", Market.KRX, "035720", seoul(7, 12))
    await denial(admin, "s-k2", Market.KRX, "000270", seoul(7, 13), recorded=False)  # a KRX code: KRX's
    await order(admin, "u-0", Market.NASD, "AAPL", "buy", 5, new_york(4, 10), price="190.10", fee="0.95")
    await order(
        admin,
        "u-1",
        Market.NASD,
        "AAPL",
        "sell",
        5,
        new_york(7, 10),
        filled=new_york(7, 10, 5),
        price="195.35",
        fee="1.23",
    )
    await denial(admin, "s-u", Market.NASD, "MSFT", new_york(7, 11))
    await admin.sadd(keys.ACCOUNTS_INDEX, "main")
    position = Position(
        market=Market.KRX,
        ticker="005930",
        quantity=8,
        sellable_quantity=8,
        average_price=Decimal(70_000),
        current_price=Decimal(72_000),
        market_value=Decimal(576_000),
        unrealized_pnl=Decimal(16_000),
        return_pct=Decimal("2.86"),
        currency="KRW",
    )
    await admin.hset(
        keys.account("main"),
        mapping={"cash": orjson.dumps({"KRW": "5000000", "USD": "1000.50"}), "synced_at": new_york(7, 16).isoformat()},
    )
    await admin.hset(keys.positions("main"), mapping={"KRX:005930": position.model_dump_json()})
    await admin.hset(keys.daily_equity("main", "2026-12-07"), mapping={"KRW": "5500000", "USD": "980"})


KRX_SUMMARY = (
    "📊 KRX daily summary 2026-12-07\n"
    "main: orders 3, filled 2, refused 1, denied 2 · realised P/L +₩8,000 · fees ₩450"
    " · equity ₩5,576,000 (day start ₩5,500,000, +₩76,000)"
)
US_SUMMARY = (
    "📊 US daily summary 2026-12-07\n"
    "main: orders 1, filled 1, refused 0, denied 1 · realised P/L +$26.25 · fees $1.23"
    " · equity $1,000.50 (day start $980.00, +$20.50)"
)


def texts(telegram: FakeTelegram) -> list[str]:
    return [str(m["text"]) for m in list(telegram.received)]


def started(clients: tuple[aioredis.Redis, aioredis.Redis], settings: NotifierSettings, clock: Clock) -> Running:
    return Running(clients[1], settings, clock=clock.now)


async def test_a_day_with_fills_in_krw_and_usd_is_one_summary_per_market_at_each_destination(
    clients: tuple[aioredis.Redis, aioredis.Redis], telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    admin = clients[0]
    await seed_day(admin)
    clock = Clock(seoul(7, 9))  # the notifier runs from the morning
    async with started(clients, settings_for(telegram, discord), clock):
        await clock.move(seoul(7, 15, 39))  # the close was at 15:30; the summary is due ten minutes after
        assert texts(telegram) == []
        await clock.move(seoul(7, 15, 41))
        await until(lambda: len(texts(telegram)) == 1 and len(discord.contents) == 1)
        await clock.move(new_york(7, 16, 11))
        await until(lambda: len(texts(telegram)) == 2 and len(discord.contents) == 2)
        await clock.move(new_york(7, 18))
    assert texts(telegram) == [KRX_SUMMARY, US_SUMMARY]
    assert discord.contents == [KRX_SUMMARY, US_SUMMARY]


async def test_a_destination_that_does_not_ask_for_summaries_gets_none(
    clients: tuple[aioredis.Redis, aioredis.Redis], telegram: FakeTelegram, discord: FakeDiscord
) -> None:
    await seed_day(clients[0])
    clock = Clock(seoul(7, 9))
    settings = settings_for(telegram, discord)
    settings.destinations["channel"] = settings.destinations["channel"].model_copy(update={"events": ["filled"]})
    async with started(clients, settings, clock):
        await clock.move(seoul(7, 15, 45))
        await until(lambda: len(texts(telegram)) == 1)
        await until(lambda: passed_over(clients[0], "channel"))
    assert texts(telegram) == [KRX_SUMMARY]
    assert discord.contents == []


async def passed_over(client: aioredis.Redis, destination: str) -> bool:
    """The destination's group read every notice and acknowledged it."""
    last = (await xrange(client, keys.NOTICES))[-1][0]
    groups = await client.xinfo_groups(keys.NOTICES)
    ours = next(g for g in groups if keys.text(g["name"]) == keys.notifier_group(destination))
    return bool(ours["last-delivered-id"] == last and ours["pending"] == 0)


async def test_a_restart_after_the_summary_was_sent_does_not_send_it_again(
    clients: tuple[aioredis.Redis, aioredis.Redis], telegram: FakeTelegram
) -> None:
    await seed_day(clients[0])
    clock = Clock(seoul(7, 9))
    settings = settings_for(telegram)
    async with started(clients, settings, clock):
        await clock.move(seoul(7, 15, 45))
        await until(lambda: len(texts(telegram)) == 1)
    async with started(clients, settings, clock):  # restarted the same evening
        await clock.move(seoul(7, 20))
        await clock.move(new_york(7, 16, 15))  # the US close: its summary is the sign the restarted one checks
        await until(lambda: len(texts(telegram)) == 2)
        await clock.move(new_york(7, 17))
    assert texts(telegram) == [KRX_SUMMARY, US_SUMMARY]


async def test_a_notifier_down_at_the_close_sends_the_summary_once_marked_late(
    clients: tuple[aioredis.Redis, aioredis.Redis], telegram: FakeTelegram
) -> None:
    await seed_day(clients[0])
    clock = Clock(seoul(7, 9))
    settings = settings_for(telegram)
    async with started(clients, settings, clock):
        await clock.move(seoul(7, 12))
    assert texts(telegram) == []
    clock.set(seoul(7, 18))  # it was down from noon to 18:00, across the close
    async with started(clients, settings, clock):
        await until(lambda: len(texts(telegram)) == 1)
    async with started(clients, settings, clock):  # and once more: still once
        await clock.move(seoul(7, 19))
        await clock.move(new_york(7, 16, 15))  # the US summary, on time
        await until(lambda: len(texts(telegram)) == 2)
    late = KRX_SUMMARY.replace("2026-12-07", "2026-12-07 — sent late: the notifier was down at the close", 1)
    assert texts(telegram) == [late, US_SUMMARY]


async def test_an_older_missed_day_is_not_sent(
    clients: tuple[aioredis.Redis, aioredis.Redis], telegram: FakeTelegram
) -> None:
    clock = Clock(seoul(4, 9))  # Friday morning, then down until Tuesday evening
    settings = settings_for(telegram)
    async with started(clients, settings, clock):
        await clock.move(seoul(4, 10))
    clock.set(seoul(8, 18))
    async with started(clients, settings, clock):
        await until(lambda: len(texts(telegram)) == 2)  # Tuesday's KRX summary and Monday's US one, late
        await clock.move(seoul(8, 19))
    heads = sorted(t.splitlines()[0] for t in texts(telegram))
    assert heads == [
        "📊 KRX daily summary 2026-12-08 — sent late: the notifier was down at the close",
        "📊 US daily summary 2026-12-07 — sent late: the notifier was down at the close",
    ]


async def test_a_holiday_sends_nothing(clients: tuple[aioredis.Redis, aioredis.Redis], telegram: FakeTelegram) -> None:
    clock = Clock(seoul(25, 9))  # Christmas Day: KRX and NYSE are closed
    async with started(clients, settings_for(telegram), clock):
        await clock.move(seoul(25, 16))
        await clock.move(new_york(25, 17))
        await clock.move(seoul(28, 15, 45))  # the next trading day: its summary, and only it
        await until(lambda: len(texts(telegram)) == 1)
        await clock.move(seoul(28, 16))
    assert texts(telegram) == ["📊 KRX daily summary 2026-12-28\nno orders, no account synced"]
