"""The dashboard's front door, as one ASGI middleware (safe by default: a new route is guarded).

* Every response gets a strict Content-Security-Policy and the other security headers.
* Every path needs a session except the login page, ``/healthz``, ``/metrics`` and the static
  assets the login page uses. A page is redirected to the login; APIs, the event stream and
  fetches get 401.
* Every state-changing request (POST, PUT, PATCH, DELETE) needs the session's CSRF token, in
  the ``X-CSRF-Token`` header or the form's ``csrf_token`` field, and a same-origin ``Origin``
  when the browser sends one. The login form has its own token (see ``dashboard.auth``).
* A viewer (``User.role``) may only sign out: every other state-changing request is refused 403
  here, before a route runs. The role is read from the users file on each request.
* Requests are counted by method, route template and status.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.metrics import Metrics
from dashboard.security import Session, SessionStore, tokens_match
from yquant.users import UserStore

PUBLIC_PATHS = frozenset({"/login", "/healthz", "/metrics", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIXES = ("/api/", "/events")  # answered 401 without a session; pages redirect to the login
MAX_FORM_BYTES = 64 * 1024
SESSION_SCOPE_KEY = "yq_session"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def session_of(scope: Scope) -> Session:
    session: Session = scope[SESSION_SCOPE_KEY]
    return session


def cookie_value(headers: Headers, name: str) -> str | None:
    for chunk in headers.getlist("cookie"):
        for part in chunk.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
    return None


def same_origin(headers: Headers) -> bool:
    """An ``Origin`` (or, lacking it, ``Referer``) that names another host is refused."""
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        return source is None
    return urllib.parse.urlsplit(source).netloc == headers.get("host", "")


async def buffer_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body, False
        body += message.get("body", b"")
        if len(body) > limit:
            return body, False
        if not message.get("more_body", False):
            return body, True


def replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def respond(send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def refuse_json(send: Send, status: int, error: str) -> Awaitable[None]:
    return respond(send, status, orjson.dumps({"error": error}), b"application/json", [])


class Guard:
    def __init__(
        self, app: ASGIApp, *, sessions: SessionStore, users: UserStore, metrics: Metrics, cookie: str, hsts: bool
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.users = users
        self.metrics = metrics
        self.cookie = cookie
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._decorate(scope, send)
        path: str = scope["path"]
        if is_public(path):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        session = await self.sessions.get(cookie_value(headers, self.cookie))
        user = None
        if session is not None:
            user = self.users.get(session.user)
            # Removed from the users file, or a new password or TOTP secret since it signed in.
            if user is None or user.credential != session.credential:
                await self.sessions.delete(session)
                session = None
        if session is None:
            await self._login_required(scope, headers, send)
            return
        scope[SESSION_SCOPE_KEY] = session
        if scope["method"] not in SAFE_METHODS:
            checked = await self._check_csrf(scope, headers, receive, session)
            if checked is None:
                self.metrics.csrf_refused.inc()
                await refuse_json(send, 403, "missing or wrong CSRF token; reload the page")
                return
            receive = checked
            if path != "/logout" and (user is None or not user.can_write):
                await self._read_only(headers, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _read_only(headers: Headers, send: Send) -> None:
        """A viewer's write: refused before any route runs, so nothing it could send is sent."""
        text = "This user is a viewer: it can see everything and change nothing. Ask an admin."
        if headers.get("x-requested-with") or "json" in headers.get("accept", ""):
            await refuse_json(send, 403, text)
            return
        page = (
            '<!doctype html><meta charset="utf-8"><title>Read-only</title>'
            f'<p role="alert">{text}</p><p><a href="/">Back to the overview</a></p>'
        )
        await respond(send, 403, page.encode(), b"text/html; charset=utf-8", [])

    async def _login_required(self, scope: Scope, headers: Headers, send: Send) -> None:
        accept = headers.get("accept", "")
        api = scope["path"].startswith(API_PREFIXES) or "json" in accept or "event-stream" in accept
        if scope["method"] == "GET" and not api and not headers.get("x-requested-with"):
            target = scope["path"] + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else "")
            location = "/login?" + urllib.parse.urlencode({"next": target})
            await respond(send, 303, b"", b"text/plain", [(b"location", location.encode())])
            return
        await refuse_json(send, 401, "login required")

    async def _check_csrf(self, scope: Scope, headers: Headers, receive: Receive, session: Session) -> Receive | None:
        if not same_origin(headers):
            return None
        if tokens_match(session.csrf, headers.get("x-csrf-token")):
            return receive
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return None
        body, complete = await buffer_body(receive, MAX_FORM_BYTES)
        if not complete:
            return None
        presented = urllib.parse.parse_qs(body.decode("latin-1")).get("csrf_token", [None])[0]
        if not tokens_match(session.csrf, presented):
            return None
        return replay(body, receive)

    def _decorate(self, scope: Scope, send: Send) -> Send:
        metrics = self.metrics
        hsts = self.hsts
        private = not is_public(scope["path"]) or scope["path"] == "/login"

        async def decorated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if hsts:
                    headers.append(HSTS)
                if private:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
                route = scope.get("route")
                template = getattr(route, "path", None) or ("static" if scope["path"].startswith("/static/") else "-")
                metrics.requests.labels(scope["method"], template, str(message["status"])).inc()
            await send(message)

        return decorated
