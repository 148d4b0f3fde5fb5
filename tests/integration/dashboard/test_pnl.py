"""The P/L a trader reads on the overview and performance pages, from fills stored as the broker
gateway stores them: average cost, per account, per strategy and per currency, KRW never added to USD.

Two buys of 005930 at different prices and a sell of part of them: the sell realises its price
less the holding's average cost (73,000 here), not the first buy's price. A US round trip shows
in dollars on lines of its own.
"""

from __future__ import annotations

import html
import re

import httpx
import redis.asyncio as aioredis

from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import seed_trading_day


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def by_id(page: str, element_id: str) -> str:
    match = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</(?:dd|td|p)>', page, re.S)
    assert match, f"no #{element_id} on the page"
    return text(match.group(1))


def row(page: str, attributes: str) -> dict[str, str]:
    match = re.search(rf"<tr {re.escape(attributes)}>(.*?)</tr>", page, re.S)
    assert match, f"no row {attributes}"
    return {name: text(value) for name, value in re.findall(r'data-field="([^"]+)">(.*?)</td>', match.group(1), re.S)}


async def test_overview_shows_day_and_realised_pnl_per_account_and_currency(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_trading_day(redis_client)
    await login(http)
    page = (await http.get("/")).text
    assert by_id(page, "day-pnl-main-KRW") == "+₩324,000"
    assert by_id(page, "day-pnl-main-USD") == "-$26.70"
    assert by_id(page, "day-pnl-isa-KRW") == "+₩304,000"
    assert by_id(page, "realised-today-main-KRW") == "+₩105,000"  # (80,000 - 73,000) x 15
    assert by_id(page, "realised-today-main-USD") == "+$19.40"  # (195.10 - 190.25) x 4
    assert by_id(page, "day-pnl-total-KRW") == "+₩628,000"
    assert by_id(page, "day-pnl-total-USD") == "-$26.70"
    assert by_id(page, "realised-today-total-KRW") == "+₩105,000"
    assert "day-pnl-isa-USD" not in page  # isa holds no dollars: no dollar line


async def test_performance_shows_realised_pnl_by_account_and_by_strategy(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_trading_day(redis_client)
    await login(http)
    page = (await http.get("/performance")).text
    assert row(page, 'data-account="main" data-currency="KRW"') == {
        "day": "+₩324,000",
        "realised-today": "+₩105,000",
        "realised": "+₩105,000",
    }
    assert row(page, 'data-account="main" data-currency="USD"') == {
        "day": "-$26.70",
        "realised-today": "+$19.40",
        "realised": "+$19.40",
    }
    assert row(page, 'data-strategy="momentum" data-currency="KRW"') == {
        "orders": "3",
        "filled": "3",
        "realised": "+₩105,000",
        "fees": "₩339",
        "won": "1 of 1",
    }
    assert row(page, 'data-strategy="us-tech" data-currency="USD"') == {
        "orders": "2",
        "filled": "2",
        "realised": "+$19.40",
        "fees": "$0.39",
        "won": "1 of 1",
    }
    assert 'data-strategy="momentum" data-currency="USD"' not in page  # momentum traded in won only
    sell = re.search(r'<tr data-order="yq-pnl00000000000000003">(.*?)</tr>', page, re.S)
    assert sell, "the sell is not in the list of sells"
    assert "73,000 80,000 +₩105,000" in text(sell.group(1))  # average cost, sold at, P/L


async def test_the_trades_csv_carries_strategy_fees_and_each_sells_realised_pnl(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_trading_day(redis_client)
    await login(http)
    lines = (await http.get("/performance/trades.csv")).text.splitlines()
    rows = [dict(zip(lines[0].split(","), line.split(","), strict=True)) for line in lines[1:]]
    shown = [
        (
            r["ticker"],
            r["side"],
            r["filled_quantity"],
            r["fee"],
            r["currency"],
            r["average_cost"],
            r["realised_pnl"],
            r["strategy"],
        )
        for r in rows
    ]
    assert shown == [
        ("005930", "buy", "10", "105", "KRW", "", "", "momentum"),
        ("005930", "buy", "10", "114", "KRW", "", "", "momentum"),
        ("005930", "sell", "15", "120", "KRW", "73000", "105000", "momentum"),
        ("AAPL", "buy", "4", "0.19", "USD", "", "", "us-tech"),
        ("AAPL", "sell", "4", "0.20", "USD", "190.25", "19.4", "us-tech"),
    ]
