"""Translate KIS answers and transport failures into the project's exceptions, once.

How each outcome is handled follows from the class (yquant/errors.py):

* no connection at all (``BrokerUnreachable``): nothing was sent;
* a timeout or reset after the request may have left (``BrokerTimeout`` / ``BrokerTransportError``),
  and an HTTP 5xx whose code is not a known gateway refusal: the outcome is unknown;
* a known gateway refusal (rate limit, token, key, domain) or any ``rt_cd != "0"`` under HTTP 2xx:
  KIS refused the request, nothing was booked.
"""

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
    BrokerUnreachable,
    TokenExpired,
    TokenInvalid,
    TokenThrottled,
)

RATE_LIMIT_CODES = frozenset({"EGW00201", "EGW00215"})
# Gateway answers that refuse a request before it reaches the trading system (docs/kis-protocol.md §6):
# rate limits, tokens, app key / secret, a TR of the wrong domain, a malformed request.
GATEWAY_REFUSALS = frozenset(
    {
        *RATE_LIMIT_CODES,
        "EGW00123",
        "EGW00121",
        "EGW00133",
        "EGW00103",
        "EGW00105",
        "EGW00205",
        "EGW02004",
        "EGW00213",
        "EGW00101",
        "EGW00202",
    }
)


def from_transport(exc: httpx.HTTPError) -> BrokerError:
    """A transport failure: unreachable when the request cannot have left, else an unknown outcome."""
    name = exc.__class__.__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return BrokerUnreachable(f"KIS could not be reached ({name})", code="UNREACHABLE")
    if isinstance(exc, httpx.TimeoutException):
        return BrokerTimeout(f"KIS did not answer in time ({name})", code="TIMEOUT")
    return BrokerTransportError(f"KIS request failed: {name}: {exc}", code="TRANSPORT")


def check(response: httpx.Response) -> dict[str, Any]:
    """The body of a successful KIS answer, or the matching exception.

    KIS puts the verdict in ``rt_cd`` whatever the HTTP status; gateway errors (EGW...)
    usually come with HTTP 500 but are accepted under any status.
    """
    status = response.status_code
    try:
        body = response.json()
    except ValueError as exc:
        if status >= 500:
            raise BrokerTransportError(
                f"KIS answered HTTP {status} without a body", code=f"HTTP{status}", http_status=status
            ) from exc
        raise BrokerProtocolError(
            f"KIS answered HTTP {status} with a non-JSON body", code=f"HTTP{status}", http_status=status
        ) from exc
    if not isinstance(body, dict):
        raise BrokerProtocolError("KIS answered with a non-object body", code="PROTOCOL", http_status=status)
    code = str(body.get("msg_cd") or body.get("error_code") or "").strip()
    message = str(body.get("msg1") or body.get("error_description") or "").strip()
    rt_cd = body.get("rt_cd")
    if rt_cd is None and "error_code" in body:
        raise classify(code, message, status)
    if str(rt_cd).strip() == "0":
        return body
    if rt_cd is None:
        if status >= 400:
            raise BrokerTransportError(f"KIS answered HTTP {status}", code=f"HTTP{status}", http_status=status)
        return body
    raise classify(code, message, status)


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
    if status is not None and status >= 500 and code not in GATEWAY_REFUSALS:
        # A server error we do not know as a refusal: the request may have been executed.
        return BrokerTransportError(
            text or f"KIS answered HTTP {status}", code=code or f"HTTP{status}", http_status=status
        )
    # A business refusal (or a known gateway refusal): nothing was booked.
    return BrokerRejected(text or "rejected by KIS", code=code, http_status=status)
