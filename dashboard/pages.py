"""The read-only pages and APIs. ``?partial=1`` returns a page's live fragment only."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from redis.exceptions import RedisError

from dashboard import performance
from dashboard.actions import LIMIT_NAMES, get_quote, load_limits
from dashboard.data import text_map
from dashboard.live import event_stream
from dashboard.schedules import DAYS, SCHEDULE_ID, ZONES, blank_form, form_from_schedule
from dashboard.web import Web, render, web_of
from yquant import controls, keys, pnl
from yquant.errors import ConfigurationError
from yquant.markets import symbol_key
from yquant.messages import Market
from yquant.orders import OrderRecord
from yquant.settings import effective_accounts


async def notification_health(request: Request) -> None:
    """Every page shows a banner while a notification destination is failing (dashboard.web.render).
    Best effort: probes, metrics and APIs skip it, and Valkey trouble shows elsewhere."""
    request.state.notify_failing = []
    if request.url.path in ("/healthz", "/metrics") or request.url.path.startswith(("/api/", "/events")):
        return
    try:
        request.state.notify_failing = await web_of(request).reader.failing_notifications()
    except (RedisError, OSError):
        return


router = APIRouter(dependencies=[Depends(notification_health)])

TICKER_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,11}$")


def partial(request: Request) -> bool:
    return request.query_params.get("partial") == "1"


def page(request: Request, name: str, context: dict[str, Any]) -> Response:
    template = f"partials/{name}.html" if partial(request) else f"{name}.html"
    return render(request, template, context, page=name)


def today_start(web: Web) -> datetime:
    """Midnight in the dashboard's zone: "today" for day P/L and realised today."""
    return datetime.now(web.tz).replace(hour=0, minute=0, second=0, microsecond=0)


@router.get("/")
async def overview(request: Request) -> Response:
    web = web_of(request)
    totals, states = await web.reader.portfolio(web.tz)
    totals.book(pnl.realise(await web.reader.filled_orders()), today_start(web))
    return page(request, "overview", {"totals": totals, "trading_state": states})


@router.get("/positions")
async def positions(request: Request) -> Response:
    web = web_of(request)
    totals, states = await web.reader.portfolio(web.tz)
    rows = [(account, position) for account in totals.accounts for position in account.positions]
    return page(request, "positions", {"totals": totals, "rows": rows, "trading_state": states})


@router.get("/orders")
async def orders(request: Request) -> Response:
    web = web_of(request)
    records, states = await web.reader.orders(limit=150)
    show = request.query_params.get("show", "all")
    account = request.query_params.get("account", "")
    if show == "open":
        records = [r for r in records if not r.is_final]
    if account:
        records = [r for r in records if r.account == account]
    sent = request.query_params.get("sent", "")
    decision = await web.client.hgetall(keys.signal_record(sent)) if re.fullmatch(r"dash-[0-9a-f]{32}", sent) else {}
    context = {
        "records": records,
        "show": show,
        "account": account,
        "sent": sent,
        "unconfirmed": bool(sent) and request.query_params.get("unconfirmed") == "1",
        "decision": text_map(decision),
        "trading_state": states,
    }
    return page(request, "orders", context)


def _matches(entry: dict[str, Any], filters: dict[str, str]) -> bool:
    signal = entry.get("signal") or {}
    if filters["status"] and entry.get("status") != filters["status"]:
        return False
    if filters["strategy"] and signal.get("strategy") != filters["strategy"]:
        return False
    if filters["source"] and signal.get("source") != filters["source"]:
        return False
    if filters["ticker"] and filters["ticker"].upper() not in str(signal.get("ticker", "")).upper():
        return False
    text = filters["q"].lower()
    haystack = " ".join(str(v) for v in (entry.get("reason"), entry.get("note"), entry.get("reason_code"), signal))
    return not text or text in haystack.lower()


@router.get("/signals")
async def signals(request: Request) -> Response:
    web = web_of(request)
    entries, states = await web.reader.signals(limit=200)
    filters = {
        name: request.query_params.get(name, "")[:64] for name in ("status", "strategy", "source", "ticker", "q")
    }
    strategies = sorted({str((e.get("signal") or {}).get("strategy", "")) for e in entries} - {""})
    shown = [e for e in entries if _matches(e, filters)]
    context = {"entries": shown, "filters": filters, "strategies": strategies, "trading_state": states}
    return page(request, "signals", context)


def account_choices(request: Request, known: list[str]) -> list[str]:
    web = web_of(request)
    if known:
        return known
    try:
        return sorted(effective_accounts(web.settings))
    except ConfigurationError:
        return []


@router.get("/order")
async def order_form(request: Request) -> Response:
    web = web_of(request)
    aliases = account_choices(request, await web.reader.aliases())
    query = request.query_params
    form = {
        "account": query.get("account", aliases[0] if aliases else ""),
        "market": query.get("market", "KRX"),
        "ticker": query.get("ticker", "")[:12],
        "side": query.get("side", "buy"),
        "sizing": query.get("sizing", "quantity"),
        "value": query.get("quantity", "")[:20],
        "order_type": query.get("order_type", "market"),
        "limit_price": query.get("limit_price", "")[:20],
    }
    states = await web.reader.trading_states()
    context = {
        "form": form,
        "accounts": aliases,
        "markets": [m.value for m in Market],
        "error": "",
        "trading_state": states,
    }
    return render(request, "order.html", context, page="order")


@router.get("/schedules")
async def schedules(request: Request) -> Response:
    web = web_of(request)
    found, states = await web.reader.schedules()
    context = {"schedules": found, "days": DAYS, "trading_state": states}
    return render(request, "schedules.html", context, page="schedules")


def schedule_form_context(aliases: list[str], values: dict[str, Any], error: str = "") -> dict[str, Any]:
    return {
        "form": values,
        "accounts": aliases,
        "markets": [m.value for m in Market],
        "days": DAYS,
        "zones": ZONES,
        "error": error,
    }


@router.get("/schedules/new")
async def schedule_new(request: Request) -> Response:
    web = web_of(request)
    aliases = account_choices(request, await web.reader.aliases())
    values = blank_form(aliases[0] if aliases else "")
    context = schedule_form_context(aliases, values) | {"trading_state": await web.reader.trading_states()}
    return render(request, "schedule_form.html", context, page="schedules")


@router.get("/schedules/{schedule_id}/edit")
async def schedule_edit(request: Request, schedule_id: str) -> Response:
    web = web_of(request)
    schedule = await controls.get_schedule(web.client, schedule_id) if SCHEDULE_ID.match(schedule_id) else None
    if schedule is None:
        return render(request, "message.html", {"title": "Not found", "message": "No such schedule."}, status=404)
    aliases = account_choices(request, await web.reader.aliases())
    context = schedule_form_context(aliases, form_from_schedule(schedule))
    context["trading_state"] = await web.reader.trading_states()  # the header's state and kill switch
    return render(request, "schedule_form.html", context, page="schedules")


@router.get("/risk")
async def risk(request: Request) -> Response:
    web = web_of(request)
    # The partial refresh shows only the trading state; limits only on a full page.
    context: dict[str, object] = {
        "accounts": await web.reader.aliases(),
        "trading_state": await web.reader.trading_states(),
        "error": request.query_params.get("error", "")[:300],
    }
    if not partial(request):
        limits, overridden = await load_limits(web.client, web.settings)
        context.update(
            limits=limits,
            limit_names=LIMIT_NAMES,
            limit_labels={name: limit_label(name) for name in LIMIT_NAMES},
            overridden=overridden,
        )
    return page(request, "risk", context)


def limit_label(name: str) -> str:
    """``duplicate_window_s`` -> ``Duplicate window (seconds)``."""
    if name.endswith("_s"):
        return name[:-2].replace("_", " ").capitalize() + " (seconds)"
    return name.replace("_", " ").capitalize()


def _token_keys(request: Request) -> dict[str, str]:
    web = web_of(request)
    try:
        accounts = effective_accounts(web.settings)
    except ConfigurationError:
        return {}
    return {alias: keys.token(a.app_key.get_secret_value()) for alias, a in accounts.items() if a.app_key is not None}


@router.get("/system")
async def system(request: Request) -> Response:
    web = web_of(request)
    data = await web.reader.system(_token_keys(request))
    data["now"] = time.time()
    data["sse_clients"] = len(web.broadcaster.subscribers)
    data["tested"] = request.query_params.get("tested") == "1"
    return page(request, "system", data)


@router.get("/performance")
async def performance_page(request: Request) -> Response:
    web = web_of(request)
    snapshots, records, states = await web.reader.performance()
    totals, _ = await web.reader.portfolio(web.tz)
    book = pnl.realise(records)
    totals.book(book, today_start(web))
    series = performance.equity_series(snapshots)
    context = {
        "snapshots": list(reversed(snapshots[-15:])),
        "chart": performance.chart(series),
        "total_return": performance.total_return(series),
        "max_drawdown": performance.max_drawdown(series),
        "win_rate": performance.win_rate(book),
        "totals": totals,
        "strategies": pnl.by_strategy(records, book),
        "trades": list(reversed(book.realisations[-50:])),
        "trade_count": len(book.realisations),
        "unmatched": book.unmatched,
        "trading_state": states,
    }
    return render(request, "performance.html", context, page="performance")


def _csv(body: str, name: str) -> Response:
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/performance/trades.csv")
async def trades_csv(request: Request) -> Response:
    _, records, _ = await web_of(request).reader.performance()
    return _csv(performance.trades_csv(records), "yquant-trades.csv")


@router.get("/performance/snapshots.csv")
async def snapshots_csv(request: Request) -> Response:
    snapshots, _, _ = await web_of(request).reader.performance(limit=1)
    return _csv(performance.snapshots_csv(snapshots), "yquant-equity.csv")


@router.get("/events")
async def events(request: Request) -> Response:
    web = web_of(request)
    resume = request.headers.get("last-event-id") or request.query_params.get("from")
    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(event_stream(web.broadcaster, resume), media_type="text/event-stream", headers=headers)


@router.get("/api/quote")
async def quote(request: Request) -> Response:
    web = web_of(request)
    ticker = request.query_params.get("ticker", "").strip().upper()
    try:
        market = Market(request.query_params.get("market", "KRX"))
    except ValueError:
        return JSONResponse({"error": "unknown market"}, status_code=400)
    if not TICKER_PATTERN.match(ticker):
        return JSONResponse({"error": "enter a ticker"}, status_code=400)
    found = await get_quote(web.client, market, ticker, web.settings.dashboard.quote_timeout_s)
    if found is None:  # not an HTTP error: the form simply shows that no price is known
        return JSONResponse({"price": None, "error": "no quote available right now"})
    return JSONResponse(found.model_dump(mode="json"))


@router.get("/api/tickers")
async def tickers(request: Request) -> Response:
    """Ticker suggestions: held positions, recent orders and the configured watchlist."""
    web = web_of(request)
    needle = request.query_params.get("q", "").strip().upper()[:12]
    totals, _ = await web.reader.portfolio(web.tz)
    found: dict[str, dict[str, str]] = {}
    for account in totals.accounts:
        for p in account.positions:
            found[symbol_key(p.market, p.ticker)] = {"market": p.market.value, "ticker": p.ticker, "name": p.name}
    records, _ = await web.reader.orders(limit=100)
    for r in records:
        found.setdefault(symbol_key(r.market, r.ticker), {"market": r.market.value, "ticker": r.ticker, "name": ""})
    for item in web.settings.dashboard.watchlist:
        market, _, ticker = item.upper().rpartition(":")
        market = market or "KRX"
        found.setdefault(symbol_key(market, ticker), {"market": market, "ticker": ticker, "name": ""})
    matches = [v for v in found.values() if not needle or needle in v["ticker"] or needle in v["name"].upper()]
    return JSONResponse(sorted(matches, key=lambda v: (v["ticker"] != needle, v["ticker"]))[:20])


def _order_json(record: OrderRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


@router.get("/api/state")
async def state(request: Request) -> Response:
    web = web_of(request)
    totals, states = await web.reader.portfolio(web.tz)
    records, _ = await web.reader.orders(limit=50)
    accounts = [
        {
            "account": a.alias,
            "cash": {k: str(v) for k, v in a.cash.items()},
            "synced_at": a.synced_at,
            "equity_krw": str(a.equity_krw),
            "positions": [p.model_dump(mode="json") for p in a.positions],
        }
        for a in totals.accounts
    ]
    body = {
        "accounts": accounts,
        "orders": [_order_json(r) for r in records],
        "trading_state": states,
        "fx": {"usdkrw": str(totals.fx.rate), "source": totals.fx.source},
        "equity_krw": str(totals.equity_krw),
    }
    return JSONResponse(body)


@router.get("/healthz")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(web_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
