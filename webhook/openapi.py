"""``/openapi.json``: the webhook's document, assembled here rather than by a framework.

The routes read their raw bodies themselves and build their answers, so nothing about them is
declared to a framework that could derive a document; this module says what they accept and
answer. Built once per process, on the first request for it.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from webhook.schema import Alert


class AlertAnswer(BaseModel):
    """The alert is on the signal stream (``accepted``), or was already (``duplicate``)."""

    status: Literal["accepted", "duplicate"]
    signal_id: str = Field(description="idempotency key; the correlation id from alert to fill")


class Refusal(BaseModel):
    """Why the alert was not taken. ``reason`` is for people, ``code`` for machines."""

    status: Literal["rejected"]
    error: Literal["unauthorised", "invalid", "stale", "rate_limited", "unavailable"]
    code: str = Field(description="e.g. secret, not_json, missing_field, too_old, alerts, valkey")
    reason: str


class Health(BaseModel):
    status: str


def inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace pydantic's ``#/$defs/...`` references by the definitions themselves."""
    definitions: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                target = resolve(definitions[reference.removeprefix("#/$defs/")])
                return {**target, **{k: resolve(v) for k, v in node.items() if k != "$ref"}}
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def alert_request_body() -> dict[str, Any]:
    alert_schema = inline_definitions(Alert.model_json_schema())
    return {
        "requestBody": {
            "required": True,
            "description": (
                "The alert message, a JSON object. TradingView sends it as application/json when the "
                "message as typed is JSON, else (bare numeric placeholders) as text/plain; both are "
                "read as JSON. At most webhook.max_body_bytes."
            ),
            "content": {
                "application/json": {"schema": alert_schema},
                # TradingView's text/plain carries the same JSON object (sent as text when the
                # message as typed, with bare numeric placeholders, is not JSON itself).
                "text/plain": {"schema": alert_schema},
            },
        }
    }


def json_response(model: type[BaseModel], description: str, retry_after: bool = False) -> dict[str, Any]:
    """A documented JSON response from a model's schema.

    Plain schemas from the models: the route builds its responses itself and never validates them.
    """
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": model.model_json_schema()}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
    return response


def alert_responses() -> dict[int | str, dict[str, Any]]:
    return {
        200: json_response(AlertAnswer, "accepted, or a resend acknowledged without a second append"),
        400: json_response(Refusal, "incomplete body or malformed Content-Length"),
        401: json_response(Refusal, "missing or wrong secret"),
        403: json_response(Refusal, "source address not allowed, or no valid TradingView client certificate"),
        413: json_response(Refusal, "body larger than webhook.max_body_bytes"),
        415: json_response(Refusal, "neither application/json nor text/plain, or compressed"),
        422: json_response(Refusal, "not a JSON object, a field is missing or wrong, or the alert is stale"),
        429: json_response(Refusal, "too many alerts or rejected requests from this source", retry_after=True),
        503: json_response(Refusal, "Valkey unavailable: nothing written; TradingView resends", retry_after=True),
    }


def health_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: json_response(Health, "ready" if status == 200 else "not ready") for status in statuses}


TOKEN_PARAMETER = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "the secret, when it cannot be in the body",
    "schema": {"type": "string"},
}


def _operation(operation_id: str, summary: str, responses: dict[int | str, dict[str, Any]]) -> dict[str, Any]:
    return {"summary": summary, "operationId": operation_id, "responses": {str(k): v for k, v in responses.items()}}


@cache
def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document ``/openapi.json`` serves (cached: it never changes in a process)."""
    alert = alert_request_body()
    answers = alert_responses()
    metrics: dict[int | str, dict[str, Any]] = {
        200: {"description": "the exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "yQuant webhook",
            "summary": "TradingView alerts in, risk-checked orders out",
            "version": version,
        },
        "paths": {
            "/webhook": {
                "post": alert | _operation("receive_alert", "Receive a TradingView alert (secret in the body)", answers)
            },
            "/webhook/{token}": {
                "post": alert
                | {"parameters": [TOKEN_PARAMETER]}
                | _operation(
                    "receive_alert_with_token", "Receive a TradingView alert (secret as the last path segment)", answers
                )
            },
            "/healthz": {"get": _operation("healthz", "The process is up", health_responses(200))},
            "/readyz": {"get": _operation("readyz", "Valkey answers", health_responses(200, 503))},
            "/metrics": {"get": _operation("metrics", "Prometheus metrics (yquant_webhook_*)", metrics)},
        },
    }
