"""The webhook's HTTP app: thin Starlette routes around ``AlertIntake``; nothing slow in a request.

Starlette rather than FastAPI: no route takes a declared parameter or returns a model (each reads
its raw body and builds its answer), so FastAPI would add only its import and its per-request
dependency solving (measured in docs/decisions/0011-webhook-on-starlette.md). The OpenAPI
document is assembled in ``webhook.openapi``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from webhook.intake import OUTCOMES, REASONS, AlertIntake, Answer, BodyIncomplete, Caller
from webhook.metrics import CONTENT_TYPE, WebhookMetrics
from webhook.openapi import document
from yquant import __version__
from yquant.settings import Settings

JSON = "application/json"


def reply(status: int, body: dict[str, str], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Lower-case name -> every value, as sent (ASGI gives lower-case names)."""
    headers: dict[str, list[str]] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:
        raise BodyIncomplete from exc


async def http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 as JSON like every other answer (``{"detail": ...}``, as before)."""
    assert isinstance(exc, HTTPException)
    return Response(
        orjson.dumps({"detail": exc.detail}), status_code=exc.status_code, media_type=JSON, headers=exc.headers
    )


def create_app(settings: Settings, client: aioredis.Redis, metrics: WebhookMetrics | None = None) -> Starlette:
    metrics = metrics or WebhookMetrics(REASONS, OUTCOMES)
    intake = AlertIntake(settings, client, metrics)

    async def receive(request: Request, path_token: str | None) -> Response:
        caller = Caller(
            peer=request.client.host if request.client else "",
            headers=request_headers(request.scope["headers"]),
            path_token=path_token,
        )
        answer: Answer = await intake.receive(caller, body_chunks(request))
        return reply(answer.status, answer.body, answer.headers)

    async def webhook(request: Request) -> Response:
        return await receive(request, None)

    async def webhook_with_token(request: Request) -> Response:
        return await receive(request, str(request.path_params["token"]))

    async def healthz(request: Request) -> Response:
        return reply(200, {"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await client.ping()
        except (RedisError, OSError):
            return reply(503, {"status": "valkey unavailable"})
        return reply(200, {"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi(request: Request) -> Response:
        return Response(orjson.dumps(document(__version__)), media_type=JSON)

    app = Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/webhook/{token}", webhook_with_token, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    # A 307 to "/webhook/<secret>" would carry the secret in a Location header (logged, plain http).
    app.router.redirect_slashes = False
    app.state.intake = intake
    app.state.metrics = metrics
    return app
