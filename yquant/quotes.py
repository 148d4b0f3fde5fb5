"""Quotes for whoever needs a price: the cached quote, else a request/reply to the gateway.

Protocol (the gateway answers):

* cache: ``keys.quote(market, ticker)`` holds the JSON of a ``Quote`` (with a TTL);
* request: a ``QuoteRequested`` appended to the requester's query stream (``keys.QUERY_STREAMS``:
  the order manager's ``keys.QUERIES``, the dashboard's ``keys.QUERIES_DASHBOARD``, which the
  gateway serves within a small budget so the dashboard cannot spend KIS's request rate);
* reply: the gateway RPUSHes the JSON of a ``Quote`` to ``keys.reply(request_id)`` (and
  gives the list a short TTL), or ``{"error": "..."}`` when it cannot quote the ticker.
  A request id starts with its requester (``om-``, ``dash-``): each service's ACL lets it pop
  only its own answers, so a compromised dashboard cannot answer the order manager's request
  with a price of its choosing.

A caller never assumes a price: ``None`` means "no fresh price", and the caller denies.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from yquant import keys
from yquant.bus import publish
from yquant.messages import Market, Quote, QuoteRequested, new_id, utcnow

logger = logging.getLogger(__name__)

DEFAULT_MAX_AGE_S = 15.0
QUERY_STREAM_MAXLEN = 10_000
SOCKET_MARGIN_S = 0.5


def parse_quote(raw: bytes | str | None) -> Quote | None:
    """A ``Quote`` from its JSON, or None for anything else (an error answer, garbage)."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "error" in data:
        if isinstance(data, dict):
            logger.info("quote request refused", extra={"error": str(data.get("error"))})
        return None
    try:
        return Quote.model_validate(data)
    except ValidationError:
        logger.warning("quote with an unexpected shape ignored")
        return None


def is_fresh(quote: Quote, now: datetime, max_age_s: float) -> bool:
    return quote.price > 0 and now - quote.as_of <= timedelta(seconds=max_age_s)


async def cached_quote(
    client: aioredis.Redis,
    market: Market,
    ticker: str,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    now: datetime | None = None,
) -> Quote | None:
    """The cached quote if it is fresh enough."""
    quote = parse_quote(await client.get(keys.quote(market.value, ticker)))
    if quote is None or not is_fresh(quote, now or utcnow(), max_age_s):
        return None
    return quote


def _blocking_timeout(client: aioredis.Redis, timeout_s: float) -> float:
    """BLPOP must return before the connection's own socket timeout fires."""
    socket_timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if isinstance(socket_timeout, int | float) and socket_timeout > SOCKET_MARGIN_S * 2:
        return max(min(timeout_s, socket_timeout - SOCKET_MARGIN_S), 0.01)
    return max(timeout_s, 0.01)


async def request_quote(
    client: aioredis.Redis,
    market: Market,
    ticker: str,
    timeout_s: float,
    *,
    account: str | None = None,
    wait_s: float = 0.0,
    requester: str = "om",
) -> Quote | None:
    """Ask the gateway for a quote and wait for its reply (None on timeout or refusal).

    ``wait_s`` longer than ``timeout_s``: a gateway that does not answer (it is restarting) is
    asked again every ``timeout_s`` until ``wait_s`` has passed, and the first answer to any of
    the requests counts. A refusal ends the wait at once.
    """
    deadline = time.monotonic() + max(timeout_s, wait_s)
    replies: list[str] = []
    while True:
        request = QuoteRequested(request_id=f"{requester}-{new_id()}", market=market, ticker=ticker, account=account)
        replies.append(keys.reply(request.request_id))
        remaining = deadline - time.monotonic()
        try:
            await publish(client, keys.QUERY_STREAMS[requester], request, maxlen=QUERY_STREAM_MAXLEN)
            answer = await client.blpop(replies, timeout=_blocking_timeout(client, min(timeout_s, remaining)))
        except (RedisTimeoutError, TimeoutError):
            answer = None
        except RedisError as exc:
            logger.warning("quote request failed", extra={"ticker": ticker, "error": str(exc)})
            return None
        if answer:
            return parse_quote(answer[1])
        if time.monotonic() >= deadline - 0.01:
            logger.info("no quote answer in time", extra={"market": market.value, "ticker": ticker, "wait_s": wait_s})
            return None
        logger.warning("no quote answer yet; asking again", extra={"market": market.value, "ticker": ticker})


async def get_quote(
    client: aioredis.Redis,
    market: Market,
    ticker: str,
    timeout_s: float,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    now: datetime | None = None,
    account: str | None = None,
    wait_s: float = 0.0,
    requester: str = "om",
) -> Quote | None:
    """A fresh quote: the cache when fresh, else asked of the gateway; None if neither has one.
    ``requester``: the prefix of the reply key the caller's ACL lets it read (``om``, ``dash``)."""
    cached = parse_quote(await client.get(keys.quote(market.value, ticker)))
    return await quote_after_cache(
        client,
        market,
        ticker,
        cached,
        timeout_s,
        max_age_s=max_age_s,
        now=now,
        account=account,
        wait_s=wait_s,
        requester=requester,
    )


async def quote_after_cache(
    client: aioredis.Redis,
    market: Market,
    ticker: str,
    cached: Quote | None,
    timeout_s: float,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    now: datetime | None = None,
    account: str | None = None,
    wait_s: float = 0.0,
    requester: str = "om",
) -> Quote | None:
    """``get_quote`` once the cache has been read (``cached``: its quote, None when there is none)."""
    if cached is not None and is_fresh(cached, now or utcnow(), max_age_s):
        return cached
    quote = await request_quote(client, market, ticker, timeout_s, account=account, wait_s=wait_s, requester=requester)
    if quote is None or not is_fresh(quote, now or utcnow(), max_age_s):
        return None
    return quote
