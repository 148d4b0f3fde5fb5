"""Composition root of the webhook: settings, Valkey client, app, server."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys

import uvicorn
from redis.exceptions import RedisError

from webhook.app import create_app
from webhook.server import guarded_protocol
from yquant import logs, valkey
from yquant.errors import ConfigurationError
from yquant.runtime import heartbeat_loop, run_service
from yquant.settings import Settings, get_settings

logger = logging.getLogger("webhook")

MIN_PRODUCTION_SECRET_LENGTH = 16


def check_secrets(settings: Settings) -> None:
    """At least one secret; in production none short enough to guess."""
    secrets = [settings.webhook.secret] + [strategy.secret for strategy in settings.strategies.values()]
    values = [secret.get_secret_value() for secret in secrets if secret is not None and secret.get_secret_value()]
    if not values:
        raise ConfigurationError("no webhook secret: set YQ_WEBHOOK__SECRET (or a secret per strategy)")
    if settings.environment == "production" and min(len(value) for value in values) < MIN_PRODUCTION_SECRET_LENGTH:
        raise ConfigurationError(
            f"webhook secrets must have at least {MIN_PRODUCTION_SECRET_LENGTH} characters in production"
        )


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    return listener


async def main() -> None:
    settings = get_settings()
    logs.configure("webhook", settings.log_level, settings.log_json)
    check_secrets(settings)
    # Tighter than the shared default: answer 503 well before TradingView's 3 s timeout.
    timeout = settings.webhook.valkey_timeout_s
    client = valkey.connect(settings.valkey.model_copy(update={"socket_timeout_s": timeout}))
    try:
        app = create_app(settings, client)
    except ConfigurationError:
        await client.aclose()
        raise  # run_service: one line on stderr, exit 78
    try:
        await valkey.ensure_functions(client, settings.valkey)
    except (RedisError, OSError) as exc:  # Valkey may come later: alerts get 503 until then
        logger.warning("valkey unavailable at start", extra={"error": str(exc)[:200]})
    config = uvicorn.Config(
        app,
        host=settings.webhook.host,
        port=settings.webhook.port,
        loop="uvloop",
        http=guarded_protocol(settings.webhook.header_timeout_s),
        ws="none",
        lifespan="off",
        access_log=False,  # the path may carry the secret
        log_level="warning",
        server_header=False,
        date_header=False,
        proxy_headers=False,  # X-Forwarded-For is judged by the app against trusted proxies
        timeout_keep_alive=max(1, round(settings.webhook.keep_alive_timeout_s)),
        limit_concurrency=settings.webhook.max_connections,  # beyond it: 503 at once, nothing queued
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT while serving, then re-raises them to the handler it found:
    # this one, so the process drains, closes its client and exits 0 (the default would kill it).
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda _signal, _frame: setattr(server, "should_exit", True))
    # Bound here, not by uvicorn: its bind resolves the host on the loop's thread pool (four idle threads).
    listener = listening_socket(settings.webhook.host, settings.webhook.port)
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat_loop(client, "webhook", settings.instance, stop))
    forwarder = asyncio.create_task(app.state.intake.forward_spool(stop))
    logger.info("webhook listening", extra={"host": settings.webhook.host, "port": settings.webhook.port})
    try:
        await server.serve(sockets=[listener])
    finally:
        stop.set()
        await beat
        await forwarder
        await client.aclose()


if __name__ == "__main__":
    sys.exit(run_service("webhook", main))
