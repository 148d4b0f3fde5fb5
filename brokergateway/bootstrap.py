"""Wiring shared by ``__main__`` and the tests: settings -> KIS clients, workers, notice feeds, gateway."""

from __future__ import annotations

from collections import defaultdict

import httpx
import redis.asyncio as aioredis

from brokergateway.config import GatewayConfig
from brokergateway.kis import trids
from brokergateway.kis.client import AccountRef, KisClient
from brokergateway.kis.notices import NoticeFeed
from brokergateway.kis.tokens import TokenManager
from brokergateway.ratelimit import RateLimiter
from brokergateway.service import Gateway
from brokergateway.worker import AccountWorker, PollState
from yquant.errors import ConfigurationError
from yquant.messages import Market
from yquant.settings import (
    KIS_REAL_URL,
    KIS_VIRTUAL_URL,
    KIS_WS_REAL_URL,
    KIS_WS_VIRTUAL_URL,
    AccountSettings,
    Settings,
    effective_accounts,
)


def rest_url(settings: Settings, account: AccountSettings) -> str:
    return settings.kis.rest_url or (KIS_REAL_URL if account.env == "real" else KIS_VIRTUAL_URL)


def ws_url(settings: Settings, account: AccountSettings) -> str:
    return settings.kis.ws_url or (KIS_WS_REAL_URL if account.env == "real" else KIS_WS_VIRTUAL_URL)


def rate(settings: Settings, account: AccountSettings) -> float:
    if account.rate_limit_per_s is None and settings.kis.rate_limit_per_s is not None:
        return settings.kis.rate_limit_per_s
    return account.effective_rate_limit


def key_pair(alias: str, account: AccountSettings) -> tuple[str, str]:
    """The account's app key and secret, which the gateway (alone) cannot run without."""
    if account.app_key is None or account.app_secret is None:
        raise ConfigurationError(
            f"account {alias!r} has no KIS app key pair: set YQ_ACCOUNTS__{alias.upper()}__APP_KEY and __APP_SECRET"
        )
    return account.app_key.get_secret_value(), account.app_secret.get_secret_value()


def build_workers(
    settings: Settings, client: aioredis.Redis, http: httpx.AsyncClient
) -> tuple[dict[str, AccountWorker], dict[str, TokenManager]]:
    """One worker per account; one token manager per app key (returned by app key)."""
    accounts = effective_accounts(settings)
    credentials = {alias: key_pair(alias, account) for alias, account in accounts.items()}
    aliases_by_key: dict[str, list[str]] = defaultdict(list)
    for alias, (app_key, _) in credentials.items():
        aliases_by_key[app_key].append(alias)
    tokens: dict[str, TokenManager] = {}
    workers: dict[str, AccountWorker] = {}
    for alias, account in accounts.items():
        app_key, app_secret = credentials[alias]
        base_url = rest_url(settings, account)
        if app_key not in tokens:
            tokens[app_key] = TokenManager(
                client,
                http,
                base_url,
                app_key,
                app_secret,
                min_issue_interval_s=settings.kis.token_min_interval_s,
                label="+".join(sorted(aliases_by_key[app_key])),
            )
        ref = AccountRef(alias, account.cano, account.product_code, app_key, app_secret, account.env)
        per_second = rate(settings, account)
        limiter = RateLimiter(client, alias, per_second, margin_s=settings.kis.rate_limit_margin_s)
        kis = KisClient(ref, http, base_url, tokens[app_key], limiter, order_timeout_s=settings.kis.order_timeout_s)
        try:
            markets = [Market(market.strip().upper()) for market in account.markets]
        except ValueError as exc:
            raise ConfigurationError(f"account {alias!r} lists an unknown market: {account.markets}") from exc
        # A fill poll may take at most a third of a slow account's requests (virtual: one every 3 s).
        floor_s = 3 / per_second if per_second > 0 else 0.0
        workers[alias] = AccountWorker(alias, kis, markets, poll=PollState(floor_s=floor_s))
    return workers, tokens


def build_feeds(settings: Settings, gateway: Gateway, tokens: dict[str, TokenManager]) -> None:
    """One notice feed per app key, for the accounts that use it and have an HTS ID."""
    if not settings.kis.use_websocket:
        return
    accounts = effective_accounts(settings)
    groups: dict[str, list[AccountWorker]] = defaultdict(list)
    for alias, worker in gateway.workers.items():
        if accounts[alias].hts_id:
            groups[worker.kis.account.app_key].append(worker)
    for members in groups.values():
        first = accounts[members[0].alias]
        markets = sorted({m for w in members for m in w.markets}, key=lambda m: m.value)
        feed = NoticeFeed(
            tokens[members[0].kis.account.app_key],
            ws_url(settings, first),
            first.hts_id,
            trids.execution_notice_tr_ids(first.env, markets),
            gateway.notice_handler(members),
            reconnect_max_s=settings.kis.ws_reconnect_max_s,
        )
        for worker in members:
            worker.notices = feed
        gateway.add_feed(feed)


def build_gateway(
    settings: Settings,
    client: aioredis.Redis,
    http: httpx.AsyncClient,
    config: GatewayConfig | None = None,
) -> Gateway:
    """The gateway for ``settings``' accounts, with its notice feeds (not started)."""
    workers, tokens = build_workers(settings, client, http)
    gateway = Gateway(client, workers, config or GatewayConfig.from_settings(settings), settings.instance)
    build_feeds(settings, gateway, tokens)
    return gateway
