"""Login and logout: argon2id passwords, an optional TOTP code, throttling and lockout.

* The login form carries its own CSRF token (a double-submit cookie scoped to ``/login``):
  there is no session yet to hold a synchronizer token.
* Attempts are counted in Valkey *before* the password is checked (one MULTI: INCR, EXPIRE NX),
  so concurrent guesses cannot all pass a check made before any of them failed:
  - per user *and* address: past ``login_max_failures_user`` that user is locked from that address
    until ``login_lockout_s`` after its first counted attempt, whatever the password. Guesses from
    elsewhere do not lock the owner out;
  - per address, across user names: past ``login_max_failures_address`` the address is locked;
  - per user, across addresses: past ``login_user_slowdown_after`` an address the user has not
    signed in from (in ``login_known_address_days``) gets one check per ``login_user_slowdown_s``,
    so guesses spread over many addresses are slowed while the owner's own address is not.
  A success gives its attempt back. Unknown names cost the same time as known ones and every refusal says the
  same thing. At most ``MAX_PENDING_VERIFICATIONS`` password checks wait for the hashing
  threads; beyond that the answer is 429 at once, so a burst cannot queue hashing work.
* A TOTP code is accepted once (``keys.totp_used``), within one 30 s step of drift.
* A successful login starts a new session (new id) and is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from dashboard.guard import cookie_value
from dashboard.security import tokens_match
from dashboard.web import client_address, render, session_of, web_of
from yquant import audit, keys
from yquant.settings import DashboardSettings
from yquant.users import User, dummy_verify, verify_password

LOGIN_COOKIE = "yq_login"
REFUSED = "Wrong user name, password or code."
MAX_FIELD = 256
MAX_PENDING_VERIFICATIONS = 8

router = APIRouter()


class LoginThrottle:
    def __init__(self, client: aioredis.Redis, settings: DashboardSettings) -> None:
        self.client = client
        self.settings = settings

    @staticmethod
    def _user_key(name: str) -> str:
        return keys.login_failures("user:" + hashlib.sha256(name.encode()).hexdigest()[:24])

    @staticmethod
    def _address_key(address: str) -> str:
        return keys.login_failures("addr:" + address)

    @staticmethod
    def _scope(name: str) -> str:
        return "user:" + hashlib.sha256(name.encode()).hexdigest()[:24]

    def _pair_key(self, name: str, address: str) -> str:
        return keys.login_failures(self._scope(name) + ":addr:" + address)

    def _gate_key(self, name: str) -> str:
        return keys.login_failures(self._scope(name) + ":gate")

    async def reserve(self, name: str, address: str) -> int:
        """Count this attempt; 0 when its password may be checked, else the seconds to wait."""
        cfg = self.settings
        counters = (self._pair_key(name, address), self._address_key(address), self._user_key(name))
        async with self.client.pipeline(transaction=True) as pipe:
            for key in counters:
                pipe.incr(key)
                pipe.expire(key, cfg.login_lockout_s, nx=True)
                pipe.ttl(key)
            pipe.sismember(keys.login_known_addresses(self._scope(name)), address)
            pair_count, _, pair_ttl, address_count, _, address_ttl, user_count, _, _, known = await pipe.execute()
        waits = [0]
        if int(pair_count) > cfg.login_max_failures_user:
            waits.append(max(int(pair_ttl), 1))
        if int(address_count) > cfg.login_max_failures_address:
            waits.append(max(int(address_ttl), 1))
        if max(waits) == 0 and int(user_count) > cfg.login_user_slowdown_after and not known:
            # One check per interval for this user from unknown addresses: SET NX lets one through.
            gate = self._gate_key(name)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(gate, "1", nx=True, ex=cfg.login_user_slowdown_s)
                pipe.ttl(gate)
                passed, gate_ttl = await pipe.execute()
            if not passed:
                waits.append(max(int(gate_ttl), 1))
        return max(waits)

    async def succeeded(self, name: str, address: str) -> None:
        """A good password: the user's counts start again, the address gets its attempt back and
        is known for this user."""
        known = keys.login_known_addresses(self._scope(name))
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(self._user_key(name), self._pair_key(name, address), self._gate_key(name))
            pipe.decr(self._address_key(address))
            pipe.sadd(known, address)
            pipe.expire(known, self.settings.login_known_address_days * 86_400)
            await pipe.execute()


class VerificationQueue:
    """Bounds the password checks waiting for the hashing threads (per process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0


VERIFICATIONS = VerificationQueue(MAX_PENDING_VERIFICATIONS)


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no ``//``): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/login"):
        return "/"
    return target


def _login_page(request: Request, *, error: str = "", status: int = 200, name: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"login_token": token, "error": error, "name": name, "next": safe_next(request.query_params.get("next"))},
        status=status,
    )
    web = web_of(request)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=web.settings.dashboard.secure_cookies,
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


async def _verify(hashing: ThreadPoolExecutor, user: User | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    if user is None:
        await loop.run_in_executor(hashing, dummy_verify, password)
        return False
    return await loop.run_in_executor(hashing, verify_password, user.password_hash, password)


async def _totp_ok(client: aioredis.Redis, user: User, code: str) -> bool:
    if user.totp_secret is None:
        return True
    import pyotp

    code = code.replace(" ", "")
    if not (code.isdigit() and len(code) == 6) or not pyotp.TOTP(user.totp_secret).verify(code, valid_window=1):
        return False
    return bool(await client.set(keys.totp_used(user.name, code), "1", nx=True, ex=120))


def _field(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value[:MAX_FIELD] if isinstance(value, str) else ""


@router.post("/login")
async def login(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    name = _field(form, "username").strip().lower()
    password = _field(form, "password")
    target = safe_next(_field(form, "next"))
    if not tokens_match(cookie_value(request.headers, LOGIN_COOKIE) or "", _field(form, "csrf_token")):
        web.metrics.logins_failed.labels("csrf").inc()
        return _login_page(request, error="The form expired; please sign in again.", status=403, name=name)
    address = client_address(request, web.settings.dashboard.trusted_proxies)
    if VERIFICATIONS.pending >= VERIFICATIONS.limit:
        web.metrics.logins_failed.labels("busy").inc()
        return _login_page(request, error="Too many sign-ins at once. Try again shortly.", status=429, name=name)
    throttle = LoginThrottle(web.client, web.settings.dashboard)
    wait = await throttle.reserve(name, address)
    if wait:
        web.metrics.logins_failed.labels("locked").inc()
        when = f"{wait} s" if wait < 60 else f"{wait // 60} min"
        return _login_page(request, error=f"Too many failed attempts. Try again in {when}.", status=429, name=name)
    user = web.users.get(name) if name else None
    VERIFICATIONS.pending += 1
    try:
        verified = await _verify(web.hashing, user, password)
    finally:
        VERIFICATIONS.pending -= 1
    if not verified:
        web.metrics.logins_failed.labels("credentials").inc()
        return _login_page(request, error=REFUSED, status=401, name=name)
    assert user is not None
    if not await _totp_ok(web.client, user, _field(form, "code")):
        web.metrics.logins_failed.labels("totp").inc()
        return _login_page(request, error=REFUSED, status=401, name=name)
    await throttle.succeeded(name, address)
    cookie, _session = await web.sessions.create(user.name, address, user.credential)
    await audit.record(web.client, user.name, "login", {}, address)
    web.metrics.logins.inc()
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        web.cookie_name,
        cookie,
        max_age=web.settings.dashboard.session_max_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=web.settings.dashboard.secure_cookies,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    web = web_of(request)
    session = session_of(request)
    await web.sessions.delete(session)
    await audit.record(
        web.client, session.user, "logout", {}, client_address(request, web.settings.dashboard.trusted_proxies)
    )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        web.cookie_name, path="/", secure=web.settings.dashboard.secure_cookies, httponly=True, samesite="strict"
    )
    return response
