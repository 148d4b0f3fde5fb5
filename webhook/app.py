"""The webhook's HTTP app: validate + one Valkey round trip, nothing slow in a request."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError
from redis.exceptions import RedisError

from webhook.schema import Alert, AlertError, to_signal
from yquant import keys
from yquant.logs import correlation
from yquant.messages import SignalReceived
from yquant.settings import Settings, effective_strategies

logger = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "text/plain", "")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter("yquant_webhook_received", "Alerts received", registry=self.registry)
        self.outcomes = Counter(
            "yquant_webhook_outcomes",
            "Alerts by outcome (accepted, duplicate, stale, unauthorised, invalid, ...)",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "yquant_webhook_response_seconds",
            "Time to answer an alert",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )


class SourceRateLimiter:
    """A token bucket per source address, bounded in the number of sources it remembers."""

    def __init__(self, per_minute: int, max_sources: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(per_minute, 1))
        self.max_sources = max_sources
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, source: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, last = self.buckets.pop(source, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self.buckets[source] = (tokens - 1.0 if allowed else tokens, now)
        if len(self.buckets) > self.max_sources:
            self.buckets.popitem(last=False)
        return allowed


def reply(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    """The sender's address; X-Forwarded-For is believed only from a configured proxy."""
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not _in_networks(peer, trusted_proxies):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in_networks(hop, trusted_proxies):
            return hop
    return peer


def _in_networks(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def create_app(settings: Settings, client: aioredis.Redis) -> FastAPI:
    app = FastAPI(title="yQuant webhook", version="1", docs_url=None, redoc_url=None)
    cfg = settings.webhook
    metrics = Metrics()
    limiter = SourceRateLimiter(cfg.rate_limit_per_min)
    strategies = effective_strategies(settings)
    global_secret = cfg.secret.get_secret_value().encode() if cfg.secret else None
    strategy_secrets = {
        name: s.secret.get_secret_value().encode() for name, s in strategies.items() if s.secret is not None
    }
    maxlen = settings.bus.stream_maxlen
    app.state.metrics = metrics

    def refuse(status: int, outcome: str, reason: str, started: float) -> Response:
        metrics.outcomes.labels(outcome, reason).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return reply(status, {"status": "rejected", "error": outcome, "reason": reason})

    def authorised(strategy: str, presented: bytes | None) -> bool:
        expected = strategy_secrets.get(strategy, global_secret)
        if expected is None or presented is None:
            return False
        return hmac.compare_digest(expected, presented)

    async def ingest(request: Request, path_token: str | None) -> Response:
        started = time.perf_counter()
        metrics.received.inc()
        source = client_address(request, cfg.trusted_proxies)
        if cfg.allowlist_enabled and not _in_networks(source, cfg.allowed_ips):
            return refuse(403, "forbidden", "source address not allowed", started)
        if not limiter.allow(source):
            return refuse(429, "rate_limited", "too many alerts from this source", started)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            return refuse(415, "unsupported_media_type", "send application/json or text/plain", started)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cfg.max_body_bytes):
            return refuse(413, "too_large", f"body over {cfg.max_body_bytes} bytes", started)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > cfg.max_body_bytes:
                return refuse(413, "too_large", f"body over {cfg.max_body_bytes} bytes", started)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return refuse(422, "invalid", "body is not valid JSON (check the alert message template)", started)
        if not isinstance(data, dict):
            return refuse(422, "invalid", "body must be a JSON object", started)
        presented_raw = path_token if path_token is not None else data.get("secret")
        strategy_name = data.get("strategy")
        presented = presented_raw.encode() if isinstance(presented_raw, str) else None
        if not isinstance(strategy_name, str) or not authorised(strategy_name, presented):
            # Same answer for an unknown strategy and a wrong secret: reveal nothing.
            return refuse(401, "unauthorised", "missing or wrong secret", started)
        received_at = datetime.now(UTC)
        try:
            alert = Alert.model_validate(data)
            signal = to_signal(alert, received_at)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return refuse(422, "invalid", f"{where}: {first.get('msg', 'invalid')}", started)
        except AlertError as exc:
            return refuse(422, "invalid", str(exc), started)
        if signal.fired_at is not None:
            age = received_at - signal.fired_at
            if age > timedelta(seconds=cfg.max_age_s + cfg.clock_skew_s):
                return refuse(422, "stale", f"alert fired {age.total_seconds():.0f}s ago", started)
            if age < -timedelta(seconds=cfg.clock_skew_s):
                return refuse(422, "stale", "alert fired in the future (check the clock)", started)
        message = SignalReceived(correlation_id=signal.signal_id, signal=signal)
        ttl = cfg.dedupe_ttl_s if (alert.id or signal.fired_at) else min(cfg.dedupe_ttl_s, 60)
        try:
            entry = await client.fcall(
                "yq_ingest",
                2,
                keys.signal_dedupe(signal.signal_id),
                keys.SIGNALS,
                ttl,
                maxlen,
                "SignalReceived",
                message.model_dump_json(),
            )
        except (RedisError, OSError) as exc:
            logger.error("valkey unavailable; alert not accepted", extra={"error": str(exc)})
            return refuse(503, "unavailable", "queue unavailable, retry", started)
        with correlation(signal.signal_id):
            if entry == 0:
                metrics.outcomes.labels("duplicate", "").inc()
                metrics.latency.observe(time.perf_counter() - started)
                logger.info("duplicate alert dropped", extra={"strategy": signal.strategy})
                return reply(200, {"status": "duplicate", "signal_id": signal.signal_id})
            metrics.outcomes.labels("accepted", "").inc()
            metrics.latency.observe(time.perf_counter() - started)
            logger.info(
                "alert accepted",
                extra={"strategy": signal.strategy, "ticker": signal.ticker, "action": signal.action.value},
            )
        return reply(200, {"status": "accepted", "signal_id": signal.signal_id})

    @app.post("/webhook")
    async def webhook(request: Request) -> Response:
        return await ingest(request, None)

    @app.post("/webhook/{token}")
    async def webhook_with_token(request: Request, token: str) -> Response:
        return await ingest(request, token)

    @app.get("/healthz")
    async def healthz() -> Response:
        return reply(200, {"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            await client.ping()
        except (RedisError, OSError):
            return reply(503, {"status": "valkey unavailable"})
        return reply(200, {"status": "ready"})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
