"""Orders open at KIS that yQuant did not place, on the overview and the positions page: the count a
trader reads, each order with what it holds, gone once the gateway's next read of KIS's list no
longer finds them (written as the gateway writes them: ``portfolio.store_open_order_check``)."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import httpx
import redis.asyncio as aioredis

from tests.integration.dashboard.conftest import login
from tests.integration.dashboard.seed import seed_accounts
from yquant import portfolio
from yquant.portfolio import UnownedOrder

UNOWNED = [
    UnownedOrder(
        market="KRX", ticker="005930", side="buy", remaining_quantity=2, price=Decimal(61000), broker_order_id="81"
    ),
    UnownedOrder(
        market="US", ticker="AAPL", side="sell", remaining_quantity=5, price=Decimal("201.5"), broker_order_id="92"
    ),
]


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def notice(page: str, alias: str) -> str | None:
    match = re.search(rf'<div class="notice unowned" id="unowned-{alias}"[^>]*>(.*?)</div>', page, re.S)
    return text(match.group(1)) if match else None


async def test_orders_open_at_kis_not_placed_by_yquant_are_counted_on_the_account_and_positions_views(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_accounts(redis_client)
    await portfolio.store_open_order_check(redis_client, "main", UNOWNED)
    await portfolio.store_open_order_check(redis_client, "isa", [])
    await login(http)

    for path in ("/", "/positions", "/positions?partial=1"):
        page = (await http.get(path)).text
        shown = notice(page, "main")
        assert shown is not None, path
        assert shown.startswith("main : 2 orders open at KIS not placed by yQuant"), shown
        assert "KRX 005930 buy 2 left @ 61,000 KIS order 81" in shown
        assert "US AAPL sell 5 left @ 201.50 KIS order 92" in shown
        assert notice(page, "isa") is None, path  # nothing of the kind there: nothing shown

    overview = (await http.get("/")).text
    card = re.search(r'id="unowned-card-main"[^>]*>(.*?)</dd>', overview, re.S)
    assert card is not None
    assert text(card.group(1)) == "2 orders open at KIS"
    assert 'id="unowned-card-isa"' not in overview

    await portfolio.store_open_order_check(redis_client, "main", UNOWNED[:1])
    shown = notice((await http.get("/positions")).text, "main")
    assert shown is not None
    assert shown.startswith("main : 1 order open at KIS not placed by yQuant")

    await portfolio.store_open_order_check(redis_client, "main", [])  # cancelled in KIS's app, say
    for path in ("/", "/positions"):
        page = (await http.get(path)).text
        assert notice(page, "main") is None, path
        assert 'id="unowned-card-main"' not in page, path
