"""Translate KIS answers and transport failures into the project's exceptions, once."""

from __future__ import annotations

from typing import Any

import httpx

from yquant.errors import (
    BrokerError,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerTransportError,
    TokenExpired,
    TokenInvalid,
    TokenThrottled,
)

RATE_LIMIT_CODES = frozenset({"EGW00201", "EGW00215"})


def from_transport(exc: httpx.HTTPError) -> BrokerError:
    if isinstance(exc, httpx.TimeoutException):
        return BrokerTimeout(f"KIS did not answer in time ({exc.__class__.__name__})")
    return BrokerTransportError(f"KIS request failed: {exc.__class__.__name__}: {exc}")


def check(response: httpx.Response) -> dict[str, Any]:
    """The body of a successful KIS answer, or the matching exception.

    KIS puts the verdict in ``rt_cd`` whatever the HTTP status; gateway errors (EGW...)
    usually come with HTTP 500 but are accepted under any status.
    """
    try:
        body = response.json()
    except ValueError as exc:
        if response.status_code >= 500:
            raise BrokerTransportError(
                f"KIS answered HTTP {response.status_code} without a body", http_status=response.status_code
            ) from exc
        raise BrokerProtocolError(
            f"KIS answered HTTP {response.status_code} with a non-JSON body", http_status=response.status_code
        ) from exc
    if not isinstance(body, dict):
        raise BrokerProtocolError("KIS answered with a non-object body", http_status=response.status_code)
    code = str(body.get("msg_cd") or body.get("error_code") or "").strip()
    message = str(body.get("msg1") or body.get("error_description") or "").strip()
    rt_cd = body.get("rt_cd")
    if rt_cd is None and "error_code" in body:
        raise classify(code, message, response.status_code)
    if str(rt_cd) == "0":
        return body
    if rt_cd is None:
        if response.status_code >= 400:
            raise BrokerTransportError(f"KIS answered HTTP {response.status_code}", http_status=response.status_code)
        return body
    raise classify(code, message, response.status_code)


def classify(code: str, message: str, status: int | None) -> BrokerError:
    text = f"{message} ({code})" if code else message
    if code in RATE_LIMIT_CODES:
        return BrokerRateLimited(text, code=code, http_status=status)
    if code == "EGW00123":
        return TokenExpired(text, code=code, http_status=status)
    if code == "EGW00121":
        return TokenInvalid(text, code=code, http_status=status)
    if code == "EGW00133":
        return TokenThrottled(text, code=code, http_status=status)
    # Any other answer with a KIS code is a definite refusal: nothing was booked.
    return BrokerRejected(text or "rejected by KIS", code=code, http_status=status)
