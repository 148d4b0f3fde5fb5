"""What every route needs: the app's dependencies, the viewer, and rendering with the shared context."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import redis.asyncio as aioredis
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dashboard import views
from dashboard.data import Reader
from dashboard.guard import SESSION_SCOPE_KEY
from dashboard.live import Broadcaster
from dashboard.metrics import Metrics
from dashboard.security import Session, SessionStore
from yquant.settings import Settings
from yquant.users import UserStore

HERE = Path(__file__).parent

NAVIGATION = (
    ("overview", "/", "Overview"),
    ("positions", "/positions", "Positions"),
    ("orders", "/orders", "Orders"),
    ("signals", "/signals", "Signals"),
    ("order", "/order", "Trade"),
    ("schedules", "/schedules", "Schedules"),
    ("risk", "/risk", "Risk"),
    ("performance", "/performance", "Performance"),
    ("system", "/system", "System"),
)


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped, in every template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(views.filters())
    return Jinja2Templates(env=env)


@dataclass
class Web:
    settings: Settings
    client: aioredis.Redis
    users: UserStore
    sessions: SessionStore
    metrics: Metrics
    templates: Jinja2Templates
    broadcaster: Broadcaster
    reader: Reader
    cookie_name: str
    # One thread verifies passwords, one at a time: argon2 needs 12 MiB per verification.
    hashing: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="argon2"))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.dashboard.timezone)


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def session_of(request: Request) -> Session:
    session: Session = request.scope[SESSION_SCOPE_KEY]
    return session


def _can_write(web: Web, user: str) -> bool:
    record = web.users.get(user)
    return record is not None and record.can_write


def viewer_zone(web: Web, user: str) -> ZoneInfo:
    record = web.users.get(user)
    name = record.timezone if record and record.timezone else web.settings.dashboard.timezone
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return web.tz


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    """The browser's address; ``X-Forwarded-For`` is believed only from a configured proxy."""
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not _in_networks(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
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


def render(
    request: Request, template: str, context: dict[str, Any], *, page: str = "", status: int = 200
) -> HTMLResponse:
    """A page (or, with ``?partial=1``, its live fragment) with the viewer's session and zone."""
    web = web_of(request)
    session: Session | None = request.scope.get(SESSION_SCOPE_KEY)
    full = {
        "request": request,
        "page": page,
        "navigation": NAVIGATION,
        "user": session.user if session else "",
        "read_only": bool(session) and not _can_write(web, session.user if session else ""),
        "csrf": session.csrf if session else "",
        "tz": viewer_zone(web, session.user) if session else web.tz,
        "cursor": web.broadcaster.cursor_text(),
        "trading_state": context.pop("trading_state", None),
        "notify_failing": getattr(request.state, "notify_failing", []),
        **context,
    }
    response: HTMLResponse = web.templates.TemplateResponse(request, template, full, status_code=status)
    return response
