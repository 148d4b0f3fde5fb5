"""Credentials: access tokens (tokenP / revokeP), WebSocket approval keys and hashkeys.

Token rules (docs/kis-protocol.md §2): a tokenP call within ``token_reuse_seconds`` (6 h) of the last
issue returns the same token; any tokenP call within ``token_throttle_seconds`` of the previous
successful one for the same appkey is refused with EGW00133; tokens live ``token_lifetime_seconds``
(24 h). ``expire_all`` (admin) makes every token expired now and clears the throttle, as if a day
had passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from kissim.config import SimConfig
from kissim.protocol import KST, KisError, Messages, TokenThrottled


@dataclass
class AccessToken:
    value: str
    appkey: str
    issued_at: float
    expires_at: float
    revoked: bool = False

    def expires_kst(self) -> str:
        return datetime.fromtimestamp(self.expires_at, KST).strftime("%Y-%m-%d %H:%M:%S")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class TokenStore:
    config: SimConfig
    clock: Callable[[], float] = time.time
    tokens: dict[str, AccessToken] = field(default_factory=dict)
    latest: dict[str, AccessToken] = field(default_factory=dict)  # appkey -> newest token
    last_call: dict[str, float] = field(default_factory=dict)  # appkey -> last successful tokenP
    approval_keys: dict[str, str] = field(default_factory=dict)  # approval_key -> appkey
    issued: dict[str, int] = field(default_factory=dict)  # appkey -> tokens minted
    throttled: int = 0
    changes: int = 0  # bumped by every change worth saving
    _secret: bytes = field(default_factory=lambda: os.urandom(32))

    def reset(self) -> None:
        self.tokens.clear()
        self.latest.clear()
        self.last_call.clear()
        self.approval_keys.clear()
        self.issued.clear()
        self.throttled = 0
        self.changes += 1

    # ---------------------------------------------------------------- credentials

    def check_credentials(self, appkey: str, appsecret: str) -> None:
        """EGW00103 / EGW00105 unless the pair is acceptable (any pair when none are configured)."""
        if not appkey:
            raise KisError(Messages.BAD_APPKEY, http_status=403, pad=False)
        if not appsecret:
            raise KisError(Messages.BAD_APPSECRET, http_status=403, pad=False)
        if self.config.credentials:
            expected = self.config.credentials.get(appkey)
            if expected is None:
                raise KisError(Messages.BAD_APPKEY, http_status=403, pad=False)
            if not hmac.compare_digest(expected, appsecret):
                raise KisError(Messages.BAD_APPSECRET, http_status=403, pad=False)

    # ---------------------------------------------------------------- tokens

    def issue(self, appkey: str, appsecret: str) -> dict[str, Any]:
        self.check_credentials(appkey, appsecret)
        now = self.clock()
        last = self.last_call.get(appkey)
        if last is not None and now - last < self.config.token_throttle_seconds:
            self.throttled += 1
            raise TokenThrottled()
        self.last_call[appkey] = now
        self.changes += 1
        token = self.latest.get(appkey)
        reusable = (
            token is not None
            and not token.revoked
            and now < token.expires_at
            and now - token.issued_at < self.config.token_reuse_seconds
        )
        if token is None or not reusable:
            token = self._mint(appkey, now)
        return {
            "access_token": token.value,
            "access_token_token_expired": token.expires_kst(),
            "token_type": "Bearer",
            "expires_in": max(0, int(token.expires_at - now)),
        }

    def _mint(self, appkey: str, now: float) -> AccessToken:
        expires = now + self.config.token_lifetime_seconds
        header = _b64url(orjson.dumps({"typ": "JWT", "alg": "HS256"}))
        claims = {
            "sub": "token",
            "aud": str(uuid.uuid4()),
            "prdt_cd": "",
            "iss": "unogw",
            "exp": int(expires),
            "iat": int(now),
            "jti": appkey[:36],
        }
        payload = _b64url(orjson.dumps(claims))
        signature = _b64url(hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha512).digest())
        token = AccessToken(f"{header}.{payload}.{signature}", appkey, now, expires)
        self.tokens[token.value] = token
        self.latest[appkey] = token
        self.issued[appkey] = self.issued.get(appkey, 0) + 1
        return token

    def revoke(self, appkey: str, appsecret: str, value: str) -> None:
        self.check_credentials(appkey, appsecret)
        token = self.tokens.get(value)
        if token is None or token.appkey != appkey:
            raise KisError(Messages.TOKEN_INVALID, http_status=403, pad=False)
        token.revoked = True
        self.changes += 1

    def authenticate(self, authorization: str, appkey: str, appsecret: str) -> AccessToken:
        """The bearer token of a data call, or the gateway error KIS gives (HTTP 500)."""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise KisError.gateway(Messages.BAD_CREDENTIALS_TYPE)
        if not appkey:
            raise KisError.gateway(Messages.BAD_APPKEY)
        if not appsecret:
            raise KisError.gateway(Messages.BAD_APPSECRET)
        token = self.tokens.get(value.strip())
        if token is None or token.revoked or token.appkey != appkey:
            raise KisError.gateway(Messages.TOKEN_INVALID)
        if self.clock() >= token.expires_at:
            raise KisError.gateway(Messages.TOKEN_EXPIRED)
        if self.config.credentials and not hmac.compare_digest(self.config.credentials.get(appkey, ""), appsecret):
            raise KisError.gateway(Messages.BAD_APPSECRET)
        return token

    def expire_all(self) -> int:
        now = self.clock()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)
        self.last_call.clear()
        self.changes += 1
        return len(self.tokens)

    # ---------------------------------------------------------------- approval keys and hashkeys

    def approve(self, appkey: str, secretkey: str) -> str:
        self.check_credentials(appkey, secretkey)
        key = str(uuid.uuid4())
        self.approval_keys[key] = appkey
        self.changes += 1
        return key

    def appkey_of_approval(self, approval_key: str) -> str | None:
        return self.approval_keys.get(approval_key)


def hashkey(body: bytes) -> str:
    """KIS's HASH of an order body: a SHA-256 digest of the exact bytes, hex encoded."""
    return hashlib.sha256(body).hexdigest()
