"""KIS price answers (domestic inquire-price, overseas price) as the project's ``Quote`` (pure
functions; docs/kis-protocol.md §5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from brokergateway.kis.values import dec
from yquant.errors import BrokerRejected
from yquant.markets import tick_size
from yquant.messages import Market, Quote


def domestic_quote(ticker: str, output: dict[str, Any], now: datetime) -> Quote:
    price = dec(output.get("stck_prpr"))
    if price <= 0:
        raise BrokerRejected(f"KIS has no price for {ticker}", code="NO_PRICE")
    tick = dec(output.get("aspr_unit"))
    return Quote(
        market=Market.KRX,
        ticker=ticker,
        price=price,
        tick_size=tick if tick > 0 else None,
        upper_limit=dec(output.get("stck_mxpr")) or None,
        lower_limit=dec(output.get("stck_llam")) or None,
        previous_close=dec(output.get("stck_sdpr")) or None,
        currency="KRW",
        as_of=now,
    )


def overseas_quote(market: Market, ticker: str, output: dict[str, Any], now: datetime) -> Quote:
    price = dec(output.get("last"))
    if price <= 0:
        raise BrokerRejected(f"KIS has no price for {ticker} on {market.value}", code="NO_PRICE")
    return Quote(
        market=market,
        ticker=ticker,
        price=price,
        tick_size=tick_size(market, price),
        previous_close=dec(output.get("base")) or None,
        currency="USD",
        as_of=now,
    )
