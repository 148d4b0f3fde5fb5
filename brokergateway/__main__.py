"""Composition root of the broker gateway."""

from __future__ import annotations

import asyncio
import logging

import httpx
import uvloop
from prometheus_client import start_http_server

from brokergateway.kis.client import AccountRef, KisClient
from brokergateway.kis.tokens import TokenManager
from brokergateway.ratelimit import RateLimiter
from brokergateway.service import AccountWorker, Gateway
from yquant import keys, logs, valkey
from yquant.bus import Consumer
from yquant.runtime import heartbeat_loop, install_stop_handlers
from yquant.settings import (
    KIS_REAL_URL,
    KIS_VIRTUAL_URL,
    AccountSettings,
    Settings,
    effective_accounts,
    get_settings,
)

logger = logging.getLogger("brokergateway")


def build_workers(settings: Settings, client: object, http: httpx.AsyncClient) -> dict[str, AccountWorker]:
    import redis.asyncio as aioredis

    assert isinstance(client, aioredis.Redis)
    workers: dict[str, AccountWorker] = {}
    tokens: dict[str, TokenManager] = {}
    for alias, acct in effective_accounts(settings).items():
        base_url = settings.kis.rest_url or (KIS_REAL_URL if acct.env == "real" else KIS_VIRTUAL_URL)
        app_key = acct.app_key.get_secret_value()
        if app_key not in tokens:
            tokens[app_key] = TokenManager(client, http, base_url, app_key, acct.app_secret.get_secret_value())
        ref = AccountRef(alias, acct.cano, acct.product_code, app_key, acct.app_secret.get_secret_value(), acct.env)
        kis = KisClient(
            ref,
            http,
            base_url,
            tokens[app_key],
            RateLimiter(client, alias, _rate(settings, acct)),
            order_timeout_s=settings.kis.order_timeout_s,
        )
        workers[alias] = AccountWorker(alias, kis, acct.markets)
    return workers


def _rate(settings: Settings, acct: AccountSettings) -> float:
    if acct.rate_limit_per_s is None and settings.kis.rate_limit_per_s is not None:
        return settings.kis.rate_limit_per_s
    return acct.effective_rate_limit


async def main() -> None:
    settings = get_settings()
    logs.configure("brokergateway", settings.log_level, settings.log_json)
    client = valkey.connect(settings.valkey)
    await valkey.ensure_functions(client, settings.valkey)
    stop = asyncio.Event()
    install_stop_handlers(stop)
    if settings.gateway.metrics_port:
        start_http_server(settings.gateway.metrics_port, addr=settings.gateway.metrics_host)
    # A small pool kept alive: KIS allows at most 18 requests/s per account, and httpcore
    # scans every pooled connection for each request (a large pool churned and cost ~5 ms
    # of CPU per order under load).
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=60)
    async with httpx.AsyncClient(timeout=settings.kis.timeout_s, limits=limits, trust_env=False) as http:
        workers = build_workers(settings, client, http)
        gateway = Gateway(
            client,
            workers,
            maxlen=settings.bus.stream_maxlen,
            poll_interval_s=settings.kis.poll_interval_s,
            fill_check_delay_s=settings.gateway.fill_check_delay_s,
            sync_debounce_s=settings.gateway.sync_debounce_s,
            sync_interval_s=settings.kis.sync_interval_s,
        )
        await gateway.start()
        consumer = Consumer(
            client,
            stream=keys.ORDERS,
            group=keys.GROUP_BROKERGATEWAY,
            name=settings.instance,
            handler=gateway.handle,
            settings=settings.bus,
        )
        beat = asyncio.create_task(heartbeat_loop(client, "brokergateway", settings.instance, stop))
        background = asyncio.create_task(gateway.run_background(stop))
        logger.info("broker gateway started", extra={"accounts": sorted(workers)})
        await consumer.run(stop)
        await background
        await beat
    await client.aclose()
    logger.info("broker gateway stopped")


if __name__ == "__main__":
    uvloop.run(main())
