"""The dashboard app: wiring only (the guard, the routers, static assets, the live broadcaster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from dashboard import auth, commands, pages
from dashboard.data import Reader
from dashboard.guard import Guard
from dashboard.live import Broadcaster
from dashboard.metrics import Metrics
from dashboard.security import SessionStore, check_startup, cookie_name, load_session_secret
from dashboard.web import Web, make_templates
from yquant.settings import Settings
from yquant.users import UserStore

HERE = Path(__file__).parent
ROUTERS = (auth.router, pages.router, commands.router)


def http_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the dashboard serves (the tests walk them all)."""
    found: list[tuple[str, str]] = []
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                found.extend((method, route.path) for method in sorted(route.methods or ()))
    return found


def create_app(settings: Settings, client: aioredis.Redis) -> FastAPI:
    """Raises ``ConfigurationError`` when production is missing a users file or a session secret."""
    users_file = check_startup(settings)
    cfg = settings.dashboard
    metrics = Metrics()
    web = Web(
        settings=settings,
        client=client,
        users=UserStore(users_file),
        sessions=SessionStore(client, load_session_secret(settings), cfg.session_idle_s, cfg.session_max_s),
        metrics=metrics,
        templates=make_templates(),
        broadcaster=Broadcaster(client, on_count=metrics.sse_clients.set),
        reader=Reader(client, settings),
        cookie_name=cookie_name(cfg.secure_cookies),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await web.broadcaster.stop()
        web.hashing.shutdown(wait=False)

    app = FastAPI(title="yQuant dashboard", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.web = web
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(
        Guard,
        sessions=web.sessions,
        users=web.users,
        metrics=metrics,
        cookie=web.cookie_name,
        hsts=cfg.secure_cookies,
    )
    return app
