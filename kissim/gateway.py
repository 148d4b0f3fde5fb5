"""What every KIS data call goes through before its handler: faults, auth, tr_id rules, rate limit.

``kis_endpoint`` wraps a handler ``(Call) -> Response``: it stamps the arrival time, parses the
body (POST, keys as sent, which KIS requires in UPPERCASE) or query (GET, keys upper-cased), runs
the gate and turns ``KisError`` / ``OrderDenied`` into KIS's envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kissim.orders import OrderDenied, Refusal
from kissim.protocol import KST, KisError, Messages, Msg, TrSpec, error_response, resolve_tr
from kissim.state import Simulator


@dataclass
class Call:
    """One authenticated, admitted KIS call."""

    request: Request
    sim: Simulator
    fields: dict[str, str]
    tr_id: str
    action: str
    appkey: str
    received_at_ns: int

    @property
    def virtual(self) -> bool:
        return self.sim.config.is_virtual

    @property
    def continued(self) -> bool:
        return self.request.headers.get("tr_cont", "").strip().upper() == "N"

    def field(self, name: str, default: str | None = None) -> str:
        value = self.fields.get(name)
        if value is None:
            if default is None:
                raise KisError(Messages.MISSING_FIELD, detail=f" [{name}]")
            return default
        return value.strip()

    def date_field(self, name: str) -> date:
        """A required YYYYMMDD field (a Korean date); KIS's bad-request answer otherwise."""
        text = self.field(name)
        try:
            return datetime.strptime(text, "%Y%m%d").replace(tzinfo=KST).date()
        except ValueError as error:
            raise KisError(Messages.BAD_REQUEST, detail=f" [{name}={text}]") from error

    def account(self) -> tuple[str, str]:
        cano, product = self.field("CANO"), self.field("ACNT_PRDT_CD")
        if not (len(cano) == 8 and cano.isdigit() and len(product) == 2 and product.isdigit()):
            raise KisError(Messages.BAD_ACCOUNT)
        return cano, product


Handler = Callable[[Call], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _stringify(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


async def read_fields(request: Request) -> dict[str, str]:
    if request.method == "GET":
        return {key.upper(): value for key, value in request.query_params.items()}
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as error:
        raise KisError.gateway(Messages.BAD_REQUEST) from error
    if not isinstance(data, dict):
        raise KisError.gateway(Messages.BAD_REQUEST)
    return {str(key): _stringify(value) for key, value in data.items()}


async def gate(sim: Simulator, request: Request, table: Mapping[str, TrSpec], fields: dict[str, str]) -> Call:
    headers = request.headers
    sim.counters["requests"] += 1
    if sim.faults.latency_ms > 0:
        await asyncio.sleep(sim.faults.latency_ms / 1000)
    if sim.faults.take("http500_burst") or sim.faults.take_tr_id(headers.get("tr_id", "")):
        sim.counters["injected_http500"] += 1
        raise KisError.gateway(Messages.SERVER_ERROR)
    if sim.faults.take("egw00201_burst"):
        sim.counters["injected_egw00201"] += 1
        sim.counters["rate_limited"] += 1
        raise KisError.gateway(Messages.RATE_LIMITED)
    appkey = headers.get("appkey", "")
    sim.tokens.authenticate(headers.get("authorization", ""), appkey, headers.get("appsecret", ""))
    tr_id = headers.get("tr_id", "")
    action = resolve_tr(table, tr_id, sim.config)
    cano, product = fields.get("CANO", "").strip(), fields.get("ACNT_PRDT_CD", "").strip()
    account = cano + product if cano else ""
    if sim.switches.rate_limit and not sim.limiter.admit(account or appkey, sim.config.requests_per_second):
        sim.counters["rate_limited"] += 1
        raise KisError.gateway(Messages.RATE_LIMITED)
    if account:
        sim.note_account(appkey, account)
    return Call(request, sim, fields, tr_id, action, appkey, 0)


def kis_endpoint(table: Mapping[str, TrSpec], handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        received_at_ns = time.time_ns()
        sim: Simulator = request.app.state.sim
        tr_id = request.headers.get("tr_id", "")
        try:
            fields = await read_fields(request)
            call = await gate(sim, request, table, fields)
            call.received_at_ns = received_at_ns
            return await handler(call)
        except KisError as error:
            if error.http_status >= 500:
                sim.counters["gateway_errors"] += 1
            else:
                sim.counters["refusals"] += 1
            return error_response(error, tr_id)
        except OrderDenied as denied:
            sim.counters["refusals"] += 1
            return error_response(refusal_error(denied, sim.config.is_virtual), tr_id)
        finally:
            sim.save()

    endpoint.__name__ = handler.__name__
    return endpoint


async def withhold_response(request: Request, seconds: float) -> None:
    """Fault ``drop_order_response``: answer nothing until the client hangs up (or ``seconds`` pass)."""

    async def until_disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(until_disconnect(), seconds)


_VIRTUAL: dict[Refusal, Msg] = {
    Refusal.MARKET_CLOSED: Messages.VIRTUAL_MARKET_CLOSED,
    Refusal.NO_CASH: Messages.VIRTUAL_NO_CASH,
    Refusal.NO_HOLDING: Messages.VIRTUAL_NO_HOLDING,
    Refusal.TICK: Messages.VIRTUAL_TICK,
    Refusal.NOT_TRADABLE: Messages.VIRTUAL_NOT_TRADABLE,
}
_REAL: dict[Refusal, Msg] = {
    Refusal.MARKET_CLOSED: Messages.MARKET_CLOSED,
    Refusal.NO_CASH: Messages.NO_CASH,
    Refusal.NO_HOLDING: Messages.NO_HOLDING,
    Refusal.TICK: Messages.TICK,
    Refusal.NOT_TRADABLE: Messages.NOT_TRADABLE,
}
_COMMON: dict[Refusal, Msg] = {
    Refusal.PRICE_LIMIT: Messages.PRICE_LIMIT,
    Refusal.BAD_QUANTITY: Messages.BAD_QUANTITY,
    Refusal.BAD_PRICE: Messages.BAD_PRICE,
    Refusal.UNSUPPORTED: Messages.UNSUPPORTED,
    Refusal.BAD_EXCHANGE: Messages.BAD_EXCHANGE,
    Refusal.ORDER_NOT_FOUND: Messages.ORDER_NOT_FOUND,
    Refusal.NOTHING_TO_CHANGE: Messages.NOTHING_TO_CHANGE,
    Refusal.QTY_EXCEEDS: Messages.REVISE_QTY_EXCEEDS,
    Refusal.BAD_ACCOUNT: Messages.BAD_ACCOUNT,
    Refusal.MISSING_FIELD: Messages.MISSING_FIELD,
}
_RT_CD_7 = frozenset({Refusal.NOTHING_TO_CHANGE, Refusal.QTY_EXCEEDS})


def refusal_error(denied: OrderDenied, virtual: bool) -> KisError:
    """The business refusal KIS gives for ``denied``: HTTP 200, rt_cd "1" ("7" for revise quantity)."""
    msg = (_VIRTUAL if virtual else _REAL).get(denied.reason) or _COMMON[denied.reason]
    if virtual and denied.reason in _RT_CD_7:
        msg = Msg(msg.code, "모의투자 " + msg.text)
    detail = f" {denied.detail}" if denied.detail and denied.reason is Refusal.UNSUPPORTED else ""
    return KisError(msg, rt_cd="7" if denied.reason in _RT_CD_7 else "1", detail=detail)
