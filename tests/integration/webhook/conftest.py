"""The webhook app on the session's real Valkey, reached through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from starlette.applications import Starlette

from tests.replies import xrange
from tests.unit.webhook import tradingview
from webhook.app import create_app
from yquant import keys
from yquant.messages import SignalReceived, decode
from yquant.settings import Settings, StrategySettings

SECRET = "test-secret"  # the session settings' global secret
TRADINGVIEW = ("52.89.214.238", 443)

WebhookClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def configure(settings: Settings, strategies: dict[str, str | None] | None = None, **webhook: Any) -> Settings:
    """The session settings with webhook overrides and strategies (a secret each, or None: the global one)."""
    updated = settings.model_copy(update={"webhook": settings.webhook.model_copy(update=webhook)})
    if strategies:
        configured = {
            name: StrategySettings(accounts=["main"], secret=None if secret is None else SecretStr(secret))
            for name, secret in strategies.items()
        }
        updated = updated.model_copy(update={"strategies": configured})
    return updated


@pytest.fixture
def webhook_client(settings: Settings, redis_client: aioredis.Redis) -> WebhookClient:
    """``async with webhook_client(peer=..., **webhook_overrides) as http``: a fresh app per block."""

    @asynccontextmanager
    async def open_client(
        peer: tuple[str, int] = TRADINGVIEW,
        strategies: dict[str, str | None] | None = None,
        app: Starlette | None = None,
        **webhook: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        application = app or create_app(configure(settings, strategies, **webhook), redis_client)
        transport = httpx.ASGITransport(app=application, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as http:
            yield http

    return open_client


async def appended(client: aioredis.Redis) -> list[SignalReceived]:
    """Every SignalReceived on the signal stream, oldest first."""
    entries = await xrange(client, keys.SIGNALS_WEBHOOK)
    messages = [decode(fields[b"data"]) for _, fields in entries]
    assert all(isinstance(message, SignalReceived) for message in messages)
    return [message for message in messages if isinstance(message, SignalReceived)]


def strategy_alert(secret: str = SECRET, **values: str) -> tuple[str, dict[str, str]]:
    """The docs' strategy template as TradingView sends it: (body, headers)."""
    template = tradingview.templates()["strategy"]
    message = tradingview.fill(template, tradingview.strategy_fill(**values), secret)
    return message, {"content-type": tradingview.content_type(template)}


def indicator_alert(secret: str = SECRET, **values: str) -> tuple[str, dict[str, str]]:
    template = tradingview.templates()["indicator"]
    message = tradingview.fill(template, tradingview.indicator_fill(**values), secret)
    return message, {"content-type": tradingview.content_type(template)}
