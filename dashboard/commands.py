"""The state-changing routes: manual orders (with a confirmation step), cancels, revisions, trading state,
risk limits, flatten-all, schedules. The guard has checked the session and the CSRF token.
"""

from __future__ import annotations

import re
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from dashboard import actions, performance
from dashboard.actions import Actor, ManualOrder
from dashboard.pages import TICKER_PATTERN, account_choices, schedule_form_context
from dashboard.schedules import DAYS, FORM_FIELDS, SCHEDULE_ID, spec_from_form
from dashboard.views import to_input_decimal, to_input_int
from dashboard.web import client_address, render, session_of, web_of
from yquant import audit, trading_state
from yquant.errors import ConfigurationError
from yquant.markets import round_to_tick
from yquant.messages import Market, OrderType, Side
from yquant.orders import get_order, revision_problem

router = APIRouter()

NONCE = re.compile(r"^[0-9a-f]{32}$")


def actor_of(request: Request) -> Actor:
    web = web_of(request)
    return Actor(user=session_of(request).user, address=client_address(request, web.settings.dashboard.trusted_proxies))


def wants_json(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


def fields(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip()[:64] for name in names}


def message(request: Request, title: str, text: str, status: int) -> Response:
    if wants_json(request):
        return JSONResponse({"error": text}, status_code=status)
    return render(request, "message.html", {"title": title, "message": text}, status=status)


# --- manual orders -------------------------------------------------------------------------

ORDER_FIELDS = ("account", "market", "ticker", "side", "sizing", "value", "order_type", "limit_price")


async def _order_error(request: Request, values: dict[str, str], accounts: list[str]) -> str:
    if values["account"] not in accounts:
        return "Choose an account."
    if values["market"] not in {m.value for m in Market}:
        return "Choose a market."
    if not TICKER_PATTERN.match(values["ticker"]):
        return "Enter a ticker (letters and digits)."
    if values["side"] not in ("buy", "sell"):
        return "Choose buy or sell."
    if values["order_type"] not in ("market", "limit"):
        return "Choose a market or a limit order."
    value = to_input_decimal(values["value"])
    if value is None or value <= 0:
        return "Enter a positive quantity or amount (below 10^15, at most 8 decimals)."
    if values["sizing"] == "quantity" and value != value.to_integral_value():
        return "A quantity is a whole number of shares."
    if values["order_type"] == "limit" and not (to_input_decimal(values["limit_price"]) or 0) > 0:
        return "A limit order needs a positive limit price (below 10^15, at most 8 decimals)."
    return ""


@router.post("/order/preview")
async def order_preview(request: Request) -> Response:
    """The confirmation step: exact quantity, price and value, then Confirm or Back."""
    web = web_of(request)
    values = fields(await request.form(), ORDER_FIELDS)
    values["ticker"] = values["ticker"].upper()
    values["sizing"] = values["sizing"] or "quantity"
    values["order_type"] = values["order_type"] or "market"
    accounts = account_choices(request, await web.reader.aliases())
    states = await web.reader.trading_states()
    base = {"form": values, "accounts": accounts, "markets": [m.value for m in Market], "trading_state": states}
    error = await _order_error(request, values, accounts)
    if error:
        return render(request, "order.html", {**base, "error": error}, page="order", status=422)
    market, side = Market(values["market"]), Side(values["side"])
    limit_price = to_input_decimal(values["limit_price"]) if values["order_type"] == "limit" else None
    if limit_price is not None and values["sizing"] == "quantity":  # the price is known: no need to wait
        quote = await actions.cached_quote(web.client, market, values["ticker"])
    else:
        quote = await actions.get_quote(web.client, market, values["ticker"], web.settings.dashboard.quote_timeout_s)
    if limit_price is not None:
        tick = quote.tick_size if quote else None
        limit_price = round_to_tick(market, limit_price, down=side is Side.BUY, tick=tick)
    reference = limit_price or (quote.price if quote else None)
    value = to_input_decimal(values["value"]) or Decimal(0)
    if values["sizing"] == "amount":
        if reference is None:
            error = "No quote available to turn the amount into shares: enter a quantity or a limit price."
            return render(request, "order.html", {**base, "error": error}, page="order", status=422)
        quantity = int((value / reference).to_integral_value(rounding=ROUND_FLOOR))
        if quantity < 1:
            error = f"The amount buys no share at {reference}."
            return render(request, "order.html", {**base, "error": error}, page="order", status=422)
    else:
        quantity = int(value)
    order = ManualOrder(
        account=values["account"],
        market=market,
        ticker=values["ticker"],
        side=side,
        quantity=quantity,
        order_type=OrderType(values["order_type"]),
        limit_price=limit_price,
    )
    context = {
        "order": order,
        "quote": quote,
        "estimate": reference * quantity if reference is not None else None,
        "nonce": await actions.issue_confirmation(
            web.client, session_of(request).digest, "manual_order", order.model_dump_json()
        ),
        "trading_state": states,
        "scope_state": max(states.get("*", "ACTIVE"), states.get(order.account, "ACTIVE"), key=_severity),
    }
    return render(request, "order_confirm.html", context, page="order")


def _severity(state: str) -> int:
    return {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}.get(state, 0)


@router.post("/order/submit")
async def order_submit(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    values = fields(form, ("account", "market", "ticker", "side", "quantity", "order_type", "limit_price", "nonce"))
    accounts = account_choices(request, await web.reader.aliases())
    if not NONCE.match(values["nonce"]) or values["account"] not in accounts:
        return message(request, "Not sent", "This confirmation is not valid; start the order again.", 422)
    try:
        order = ManualOrder(
            account=values["account"],
            market=Market(values["market"]),
            ticker=values["ticker"],
            side=Side(values["side"]),
            quantity=to_input_int(values["quantity"]),
            order_type=OrderType(values["order_type"]),
            limit_price=to_input_decimal(values["limit_price"]),
        )
    except (ValueError, ValidationError):
        return message(request, "Not sent", "This confirmation is not valid; start the order again.", 422)
    if order.quantity <= 0 or not TICKER_PATTERN.match(order.ticker):
        return message(request, "Not sent", "This confirmation is not valid; start the order again.", 422)
    previewed = await actions.confirmed(web.client, values["nonce"], session_of(request).digest, "manual_order")
    if previewed is None:
        text = "This confirmation was not issued to this session or has expired; preview the order again."
        return message(request, "Not sent", text, 422)
    if ManualOrder.model_validate_json(previewed) != order:
        return message(request, "Not sent", "The order differs from the one previewed; preview it again.", 422)
    signal_id, _created, on_disk = await actions.submit_manual_order(
        web.client, web.settings, order, values["nonce"], actor_of(request)
    )
    web.metrics.actions.labels("manual_order").inc()
    return RedirectResponse(f"/orders?sent={signal_id}{'' if on_disk else '&unconfirmed=1'}", status_code=303)


@router.post("/orders/{client_order_id}/cancel")
async def cancel(request: Request, client_order_id: str) -> Response:
    web = web_of(request)
    record = await get_order(web.client, client_order_id[:64])
    if record is None:
        return message(request, "Not found", "No such order.", 404)
    if record.is_final:
        return message(request, "Not cancelled", f"The order is already {record.state.value}.", 409)
    await actions.cancel_order(web.client, web.settings, record, actor_of(request))
    web.metrics.actions.labels("cancel_order").inc()
    if wants_json(request):
        return JSONResponse({"status": "cancel requested", "client_order_id": record.client_order_id})
    return RedirectResponse("/orders", status_code=303)


@router.post("/orders/{client_order_id}/revise")
async def revise(request: Request, client_order_id: str) -> Response:
    """A new price and/or a lower quantity for an open limit order. What is unchanged is not asked
    for; the order manager checks the rest against the limits (ADR 0014)."""
    web = web_of(request)
    record = await get_order(web.client, client_order_id[:64])
    if record is None:
        return message(request, "Not found", "No such order.", 404)
    values = fields(await request.form(), ("limit_price", "quantity"))
    price = to_input_decimal(values["limit_price"]) if values["limit_price"] else None
    try:
        quantity = to_input_int(values["quantity"]) if values["quantity"] else None
    except ValueError:
        return message(request, "Not revised", "The quantity must be a whole number.", 422)
    if values["limit_price"] and price is None:
        return message(request, "Not revised", "The price must be a number.", 422)
    price = None if price == record.limit_price else price
    quantity = None if quantity == record.quantity else quantity
    problem = revision_problem(record, price, quantity)
    if problem is not None:
        return message(request, "Not revised", problem[0].upper() + problem[1:] + ".", 422)
    await actions.revise_order(web.client, web.settings, record, price, quantity, actor_of(request))
    web.metrics.actions.labels("revise_order").inc()
    if wants_json(request):
        return JSONResponse({"status": "revision requested", "client_order_id": record.client_order_id})
    return RedirectResponse("/orders", status_code=303)


# --- trading state, limits, flatten ------------------------------------------------------------


@router.post("/system/notify-test")
async def notify_test(request: Request) -> Response:
    """Ask the notifier to send a test message to every destination (through the audit stream it
    reads: the dashboard never talks to Telegram or Discord itself). The result shows on /system."""
    web = web_of(request)
    actor = actor_of(request)
    await audit.record(web.client, actor.user, "notify_test", {}, actor.address)
    web.metrics.actions.labels("notify_test").inc()
    if wants_json(request):
        return JSONResponse({"status": "test requested"})
    return RedirectResponse("/system?tested=1", status_code=303)


@router.post("/risk/state")
async def set_state(request: Request) -> Response:
    web = web_of(request)
    values = fields(await request.form(), ("scope", "state", "back"))
    scopes = {trading_state.GLOBAL, *account_choices(request, await web.reader.aliases())}
    if values["scope"] not in scopes or values["state"] not in ("ACTIVE", "REDUCING", "HALTED"):
        return message(request, "Not changed", "Unknown scope or state.", 422)
    await actions.set_trading_state(web.client, values["scope"], values["state"], actor_of(request))
    web.metrics.actions.labels("trading_state").inc()
    back = values["back"] if values["back"] in ("/", "/risk", "/positions", "/orders") else "/risk"
    return RedirectResponse(back, status_code=303)


def parse_limit(current: Any, form: Any) -> Any:
    raw = str(form.get("value", "")).strip()
    if isinstance(current, bool):
        return raw in ("true", "on", "1", "yes")
    if isinstance(current, int):
        return to_input_int(raw)
    if isinstance(current, float):
        number = to_input_decimal(raw)
        if number is None:
            raise ValueError("not a number below 10^15")
        return float(number)
    if isinstance(current, list):
        return [s.strip().upper() for s in raw.replace("\n", ",").split(",") if s.strip()]
    if isinstance(current, dict):
        result: dict[str, str] = {}
        for currency in ("KRW", "USD"):
            amount = str(form.get(f"value_{currency}", "")).strip().replace(",", "")
            if amount:
                if to_input_decimal(amount) is None:
                    raise ValueError(f"{currency}: not a number below 10^15")
                result[currency] = amount
        return result
    raise ValueError("this limit cannot be edited here")


@router.post("/risk/limits")
async def set_limit(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    name = str(form.get("name", ""))
    if name not in actions.LIMIT_NAMES:
        return message(request, "Not changed", "Unknown limit.", 422)
    current, _ = await actions.load_limits(web.client, web.settings)
    try:
        if form.get("reset"):
            await actions.reset_limit(web.client, web.settings, name, actor_of(request))
        else:
            await actions.set_limit(web.client, web.settings, name, parse_limit(current[name], form), actor_of(request))
    except ValueError as exc:
        return message(request, "Not changed", f"{name}: {str(exc)[:300]}", 422)
    web.metrics.actions.labels("risk_limit").inc()
    return RedirectResponse("/risk", status_code=303)


@router.get("/risk/flatten")
async def flatten_confirm(request: Request) -> Response:
    web = web_of(request)
    totals, states = await web.reader.portfolio(web.tz)
    rows = [(a.alias, p) for a in totals.accounts for p in a.positions if p.quantity > 0]
    nonce = await actions.issue_confirmation(web.client, session_of(request).digest, "flatten")
    context = {"rows": rows, "nonce": nonce, "trading_state": states}
    return render(request, "flatten.html", context, page="risk")


@router.post("/risk/flatten")
async def flatten(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    nonce = str(form.get("nonce", ""))
    if not NONCE.match(nonce):
        return message(request, "Not sent", "This confirmation is not valid; start again.", 422)
    if await actions.confirmed(web.client, nonce, session_of(request).digest, "flatten") is None:
        text = "This confirmation was not issued to this session or has expired; open Flatten again."
        return message(request, "Not sent", text, 422)
    actor = actor_of(request)
    if form.get("halt"):
        await actions.set_trading_state(web.client, trading_state.GLOBAL, "HALTED", actor)
    try:
        sent = await actions.flatten(web.client, web.settings, nonce, actor)
    except ConfigurationError as exc:
        return message(request, "Not sent", f"The accounts are not configured on this host: {exc}", 500)
    if sent is None:
        return message(request, "Already sent", "This flatten was confirmed already.", 409)
    signal_ids, on_disk = sent
    web.metrics.actions.labels("flatten").inc()
    text = f"{len(signal_ids)} liquidation signal(s) sent; follow them on the Signals and Orders pages."
    if not on_disk:
        text += (
            " Valkey did not confirm them on disk in time (its append-only file is off or slow): check that"
            " each appears on the Signals page before flattening again."
        )
    return render(request, "message.html", {"title": "Flatten sent", "message": text, "link": "/orders"})


# --- schedules -----------------------------------------------------------------------------


async def _save_schedule(request: Request, schedule_id: str | None) -> Response:
    web = web_of(request)
    form = await request.form()
    values: dict[str, Any] = fields(form, FORM_FIELDS)
    values["ticker"] = str(values["ticker"]).upper()
    values["days"] = [d for d in form.getlist("days") if isinstance(d, str) and d in DAYS]
    values["enabled"] = bool(form.get("enabled"))
    values["schedule_id"] = schedule_id or ""
    aliases = account_choices(request, await web.reader.aliases())
    try:
        if values["account"] not in aliases:
            raise ValueError("choose an account")
        spec = spec_from_form(values)
        await actions.save_schedule(web.client, web.settings, schedule_id, spec, actor_of(request))
    except (ValueError, ArithmeticError, ValidationError, ConfigurationError) as exc:
        context = schedule_form_context(aliases, values, _readable(exc))
        context["trading_state"] = await web.reader.trading_states()
        return render(request, "schedule_form.html", context, page="schedules", status=422)
    web.metrics.actions.labels("schedule").inc()
    return RedirectResponse("/schedules", status_code=303)


def _readable(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc) or "invalid value"


@router.post("/schedules")
async def schedule_create(request: Request) -> Response:
    return await _save_schedule(request, None)


@router.post("/schedules/{schedule_id}")
async def schedule_update(request: Request, schedule_id: str) -> Response:
    if not SCHEDULE_ID.match(schedule_id):
        return message(request, "Not found", "No such schedule.", 404)
    return await _save_schedule(request, schedule_id)


@router.post("/schedules/{schedule_id}/delete")
async def schedule_delete(request: Request, schedule_id: str) -> Response:
    web = web_of(request)
    if not SCHEDULE_ID.match(schedule_id):
        return message(request, "Not found", "No such schedule.", 404)
    await actions.delete_schedule(web.client, schedule_id, actor_of(request))
    web.metrics.actions.labels("schedule").inc()
    return RedirectResponse("/schedules", status_code=303)


@router.post("/performance/snapshot")
async def snapshot_now(request: Request) -> Response:
    web = web_of(request)
    taken = await performance.take_snapshot(web.reader, web.tz)
    actor = actor_of(request)
    await audit.record(web.client, actor.user, "equity_snapshot", {"taken": taken is not None}, actor.address)
    return RedirectResponse("/performance", status_code=303)
