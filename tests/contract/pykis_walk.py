"""Walks a trader's day with python-kis (PyPI, unmodified) against the base URL given as argv[1].

Usage: python pykis_walk.py BASE_URL CANO-ACNT_PRDT_CD OUTPUT.json

Runs in the contract test's own virtual environment, not the project's: it imports nothing of
yQuant. python-kis has no base-URL setting; its REST domain is the module constant
``pykis.kis.REAL_DOMAIN``, which is set here before the client is built: that, the credentials and
the account number are the only things changed. Writes one JSON document (to argv[3]): for each market (KRX,
US) what each step of the walk showed, or the error the client raised at that step.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pykis.kis

pykis.kis.REAL_DOMAIN = sys.argv[1]
ACCOUNT = sys.argv[2]
OUTPUT = sys.argv[3]

from pykis import KisAuth, PyKis  # noqa: E402  (after the domain is set)

# python-kis checks the shape of KIS's keys: a 36-character appkey and a 180-character secret.
AUTH = KisAuth(id="contract", appkey="PS" + "C" * 34, secretkey="S" * 180, account=ACCOUNT, virtual=False)


def num(value: Any) -> str | None:
    return None if value is None else f"{Decimal(value).normalize():f}"


def step(results: dict[str, Any], name: str, action: Callable[[], Any], show: Callable[[Any], Any]) -> Any:
    """Run one step; record what it showed, or the error (with KIS's codes when the client has them)."""
    try:
        value = action()
    except Exception as error:  # any failure is a finding, reported to the test
        results[name] = {
            "error": type(error).__name__,
            "message": str(error)[:500],
            "rt_cd": getattr(error, "rt_cd", None),
            "msg_cd": getattr(error, "msg_cd", None),
        }
        return None
    results[name] = show(value)
    return value


def orders(rows: Any) -> list[dict[str, Any]]:
    return [
        {
            "number": row.order_number.number,
            "symbol": row.symbol,
            "type": row.type,
            "unit_price": num(row.unit_price),
            "qty": num(row.qty),
            "executed_qty": num(row.executed_qty),
            "pending_qty": num(row.pending_qty),
        }
        for row in rows.orders
    ]


def daily(rows: Any) -> list[dict[str, Any]]:
    return [
        {
            "number": row.order_number.number,
            "symbol": row.symbol,
            "type": row.type,
            "unit_price": num(row.unit_price),
            "price": num(row.price),
            "qty": num(row.qty),
            "executed_qty": num(row.executed_qty),
            "pending_qty": num(row.pending_qty),
            "rejected": bool(row.rejected),
        }
        for row in rows.orders
    ]


def balance(value: Any) -> dict[str, Any]:
    return {
        "deposits": {currency: num(deposit.amount) for currency, deposit in value.deposits.items()},
        "stocks": [
            {"symbol": s.symbol, "qty": num(s.qty), "purchase_amount": num(s.purchase_amount)} for s in value.stocks
        ],
    }


def walk(kis: PyKis, country: str, symbol: str, resting: Decimal, revised: Decimal) -> dict[str, Any]:
    results: dict[str, Any] = {}
    account = kis.account()
    step(results, "balance_before", lambda: account.balance(country=country), balance)
    stock = step(results, "stock", lambda: kis.stock(symbol), lambda s: {"symbol": s.symbol, "market": s.market})
    if stock is None:
        return results
    step(results, "quote", stock.quote, lambda q: {"name": q.name, "price": num(q.price), "market": q.market})
    step(
        results,
        "orderbook",
        stock.orderbook,
        lambda b: {
            "asks": [num(a.price) for a in b.asks],
            "bids": [num(b_.price) for b_ in b.bids],
        },
    )
    step(
        results,
        "daily_candles",
        lambda: stock.daily_chart(start=timedelta(days=30)),
        lambda c: {"bars": len(c.bars), "last_close": num(c.bars[-1].close) if c.bars else None},
    )
    step(results, "minute_candles", stock.day_chart, lambda c: {"bars": len(c.bars)})
    bought = step(results, "buy", lambda: stock.buy(price=resting, qty=3), lambda o: {"number": o.number})
    step(results, "open_orders", lambda: account.pending_orders(country=country), orders)
    moved = None
    if bought is not None:
        moved = step(results, "revise", lambda: bought.modify(price=revised), lambda o: {"number": o.number})
    step(results, "open_orders_after_revise", lambda: account.pending_orders(country=country), orders)
    if moved is not None:
        step(results, "cancel", moved.cancel, lambda o: {"number": o.number})
    step(results, "open_orders_after_cancel", lambda: account.pending_orders(country=country), orders)
    quote = stock.quote()
    step(results, "buy_filled", lambda: stock.buy(price=quote.price, qty=2), lambda o: {"number": o.number})
    step(results, "sell_filled", lambda: stock.sell(price=quote.price, qty=1), lambda o: {"number": o.number})
    today = datetime.now(ZoneInfo("Asia/Seoul")).date()  # KIS dates orders by the Korean day
    start = today - timedelta(days=3)
    step(results, "daily_orders", lambda: account.daily_orders(start=start, end=today, country=country), daily)
    step(results, "balance_after", lambda: account.balance(country=country), balance)
    step(
        results,
        "profits",
        lambda: account.profits(start=start, end=today, country=country),
        lambda p: [
            {
                "symbol": row.symbol,
                "qty": num(row.qty),
                "buy_price": num(row.buy_price),
                "sell_price": num(row.sell_price),
                "sell_amount": num(row.sell_amount),
            }
            for row in p.orders
        ],
    )
    return results


def main() -> None:
    kis = PyKis(AUTH, use_websocket=False, keep_token=False)
    token = kis.token
    report = {
        "token": {"type": token.type, "length": len(token.token), "expired": token.expired},
        "KRX": walk(kis, "KR", "005930", Decimal(60000), Decimal(61000)),
        "US": walk(kis, "US", "AAPL", Decimal("150.00"), Decimal("151.00")),
    }
    with open(OUTPUT, "w", encoding="utf-8") as out:
        json.dump(report, out, ensure_ascii=False)


if __name__ == "__main__":
    main()
