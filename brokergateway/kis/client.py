"""The KIS REST transport for one account: headers, token, pacing, error translation, retries.

Commands (orders) are never re-sent once they may have reached KIS: a timeout or reset
raises ``BrokerTransportError``/``BrokerTimeout`` and the caller reconciles. Answers that
prove KIS refused the request before booking it (rate limit, expired token) are retried.
Queries are also retried after a transport failure: reading twice does no harm.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from brokergateway import metrics
from brokergateway.kis import trids
from brokergateway.kis.errors import check, from_transport
from yquant.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerTransportError,
    BrokerUnreachable,
    TokenExpired,
    TokenInvalid,
)

logger = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 4
TRANSPORT_RETRIES = 2
MAX_PAGES = 50


class _NoCookies(http.cookiejar.CookieJar):
    """Keeps no cookie. KIS authenticates by headers alone; a cookie it set would otherwise go
    back with every later request, and httpx copies each answer's headers for the jar (about 3 %
    of a request's CPU: ``benchmarks/http_clients.py --clients httpx,httpx-nocookies``)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


def http_pool(timeout_s: float) -> httpx.AsyncClient:
    """The gateway's HTTP client for KIS: a small pool kept alive, no proxy settings from the
    environment, no cookies. KIS allows at most 18 requests/s per account, and httpcore scans
    every pooled connection for each request (a large pool churned and cost ~5 ms of CPU per
    order under load)."""
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=60)
    return httpx.AsyncClient(timeout=timeout_s, limits=limits, trust_env=False, cookies=_NoCookies())


class TokenSource(Protocol):
    """What the client needs of ``tokens.TokenManager``."""

    async def get(self) -> str: ...

    async def refresh_after_expiry(self, stale_token: str) -> str: ...


class Pacer(Protocol):
    """What the client and the order path need of ``ratelimit.RateLimiter``: wait for a
    request slot, stamp a slot taken early again just before its request goes out, and take a
    slot only when the window has room to spare (never waiting)."""

    async def acquire(self) -> str: ...

    async def confirm(self, member: str) -> None: ...

    async def try_spare(self) -> str | None: ...


@dataclass(frozen=True)
class AccountRef:
    alias: str
    cano: str
    product_code: str
    app_key: str
    app_secret: str
    env: trids.Env

    @property
    def number(self) -> str:
        """CANO + ACNT_PRDT_CD, as KIS writes the account in execution notices."""
        return self.cano + self.product_code


@dataclass(frozen=True)
class Page:
    body: dict[str, Any]
    has_more: bool


class KisClient:
    def __init__(
        self,
        account: AccountRef,
        http: httpx.AsyncClient,
        base_url: str,
        tokens: TokenSource,
        limiter: Pacer,
        *,
        order_timeout_s: float = 5.0,
        max_in_flight: int = 8,
        retry_delay_s: float = 0.2,
    ) -> None:
        self.account = account
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.limiter = limiter
        self.order_timeout_s = order_timeout_s
        self.retry_delay_s = retry_delay_s
        # Requests wait here rather than in httpcore's pool, whose wake-up scans every
        # waiting request and connection (quadratic under a burst). The pacing slot is taken
        # inside, right before the request leaves, so a slot is never spent long before use.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._static_headers = {
            "content-type": "application/json; charset=utf-8",
            "appkey": account.app_key,
            "appsecret": account.app_secret,
            "custtype": "P",
        }

    @property
    def env(self) -> trids.Env:
        return self.account.env

    # --- plumbing ---------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        path: str,
        tr_id: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
        tr_cont: str = "",
        timeout: float | None = None,
        slot: str | None = None,
    ) -> httpx.Response:
        endpoint = path.rsplit("/", 1)[-1]
        async with self._in_flight:
            token = await self.tokens.get()
            headers = dict(self._static_headers)
            headers["authorization"] = f"Bearer {token}"
            headers["tr_id"] = tr_id
            headers["tr_cont"] = tr_cont
            # A slot taken before the order was marked SUBMITTING is stamped again here, after the
            # in-flight bound, so time spent queued does not count as a send in the window.
            if slot is None:
                await self.limiter.acquire()
            else:
                await self.limiter.confirm(slot)
            started = time.perf_counter()
            try:
                return await self.http.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as exc:
                error = from_transport(exc)
                metrics.KIS_ERRORS.labels(error.code).inc()
                raise error from exc
            finally:
                metrics.KIS_REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)

    @staticmethod
    def _checked(response: httpx.Response) -> dict[str, Any]:
        try:
            return check(response)
        except BrokerError as exc:
            metrics.KIS_ERRORS.labels(exc.code or f"HTTP{response.status_code}").inc()
            raise

    async def query(
        self, path: str, tr_id: str, params: dict[str, str], tr_cont: str = "", *, slot: str | None = None
    ) -> Page:
        """A read-only call: retried on rate limits and transport failures, once on an expired token.
        ``slot``: a pacing slot the caller already took, for the first try."""
        refreshed = False
        rate_limited = transport_failures = 0
        while True:
            try:
                response = await self._send("GET", path, tr_id, params=params, tr_cont=tr_cont, slot=slot)
                slot = None
                body = self._checked(response)
            except BrokerRateLimited:
                rate_limited += 1
                if rate_limited > RATE_LIMIT_RETRIES:
                    raise
                await asyncio.sleep(self.retry_delay_s * 2 ** (rate_limited - 1))
                continue
            except (BrokerTransportError, BrokerUnreachable):
                transport_failures += 1
                if transport_failures > TRANSPORT_RETRIES:
                    raise
                await asyncio.sleep(self.retry_delay_s * transport_failures)
                continue
            except (TokenExpired, TokenInvalid):
                if refreshed:
                    raise
                refreshed = True
                await self.tokens.refresh_after_expiry(_bearer(response.request))
                continue
            return Page(body, response.headers.get("tr_cont", "").strip() in ("F", "M"))

    async def command(self, path: str, tr_id: str, body: dict[str, str], *, slot: str | None = None) -> dict[str, Any]:
        """A state-changing call: never re-sent once it may have reached KIS.

        ``slot``: the pacing slot the caller already took (``limiter.acquire``); a retry takes a
        new one.

        Rate-limit and token answers mean KIS refused it before booking, and a failed
        connection means nothing left, so those are retried; a timeout, reset or unknown
        server error propagates for reconciliation.
        """
        refreshed = False
        rate_limited = unreachable = 0
        while True:
            try:
                response = await self._send("POST", path, tr_id, body=body, timeout=self.order_timeout_s, slot=slot)
            except BrokerUnreachable:
                slot = None
                unreachable += 1  # no connection was made: nothing left, so trying again is safe
                if unreachable > TRANSPORT_RETRIES:
                    raise
                await asyncio.sleep(self.retry_delay_s * unreachable)
                continue
            slot = None
            try:
                return self._checked(response)
            except BrokerRateLimited:
                rate_limited += 1
                if rate_limited > RATE_LIMIT_RETRIES:
                    raise
                await asyncio.sleep(self.retry_delay_s * 2 ** (rate_limited - 1))
            except (TokenExpired, TokenInvalid):
                if refreshed:
                    raise
                refreshed = True
                await self.tokens.refresh_after_expiry(_bearer(response.request))

    async def pages(
        self,
        path: str,
        tr_id: str,
        params: Callable[[str, str], dict[str, str]],
        context_width: int,
        max_pages: int = MAX_PAGES,
    ) -> AsyncIterator[Page]:
        """Every page of a continued query; ``params(fk, nk)`` builds each page's parameters."""
        fk = nk = tr_cont = ""
        for _ in range(max_pages):
            page = await self.query(path, tr_id, params(fk, nk), tr_cont)
            yield page
            if not page.has_more:
                return
            fk = str(page.body.get(f"ctx_area_fk{context_width}", ""))
            nk = str(page.body.get(f"ctx_area_nk{context_width}", ""))
            tr_cont = "N"
        logger.warning("stopped paging after %d pages", max_pages, extra={"path": path})


def _bearer(request: httpx.Request) -> str:
    value = str(request.headers.get("authorization", ""))
    return value.removeprefix("Bearer ").strip()
