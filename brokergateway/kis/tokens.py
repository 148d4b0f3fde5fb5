"""KIS access tokens: one per app key, shared by every process through Valkey.

* reused until shortly before expiry (KIS returns the same token within 6 h anyway);
* issued under a lock, so two processes starting together issue once;
* never issued more often than KIS allows (``min_issue_interval_s``), even across
  processes: the time of the last issuance request is kept in Valkey, written before
  the request goes out (a request that timed out may still have issued a token);
* re-issued once when KIS says the token expired (EGW00123), unless another process
  already did.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from brokergateway import metrics
from brokergateway.kis.errors import check, from_transport
from yquant import keys
from yquant.bus import publish
from yquant.errors import BrokerError, TokenThrottled
from yquant.messages import TokenIssuance

logger = logging.getLogger(__name__)

SEOUL = ZoneInfo("Asia/Seoul")
REFRESH_MARGIN_S = 600  # re-issue this long before KIS's expiry
LOCK_TTL_MS = 15_000
LOCK_WAIT_S = 30.0
EXPIRY_SAFETY_S = 30  # a token this close to its expiry is not used when renewal fails
HEALTH_MAXLEN = 10_000
FAILING_TTL_S = 30 * 86_400  # a failure outlives any outage worth reporting the end of


class TokenManager:
    def __init__(
        self,
        client: aioredis.Redis,
        http: httpx.AsyncClient,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        min_issue_interval_s: float = 61.0,
        label: str = "",
    ) -> None:
        self.client = client
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self.app_secret = app_secret
        self.min_issue_interval_s = min_issue_interval_s
        self.label = label or keys.token(app_key).rsplit(":", 1)[-1][:8]
        self._local: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self.issued_count = 0

    async def get(self) -> str:
        local = self._local
        if local is not None and local[1] - REFRESH_MARGIN_S > time.time():
            return local[0]
        async with self._lock:
            return await self._get_shared(stale=None)

    async def refresh_after_expiry(self, stale_token: str) -> str:
        """KIS said ``stale_token`` expired: issue a new one unless another process did."""
        async with self._lock:
            if self._local is not None and self._local[0] != stale_token and self._usable(self._local, stale_token):
                return self._local[0]  # another task of this process already replaced it
            self._local = None
            return await self._get_shared(stale=stale_token)

    async def _read_shared(self) -> tuple[str, float] | None:
        raw = await self.client.get(keys.token(self.app_key))
        if not raw:
            return None
        data = orjson.loads(raw)
        return str(data["token"]), float(data["expires_at"])

    def _remember(self, token: tuple[str, float]) -> str:
        self._local = token
        metrics.TOKEN_EXPIRES_AT.labels(self.label).set(token[1])
        return token[0]

    async def _get_shared(self, *, stale: str | None) -> str:
        """A fresh token that is not ``stale``: the shared one, or a newly issued one."""
        deadline = time.monotonic() + LOCK_WAIT_S
        lock = keys.token_lock(self.app_key)
        while True:
            shared = await self._read_shared()
            if shared is not None and self._usable(shared, stale):
                return self._remember(shared)
            owner = uuid.uuid4().hex
            if await self.client.set(lock, owner, nx=True, px=LOCK_TTL_MS):
                try:
                    # Another process may have issued while we waited for the lock.
                    shared = await self._read_shared()
                    if shared is not None and self._usable(shared, stale):
                        return self._remember(shared)
                    try:
                        return self._remember(await self._issue())
                    except BrokerError as exc:
                        if stale is None and shared is not None and shared[1] > time.time() + EXPIRY_SAFETY_S:
                            # Renewing early failed (e.g. throttled): the current token still works.
                            logger.warning(
                                "KIS token renewal failed; using the current token", extra={"error": exc.message}
                            )
                            return self._remember(shared)
                        raise
                finally:
                    if await self.client.get(lock) == owner.encode():
                        await self.client.delete(lock)
            if time.monotonic() > deadline:
                raise TokenThrottled("timed out waiting for another process to issue the KIS token")
            await asyncio.sleep(0.05)

    @staticmethod
    def _usable(shared: tuple[str, float], stale: str | None) -> bool:
        return shared[0] != stale and shared[1] - REFRESH_MARGIN_S > time.time()

    async def _issue(self) -> tuple[str, float]:
        issued_key = keys.token_issued_at(self.app_key)
        last = await self.client.get(issued_key)
        if last is not None:
            wait = float(last) + self.min_issue_interval_s - time.time()
            if wait > 0:
                # Our own guard, not KIS's answer: it says nothing new about issuance, so no report.
                metrics.TOKEN_ISSUE_FAILURES.labels(self.label).inc()
                raise TokenThrottled(
                    f"KIS allows one token issuance per {self.min_issue_interval_s:.0f}s; next in {wait:.0f}s",
                    code="EGW00133",
                )
        try:
            issued = await self._request(issued_key)
        except BrokerError as exc:
            await self._report(TokenIssuance(app=self.label, ok=False, reason_code=exc.code, reason=exc.message))
            raise
        await self._report(TokenIssuance(app=self.label, ok=True))
        return issued

    async def _report(self, event: TokenIssuance) -> None:
        """Tell the notifier when issuance starts failing and when it works again (keys.HEALTH): one
        entry per change, never one per attempt, kept in Valkey (keys.token_failing) so a restarted
        or second gateway process neither repeats a failure nor misses the recovery. A Valkey error
        here costs no token."""
        failing = keys.token_failing(self.app_key)
        try:
            if event.ok:
                changed = bool(await self.client.delete(failing))
            else:
                changed = bool(await self.client.set(failing, event.reason_code or "?", nx=True, ex=FAILING_TTL_S))
            if changed:
                await publish(self.client, keys.HEALTH, event, HEALTH_MAXLEN)
        except (RedisError, OSError) as exc:
            logger.warning("could not report the KIS token issuance", extra={"error": str(exc)})

    async def _request(self, issued_key: str) -> tuple[str, float]:
        # Written before the request: a request that timed out may still have issued a token.
        await self.client.set(issued_key, str(time.time()), ex=86_400)
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "appsecret": self.app_secret}
        try:
            try:
                response = await self.http.post(f"{self.base_url}/oauth2/tokenP", json=body)
            except httpx.HTTPError as exc:
                raise from_transport(exc) from exc
            data = check(response)
        except BrokerError:
            metrics.TOKEN_ISSUE_FAILURES.labels(self.label).inc()
            raise
        token = str(data["access_token"])
        expires_at = self._expiry(data)
        ttl = max(int(expires_at - time.time()), 1)
        await self.client.set(
            keys.token(self.app_key),
            orjson.dumps({"token": token, "expires_at": expires_at, "issued_at": time.time()}),
            ex=ttl,
        )
        self.issued_count += 1
        metrics.TOKENS_ISSUED.labels(self.label).inc()
        logger.info("KIS access token issued", extra={"app": self.label, "expires_at": expires_at})
        return token, expires_at

    @staticmethod
    def _expiry(data: dict[str, object]) -> float:
        # ``expires_in`` has drifted by up to ~4000 s; prefer the absolute KST timestamp.
        text = data.get("access_token_token_expired")
        if isinstance(text, str) and text:
            try:
                return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SEOUL).timestamp()
            except ValueError:
                pass
        return time.time() + float(str(data.get("expires_in", 86_400)))

    async def expires_at(self) -> float | None:
        shared = await self._read_shared()
        return shared[1] if shared else None

    async def approval_key(self) -> str:
        """A WebSocket approval key (``/oauth2/Approval``; note ``secretkey``, not ``appsecret``)."""
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "secretkey": self.app_secret}
        try:
            response = await self.http.post(f"{self.base_url}/oauth2/Approval", json=body)
        except httpx.HTTPError as exc:
            raise from_transport(exc) from exc
        return str(check(response)["approval_key"])
