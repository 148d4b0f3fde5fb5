"""Against KIS's virtual (모의투자) domain: a balance query and a one-share order, then its cancel.

Deselected by default (``-m 'not live'``); run with ``pytest -m live`` and these variables:
``YQ_LIVE_KIS_APP_KEY``, ``YQ_LIVE_KIS_APP_SECRET``, ``YQ_LIVE_KIS_CANO`` (8 digits) and optionally
``YQ_LIVE_KIS_PRODUCT_CODE`` (default 01). The order is a limit buy of one 005930 share at the day's
lower limit, so it rests and is cancelled; outside KRX hours KIS refuses it (40580000), which the
test accepts as the round trip it is.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis

from brokergateway.kis import inquiry, trading
from brokergateway.kis.client import AccountRef, KisClient
from brokergateway.kis.prices import domestic_quote
from brokergateway.kis.tokens import TokenManager
from brokergateway.ratelimit import RateLimiter
from yquant.errors import BrokerRejected
from yquant.messages import Market, OrderType, Side, utcnow
from yquant.settings import KIS_VIRTUAL_URL

pytestmark = pytest.mark.live

REQUIRED = ("YQ_LIVE_KIS_APP_KEY", "YQ_LIVE_KIS_APP_SECRET", "YQ_LIVE_KIS_CANO")


@pytest.fixture
async def virtual_kis(redis_client: aioredis.Redis) -> AsyncIterator[KisClient]:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        pytest.skip(f"KIS virtual credentials not set: {', '.join(missing)}")
    app_key, app_secret = os.environ["YQ_LIVE_KIS_APP_KEY"], os.environ["YQ_LIVE_KIS_APP_SECRET"]
    account = AccountRef(
        "live", os.environ["YQ_LIVE_KIS_CANO"], os.environ.get("YQ_LIVE_KIS_PRODUCT_CODE", "01"), app_key, app_secret,
        "virtual",
    )  # fmt: skip
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        tokens = TokenManager(redis_client, http, KIS_VIRTUAL_URL, app_key, app_secret)
        limiter = RateLimiter(redis_client, "live", 1.0)
        yield KisClient(account, http, KIS_VIRTUAL_URL, tokens, limiter, order_timeout_s=10.0)


async def test_balance_and_a_one_share_virtual_order(virtual_kis: KisClient) -> None:
    rows, summary = await inquiry.domestic_balance(virtual_kis)
    assert isinstance(rows, list)
    assert "dnca_tot_amt" in summary
    quote = domestic_quote("005930", await inquiry.domestic_price(virtual_kis, "005930"), utcnow())
    price = quote.lower_limit or (quote.price * Decimal("0.7")).quantize(Decimal(100))
    outcome: trading.OrderAck | BrokerRejected
    try:
        outcome = await trading.place_order(virtual_kis, Market.KRX, "005930", Side.BUY, 1, OrderType.LIMIT, price)
    except BrokerRejected as refused:
        outcome = refused  # e.g. 40580000 모의투자 장종료 outside hours: KIS answered in its envelope
    if isinstance(outcome, BrokerRejected):
        assert outcome.code, outcome.message
        return
    assert outcome.broker_order_id
    await trading.cancel_order(virtual_kis, Market.KRX, "005930", outcome.broker_order_id, outcome.broker_org_no, 1)
