"""Sizing policies: how many shares a signal buys or sells. Pure functions, no I/O.

Per strategy (``StrategySettings.sizing``, and ``sell_sizing`` for sells):

| policy | buys | sells |
|---|---|---|
| ``alert`` | the alert's quantity and ``quantity_type`` (else ``quantity``) | the alert's, else all |
| ``fixed`` | ``quantity`` shares | ``quantity`` shares |
| ``amount`` | ``amount`` of cash / price | shares worth ``amount`` |
| ``percent_of_equity`` | ``percent`` of equity / price | shares worth that much |
| ``percent_of_position`` | ``percent`` of the holding (adds to it) | ``percent`` of the holding |
| ``risk`` | (risk per trade / stop distance), capped by an allocation | the whole position |
| ``close`` | refused: the strategy only closes | the whole position |

The alert's quantity is TradingView's ``contracts`` (or ``quantity``).
Sells are always capped at what is held. Fractions of a share round down; a result of
zero shares is a denial with the reason, never an order of one share "to be safe".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from ordermanager import denials
from ordermanager.denials import Denial
from yquant.messages import QuantityType, Side
from yquant.settings import StrategySettings

HUNDRED = Decimal(100)


class SizingPolicy(StrEnum):
    ALERT = "alert"
    FIXED = "fixed"
    AMOUNT = "amount"
    PERCENT_EQUITY = "percent_of_equity"
    PERCENT_POSITION = "percent_of_position"
    RISK = "risk"
    CLOSE = "close"


@dataclass(frozen=True)
class SizingInput:
    side: Side
    policy: SizingPolicy
    currency: str  # the market's currency
    price: Decimal | None  # reference price (limit, alert or fresh quote)
    equity: Decimal | None  # account equity in ``currency``; None when no snapshot exists
    held: int  # shares the account can sell now (or holds, for buys)
    strategy: StrategySettings | None = None
    quantity: Decimal | None = None  # what the alert asked for
    quantity_type: QuantityType = QuantityType.FIXED
    stop_price: Decimal | None = None  # the alert's stop-loss price


def parse_policy(name: str) -> SizingPolicy:
    try:
        return SizingPolicy(name.strip().lower())
    except ValueError as exc:
        options = ", ".join(p.value for p in SizingPolicy)
        raise ValueError(f"unknown sizing policy {name!r}: use one of {options}") from exc


def policy_for(strategy: StrategySettings | None, side: Side) -> SizingPolicy:
    """The strategy's policy for that side; ``alert`` for signals without a strategy policy."""
    if strategy is None:
        return SizingPolicy.ALERT
    if side is Side.SELL and strategy.sell_sizing:
        return parse_policy(strategy.sell_sizing)
    return parse_policy(strategy.sizing)


def strategy_problems(name: str, strategy: StrategySettings) -> list[str]:
    """What is missing for the strategy's policies to work (empty when it is complete)."""
    problems: list[str] = []
    for field, value in (("sizing", strategy.sizing), ("sell_sizing", strategy.sell_sizing)):
        if value is None:
            continue
        try:
            policy = parse_policy(value)
        except ValueError as exc:
            problems.append(f"strategy {name!r}: {field}: {exc}")
            continue
        if policy is SizingPolicy.FIXED and not strategy.quantity:
            problems.append(f"strategy {name!r}: {field} 'fixed' needs 'quantity'")
        if policy is SizingPolicy.AMOUNT and not strategy.amount:
            problems.append(f"strategy {name!r}: {field} 'amount' needs 'amount'")
        if policy in (SizingPolicy.PERCENT_EQUITY, SizingPolicy.PERCENT_POSITION) and not strategy.percent:
            problems.append(f"strategy {name!r}: {field} {policy.value!r} needs 'percent'")
        if policy is SizingPolicy.RISK and not (strategy.risk_amount or strategy.risk_percent):
            problems.append(f"strategy {name!r}: {field} 'risk' needs 'risk_amount' or 'risk_percent'")
    return problems


def needs_price(data: SizingInput) -> bool:
    """Whether the policy turns money into shares (and so needs a price)."""
    if data.policy in (SizingPolicy.AMOUNT, SizingPolicy.PERCENT_EQUITY):
        return True
    if data.policy is SizingPolicy.RISK:
        return data.side is Side.BUY
    if data.policy is SizingPolicy.ALERT and data.quantity is not None:
        return data.quantity_type in (QuantityType.AMOUNT, QuantityType.PERCENT_EQUITY)
    return False


def size_order(data: SizingInput) -> int | Denial:
    """The order's quantity in shares, or why there is none."""
    if data.side is Side.SELL and data.held <= 0:
        return Denial(denials.NO_POSITION, "nothing held to sell")
    result = _raw_size(data)
    if isinstance(result, Denial):
        return result
    if data.side is Side.SELL:
        result = min(result, data.held)  # never sell more than is held
    if result <= 0:
        return Denial(denials.NO_QUANTITY, f"sizing ({data.policy.value}) gives 0 shares")
    return result


def _raw_size(data: SizingInput) -> int | Denial:
    strategy = data.strategy
    match data.policy:
        case SizingPolicy.ALERT:
            return _alert_size(data)
        case SizingPolicy.FIXED:
            return strategy.quantity if strategy and strategy.quantity else _missing("quantity")
        case SizingPolicy.AMOUNT:
            if strategy is None or strategy.amount is None:
                return _missing("amount")
            mismatch = _currency_mismatch(data)
            return mismatch or _shares_for(strategy.amount, data)
        case SizingPolicy.PERCENT_EQUITY:
            if strategy is None or strategy.percent is None:
                return _missing("percent")
            return _percent_of_equity(strategy.percent, data)
        case SizingPolicy.PERCENT_POSITION:
            if strategy is None or strategy.percent is None:
                return _missing("percent")
            return _percent_of_position(strategy.percent, data)
        case SizingPolicy.RISK:
            return data.held if data.side is Side.SELL else _risk_size(data)
        case SizingPolicy.CLOSE:
            if data.side is Side.SELL:
                return data.held
            return Denial(denials.SIZING, "the strategy only closes positions (sizing 'close')")
    return Denial(denials.SIZING, f"unknown sizing policy {data.policy!r}")  # pragma: no cover


def _alert_size(data: SizingInput) -> int | Denial:
    if data.quantity is None:
        if data.side is Side.SELL:
            return data.held
        if data.strategy is not None and data.strategy.quantity:
            return data.strategy.quantity
        return Denial(denials.NO_QUANTITY, "the alert carries no quantity and the strategy sets none")
    match data.quantity_type:
        case QuantityType.FIXED:
            shares = _floor(data.quantity)
            if shares <= 0:
                return Denial(denials.NO_QUANTITY, f"the alert's quantity {data.quantity} is less than one share")
            return shares
        case QuantityType.AMOUNT:
            return _shares_for(data.quantity, data)
        case QuantityType.PERCENT_EQUITY:
            return _percent_of_equity(data.quantity, data)
        case QuantityType.PERCENT_POSITION:
            return _percent_of_position(data.quantity, data)
    return Denial(denials.SIZING, f"unknown quantity type {data.quantity_type!r}")  # pragma: no cover


def _risk_size(data: SizingInput) -> int | Denial:
    strategy = data.strategy
    if strategy is None:
        return _missing("risk_amount")
    mismatch = _currency_mismatch(data)
    if mismatch:
        return mismatch
    if data.price is None:
        return _no_price()
    if strategy.risk_amount is not None:
        risk = strategy.risk_amount
    elif strategy.risk_percent is not None:
        if data.equity is None:
            return _no_snapshot()
        risk = data.equity * strategy.risk_percent / HUNDRED
    else:
        return _missing("risk_amount")
    if data.stop_price is not None and data.stop_price < data.price:
        distance = data.price - data.stop_price
    elif strategy.stop_loss_percent:
        distance = data.price * strategy.stop_loss_percent / HUNDRED
    else:
        return Denial(denials.SIZING, "risk sizing needs a stop: the alert's stopLoss or 'stop_loss_percent'")
    if distance <= 0:
        return Denial(denials.SIZING, "the stop distance is zero")
    shares = _floor(risk / distance)
    cap = strategy.allocation
    if cap is None and strategy.allocation_percent is not None:
        if data.equity is None:
            return _no_snapshot()
        cap = data.equity * strategy.allocation_percent / HUNDRED
    if cap is not None:
        shares = min(shares, _floor(cap / data.price))
    return shares


def _shares_for(amount: Decimal, data: SizingInput) -> int | Denial:
    if data.price is None:
        return _no_price()
    if data.price <= 0:
        return Denial(denials.NO_PRICE, f"price {data.price} is not usable")
    return _floor(amount / data.price)


def _percent_of_equity(percent: Decimal, data: SizingInput) -> int | Denial:
    if data.equity is None:
        return _no_snapshot()
    return _shares_for(data.equity * percent / HUNDRED, data)


def _percent_of_position(percent: Decimal, data: SizingInput) -> int | Denial:
    if data.held <= 0:
        return Denial(denials.NO_POSITION, "percent of position: nothing is held")
    return _floor(Decimal(data.held) * percent / HUNDRED)


def _currency_mismatch(data: SizingInput) -> Denial | None:
    strategy = data.strategy
    if strategy is not None and strategy.currency is not None and strategy.currency != data.currency:
        return Denial(
            denials.CURRENCY_MISMATCH,
            f"the strategy's amounts are in {strategy.currency} but the market trades in {data.currency}",
        )
    return None


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _missing(field: str) -> Denial:
    return Denial(denials.SIZING, f"the strategy's sizing needs '{field}'")


def _no_price() -> Denial:
    return Denial(denials.NO_PRICE, "no price: the alert has none and no fresh quote is available")


def _no_snapshot() -> Denial:
    return Denial(denials.NO_ACCOUNT_SNAPSHOT, "no account snapshot yet: equity is unknown (wait for a sync)")
