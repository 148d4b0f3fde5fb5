"""Pre-trade risk checks as pure functions: each returns a Denial with a readable reason, or None.

The I/O that gathers their inputs (positions, pending orders, the rate window) lives in
``ordermanager.exposure``; the order in which they run lives in ``ordermanager.service``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ordermanager import denials
from ordermanager.denials import Denial
from yquant import markets
from yquant.markets import format_money, is_open, next_open
from yquant.messages import Market, Position, Side, SignalSource
from yquant.portfolio import AccountSnapshot
from yquant.risk_limits import RiskLimits
from yquant.trading_state import TradingState

# Sources allowed to trade while HALTED: the flatten command and its filtered form.
LIQUIDATION_SOURCES = frozenset({SignalSource.FLATTEN, SignalSource.LIQUIDATION})


@dataclass(frozen=True)
class BuyExposure:
    """What an account holds and has pending in one currency, before the new buy."""

    cash: Decimal | None  # None: no snapshot yet, or no cash reported in that currency
    pending_buys: Decimal  # buys not yet reflected in ``cash`` (``outside_buys`` included)
    symbol_value: Decimal  # this symbol's position value plus its pending buys
    total_value: Decimal  # every position in the currency plus every pending buy
    outside_buys: Decimal = Decimal(0)  # of ``pending_buys``: buys resting at KIS not placed by yQuant


def symbol_key(market: Market, ticker: str) -> str:
    """The symbol as deny and allow lists name it (upper case: lists are typed by hand)."""
    return markets.symbol_key(market, ticker).upper()


def _listed(symbols: list[str], market: Market, ticker: str) -> bool:
    return ticker.upper() in symbols or symbol_key(market, ticker) in symbols


def check_symbol(limits: RiskLimits, market: Market, ticker: str) -> Denial | None:
    if _listed(limits.denied_symbols, market, ticker):
        return Denial(denials.SYMBOL_DENIED, f"{symbol_key(market, ticker)} is on the deny list")
    if limits.allowed_symbols and not _listed(limits.allowed_symbols, market, ticker):
        return Denial(denials.SYMBOL_NOT_ALLOWED, f"{symbol_key(market, ticker)} is not on the allow list")
    return None


def check_stale(limits: RiskLimits, fired_at: datetime | None, now: datetime) -> Denial | None:
    if fired_at is None:
        return None
    age = now - fired_at
    if age > timedelta(seconds=limits.max_signal_age_s):
        return Denial(
            denials.STALE,
            f"signal is {age.total_seconds():.0f}s old (limit {limits.max_signal_age_s:.0f}s); not executed late",
        )
    return None


def check_market_open(market: Market, now: datetime, always_open: bool = False) -> Denial | None:
    if always_open or is_open(market, now):
        return None
    opens = next_open(market, now)
    return Denial(denials.MARKET_CLOSED, f"{market.value} is closed; next open {opens.isoformat()}")


def check_trading_state(state: TradingState, scope: str, *, reducing: bool, source: SignalSource) -> Denial | None:
    """HALTED lets only the flatten command through; REDUCING only position-reducing orders."""
    where = "globally" if scope == "global" else "for this account"
    if state is TradingState.HALTED and source not in LIQUIDATION_SOURCES:
        return Denial(denials.TRADING_HALTED, f"trading is HALTED {where}: only cancels and flatten run")
    if state is TradingState.REDUCING and not reducing:
        return Denial(denials.TRADING_REDUCING, f"trading is REDUCING {where}: only orders that reduce a position")
    return None


def check_order_value(limits: RiskLimits, currency: str, value: Decimal) -> Denial | None:
    limit = limits.max_order_value.get(currency)
    if limit is not None and value > limit:
        return Denial(
            denials.MAX_ORDER_VALUE,
            f"order value {format_money(currency, value)} is above the limit {format_money(currency, limit)}",
        )
    return None


def check_position_value(limits: RiskLimits, currency: str, value_after: Decimal) -> Denial | None:
    limit = limits.max_position_value.get(currency)
    if limit is not None and value_after > limit:
        return Denial(
            denials.MAX_POSITION_VALUE,
            f"position would be worth {format_money(currency, value_after)}, "
            f"above the per-symbol limit {format_money(currency, limit)}",
        )
    return None


def check_total_exposure(limits: RiskLimits, currency: str, exposure_after: Decimal) -> Denial | None:
    limit = limits.max_total_exposure.get(currency)
    if limit is not None and exposure_after > limit:
        return Denial(
            denials.MAX_TOTAL_EXPOSURE,
            f"total exposure would be {format_money(currency, exposure_after)}, "
            f"above the limit {format_money(currency, limit)}",
        )
    return None


def check_cash(limits: RiskLimits, currency: str, exposure: BuyExposure, value: Decimal) -> Denial | None:
    if not limits.check_cash:
        return None
    if exposure.cash is None:
        return Denial(
            denials.NO_ACCOUNT_SNAPSHOT,
            f"{currency} cash is unknown: no account snapshot yet, or the broker reported no {currency} cash",
        )
    available = exposure.cash - exposure.pending_buys
    if value > available:
        outside = (
            f", {format_money(currency, exposure.outside_buys)} of it by buys placed outside yQuant"
            if exposure.outside_buys
            else ""
        )
        return Denial(
            denials.INSUFFICIENT_CASH,
            f"order needs {format_money(currency, value)} but {format_money(currency, max(available, Decimal(0)))} "
            f"is available ({format_money(currency, exposure.pending_buys)} held by pending buys{outside})",
        )
    return None


def check_buy(limits: RiskLimits, currency: str, value: Decimal, exposure: BuyExposure) -> Denial | None:
    """The value checks of a buy, in the order a user would want to read them."""
    return (
        check_order_value(limits, currency, value)
        or check_position_value(limits, currency, exposure.symbol_value + value)
        or check_total_exposure(limits, currency, exposure.total_value + value)
        or check_cash(limits, currency, exposure, value)
    )


def equity_of(snapshot: AccountSnapshot, currency: str) -> Decimal:
    """Cash plus the market value of the positions in that currency."""
    positions = sum((p.market_value for p in snapshot.positions if p.currency == currency), Decimal(0))
    return snapshot.cash.get(currency, Decimal(0)) + positions


def position_value(position: Position | None, price: Decimal | None) -> Decimal:
    if position is None:
        return Decimal(0)
    if price is not None:
        return price * position.quantity
    return position.market_value


def daily_loss(baseline: Decimal | None, equity: Decimal) -> Decimal:
    """Equity lost since the day's first snapshot (0 when it grew or there is no baseline)."""
    if baseline is None:
        return Decimal(0)
    return max(baseline - equity, Decimal(0))


def check_daily_loss(limits: RiskLimits, currency: str, loss: Decimal) -> Denial | None:
    limit = limits.max_daily_loss.get(currency)
    if limit is not None and loss >= limit > 0:
        return Denial(
            denials.DAILY_LOSS,
            f"daily loss {format_money(currency, loss)} reached the limit {format_money(currency, limit)}; "
            "the account is now REDUCING",
        )
    return None


def revision_grows_risk(side: Side, old_value: Decimal, new_value: Decimal) -> bool:
    """A revision adds risk when it makes a buy worth more (what is left, at the new price)."""
    return side is Side.BUY and new_value > old_value


def check_revision(
    limits: RiskLimits,
    state: TradingState,
    scope: str,
    *,
    side: Side,
    currency: str,
    price_changed: bool,
    old_value: Decimal,
    new_value: Decimal,
    exposure: BuyExposure,
) -> Denial | None:
    """A revision of an open order: under HALTED only a lower quantity (a partial cancel) runs;
    under REDUCING nothing that makes a buy worth more; a buy made worth more passes the checks of
    a new buy of its new value (``exposure``: the account without this order's own reservation)."""
    where = "globally" if scope == "global" else "for this account"
    if state is TradingState.HALTED and price_changed:
        return Denial(denials.TRADING_HALTED, f"trading is HALTED {where}: a revision may only lower the quantity")
    if not revision_grows_risk(side, old_value, new_value):
        return None
    if state is TradingState.REDUCING:
        return Denial(denials.TRADING_REDUCING, f"trading is REDUCING {where}: a buy may not be revised up")
    return check_buy(limits, currency, new_value, exposure)
