"""One alert from request to answer: screen, authenticate, validate, then one Valkey call.

Knows nothing of HTTP frameworks: it gets the peer address, the headers and the body
chunks, and returns an ``Answer``. Every request ends in exactly one outcome counter.

Order of checks, cheapest and least revealing first:
1. the caller: source allowlist (403), client certificate (403), a secret in the URL when
   ``path_secret`` is off (401);
2. the envelope: media type (415), size (413), JSON object (422);
3. the secret (401): until here a refusal tells nothing about the alert's fields;
4. the owner's limits: alert rate per source (429), schema (422), age (422 stale);
5. ``yq_ingest``: dedupe key + append in one server function (200), or 503 with nothing written;
   with ``durable_ack`` the same round trip waits (``WAITAOF``) until Valkey has the alert on
   disk, so "accepted" survives a power cut as well as a crash (503 if the disk is too slow).
Refusals before step 3 are rate-limited per source on their own (429), which also bounds
the log lines a stranger can cause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from webhook.metrics import WebhookMetrics
from webhook.normalise import AlertError, canonical_strategy
from webhook.ratelimit import SourceRateLimiter
from webhook.schema import Alert, dedupe_key_of, to_signal
from webhook.security import (
    ClientCertificateCheck,
    SecretBook,
    client_address,
    in_networks,
    parse_address,
    parse_networks,
    rate_limit_key,
)
from webhook.spool import Spool, SpooledAlert, SpoolFull
from yquant import ingest, keys, valkey
from yquant.errors import ConfigurationError
from yquant.logs import correlation
from yquant.messages import SignalReceived, encode
from yquant.settings import DEFAULT_STRATEGY, Settings

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPES = frozenset({"application/json", "text/plain", ""})
UNTIMED_DEDUPE_TTL_S = 60  # alerts with neither id nor fired_at: identical within a minute = a resend
MAX_DEDUPE_TTL_S = 90 * 86_400  # the bound yq_ingest enforces
UTF8_BOM = b"\xef\xbb\xbf"
OUTCOMES = ("accepted", "spooled", "duplicate", "stale", "unauthorised", "invalid", "rate_limited", "unavailable")
REASONS = {
    "stale": ("too_old", "in_future"),
    "unauthorised": ("secret", "path_secret", "source_address", "client_certificate"),
    "invalid": (
        "unsupported_media_type",
        "too_large",
        "bad_request",
        "not_json",
        "not_an_object",
        "missing_field",
        "unknown_field",
        "bad_field",
        "bad_ticker",
        "bad_exchange",
        "limit_without_price",
        "missing_fired_at",
        "unknown_strategy",
        "body_timeout",
    ),
    "rate_limited": ("alerts", "rejections"),
}


class BodyIncomplete(Exception):
    """The client went away before the body was complete."""


@dataclass(frozen=True, slots=True)
class Caller:
    """What the HTTP layer knows about a request, before its body."""

    peer: str
    headers: Mapping[str, Sequence[str]]  # lower-case name -> every value sent
    path_token: str | None = None

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, str]
    outcome: str
    headers: dict[str, str] = field(default_factory=dict)


def check_settings(settings: Settings) -> None:
    """Refuse contradictory webhook settings at start, not on the first alert."""
    webhook = settings.webhook
    if webhook.dedupe_ttl_s <= webhook.max_age_s + webhook.clock_skew_s:
        raise ConfigurationError("webhook.dedupe_ttl_s must exceed max_age_s + clock_skew_s, or resends slip through")
    if webhook.dedupe_ttl_s > MAX_DEDUPE_TTL_S:
        raise ConfigurationError(f"webhook.dedupe_ttl_s must be at most {MAX_DEDUPE_TTL_S} (yq_ingest's bound)")
    if webhook.require_client_cert and not webhook.trusted_proxies:
        raise ConfigurationError("webhook.require_client_cert needs the TLS terminator in webhook.trusted_proxies")
    if webhook.max_body_bytes < 256:
        raise ConfigurationError("webhook.max_body_bytes below 256 bytes cannot hold an alert")


def configured_strategies(settings: Settings) -> frozenset[str]:
    """The strategy names the order manager trades: the configured ones, else its default one."""
    if settings.strategies:
        return frozenset(settings.strategies)
    return frozenset({DEFAULT_STRATEGY})


async def _wait_either(stop: asyncio.Event, event: asyncio.Event | None, timeout_s: float | None) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if event is not None:
        waiters.append(asyncio.ensure_future(event.wait()))
    _done, pending = await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()


class NotOnDisk(Exception):
    """Valkey has the alert but did not fsync it within the wait: not acknowledged."""


class AlertIntake:
    def __init__(self, settings: Settings, client: aioredis.Redis, metrics: WebhookMetrics) -> None:
        check_settings(settings)
        self.settings = settings.webhook
        self.client = client
        self.metrics = metrics
        self.load_functions = settings.valkey.load_functions
        self.stream_maxlen = settings.bus.stream_maxlen
        self.durable_ack = settings.webhook.durable_ack
        spool_dir = settings.webhook.spool_dir or settings.state_dir / "webhook-spool"
        self.spool = (
            Spool(spool_dir, settings.webhook.spool_max_alerts) if settings.webhook.spool_max_alerts > 0 else None
        )
        self._spooled = asyncio.Event()
        # WAITAOF must give up before the connection's socket timeout does.
        self.durable_timeout_ms = max(int(settings.webhook.valkey_timeout_s * 500), 1)
        self.secrets = SecretBook(
            self.settings.secret,
            {name: strategy.secret for name, strategy in settings.strategies.items() if strategy.secret is not None},
        )
        self.strategies = configured_strategies(settings)
        self.trusted_proxies = parse_networks(self.settings.trusted_proxies, "webhook.trusted_proxies")
        self.allowed = (
            parse_networks(self.settings.allowed_ips, "webhook.allowed_ips")
            if self.settings.allowlist_enabled
            else None
        )
        self.certificate = (
            ClientCertificateCheck(
                subject_header=self.settings.client_cert_header,
                required_subject=self.settings.client_cert_subject,
                verify_header=self.settings.client_cert_verify_header,
                verify_value=self.settings.client_cert_verify_value,
            )
            if self.settings.require_client_cert
            else None
        )
        self.alert_limiter = SourceRateLimiter(self.settings.rate_limit_per_min)
        self.rejection_limiter = SourceRateLimiter(self.settings.rejections_per_min)
        self.max_age = timedelta(seconds=self.settings.max_age_s + self.settings.clock_skew_s)
        self.max_ahead = timedelta(seconds=self.settings.clock_skew_s)

    async def receive(self, caller: Caller, body: AsyncIterator[bytes]) -> Answer:
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        self.metrics.received.inc()
        answer = await self._receive(caller, body, received_at)
        self.metrics.response_seconds.observe(answer.outcome, time.perf_counter() - started)
        return answer

    async def _receive(self, caller: Caller, body: AsyncIterator[bytes], received_at: datetime) -> Answer:
        source = client_address(caller.peer, caller.headers.get("x-forwarded-for", ()), self.trusted_proxies)
        if self.allowed is not None and not in_networks(parse_address(source), self.allowed):
            return self._refuse_stranger(source, 403, "unauthorised", "source_address", "source address not allowed")
        if self.certificate is not None and not self._certificate_passes(caller):
            return self._refuse_stranger(
                source, 403, "unauthorised", "client_certificate", "client certificate missing or not TradingView's"
            )
        if caller.path_token is not None and not self.settings.path_secret:
            # Before the body and the secret: the answer says nothing of whether the token was right.
            return self._refuse_stranger(
                source, 401, "unauthorised", "path_secret", "secret in the URL is turned off: put it in the message"
            )
        media_type = (caller.header("content-type") or "").split(";", 1)[0].strip().lower()
        encoding = (caller.header("content-encoding") or "identity").strip().lower()
        if media_type not in JSON_MEDIA_TYPES or encoding != "identity":
            return self._refuse_stranger(
                source, 415, "invalid", "unsupported_media_type", "send application/json or text/plain, uncompressed"
            )
        limit = self.settings.max_body_bytes
        declared = caller.header("content-length")
        length = _length(declared) if declared is not None else 0
        if length is None:
            return self._refuse_stranger(source, 400, "invalid", "bad_request", "Content-Length is not a number")
        if length > limit:
            return self._refuse_stranger(source, 413, "invalid", "too_large", f"body over {limit} bytes")
        try:
            async with asyncio.timeout(self.settings.body_timeout_s):
                raw = await _read_limited(body, limit)
        except BodyIncomplete:
            return self._refuse_stranger(source, 400, "invalid", "bad_request", "body incomplete")
        except TimeoutError:
            detail = f"body not complete within {self.settings.body_timeout_s:g} s"
            return self._refuse_stranger(source, 408, "invalid", "body_timeout", detail)
        if raw is None:
            return self._refuse_stranger(source, 413, "invalid", "too_large", f"body over {limit} bytes")
        try:
            data = orjson.loads(raw.removeprefix(UTF8_BOM))
        except orjson.JSONDecodeError:
            return self._refuse_stranger(
                source, 422, "invalid", "not_json", "body is not JSON: check the alert message (quotes, commas)"
            )
        if not isinstance(data, dict):
            return self._refuse_stranger(source, 422, "invalid", "not_an_object", "body must be a JSON object")
        strategy = canonical_strategy(data.get("strategy"))
        presented = caller.path_token if caller.path_token is not None else data.get("secret")
        if not self.secrets.verify(strategy, presented):
            # The same answer for an unknown strategy and a wrong secret: reveal nothing.
            return self._refuse_stranger(source, 401, "unauthorised", "secret", "missing or wrong secret")
        if strategy not in self.strategies:
            # Authenticated (the global secret): telling the owner the name is unknown reveals nothing.
            known = ", ".join(sorted(self.strategies))
            return self._refuse(
                source, 422, "invalid", "unknown_strategy", f"strategy {strategy!r} is not configured; known: {known}"
            )
        if not self.alert_limiter.allow(rate_limit_key(source)):
            return self._refuse(
                source,
                429,
                "rate_limited",
                "alerts",
                "too many alerts from this source",
                headers={"Retry-After": str(self.alert_limiter.retry_after_s(rate_limit_key(source)))},
            )
        return await self._accept(data, source, received_at)

    async def _accept(self, data: dict[str, object], source: str, received_at: datetime) -> Answer:
        try:
            alert = Alert.model_validate(data)
            signal = to_signal(alert, received_at)
        except ValidationError as exc:
            code, detail = _describe(exc)
            return self._refuse(source, 422, "invalid", code, detail)
        except AlertError as exc:
            return self._refuse(source, 422, "invalid", exc.code, exc.message)
        if signal.fired_at is None:
            if self.settings.require_fired_at:
                return self._refuse(source, 422, "invalid", "missing_fired_at", 'add "fired_at": "{{timenow}}"')
        else:
            age = received_at - signal.fired_at
            if age > self.max_age:
                limit = self.settings.max_age_s
                detail = f"alert fired {age.total_seconds():.0f} s ago; the limit is {limit:g} s"
                return self._refuse(source, 422, "stale", "too_old", detail)
            if age < -self.max_ahead:
                return self._refuse(source, 422, "stale", "in_future", "alert fired in the future: check the clocks")
        message = SignalReceived(correlation_id=signal.signal_id, signal=signal)
        ttl = self.settings.dedupe_ttl_s if (alert.id or signal.fired_at) else UNTIMED_DEDUPE_TTL_S
        dedupe_key = keys.signal_dedupe(dedupe_key_of(signal.signal_id))
        with correlation(signal.signal_id):
            if self.spool is not None:
                first_id = self.spool.keys.get(dedupe_key)
                if first_id is not None:
                    self.metrics.duplicate.inc()
                    return Answer(200, {"status": "duplicate", "signal_id": first_id}, "duplicate")
                if len(self.spool):  # still forwarding: join the end, so the order is kept
                    return await self._spool(source, SpooledAlert(dedupe_key, ttl, encode(message), signal.signal_id))
            try:
                entry = await self._ingest(dedupe_key, ttl, encode(message), signal.signal_id)
            except NotOnDisk:
                logger.error(
                    "alert not on disk in time; not acknowledged", extra={"timeout_ms": self.durable_timeout_ms}
                )
                return self._refuse(
                    source,
                    503,
                    "unavailable",
                    "not_durable",
                    "queue too slow to persist, retry",
                    headers={"Retry-After": "5"},
                )
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self.spool is not None:
                    logger.warning("valkey unreachable; spooling the alert", extra={"error": str(exc)[:200]})
                    return await self._spool(source, SpooledAlert(dedupe_key, ttl, encode(message), signal.signal_id))
                logger.error("valkey unavailable; alert not accepted", extra={"error": str(exc)[:200]})
                return self._refuse(
                    source, 503, "unavailable", "valkey", "queue unavailable, retry", headers={"Retry-After": "5"}
                )
            except RedisError as exc:
                logger.error("valkey unavailable; alert not accepted", extra={"error": str(exc)[:200]})
                return self._refuse(
                    source, 503, "unavailable", "valkey", "queue unavailable, retry", headers={"Retry-After": "5"}
                )
            if isinstance(entry, list) and entry and entry[0] == 0:
                first_id = keys.text(entry[1]) if len(entry) > 1 else ""
                self.metrics.duplicate.inc()
                logger.info("resend dropped", extra={"strategy": signal.strategy, "source": source})
                return Answer(200, {"status": "duplicate", "signal_id": first_id or signal.signal_id}, "duplicate")
            self.metrics.accepted.inc()
            logger.info(
                "alert accepted",
                extra={
                    "strategy": signal.strategy,
                    "ticker": signal.ticker,
                    "market": signal.market.value,
                    "action": signal.action.value,
                    "source": source,
                },
            )
        return Answer(200, {"status": "accepted", "signal_id": signal.signal_id}, "accepted")

    async def _spool(self, source: str, alert: SpooledAlert) -> Answer:
        assert self.spool is not None
        try:
            await self.spool.append(alert)
        except SpoolFull:
            logger.error("spool full; alert not accepted", extra={"max_alerts": self.spool.max_alerts})
            return self._refuse(
                source, 503, "unavailable", "spool_full", "queue unavailable, retry", headers={"Retry-After": "5"}
            )
        except OSError as exc:
            logger.error("spool not writable; alert not accepted", extra={"error": str(exc)[:200]})
            return self._refuse(
                source, 503, "unavailable", "valkey", "queue unavailable, retry", headers={"Retry-After": "5"}
            )
        self.metrics.spooled.inc()
        self.metrics.spool_depth.set(len(self.spool))
        self._spooled.set()
        return Answer(202, {"status": "spooled", "signal_id": alert.signal_id}, "spooled")

    async def forward_spool(self, stop: asyncio.Event, retry_s: float = 1.0) -> None:
        """Hand the journal to Valkey in order, until ``stop``; waits while Valkey is away."""
        if self.spool is None:
            return
        try:
            self.spool.load()
        except OSError as exc:
            logger.error("spool folder not usable; alerts get 503 while Valkey is away", extra={"error": str(exc)})
            self.spool = None
            return
        self.metrics.spool_depth.set(len(self.spool))
        while not stop.is_set():
            if not len(self.spool):
                self._spooled.clear()
                await _wait_either(stop, self._spooled, None)
                continue
            alert = self.spool.pending[0]
            try:
                await self._ingest(alert.dedupe_key, alert.ttl, alert.payload, alert.signal_id)
            except (RedisError, OSError, NotOnDisk) as exc:
                logger.warning("spool not forwarded yet", extra={"error": str(exc)[:200], "depth": len(self.spool)})
                await _wait_either(stop, None, retry_s)
                continue
            await self.spool.mark_forwarded(alert)
            self.metrics.forwarded.inc()
            self.metrics.spool_depth.set(len(self.spool))
            if not len(self.spool):
                logger.warning("spool forwarded")

    async def _ingest(self, dedupe_key: str, ttl: int, payload: bytes, signal_id: str) -> object:
        """SET NX + XADD in one server function: a resend returns 0, a failure writes nothing.

        One more try, safe because the call is idempotent, when the pooled connection died since
        its last use (Valkey restarted) or the function library is missing (restarted empty).
        """
        call = ingest.arguments(dedupe_key, keys.SIGNALS_WEBHOOK, ttl, self.stream_maxlen, payload, signal_id)
        reconnected = reloaded = False
        while True:
            try:
                if not self.durable_ack:
                    return await self.client.fcall(ingest.FUNCTION, ingest.NUMKEYS, *call)
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.fcall(ingest.FUNCTION, ingest.NUMKEYS, *call)
                    pipe.execute_command("WAITAOF", 1, 0, self.durable_timeout_ms)
                    entry, (on_disk, _replicas) = await pipe.execute()
                if int(on_disk) < 1:
                    raise NotOnDisk
                return entry
            except RedisConnectionError:
                if reconnected:
                    raise
                reconnected = True
                logger.warning("valkey connection lost; trying once more")
            except ResponseError as exc:
                if "appendonly" in str(exc).lower():
                    logger.error("webhook.durable_ack needs Valkey's appendonly yes (or durable_ack false)")
                    raise NotOnDisk from exc
                if reloaded or not (self.load_functions and "function not found" in str(exc).lower()):
                    raise
                reloaded = True
                logger.warning("server functions missing (Valkey restarted empty?); loading them")
                await valkey.load_functions(self.client)

    def _certificate_passes(self, caller: Caller) -> bool:
        assert self.certificate is not None
        from_proxy = in_networks(parse_address(caller.peer), self.trusted_proxies)
        return from_proxy and self.certificate.passes(caller.headers)

    def _refuse_stranger(self, source: str, status: int, error: str, code: str, detail: str) -> Answer:
        """A refusal before authentication: past the per-source budget it becomes a quiet 429."""
        if not self.rejection_limiter.allow(rate_limit_key(source)):
            self.metrics.rate_limited.inc("rejections")
            logger.debug("rejections rate-limited", extra={"source": source})
            retry_after = str(self.rejection_limiter.retry_after_s(rate_limit_key(source)))
            body = {
                "status": "rejected",
                "error": "rate_limited",
                "code": "rejections",
                "reason": "too many rejected requests",
            }
            return Answer(429, body, "rate_limited", {"Retry-After": retry_after})
        return self._refuse(source, status, error, code, detail)

    def _refuse(
        self,
        source: str,
        status: int,
        error: str,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        self.metrics.count_refusal(error, code)
        if error != "unavailable":
            logger.info("alert refused", extra={"status": status, "error": error, "code": code, "source": source})
        body = {"status": "rejected", "error": error, "code": code, "reason": detail}
        return Answer(status, body, error, headers or {})


def _length(declared: str) -> int | None:
    """A Content-Length value, or None when it is not a plain decimal number."""
    text = declared.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text) if len(text) <= 18 else 10**18


async def _read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it exceeds ``limit`` bytes."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > limit:
            return None
    return bytes(buffer)


def _describe(error: ValidationError) -> tuple[str, str]:
    """A reason code and one short sentence naming the first bad field; never the value sent."""
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))[:64] or "body"
    kind = first.get("type", "")
    if kind == "missing":
        return "missing_field", f"{where}: required"
    if kind == "extra_forbidden":
        return "unknown_field", f"{where}: unknown field (free-form values go under meta)"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return "bad_field", f"{where}: {message}"[:200]
