"""Login and logout: argon2id passwords, an optional TOTP code, throttling and lockout.

* The login form carries its own CSRF token (a double-submit cookie scoped to ``/login``):
  there is no session yet to hold a synchronizer token.
* Failures are counted in Valkey per user and per address; past the limit the user (or the
  address) is locked for ``login_lockout_s``, whatever the password. Unknown names cost the
  same time as known ones and every refusal says the same thing.
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

from dashboard import audit
from dashboard.guard import cookie_value
from dashboard.security import tokens_match
from dashboard.web import client_address, render, session_of, web_of
from yquant import keys
from yquant.settings import DashboardSettings
from yquant.users import User, dummy_verify, verify_password

LOGIN_COOKIE = "yq_login"
REFUSED = "Wrong user name, password or code."
MAX_FIELD = 256

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

    async def locked_for(self, name: str, address: str) -> int:
        """Seconds until this user or address may try again (0: not locked)."""
        user_key, address_key = self._user_key(name), self._address_key(address)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(user_key)
            pipe.ttl(user_key)
            pipe.get(address_key)
            pipe.ttl(address_key)
            user_count, user_ttl, address_count, address_ttl = await pipe.execute()
        waits = [0]
        if user_count and int(user_count) >= self.settings.login_max_failures_user:
            waits.append(max(int(user_ttl), 1))
        if address_count and int(address_count) >= self.settings.login_max_failures_address:
            waits.append(max(int(address_ttl), 1))
        return max(waits)

    async def failed(self, name: str, address: str) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for key in (self._user_key(name), self._address_key(address)):
                pipe.incr(key)
                pipe.expire(key, self.settings.login_lockout_s)
            await pipe.execute()

    async def succeeded(self, name: str) -> None:
        await self.client.delete(self._user_key(name))


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
    throttle = LoginThrottle(web.client, web.settings.dashboard)
    wait = await throttle.locked_for(name, address)
    if wait:
        web.metrics.logins_failed.labels("locked").inc()
        minutes = max(wait // 60, 1)
        return _login_page(
            request, error=f"Too many failed attempts. Try again in {minutes} min.", status=429, name=name
        )
    user = web.users.get(name) if name else None
    if not await _verify(web.hashing, user, password):
        await throttle.failed(name, address)
        web.metrics.logins_failed.labels("credentials").inc()
        return _login_page(request, error=REFUSED, status=401, name=name)
    assert user is not None
    if not await _totp_ok(web.client, user, _field(form, "code")):
        await throttle.failed(name, address)
        web.metrics.logins_failed.labels("totp").inc()
        return _login_page(request, error=REFUSED, status=401, name=name)
    await throttle.succeeded(name)
    cookie, _session = await web.sessions.create(user.name, address)
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
