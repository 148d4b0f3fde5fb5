"""KIS answers and transport failures become the project's exceptions, once (no I/O)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from brokergateway.kis.errors import check, from_transport
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


def answer(status: int, body: Any = None, content: bytes | None = None) -> httpx.Response:
    request = httpx.Request("GET", "https://kis.test/x")
    if content is not None:
        return httpx.Response(status, content=content, request=request)
    return httpx.Response(status, json=body, request=request)


def test_success_returns_the_body_whatever_padding() -> None:
    body = {"rt_cd": "0", "msg_cd": "KIOK0510", "msg1": "조회가 완료되었습니다        ", "output": {}}
    assert check(answer(200, body)) is not None


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (500, "EGW00201", BrokerRateLimited),
        (500, "EGW00215", BrokerRateLimited),
        (500, "EGW00123", TokenExpired),
        (200, "EGW00123", TokenExpired),  # seen under HTTP 200 as well (UNCERTAIN in the notes)
        (500, "EGW00121", TokenInvalid),
        (500, "EGW02004", BrokerRejected),  # virtual key on the real domain: refused, nothing booked
        (500, "EGW00002", BrokerTransportError),  # an unknown server error: the outcome is unknown
        (200, "40580000", BrokerRejected),
        (200, "APBK1359", BrokerRejected),
    ],
)
def test_kis_codes_map_to_how_they_are_handled(status: int, code: str, kind: type[BrokerError]) -> None:
    body = {"rt_cd": "7" if code == "APBK1359" else "1", "msg_cd": code, "msg1": "메시지  "}
    with pytest.raises(kind) as raised:
        check(answer(status, body))
    assert raised.value.code == code
    assert raised.value.http_status == status


def test_business_rejection_carries_kis_message_for_the_user() -> None:
    body = {"rt_cd": "1", "msg_cd": "40250000", "msg1": "모의투자 주문가능금액이 부족합니다.          "}
    with pytest.raises(BrokerRejected) as raised:
        check(answer(200, body))
    assert raised.value.message == "모의투자 주문가능금액이 부족합니다. (40250000)"


def test_token_issuance_throttle_uses_its_own_body_shape() -> None:
    body = {"error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)", "error_code": "EGW00133"}
    with pytest.raises(TokenThrottled) as raised:
        check(answer(403, body))
    assert raised.value.code == "EGW00133"


def test_5xx_without_a_body_is_an_unknown_outcome_and_2xx_garbage_a_protocol_error() -> None:
    with pytest.raises(BrokerTransportError):
        check(answer(502, content=b"<html>bad gateway</html>"))
    with pytest.raises(BrokerProtocolError):
        check(answer(200, content=b"not json"))
    with pytest.raises(BrokerProtocolError):
        check(answer(200, ["a", "list"]))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), BrokerUnreachable),
        (httpx.ConnectTimeout("slow"), BrokerUnreachable),
        (httpx.PoolTimeout("busy"), BrokerUnreachable),
        (httpx.ReadTimeout("late"), BrokerTimeout),
        (httpx.WriteTimeout("late"), BrokerTimeout),
        (httpx.RemoteProtocolError("reset"), BrokerTransportError),
        (httpx.ReadError("reset"), BrokerTransportError),
    ],
)
def test_transport_failures_say_whether_the_request_may_have_left(
    exc: httpx.HTTPError, kind: type[BrokerError]
) -> None:
    error = from_transport(exc)
    assert type(error) is kind
    # A timeout is a transport error (outcome unknown); "unreachable" is not: nothing was sent.
    assert isinstance(error, BrokerTransportError) is (kind is not BrokerUnreachable)
