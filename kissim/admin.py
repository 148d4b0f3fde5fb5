"""Admin API for tests and demos (no auth, JSON). Never part of KIS's protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kissim.market import Family, family_of
from kissim.orders import OrderDenied
from kissim.protocol import plain_json
from kissim.state import Faults, Simulator
from kissim.ws import NoticeHub


class AdminError(Exception):
    pass


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as error:
        raise AdminError("body is not JSON") from error
    if not isinstance(data, dict):
        raise AdminError("body must be a JSON object")
    return data


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if not isinstance(value, bool):
        raise AdminError(f"{name} must be true or false")
    return value


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


async def orders(request: Request) -> Response:
    since = request.query_params.get("since_ns", "")
    floor = int(since) if since.isdigit() else 0
    return plain_json([o.to_admin() for o in _sim(request).engine.orders if o.received_at_ns >= floor])


async def stats(request: Request) -> Response:
    return plain_json(_sim(request).stats())


async def accounts(request: Request) -> Response:
    result = []
    for account in _sim(request).engine.accounts.values():
        result.append(
            {
                "account": account.number,
                "krw": {"cash": str(account.krw.cash), "reserved": str(account.krw.reserved)},
                "usd": {"cash": str(account.usd.cash), "reserved": str(account.usd.reserved)},
                "holdings": [
                    {
                        "market": h.exchange,
                        "ticker": h.ticker,
                        "quantity": h.quantity,
                        "sellable": h.sellable,
                        "average_price": str(h.average_price),
                    }
                    for h in account.holdings.values()
                ],
            }
        )
    return plain_json(result)


async def price(request: Request) -> Response:
    sim = _sim(request)
    data = await _body(request)
    ticker = str(data.get("ticker", "")).strip().upper()
    try:
        value = Decimal(str(data.get("price", "")))
    except InvalidOperation as error:
        raise AdminError("price must be a decimal string") from error
    if not ticker or not value.is_finite() or value <= 0:
        raise AdminError("ticker and a positive price are required")
    market = str(data.get("market", "")).upper()
    family: Family = "KRX" if market == "KRX" else ("US" if market else family_of(ticker))
    quote = sim.prices.set_price(family, ticker, value, pin=not data.get("walk", False))
    sim.engine.match(family, ticker)
    return plain_json({"ticker": ticker, "market": family, "price": str(quote.price), "base": str(quote.base)})


async def faults(request: Request) -> Response:
    sim = _sim(request)
    data = await _body(request)
    for name in ("latency_ms", "http500_burst", "egw00201_burst", "drop_order_response", "drop_before_booking"):
        if name in data:
            value = data[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise AdminError(f"{name} must be a non-negative integer")
            setattr(sim.faults, name, value)
    if "http500_tr_ids" in data:
        bursts = data["http500_tr_ids"]
        if not isinstance(bursts, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in bursts.values()
        ):
            raise AdminError("http500_tr_ids must map tr_ids to non-negative integers")
        sim.faults.http500_tr_ids.update({str(tr_id): n for tr_id, n in bursts.items()})
    return plain_json(sim.faults.as_dict())


async def faults_clear(request: Request) -> Response:
    sim = _sim(request)
    sim.faults = Faults()
    return plain_json(sim.faults.as_dict())


async def expire_token(request: Request) -> Response:
    return plain_json({"expired": _sim(request).tokens.expire_all()})


async def market(request: Request) -> Response:
    sim = _sim(request)
    sim.switches.always_open = _flag(await _body(request), "always_open")
    return plain_json({"always_open": sim.switches.always_open})


async def rate_limit(request: Request) -> Response:
    sim = _sim(request)
    sim.switches.rate_limit = _flag(await _body(request), "enabled")
    sim.limiter.reset()
    return plain_json({"enabled": sim.switches.rate_limit})


async def reset(request: Request) -> Response:
    _sim(request).reset()
    return plain_json({"reset": True})


async def fill(request: Request) -> Response:
    sim = _sim(request)
    data = await _body(request)
    odno = str(data.get("odno", ""))
    quantity = data.get("quantity")
    if quantity is not None and (not isinstance(quantity, int) or isinstance(quantity, bool)):
        raise AdminError("quantity must be an integer")
    try:
        order = sim.engine.force_fill(odno, quantity)
    except OrderDenied as denied:
        return plain_json({"error": denied.reason.value}, 409)
    return plain_json(order.to_admin())


async def ws(request: Request) -> Response:
    """``{"drop_notices": bool}`` switches notices off/on; ``{"disconnect": true}`` closes every session."""
    sim = _sim(request)
    data = await _body(request)
    if "drop_notices" not in data and "disconnect" not in data:
        raise AdminError("drop_notices or disconnect is required")
    if "drop_notices" in data:
        sim.switches.drop_notices = _flag(data, "drop_notices")
    disconnected = 0
    if "disconnect" in data and _flag(data, "disconnect"):
        hub: NoticeHub = request.app.state.hub
        for session in list(hub.sessions):
            await session.websocket.close(code=1001)  # "going away", as a server restart looks
            disconnected += 1
    return plain_json({"drop_notices": sim.switches.drop_notices, "disconnected": disconnected})


async def healthz(request: Request) -> Response:
    return plain_json({"status": "ok", "mode": _sim(request).config.mode})


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except AdminError as error:
            return plain_json({"error": str(error)}, 400)
        finally:
            _sim(request).save(quotes=True)

    endpoint.__name__ = handler.__name__
    return endpoint


def routes() -> list[Route]:
    table = [
        ("/admin/orders", orders, "GET"),
        ("/admin/stats", stats, "GET"),
        ("/admin/accounts", accounts, "GET"),
        ("/admin/price", price, "POST"),
        ("/admin/faults", faults, "POST"),
        ("/admin/faults/clear", faults_clear, "POST"),
        ("/admin/expire-token", expire_token, "POST"),
        ("/admin/market", market, "POST"),
        ("/admin/rate-limit", rate_limit, "POST"),
        ("/admin/reset", reset, "POST"),
        ("/admin/fill", fill, "POST"),
        ("/admin/ws", ws, "POST"),
        ("/healthz", healthz, "GET"),
    ]
    return [Route(path, _guarded(handler), methods=[method]) for path, handler, method in table]
