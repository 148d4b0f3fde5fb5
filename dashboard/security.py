"""Sessions, signing and CSRF tokens.

* The session cookie is ``<id>.<hmac>``: a random id signed with the session secret, so a
  forged or tampered cookie is refused without a Valkey round trip.
* The session itself lives in Valkey (``keys.dashboard_session(sha256(id))``, an idle TTL,
  an absolute age limit); Valkey never holds the id a browser presents. A process-local cache
  keeps a page view at zero extra round trips; logout clears both.
* Every session carries a CSRF synchronizer token (forms: ``csrf_token``, fetch:
  ``X-CSRF-Token``), compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from yquant import keys
from yquant.errors import ConfigurationError
from yquant.settings import Settings
from yquant.users import users_path, write_private

CACHE_TTL_S = 15.0
CACHE_SIZE = 1024
MIN_SECRET_LENGTH = 32


def cookie_name(secure: bool) -> str:
    # ``__Host-`` binds the cookie to this exact origin over TLS (no Domain, Path=/, Secure).
    return "__Host-yq_session" if secure else "yq_session"


def load_session_secret(settings: Settings) -> bytes:
    """``YQ_DASHBOARD__SESSION_SECRET``, else one generated once into ``<state_dir>/session-secret``."""
    configured = settings.dashboard.session_secret
    if configured is not None:
        value = configured.get_secret_value()
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigurationError(f"YQ_DASHBOARD__SESSION_SECRET must have at least {MIN_SECRET_LENGTH} characters")
        return value.encode()
    if settings.environment == "production":
        raise ConfigurationError("production needs YQ_DASHBOARD__SESSION_SECRET (at least 32 random characters)")
    path = settings.state_dir / "session-secret"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(48).encode() + b"\n")
    return path.read_text().strip().encode()


def check_startup(settings: Settings) -> Path:
    """Refuse to serve an unguarded dashboard; returns the users file's path."""
    path = users_path(settings)
    if settings.environment == "production":
        if not path.exists():
            raise ConfigurationError(f"production needs a users file ({path}): create one with `yquant user add NAME`")
        if settings.dashboard.session_secret is None:
            raise ConfigurationError("production needs YQ_DASHBOARD__SESSION_SECRET")
    return path


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"yquant-dashboard-session\x00" + secret).digest()

    def _mac(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, value: str) -> str:
        return f"{value}.{self._mac(value)}"

    def unsign(self, token: str) -> str | None:
        value, _, mac = token.rpartition(".")
        if not value or not hmac.compare_digest(mac, self._mac(value)):
            return None
        return value


def tokens_match(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


@dataclass(frozen=True)
class Session:
    digest: str
    user: str
    csrf: str
    created_at: float
    address: str
    credential: str = ""  # the user's credential stamp when the session began (User.credential)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, client: aioredis.Redis, secret: bytes, idle_s: int, max_s: int) -> None:
        self.client = client
        self.signer = Signer(secret)
        self.idle_s = idle_s
        self.max_s = max_s
        self._cache: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    async def create(self, user: str, address: str, credential: str = "") -> tuple[str, Session]:
        """A new session (a new id: no fixation); returns the cookie value and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(_digest(session_id), user, secrets.token_urlsafe(32), time.time(), address, credential)
        key = keys.dashboard_session(session.digest)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "user": user,
                    "csrf": session.csrf,
                    "created_at": str(session.created_at),
                    "address": address,
                    "credential": credential,
                },
            )
            pipe.expire(key, self.idle_s)
            await pipe.execute()
        self._remember(session)
        return self.signer.sign(session_id), session

    async def get(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        session_id = self.signer.unsign(cookie)
        if session_id is None:
            return None
        digest = _digest(session_id)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < CACHE_TTL_S:
            return cached[0]
        key = keys.dashboard_session(digest)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.expire(key, self.idle_s)  # sliding idle timeout (a no-op for a missing key)
            raw, _ = await pipe.execute()
        if not raw:
            self._cache.pop(digest, None)
            return None
        data = {keys.text(k): keys.text(v) for k, v in raw.items()}
        session = Session(
            digest,
            data["user"],
            data["csrf"],
            float(data["created_at"]),
            data.get("address", ""),
            data.get("credential", ""),
        )
        if time.time() - session.created_at > self.max_s:
            await self.delete(session)
            return None
        self._remember(session)
        return session

    async def delete(self, session: Session) -> None:
        self._cache.pop(session.digest, None)
        await self.client.delete(keys.dashboard_session(session.digest))

    def _remember(self, session: Session) -> None:
        self._cache[session.digest] = (session, time.monotonic())
        self._cache.move_to_end(session.digest)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
