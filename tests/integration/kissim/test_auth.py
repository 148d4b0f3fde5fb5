"""tokenP / revokeP / Approval / hashkey and the token rules on data calls."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from kissim.protocol import KST

from .helpers import DOMESTIC, Kis, SimServer, base_config


@pytest.fixture(scope="module")
def throttled_server() -> Iterator[SimServer]:
    server = SimServer(base_config(token_throttle_seconds=60, credentials={"GOODKEY": "GOODSECRET"})).start()
    yield server
    server.stop()


def price_call(kis: Kis) -> tuple[int, dict[str, str]]:
    params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    response = kis.get(f"{DOMESTIC}/quotations/inquire-price", "FHKST01010100", params)
    return response.status_code, response.json()


def test_token_when_issued_then_kis_shape_and_24h_expiry(real_server: SimServer, make_kis: Callable[..., Kis]) -> None:
    response = make_kis(real_server, appkey="SHAPEKEY").issue_token()
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "access_token_token_expired", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert len(body["access_token"]) <= 350
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["access_token_token_expired"])
    expires = datetime.strptime(body["access_token_token_expired"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
    assert abs(expires - datetime.now(KST) - timedelta(days=1)) < timedelta(seconds=5)


def test_token_when_asked_again_within_6h_then_same_token(real_server: SimServer, make_kis: Callable[..., Kis]) -> None:
    kis = make_kis(real_server, appkey="REUSEKEY")
    first = kis.issue_token().json()["access_token"]
    second = kis.issue_token().json()["access_token"]
    assert first == second
    assert real_server.admin("/admin/stats")["tokens_issued"]["REUSEKEY"] == 1


def test_token_when_asked_twice_within_a_minute_then_egw00133(
    throttled_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = make_kis(throttled_server, appkey="GOODKEY", appsecret="GOODSECRET")
    assert kis.issue_token().status_code == 200
    response = kis.issue_token()
    assert response.status_code == 403
    assert response.json() == {
        "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
        "error_code": "EGW00133",
    }


def test_token_when_appkey_not_configured_then_egw00103(
    throttled_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    response = make_kis(throttled_server, appkey="WRONGKEY", appsecret="GOODSECRET").issue_token()
    assert response.status_code == 403
    assert response.json()["error_code"] == "EGW00103"


def test_data_call_when_token_expired_then_egw00123_http500(
    real_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = make_kis(real_server, appkey="EXPIREKEY").login()
    assert price_call(kis)[0] == 200
    real_server.admin("/admin/expire-token", {})
    status, body = price_call(kis)
    assert status == 500
    assert body == {"rt_cd": "1", "msg_cd": "EGW00123", "msg1": "기간이 만료된 token 입니다."}
    kis.login()
    assert price_call(kis)[0] == 200


def test_data_call_when_token_unknown_then_egw00121(real: Kis) -> None:
    real.token = "not-a-token"
    status, body = price_call(real)
    assert status == 500
    assert (body["rt_cd"], body["msg_cd"]) == ("1", "EGW00121")


def test_data_call_when_no_bearer_then_refused(real: Kis) -> None:
    headers = real.headers("FHKST01010100")
    del headers["authorization"]
    response = real.http.get(
        f"{DOMESTIC}/quotations/inquire-price",
        params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"},
        headers=headers,
    )
    assert response.status_code == 500
    assert response.json()["msg_cd"] == "EGW00205"


def test_revoke_when_token_revoked_then_data_calls_refused(
    real_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = make_kis(real_server, appkey="REVOKEKEY").login()
    body = {"appkey": kis.appkey, "appsecret": kis.appsecret, "token": kis.token}
    response = kis.http.post("/oauth2/revokeP", json=body)
    assert response.json() == {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}
    assert price_call(kis)[1]["msg_cd"] == "EGW00121"
    assert kis.issue_token().json()["access_token"] != body["token"]


def test_approval_when_secretkey_given_then_36_char_key(real: Kis) -> None:
    body = {"grant_type": "client_credentials", "appkey": real.appkey, "secretkey": real.appsecret}
    response = real.http.post("/oauth2/Approval", json=body)
    assert response.status_code == 200
    assert len(response.json()["approval_key"]) == 36


def test_hashkey_when_order_body_posted_then_hash_returned(real: Kis) -> None:
    order = {"CANO": real.cano, "ACNT_PRDT_CD": "01", "PDNO": "005930", "ORD_QTY": "1"}
    response = real.http.post("/uapi/hashkey", json=order, headers={"appkey": real.appkey, "appsecret": real.appsecret})
    assert response.status_code == 200
    assert response.json()["BODY"] == order
    assert re.fullmatch(r"[0-9a-f]{64}", response.json()["HASH"])
