"""Auth endpoints: ``/oauth2/tokenP``, ``/oauth2/revokeP``, ``/oauth2/Approval`` and ``/uapi/hashkey``.

Token-endpoint failures use KIS's OAuth body shape ``{"error_description", "error_code"}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kissim.auth import hashkey
from kissim.protocol import KisError, Messages, TokenThrottled, plain_json
from kissim.state import Simulator


def _oauth_error(error: KisError) -> Response:
    return plain_json({"error_description": error.msg.text, "error_code": error.msg.code}, error.http_status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


async def token_p(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    data = await _json(request)
    sim.counters["token_requests"] += 1
    if _text(data, "grant_type") != "client_credentials":
        return plain_json({"error_description": "유효하지 않은 grant_type 입니다.", "error_code": "EGW00112"}, 403)
    try:
        return plain_json(sim.tokens.issue(_text(data, "appkey"), _text(data, "appsecret")))
    except TokenThrottled as throttled:
        return plain_json(throttled.body(), 403)
    except KisError as error:
        return _oauth_error(error)


async def revoke_p(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    data = await _json(request)
    try:
        sim.tokens.revoke(_text(data, "appkey"), _text(data, "appsecret"), _text(data, "token"))
    except KisError as error:
        return _oauth_error(error)
    return plain_json({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})


async def approval(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    data = await _json(request)
    if _text(data, "grant_type") != "client_credentials":
        return plain_json({"error_description": "유효하지 않은 grant_type 입니다.", "error_code": "EGW00112"}, 403)
    try:
        key = sim.tokens.approve(_text(data, "appkey"), _text(data, "secretkey"))
    except KisError as error:
        return _oauth_error(error)
    return plain_json({"approval_key": key})


async def hash_key(request: Request) -> Response:
    sim: Simulator = request.app.state.sim
    try:
        sim.tokens.check_credentials(request.headers.get("appkey", ""), request.headers.get("appsecret", ""))
    except KisError as error:
        return plain_json(error.body(), 500)
    raw = await request.body()
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return plain_json(KisError(Messages.BAD_REQUEST, pad=False).body(), 500)
    return plain_json({"BODY": body, "HASH": hashkey(raw)})
