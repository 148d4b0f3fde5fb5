"""Dashboard app (read-only for now): accounts, positions and orders from Valkey."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from yquant import orders, portfolio
from yquant.settings import Settings

HERE = Path(__file__).parent


async def snapshot(client: aioredis.Redis) -> dict[str, Any]:
    accounts = []
    for alias in await portfolio.account_aliases(client):
        account = await portfolio.get_account(client, alias)
        if account is not None:
            accounts.append(account.model_dump(mode="json"))
    recent = await orders.recent_orders(client, 50)
    return {"accounts": accounts, "orders": [o.model_dump(mode="json") for o in recent]}


def create_app(settings: Settings, client: aioredis.Redis) -> FastAPI:
    app = FastAPI(title="yQuant dashboard", docs_url=None, redoc_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")

    @app.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "overview.html", await snapshot(client))

    @app.get("/api/state")
    async def state() -> JSONResponse:
        return JSONResponse(await snapshot(client))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app
