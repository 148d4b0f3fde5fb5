"""The webhook's HTTP app: thin routes around ``AlertIntake``; nothing slow in a request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import Response
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect

from webhook.intake import OUTCOMES, REASONS, AlertIntake, Answer, BodyIncomplete, Caller
from webhook.metrics import CONTENT_TYPE, WebhookMetrics
from webhook.openapi import alert_request_body, alert_responses, health_responses
from yquant import __version__
from yquant.settings import Settings

JSON = "application/json"
TOKEN_PARAMETER = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "the secret, when it cannot be in the body",
    "schema": {"type": "string"},
}


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


def create_app(settings: Settings, client: aioredis.Redis, metrics: WebhookMetrics | None = None) -> FastAPI:
    metrics = metrics or WebhookMetrics(REASONS, OUTCOMES)
    intake = AlertIntake(settings, client, metrics)
    app = FastAPI(
        title="yQuant webhook",
        summary="TradingView alerts in, risk-checked orders out",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        # A 307 to "/webhook/<secret>" would carry the secret in a Location header (logged, plain http).
        redirect_slashes=False,
    )
    app.state.intake = intake
    app.state.metrics = metrics
    request_body = alert_request_body()
    responses = alert_responses()

    async def receive(request: Request, path_token: str | None) -> Response:
        caller = Caller(
            peer=request.client.host if request.client else "",
            headers=request_headers(request.scope["headers"]),
            path_token=path_token,
        )
        answer: Answer = await intake.receive(caller, body_chunks(request))
        return reply(answer.status, answer.body, answer.headers)

    @app.post(
        "/webhook",
        summary="Receive a TradingView alert (secret in the body)",
        responses=responses,
        openapi_extra=request_body,
        response_class=Response,
    )
    async def webhook(request: Request) -> Response:
        return await receive(request, None)

    @app.post(
        "/webhook/{token}",
        summary="Receive a TradingView alert (secret as the last path segment)",
        responses=responses,
        # Declared here rather than as a FastAPI parameter, which would cost a validator (~1 MiB).
        openapi_extra={**request_body, "parameters": [TOKEN_PARAMETER]},
        response_class=Response,
    )
    async def webhook_with_token(request: Request) -> Response:
        return await receive(request, str(request.path_params["token"]))

    @app.get("/healthz", summary="The process is up", responses=health_responses(200), response_class=Response)
    async def healthz() -> Response:
        return reply(200, {"status": "ok"})

    @app.get(
        "/readyz",
        summary="Valkey answers",
        responses=health_responses(200, 503),
        response_class=Response,
    )
    async def readyz() -> Response:
        try:
            await client.ping()
        except (RedisError, OSError):
            return reply(503, {"status": "valkey unavailable"})
        return reply(200, {"status": "ready"})

    @app.get(
        "/metrics",
        summary="Prometheus metrics (yquant_webhook_*)",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        response_class=Response,
    )
    async def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return app
