"""Quotes: answers to ``QuoteRequested`` and the reference price of US market orders.

Protocol (the requester is yquant/quotes.py): a ``QuoteRequested`` on the requester's query
stream (consumer group ``brokergateway``); the answer is the JSON of a ``Quote`` (or
``{"error": ...}``) pushed to ``keys.reply(request_id)`` with a short TTL. Every quote
fetched is also cached under ``keys.quote(market, ticker)`` with a TTL. Concurrent asks
for the same ticker share one KIS call.

The order manager's requests (``keys.QUERIES``) are answered from KIS, paced like everything
else. The dashboard's (``keys.QUERIES_DASHBOARD``; ADR 0010) cannot spend the request rate orders
need, whatever a compromised dashboard appends: each is answered from the cache (or a KIS call
already in flight for the ticker) when it can be; past it, the gateways make at most one KIS call
for the dashboard every ``dashboard_quote_interval_s`` (``keys.DASHBOARD_QUOTE_BUDGET``), and
only with a pacing slot the account's window can spare (``RateLimiter.try_spare``: at most half
full, idle for a one-request account); otherwise the answer is a refusal at once, never a wait.
Its reply key must be the dashboard's own (``dash-`` ids); anything else there is refused.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import orjson
import redis.asyncio as aioredis

from brokergateway import metrics
from brokergateway.config import GatewayConfig
from brokergateway.kis import inquiry
from brokergateway.kis.prices import domestic_quote, overseas_quote
from brokergateway.worker import AccountWorker
from yquant import keys
from yquant.errors import BrokerError, MessageRefused
from yquant.messages import AnyMessage, Market, Quote, QuoteRequested, utcnow

logger = logging.getLogger(__name__)


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
        await self._answer(message.request_id, answer)

    async def handle_dashboard(self, message: AnyMessage) -> None:
        """Answer one of the dashboard's ``QuoteRequested`` within its budget (module docstring)."""
        if not isinstance(message, QuoteRequested):
            raise MessageRefused(f"{message.type} on {keys.QUERIES_DASHBOARD}, which carries QuoteRequested only")
        if not message.request_id.startswith("dash-"):
            raise MessageRefused(f"a dashboard quote request must be answered to a dash- key, not {message.request_id}")
        if utcnow() - message.occurred_at > timedelta(seconds=self.config.quote_request_max_age_s):
            metrics.QUOTES.labels("stale").inc()
            return
        market, ticker = message.market, message.ticker.strip().upper()
        try:
            quote = await self._cached(market, ticker)
            if quote is None and (pending := self._in_flight.get((market, ticker))) is not None:
                quote = await asyncio.shield(pending)
            if quote is None:
                slot = await self._dashboard_slot(market, message.account)
                if slot is None:
                    metrics.QUOTES.labels("budget").inc()
                    await self._answer(message.request_id, orjson.dumps({"error": "quote budget spent; ask again"}))
                    return
                quote = await self.fetch(market, ticker, message.account, slot=slot)
            answer = quote.model_dump_json().encode()
            metrics.QUOTES.labels("ok").inc()
        except BrokerError as exc:
            logger.info("quote refused", extra={"ticker": ticker, "error": exc.message})
            answer = orjson.dumps({"error": exc.message})
            metrics.QUOTES.labels("error").inc()
        await self._answer(message.request_id, answer)

    async def _cached(self, market: Market, ticker: str) -> Quote | None:
        """The quote cached by the last fetch (its TTL is ``quote_cache_ttl_s``), if any."""
        raw = await self.client.get(keys.quote(market.value, ticker))
        if raw is None:
            return None
        try:
            return Quote.model_validate_json(raw)
        except ValueError:
            return None

    async def _dashboard_slot(self, market: Market, account: str | None) -> str | None:
        """A pacing slot for one dashboard quote from KIS, or None when its budget is spent: one such
        call per interval across the gateways, and only a slot the account's window can spare."""
        interval_ms = max(int(self.config.dashboard_quote_interval_s * 1000), 1)
        if not await self.client.set(keys.DASHBOARD_QUOTE_BUDGET, "1", nx=True, px=interval_ms):
            return None
        return await self._worker(market, account).kis.limiter.try_spare()

    async def _answer(self, request_id: str, answer: bytes) -> None:
        reply = keys.reply(request_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(reply, answer)
            pipe.expire(reply, self.config.quote_reply_ttl_s)
            await pipe.execute()

    async def fetch(self, market: Market, ticker: str, account: str | None = None, *, slot: str | None = None) -> Quote:
        """A quote from KIS now (shared with concurrent asks for the same ticker), then cached.
        ``slot``: a pacing slot already taken for it (unused when another ask's call is in flight)."""
        key = (market, ticker)
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Quote] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            quote = await self._fetch(market, ticker, account, slot)
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

    async def _fetch(self, market: Market, ticker: str, account: str | None, slot: str | None = None) -> Quote:
        worker = self._worker(market, account)
        now = utcnow()
        if market is Market.KRX:
            quote = domestic_quote(ticker, await inquiry.domestic_price(worker.kis, ticker, slot=slot), now)
        else:
            row = await inquiry.overseas_price(worker.kis, market, ticker, slot=slot)
            quote = overseas_quote(market, ticker, row, now)
        await self.client.set(
            keys.quote(market.value, ticker), quote.model_dump_json(), ex=self.config.quote_cache_ttl_s
        )
        return quote
