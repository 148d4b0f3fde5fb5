"""KIS access tokens: one per app key, shared by every process through Valkey.

* reused until shortly before expiry (KIS returns the same token within 6 h anyway);
* issued under a lock, so two processes starting together issue once;
* never issued more often than KIS allows (``min_issue_interval_s``), even across
  processes: the last issuance time is kept in Valkey;
* re-issued once when KIS says the token expired (EGW00123).
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

from brokergateway.kis.errors import check, from_transport
from yquant import keys
from yquant.errors import TokenThrottled

logger = logging.getLogger(__name__)

SEOUL = ZoneInfo("Asia/Seoul")
REFRESH_MARGIN_S = 600  # re-issue this long before KIS's expiry
LOCK_TTL_MS = 15_000


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
    ) -> None:
        self.client = client
        self.http = http
        self.base_url = base_url
        self.app_key = app_key
        self.app_secret = app_secret
        self.min_issue_interval_s = min_issue_interval_s
        self._local: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self.issued_count = 0

    async def get(self) -> str:
        if self._local and self._local[1] - REFRESH_MARGIN_S > time.time():
            return self._local[0]
        async with self._lock:
            return await self._get_shared(stale=None)

    async def refresh_after_expiry(self, stale_token: str) -> str:
        """KIS said ``stale_token`` expired: issue a new one unless another process did."""
        async with self._lock:
            self._local = None
            return await self._get_shared(stale=stale_token)

    async def _read_shared(self) -> tuple[str, float] | None:
        raw = await self.client.get(keys.token(self.app_key))
        if not raw:
            return None
        data = orjson.loads(raw)
        return str(data["token"]), float(data["expires_at"])

    async def _get_shared(self, *, stale: str | None) -> str:
        """A fresh token that is not ``stale``: the shared one, or a newly issued one."""
        deadline = time.monotonic() + 30
        while True:
            shared = await self._read_shared()
            if self._usable(shared, stale):
                assert shared is not None
                self._local = shared
                return shared[0]
            owner = uuid.uuid4().hex
            lock = keys.token_lock(self.app_key)
            if await self.client.set(lock, owner, nx=True, px=LOCK_TTL_MS):
                try:
                    # Another process may have issued while we waited for the lock.
                    shared = await self._read_shared()
                    if self._usable(shared, stale):
                        assert shared is not None
                        self._local = shared
                        return shared[0]
                    self._local = await self._issue()
                    return self._local[0]
                finally:
                    if await self.client.get(lock) == owner.encode():
                        await self.client.delete(lock)
            if time.monotonic() > deadline:
                raise TokenThrottled("timed out waiting for another process to issue the token")
            await asyncio.sleep(0.05)

    @staticmethod
    def _usable(shared: tuple[str, float] | None, stale: str | None) -> bool:
        return shared is not None and shared[0] != stale and shared[1] - REFRESH_MARGIN_S > time.time()

    async def _issue(self) -> tuple[str, float]:
        last = await self.client.get(keys.token_issued_at(self.app_key))
        if last is not None:
            wait = float(last) + self.min_issue_interval_s - time.time()
            if wait > 0:
                raise TokenThrottled(
                    f"KIS allows one token issuance per {self.min_issue_interval_s:.0f}s; next in {wait:.0f}s",
                    code="EGW00133",
                )
        body = {"grant_type": "client_credentials", "appkey": self.app_key, "appsecret": self.app_secret}
        try:
            response = await self.http.post(f"{self.base_url}/oauth2/tokenP", json=body)
        except httpx.HTTPError as exc:
            raise from_transport(exc) from exc
        await self.client.set(keys.token_issued_at(self.app_key), str(time.time()), ex=86_400)
        data = check(response)
        token = str(data["access_token"])
        expires_at = self._expiry(data)
        ttl = max(int(expires_at - time.time()), 1)
        await self.client.set(
            keys.token(self.app_key),
            orjson.dumps({"token": token, "expires_at": expires_at, "issued_at": time.time()}),
            ex=ttl,
        )
        self.issued_count += 1
        logger.info("KIS access token issued", extra={"expires_at": expires_at})
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
