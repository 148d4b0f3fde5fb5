"""Delivery of one text to one destination, with the services' own rate-limit answers.

Every error text passes through ``mask`` first: a bot token or a webhook URL is the credential
itself, so neither may reach a log line or the status key the dashboard reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import orjson

from yquant.settings import NotifyDestination

TELEGRAM_MAX_CHARS = 4096
DISCORD_MAX_CHARS = 2000
DISCORD_API_VERSION = 10
_DISCORD_UNVERSIONED = re.compile(r"^(https?://[^/]+/api)/webhooks/")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retry: bool = False  # a transient failure worth another attempt
    retry_after_s: float | None = None  # what the service asked us to wait (429)
    error: str = ""


def secrets_of(destination: NotifyDestination) -> list[str]:
    values = [s.get_secret_value() for s in (destination.bot_token, destination.url) if s is not None]
    if destination.kind == "discord" and destination.url is not None:
        values.append(discord_url(destination.url.get_secret_value()))  # the URL actually requested
    return [v for v in values if v]


def mask(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def max_chars(destination: NotifyDestination) -> int:
    if destination.kind == "telegram":
        return TELEGRAM_MAX_CHARS
    if destination.kind == "discord":
        return DISCORD_MAX_CHARS
    return 16_000


def discord_url(url: str) -> str:
    """The webhook URL pinned to the API version whose answers we read.

    Discord's channel settings hand out ``/api/webhooks/<id>/<token>``, which Discord serves as
    its oldest API version: there a 429's ``retry_after`` (body and header) is in milliseconds,
    so a wait of 0.3 s would read as 300 s. Pinned, it is in seconds as documented.
    """
    return _DISCORD_UNVERSIONED.sub(rf"\1/v{DISCORD_API_VERSION}/webhooks/", url, count=1)


def _request(destination: NotifyDestination, text: str, events: list[dict[str, object]]) -> tuple[str, bytes]:
    if destination.kind == "telegram":
        assert destination.bot_token is not None
        url = f"{destination.api_base.rstrip('/')}/bot{destination.bot_token.get_secret_value()}/sendMessage"
        return url, orjson.dumps({"chat_id": destination.chat_id, "text": text, "disable_web_page_preview": True})
    assert destination.url is not None
    if destination.kind == "discord":
        url = discord_url(destination.url.get_secret_value())
        return url, orjson.dumps({"content": text, "allowed_mentions": {"parse": []}})
    return destination.url.get_secret_value(), orjson.dumps({"text": text, "events": events}, default=str)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        params = body.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("retry_after"), int | float):
            return float(params["retry_after"])  # Telegram
        if isinstance(body.get("retry_after"), int | float):
            return float(body["retry_after"])  # Discord (seconds, may be fractional)
    header = response.headers.get("retry-after")
    if header:
        try:
            return float(header)
        except ValueError:
            return None
    return None


async def send(
    http: httpx.AsyncClient, destination: NotifyDestination, text: str, events: list[dict[str, object]]
) -> Outcome:
    secrets = secrets_of(destination)
    limit = max_chars(destination)
    if len(text) > limit:  # one event longer than the service takes: cut, or it is refused for good
        text = text[: limit - 1] + "…"
    url, body = _request(destination, text, events)
    try:
        response = await http.post(url, content=body, headers={"content-type": "application/json"})
    except httpx.HTTPError as exc:
        return Outcome(ok=False, retry=True, error=mask(f"{type(exc).__name__}: {exc}", secrets))
    if 200 <= response.status_code < 300:
        return Outcome(ok=True)
    detail = mask(f"HTTP {response.status_code}: {response.text[:200]}", secrets)
    if response.status_code == 429:
        return Outcome(ok=False, retry=True, retry_after_s=_retry_after(response), error=detail)
    if response.status_code >= 500 or response.status_code == 408:
        return Outcome(ok=False, retry=True, error=detail)
    return Outcome(ok=False, retry=False, error=detail)  # 4xx: wrong token, chat or URL; retrying won't help
