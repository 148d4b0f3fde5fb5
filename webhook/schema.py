"""The alert body TradingView sends, and how it becomes a ``Signal``.

Accepts yQuant's own fields, TradingView's strategy placeholders and TradersPost-style
camelCase spellings. Unknown keys are refused, so a typo (``"quantiy"``) is a clear 422
instead of an order sized by a default; free-form indicator values go under ``meta``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    WithJsonSchema,
)

from webhook.normalise import (
    AlertError,
    canonical_strategy,
    normalise_action,
    normalise_order_type,
    normalise_quantity_type,
    parse_fired_at,
    split_ticker,
)
from yquant.messages import Market, OrderType, QuantityType, Signal, SignalAction

__all__ = ["Alert", "AlertError", "dedupe_key_of", "derive_signal_id", "signal_id_for", "to_signal"]

MAX_DIGITS = 20


def _number(value: Any) -> Any:
    """TradingView writes numbers bare or quoted; floats become exact decimals of their text."""
    if isinstance(value, bool):
        raise ValueError("a number is required")
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _optional(normalise: Callable[[object], Any]) -> Callable[[Any], Any]:
    """Apply a spelling normaliser unless the value is absent (null or an empty string)."""

    def apply(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return normalise(value)

    return apply


def _strategy(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name = canonical_strategy(value)
    if name is None:
        raise ValueError("use 1-64 letters, digits, '.', '_' or '-'")
    return name


# Constraints sit on the Decimal inside the optional, so an absent value is never compared.
# Pydantic refuses NaN and infinities for Decimal by default.
Amount = Annotated[
    Annotated[Decimal, Field(gt=0, max_digits=MAX_DIGITS)] | None,
    BeforeValidator(_number),
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}, {"type": "null"}]}),
]
Count = Annotated[
    Annotated[Decimal, Field(ge=0, max_digits=MAX_DIGITS)] | None,
    BeforeValidator(_number),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}, {"type": "null"}]}),
]
SignedNumber = Annotated[
    Annotated[Decimal, Field(max_digits=MAX_DIGITS)] | None,
    BeforeValidator(_number),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}),
]
MarketPosition = Annotated[Literal["long", "flat", "short"] | None, BeforeValidator(_lower)]
ShortText = Annotated[str | None, Field(default=None, max_length=64)]


class Alert(BaseModel):
    """The JSON object an alert message carries."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    # --- authentication (checked before this model; never stored, logged or echoed) ---
    secret: SecretStr | None = Field(default=None, max_length=256, description="the strategy's or the global secret")

    # --- what to trade ---
    strategy: Annotated[
        str,
        BeforeValidator(_strategy),
        WithJsonSchema({"type": "string", "pattern": r"^\s*[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\s*$"}),
    ] = Field(description="strategy name as configured (compared in lower case)")
    ticker: str = Field(min_length=1, max_length=32, description="005930, KRX:005930, AAPL, NASDAQ:AAPL_DL")
    exchange: str | None = Field(default=None, max_length=32, description="KRX, NASDAQ, NYSE, AMEX ({{exchange}})")
    action: Annotated[SignalAction, BeforeValidator(normalise_action)] = Field(
        description="buy, sell, exit, reverse or cancel ({{strategy.order.action}}; long/short/close also read)"
    )
    quantity: Count = Field(default=None, description="how much; the meaning depends on quantity_type")
    contracts: Count = Field(default=None, description="{{strategy.order.contracts}}; used when quantity is absent")
    quantity_type: Annotated[QuantityType | None, BeforeValidator(_optional(normalise_quantity_type))] = Field(
        default=None, validation_alias=AliasChoices("quantity_type", "quantityType")
    )
    price: Amount = Field(default=None, description="limit price, or the reference price of a market order")
    order_type: Annotated[OrderType | None, BeforeValidator(_optional(normalise_order_type))] = Field(
        default=None, validation_alias=AliasChoices("order_type", "orderType")
    )
    stop_loss: Amount = Field(default=None, validation_alias=AliasChoices("stop_loss", "stopLoss"))
    take_profit: Amount = Field(default=None, validation_alias=AliasChoices("take_profit", "takeProfit"))
    account: str | None = Field(default=None, max_length=32, description="restrict to one of the strategy's accounts")

    # --- identity and time ---
    fired_at: Annotated[
        datetime | None,
        BeforeValidator(parse_fired_at),
        WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}, {"type": "null"}]}),
    ] = Field(
        default=None,
        validation_alias=AliasChoices("fired_at", "timenow"),
        description="{{timenow}}: when the alert fired (UTC); older alerts are rejected as stale",
    )
    id: str | None = Field(default=None, min_length=1, max_length=128, description="idempotency key, if you have one")

    # --- TradingView strategy placeholders ---
    order_id: str | None = Field(default=None, max_length=128, description="{{strategy.order.id}}")
    comment: str | None = Field(default=None, max_length=256, description="{{strategy.order.comment}}")
    alert_message: str | None = Field(default=None, max_length=256, description="{{strategy.order.alert_message}}")
    market_position: MarketPosition = Field(default=None, description="{{strategy.market_position}}")
    prev_market_position: MarketPosition = Field(default=None, description="{{strategy.prev_market_position}}")
    position_size: SignedNumber = Field(default=None, description="{{strategy.position_size}} (signed)")
    market_position_size: Count = Field(default=None, description="{{strategy.market_position_size}}")
    prev_market_position_size: Count = Field(default=None, description="{{strategy.prev_market_position_size}}")

    # --- informational, kept out of the signal ---
    interval: ShortText = Field(default=None, description="{{interval}}")
    bar_time: ShortText = Field(default=None, description="{{time}}")
    open: SignedNumber = None
    high: SignedNumber = None
    low: SignedNumber = None
    close: SignedNumber = None
    volume: SignedNumber = None
    meta: dict[str, JsonValue] | None = Field(default=None, description="free-form values, e.g. indicator plots")


def derive_signal_id(alert: Alert, ticker: str, market: Market) -> str:
    """The alert's dedupe key: its explicit id, else a hash of what the order depends on.

    Normalised first, so a resend spelled differently is the same alert: the strategy and ``id``
    in lower case, numbers by value (1.0 == 1), ``fired_at`` to the second ({{timenow}}'s
    precision). Everything that changes the order is hashed: market, ticker, action, amounts,
    quantity type, order type, price, stop loss, take profit, account and TradingView's order id.
    An explicit ``id`` is an idempotency key: the same id is the same alert, whatever else it says.
    """
    if alert.id:
        return "id-" + hashlib.sha256(f"{alert.strategy}\x1f{alert.id.strip().lower()}".encode()).hexdigest()[:32]
    quantity = alert.quantity if alert.quantity is not None else alert.contracts
    fired_at = alert.fired_at.replace(microsecond=0).isoformat() if alert.fired_at else ""
    parts = [
        alert.strategy,
        market.value,
        ticker,
        alert.action.value,
        alert.order_id or "",
        fired_at,
        _number_key(quantity),
        (alert.quantity_type or QuantityType.FIXED).value,
        (alert.order_type or OrderType.MARKET).value,
        _number_key(alert.price),
        _number_key(alert.stop_loss),
        _number_key(alert.take_profit),
        (alert.account or "").lower(),
    ]
    return "h-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def signal_id_for(dedupe_key: str, received_at: datetime) -> str:
    """A new signal's id: its dedupe key and the millisecond it was received.

    Unique per accepted alert (a second alert of the same key within the dedupe window is a
    duplicate), so every accepted alert is a new signal for the order manager, even when the
    same key comes back after the window.
    """
    return f"{dedupe_key}.{int(received_at.timestamp() * 1000):x}"


def dedupe_key_of(signal_id: str) -> str:
    return signal_id.split(".", 1)[0]


def _number_key(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f")


def to_signal(alert: Alert, received_at: datetime) -> Signal:
    """The trading signal the alert asks for; ``AlertError`` when it cannot be traded as written."""
    ticker, market = split_ticker(alert.ticker, alert.exchange)
    order_type = alert.order_type or OrderType.MARKET
    if order_type is OrderType.LIMIT and alert.price is None:
        raise AlertError("limit_without_price", "a limit order needs a price")
    return Signal(
        signal_id=signal_id_for(derive_signal_id(alert, ticker, market), received_at),
        strategy=alert.strategy,
        ticker=ticker,
        market=market,
        action=alert.action,
        quantity=alert.quantity if alert.quantity is not None else alert.contracts,
        quantity_type=alert.quantity_type or QuantityType.FIXED,
        order_type=order_type,
        price=alert.price,
        stop_loss=alert.stop_loss,
        take_profit=alert.take_profit,
        fired_at=alert.fired_at,
        received_at=received_at,
        order_id=alert.order_id,
        comment=alert.comment or alert.alert_message,
        market_position=alert.market_position,
        position_size=alert.position_size,
        account=alert.account,
    )
