"""What reaches the trader's phone, with the whole system running as ``yquant up`` starts it.

Alert → webhook → order manager → gateway → KIS simulator → fill → notifier → chat. The chat
services are loopback stand-ins for Telegram's Bot API and a Discord webhook (the only fakes);
the notifier is configured for both exactly as a user would, through YQ_NOTIFIER__DESTINATIONS.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis.asyncio as aioredis

from kissim.protocol import Messages
from notifier.events import money
from tests.e2e.helpers import eventually
from tests.harness.devsystem import DevSystem
from tests.integration.notifier.loopback import TOKEN, ChatServices
from yquant import keys, schedule_store
from yquant.messages import Market
from yquant.schedules import Schedule, ScheduleKind, ScheduleSpec

SECRET = "e2e-notify-secret"
CASH = 1_000_000  # the simulator's KRW: enough for a few shares, not for 20 at ₩200,000


@pytest.fixture(scope="module")
def chats() -> Iterator[ChatServices]:
    with ChatServices() as services:
        yield services


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, chats: ChatServices) -> Iterator[DevSystem]:
    destinations = {
        "phone": {
            "kind": "telegram",
            "bot_token": TOKEN,
            "chat_id": "42",
            "api_base": f"http://127.0.0.1:{chats.telegram.port}",
        },
        "channel": {"kind": "discord", "url": chats.discord.url()},
    }
    env = {
        "YQ_NOTIFIER__DESTINATIONS": json.dumps(destinations),
        "YQ_KISSIM_ARGS": f"--krw {CASH}",
        # The order manager would deny a buy beyond the cash itself; here KIS is to refuse it.
        "YQ_RISK__CHECK_CASH": "false",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with DevSystem(tmp_path_factory.mktemp("notify"), env, secret=SECRET) as running:
        # The notifier's groups exist once "yQuant is up" is printed: what is appended right after a
        # first start is reported too (a group created later would skip it).
        assert notifier_reads(running)
        yield running


def notifier_reads(system: DevSystem) -> bool:
    status = json.loads(system.yquant("status", "--json").stdout)
    reading = {(s["stream"], s["group"]) for s in status["streams"]}
    wanted = {(stream, keys.notifier_group(name)) for stream in keys.NOTIFIER_STREAMS for name in ("phone", "channel")}
    return reading >= wanted


def alert(**fields: Any) -> dict[str, Any]:
    return {"secret": SECRET, "strategy": "demo", "exchange": "KRX", "action": "buy", "quantity": 1, **fields}


def send(system: DevSystem, **fields: Any) -> None:
    response = httpx.post(system.webhook_url, json=alert(**fields), timeout=10)
    assert (response.status_code, response.json()["status"]) == (200, "accepted"), response.text


def set_price(system: DevSystem, ticker: str, price: int) -> None:
    httpx.post(
        f"{system.kissim_url}/admin/price", json={"ticker": ticker, "price": str(price)}, timeout=5
    ).raise_for_status()


def said(chats: ChatServices, *needles: str) -> dict[str, list[str]]:
    """Per receiver, the messages that carry every needle."""
    texts = {
        "telegram": [str(m.get("text", "")) for m in list(chats.telegram.received)],
        "discord": list(chats.discord.contents),
    }
    return {name: [t for t in messages if all(n in t for n in needles)] for name, messages in texts.items()}


def both_say(chats: ChatServices, *needles: str, timeout_s: float = 30) -> dict[str, str]:
    """Wait until Telegram and Discord each got a message carrying every needle; return them."""
    found = eventually(lambda: (lambda s: s if all(s.values()) else None)(said(chats, *needles)), timeout_s)
    return {name: messages[0] for name, messages in found.items()}


def orders(system: DevSystem) -> list[dict[str, Any]]:
    result = system.yquant("orders", "--json")
    assert result.returncode == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def test_an_alert_that_fills_reaches_telegram_and_discord_with_ticker_quantity_price_and_account(
    system: DevSystem, chats: ChatServices
) -> None:
    set_price(system, "005930", 70_000)
    send(system, id="notify-fill", ticker="005930", quantity=3)

    messages = both_say(chats, "Filled", "005930")
    [order] = [o for o in orders(system) if o["ticker"] == "005930"]
    assert (order["state"], order["filled_quantity"]) == ("FILLED", 3)
    price = money(Decimal(str(order["average_price"])), "KRW")
    for text in messages.values():
        assert f"BUY KRX:005930 3 @ {price}" in text
        assert "· main" in text  # the account
        assert "[demo]" in text  # the strategy that sent it
    assert {name: len(found) for name, found in said(chats, "Filled", "005930").items()} == {
        "telegram": 1,
        "discord": 1,
    }


def test_an_alert_while_halted_is_denied_and_both_chats_say_halted(system: DevSystem, chats: ChatServices) -> None:
    halted = system.yquant("trading-state", "HALTED")
    assert halted.returncode == 0, halted.stderr
    try:
        send(system, id="notify-halted", ticker="000660")
        messages = both_say(chats, "denied", "000660")
    finally:
        assert system.yquant("trading-state", "ACTIVE").returncode == 0
    for text in messages.values():
        assert "HALTED" in text
        assert "demo" in text
    assert [o for o in system.sim_orders() if o["ticker"] == "000660"] == []  # nothing went to KIS
    # A halt from the console reaches the phone like one from the dashboard: who, and from where.
    for text in both_say(chats, "now HALTED", "from console").values():
        assert f"by {getpass.getuser()}" in text
        assert "all accounts" in text


def test_a_kis_rejection_reaches_both_chats_with_kis_own_words(system: DevSystem, chats: ChatServices) -> None:
    set_price(system, "035420", 200_000)
    send(system, id="notify-rejected", ticker="035420", quantity=20)  # ₩4,000,000 with ₩1,000,000 in cash

    [order] = eventually(
        lambda: [o for o in orders(system) if o["ticker"] == "035420" and o["state"] == "REJECTED"], 30
    )
    messages = both_say(chats, "Rejected", order["client_order_id"])
    for text in messages.values():
        assert Messages.NO_CASH.text in text  # what KIS said, as KIS said it
        assert text.count(Messages.NO_CASH.code) == 1
        assert "· main" in text


def test_an_exit_rule_that_triggers_names_ticker_account_and_the_sell_it_placed(
    system: DevSystem, chats: ChatServices
) -> None:
    set_price(system, "005380", 100_000)
    send(system, id="notify-exit-entry", ticker="005380", quantity=2, stop_loss=95_000)
    both_say(chats, "Filled", "005380")
    set_price(system, "005380", 90_000)  # below the alert's stop

    messages = both_say(chats, "Exit triggered", "KRX:005380")
    [sell] = eventually(lambda: [o for o in orders(system) if o["ticker"] == "005380" and o["side"] == "sell"], 30)
    for text in messages.values():
        assert "KRX:005380 · main [demo]" in text  # ticker, account, strategy
        assert f"SELL 2 · main ({sell['client_order_id']})" in text  # the order it placed
    assert {name: len(found) for name, found in said(chats, "Exit triggered", "005380").items()} == {
        "telegram": 1,
        "discord": 1,
    }


def test_a_schedule_that_fires_names_ticker_account_and_the_order_it_placed(
    system: DevSystem, chats: ChatServices
) -> None:
    set_price(system, "000270", 50_000)
    now = datetime.now(UTC)
    seoul = now.astimezone(ZoneInfo("Asia/Seoul"))
    spec = ScheduleSpec(
        name="notify test",
        account="main",
        market=Market.KRX,
        ticker="000270",
        quantity=1,
        kind=ScheduleKind.ONCE,
        run_on=seoul.date(),
        at_time=seoul.time().replace(second=0, microsecond=0),
    )
    due = Schedule(schedule_id="sch-notify", spec=spec, created_at=now, updated_at=now, next_run_at=now)
    asyncio.run(_save(system, due))

    messages = both_say(chats, "Schedule fired", "KRX:000270")
    [buy] = eventually(lambda: [o for o in orders(system) if o["ticker"] == "000270"], 30)
    for text in messages.values():
        assert "KRX:000270 · main [schedule]" in text
        assert "notify test" in text  # which schedule
        assert f"BUY 1 · main ({buy['client_order_id']})" in text


async def _save(system: DevSystem, schedule: Schedule) -> None:
    client = aioredis.Redis.from_url(system.valkey_url)
    try:
        await schedule_store.save(client, schedule)
    finally:
        await client.aclose()
