"""Composition: ``create_app(SimConfig)`` wires the simulator state, KIS routes, WebSocket and admin API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from kissim import (
    admin,
    assets,
    daily,
    domestic,
    marketdata,
    oauth,
    overseas,
    overseas_ccnl,
    pending,
    products,
    profit,
    quotes,
)
from kissim import protocol as p
from kissim.config import SimConfig
from kissim.gateway import Handler, kis_endpoint
from kissim.headers import KisHeaderCase
from kissim.state import Simulator
from kissim.ws import NoticeHub, tryitout

logger = logging.getLogger(__name__)

DOMESTIC_TRADING = "/uapi/domestic-stock/v1/trading"
DOMESTIC_QUOTES = "/uapi/domestic-stock/v1/quotations"
OVERSEAS_TRADING = "/uapi/overseas-stock/v1/trading"
OVERSEAS_QUOTES = "/uapi/overseas-price/v1/quotations"
QUOTE_SAVE_SECONDS = 30.0


KisRoute = tuple[str, str, Mapping[str, p.TrSpec], Handler]


def kis_table() -> list[KisRoute]:
    """Every KIS data endpoint the simulator serves: (path, method, tr_id table, handler)."""
    return [
        (f"{DOMESTIC_TRADING}/order-cash", "POST", p.DOMESTIC_ORDER, domestic.order_cash),
        (f"{DOMESTIC_TRADING}/order-rvsecncl", "POST", p.DOMESTIC_RVSECNCL, domestic.order_rvsecncl),
        (f"{DOMESTIC_TRADING}/inquire-balance", "GET", p.DOMESTIC_BALANCE, domestic.inquire_balance),
        (f"{DOMESTIC_TRADING}/inquire-psbl-order", "GET", p.DOMESTIC_PSBL_ORDER, domestic.inquire_psbl_order),
        (f"{DOMESTIC_TRADING}/inquire-daily-ccld", "GET", p.DOMESTIC_DAILY_CCLD, daily.inquire_daily_ccld),
        (f"{DOMESTIC_QUOTES}/inquire-price", "GET", p.DOMESTIC_PRICE, marketdata.inquire_price),
        (f"{DOMESTIC_QUOTES}/inquire-asking-price-exp-ccn", "GET", p.DOMESTIC_ASKING_PRICE, marketdata.asking_price),
        (f"{DOMESTIC_QUOTES}/inquire-ccnl", "GET", p.DOMESTIC_RECENT_TRADES, marketdata.recent_trades),
        (f"{DOMESTIC_QUOTES}/inquire-daily-price", "GET", p.DOMESTIC_DAILY_PRICE, marketdata.daily_price),
        (f"{DOMESTIC_QUOTES}/inquire-daily-itemchartprice", "GET", p.DOMESTIC_DAILY_CHART, marketdata.daily_chart),
        (f"{DOMESTIC_QUOTES}/inquire-time-itemchartprice", "GET", p.DOMESTIC_MINUTE_CHART, marketdata.minute_chart),
        (f"{DOMESTIC_QUOTES}/search-info", "GET", p.SEARCH_INFO, products.search_info),
        (f"{DOMESTIC_QUOTES}/search-stock-info", "GET", p.SEARCH_STOCK_INFO, products.search_stock_info),
        (f"{DOMESTIC_QUOTES}/chk-holiday", "GET", p.CHK_HOLIDAY, products.chk_holiday),
        (f"{DOMESTIC_TRADING}/inquire-psbl-rvsecncl", "GET", p.DOMESTIC_PSBL_RVSECNCL, pending.psbl_rvsecncl),
        (f"{DOMESTIC_TRADING}/inquire-psbl-sell", "GET", p.DOMESTIC_PSBL_SELL, pending.psbl_sell),
        (
            f"{DOMESTIC_TRADING}/inquire-period-trade-profit",
            "GET",
            p.DOMESTIC_PERIOD_TRADE_PROFIT,
            profit.period_trade_profit,
        ),
        (f"{DOMESTIC_TRADING}/inquire-period-profit", "GET", p.DOMESTIC_PERIOD_PROFIT, profit.period_profit),
        (
            f"{DOMESTIC_TRADING}/inquire-balance-rlz-pl",
            "GET",
            p.DOMESTIC_BALANCE_RLZ_PL,
            assets.inquire_balance_rlz_pl,
        ),
        (
            f"{DOMESTIC_TRADING}/inquire-account-balance",
            "GET",
            p.ACCOUNT_BALANCE,
            assets.inquire_account_balance,
        ),
        (f"{OVERSEAS_TRADING}/inquire-period-profit", "GET", p.OVERSEAS_PERIOD_PROFIT, profit.overseas_period_profit),
        (f"{OVERSEAS_QUOTES}/price-detail", "GET", p.OVERSEAS_PRICE_DETAIL, marketdata.price_detail),
        (f"{OVERSEAS_QUOTES}/inquire-asking-price", "GET", p.OVERSEAS_ASKING_PRICE, marketdata.overseas_asking_price),
        (f"{OVERSEAS_QUOTES}/dailyprice", "GET", p.OVERSEAS_DAILY_PRICE, marketdata.overseas_daily),
        (f"{OVERSEAS_QUOTES}/inquire-time-itemchartprice", "GET", p.OVERSEAS_MINUTE_CHART, marketdata.overseas_minute),
        (f"{OVERSEAS_QUOTES}/search-info", "GET", p.OVERSEAS_SEARCH_INFO, products.overseas_search_info),
        (
            "/uapi/overseas-stock/v1/quotations/countries-holiday",
            "GET",
            p.COUNTRIES_HOLIDAY,
            products.countries_holiday,
        ),
        (f"{OVERSEAS_TRADING}/inquire-nccs", "GET", p.OVERSEAS_NCCS, pending.inquire_nccs),
        (f"{OVERSEAS_TRADING}/inquire-psamount", "GET", p.OVERSEAS_PSAMOUNT, pending.inquire_psamount),
        (f"{OVERSEAS_TRADING}/order", "POST", p.OVERSEAS_ORDER, overseas.order),
        (f"{OVERSEAS_TRADING}/order-rvsecncl", "POST", p.OVERSEAS_RVSECNCL, overseas.order_rvsecncl),
        (f"{OVERSEAS_TRADING}/inquire-balance", "GET", p.OVERSEAS_BALANCE, overseas.inquire_balance),
        (
            f"{OVERSEAS_TRADING}/inquire-present-balance",
            "GET",
            p.OVERSEAS_PRESENT_BALANCE,
            overseas.inquire_present_balance,
        ),
        (f"{OVERSEAS_TRADING}/inquire-ccnl", "GET", p.OVERSEAS_CCNL, overseas_ccnl.inquire_ccnl),
        (f"{OVERSEAS_QUOTES}/price", "GET", p.OVERSEAS_PRICE, quotes.overseas_price),
    ]


def kis_routes() -> list[Route]:
    routes = [
        Route(path, kis_endpoint(tr_table, handler), methods=[method])
        for path, method, tr_table, handler in kis_table()
    ]
    routes += [
        Route("/oauth2/tokenP", _saving(oauth.token_p), methods=["POST"]),
        Route("/oauth2/revokeP", _saving(oauth.revoke_p), methods=["POST"]),
        Route("/oauth2/Approval", _saving(oauth.approval), methods=["POST"]),
        Route("/uapi/hashkey", oauth.hash_key, methods=["POST"]),
    ]
    return routes


def _saving(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Save the state (a token issued or revoked) before the answer goes out."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        finally:
            request.app.state.sim.save()

    endpoint.__name__ = handler.__name__
    return endpoint


async def _match_forever(sim: Simulator) -> None:
    """Walk prices and fill resting orders the walk reaches (and partial-fill remainders)."""
    step = sim.config.price_step_seconds
    interval = min(max(step, 0.2), 1.0) if step > 0 else 0.5
    quotes_saved = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        try:
            sim.engine.match_all()
            # Fills saved at once; the walking prices every QUOTE_SAVE_SECONDS (and at shutdown).
            with_quotes = time.monotonic() - quotes_saved >= QUOTE_SAVE_SECONDS
            sim.save(quotes=with_quotes)
            if with_quotes:
                quotes_saved = time.monotonic()
        except Exception:
            logger.exception("matching pass failed")


def create_app(config: SimConfig) -> FastAPI:
    sim = Simulator(config)
    hub = NoticeHub(sim)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_match_forever(sim))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            sim.close()

    app = FastAPI(title="kissim", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.sim = sim
    app.state.hub = hub
    app.router.routes.extend(kis_routes())
    app.router.routes.extend(admin.routes())
    app.router.routes.append(WebSocketRoute("/tryitout", tryitout))
    app.router.routes.append(WebSocketRoute("/tryitout/{feed}", tryitout))
    app.add_exception_handler(HTTPException, _not_served)
    app.add_middleware(KisHeaderCase)
    return app


async def _not_served(request: Request, error: Exception) -> Response:
    """An unknown path or method answers in KIS's envelope, not FastAPI's ``{"detail": ...}``."""
    status = error.status_code if isinstance(error, HTTPException) else 500
    msg = p.Messages.NOT_FOUND if status == 404 else p.Messages.BAD_REQUEST
    body = p.KisError(msg, http_status=status, pad=False).body()
    return p.json_response(body, status=status, tr_id=request.headers.get("tr_id", ""))
