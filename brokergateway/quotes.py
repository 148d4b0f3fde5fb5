"""Quotes: answers to ``QuoteRequested`` and the reference price of US market orders.

Protocol (the requester is yquant/quotes.py): a ``QuoteRequested`` on ``keys.QUERIES``
(consumer group ``brokergateway``); the answer is the JSON of a ``Quote`` (or
``{"error": ...}``) pushed to ``keys.reply(request_id)`` with a short TTL. Every quote
fetched is also cached under ``keys.quote(market, ticker)`` with a TTL. Concurrent asks
for the same ticker share one KIS call.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from brokergateway import metrics
from brokergateway.config import GatewayConfig
from brokergateway.kis import inquiry
from brokergateway.sync import dec
from brokergateway.worker import AccountWorker
from yquant import keys
from yquant.errors import BrokerError, BrokerRejected
from yquant.messages import AnyMessage, Market, Quote, QuoteRequested, utcnow

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
SMALL_TICK = Decimal("0.0001")


def us_tick(price: Decimal) -> Decimal:
    return CENT if price >= 1 else SMALL_TICK


def domestic_quote(ticker: str, output: dict[str, Any], now: datetime) -> Quote:
    price = dec(output.get("stck_prpr"))
    if price <= 0:
        raise BrokerRejected(f"KIS has no price for {ticker}", code="NO_PRICE")
    tick = dec(output.get("aspr_unit"))
    return Quote(
        market=Market.KRX,
        ticker=ticker,
        price=price,
        tick_size=tick if tick > 0 else None,
        upper_limit=dec(output.get("stck_mxpr")) or None,
        lower_limit=dec(output.get("stck_llam")) or None,
        previous_close=dec(output.get("stck_sdpr")) or None,
        currency="KRW",
        as_of=now,
    )


def overseas_quote(market: Market, ticker: str, output: dict[str, Any], now: datetime) -> Quote:
    price = dec(output.get("last"))
    if price <= 0:
        raise BrokerRejected(f"KIS has no price for {ticker} on {market.value}", code="NO_PRICE")
    return Quote(
        market=market,
        ticker=ticker,
        price=price,
        tick_size=us_tick(price),
        previous_close=dec(output.get("base")) or None,
        currency="USD",
        as_of=now,
    )


class QuoteDesk:
    def __init__(self, client: aioredis.Redis, workers: dict[str, AccountWorker], config: GatewayConfig) -> None:
        self.client = client
        self.workers = workers
        self.config = config
        self._in_flight: dict[tuple[Market, str], asyncio.Future[Quote]] = {}

    def _worker(self, market: Market, account: str | None) -> AccountWorker:
        preferred = self.workers.get(account or "")
        if preferred is not None and preferred.serves(market):
            return preferred
        for worker in self.workers.values():
            if worker.serves(market):
                return worker
        return preferred or next(iter(self.workers.values()))

    async def handle(self, message: AnyMessage) -> None:
        """Answer one ``QuoteRequested`` (other messages on the query stream are ignored)."""
        if not isinstance(message, QuoteRequested):
            logger.warning("ignoring unexpected query", extra={"type": message.type})
            return
        if utcnow() - message.occurred_at > timedelta(seconds=self.config.quote_request_max_age_s):
            metrics.QUOTES.labels("stale").inc()
            return  # the asker has given up; answering would only leave garbage
        try:
            quote = await self.fetch(message.market, message.ticker.strip().upper(), message.account)
            answer = quote.model_dump_json().encode()
            metrics.QUOTES.labels("ok").inc()
        except BrokerError as exc:
            logger.info("quote refused", extra={"ticker": message.ticker, "error": exc.message})
            answer = orjson.dumps({"error": exc.message})
            metrics.QUOTES.labels("error").inc()
        reply = keys.reply(message.request_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(reply, answer)
            pipe.expire(reply, self.config.quote_reply_ttl_s)
            await pipe.execute()

    async def fetch(self, market: Market, ticker: str, account: str | None = None) -> Quote:
        """A quote from KIS now (shared with concurrent asks for the same ticker), then cached."""
        key = (market, ticker)
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Quote] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            quote = await self._fetch(market, ticker, account)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked as retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(quote)
            return quote
        finally:
            self._in_flight.pop(key, None)

    async def _fetch(self, market: Market, ticker: str, account: str | None) -> Quote:
        worker = self._worker(market, account)
        now = utcnow()
        if market is Market.KRX:
            quote = domestic_quote(ticker, await inquiry.domestic_price(worker.kis, ticker), now)
        else:
            quote = overseas_quote(market, ticker, await inquiry.overseas_price(worker.kis, market, ticker), now)
        await self.client.set(
            keys.quote(market.value, ticker), quote.model_dump_json(), ex=self.config.quote_cache_ttl_s
        )
        return quote
