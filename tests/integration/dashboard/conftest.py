"""The dashboard app in-process (httpx over ASGI) against the session's real Valkey."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import SecretStr

from dashboard.app import create_app
from yquant.settings import DashboardSettings, Settings
from yquant.users import add_user

PASSWORD = "correct horse battery staple"
BASE_URL = "http://dashboard.test"


@pytest.fixture
def dashboard_settings(settings: Settings, tmp_path: Path) -> Settings:
    dashboard = DashboardSettings(
        users_file=tmp_path / "users.json",
        session_secret=SecretStr("s" * 48),
        login_max_failures_user=3,
        login_max_failures_address=6,
        login_user_slowdown_after=5,
        login_user_slowdown_s=600,  # longer than any test: inside it, the slow-down always holds
        quote_timeout_s=0.2,
    )
    kis = settings.kis.model_copy(update={"rest_url": "http://127.0.0.1:9"})  # the demo account "main"
    return settings.model_copy(update={"dashboard": dashboard, "kis": kis})


@pytest.fixture
def users_file(dashboard_settings: Settings) -> Path:
    path = dashboard_settings.dashboard.users_file
    assert path is not None
    add_user(path, "alice", PASSWORD)
    return path


@pytest.fixture
def app(dashboard_settings: Settings, redis_client: aioredis.Redis, users_file: Path) -> FastAPI:
    return create_app(dashboard_settings, redis_client)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


def form_token(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert match, f"no {name} in the page"
    return match.group(1)


async def login(
    client: httpx.AsyncClient, username: str = "alice", password: str = PASSWORD, code: str = ""
) -> httpx.Response:
    page = await client.get("/login")
    token = form_token(page.text, "csrf_token")
    data = {"username": username, "password": password, "code": code, "csrf_token": token, "next": "/"}
    return await client.post("/login", data=data)


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/order")
    assert page.status_code == 200
    return form_token(page.text, "csrf_token")
