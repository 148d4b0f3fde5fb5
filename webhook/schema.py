"""The alert body TradingView sends, and how it becomes a ``Signal``.

Accepts yQuant's own fields and TradingView's strategy placeholders. Tickers and
exchanges are normalised (``KRX:005930``, ``NASDAQ``, ``_DL`` suffixes).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from yquant.messages import Market, OrderType, QuantityType, Signal, SignalAction

EXCHANGE_ALIASES: dict[str, Market] = {
    "KRX": Market.KRX,
    "KOSPI": Market.KRX,
    "KOSDAQ": Market.KRX,
    "KRW": Market.KRX,
    "NASDAQ": Market.NASD,
    "NASD": Market.NASD,
    "NAS": Market.NASD,
    "NYSE": Market.NYSE,
    "NYS": Market.NYSE,
    "AMEX": Market.AMEX,
    "AMS": Market.AMEX,
    "NYSEAMERICAN": Market.AMEX,
    "NYSE AMERICAN": Market.AMEX,
    "NYSEARCA": Market.AMEX,
}

ACTION_ALIASES: dict[str, SignalAction] = {
    "buy": SignalAction.BUY,
    "long": SignalAction.BUY,
    "sell": SignalAction.SELL,
    "short": SignalAction.SELL,
    "exit": SignalAction.EXIT,
    "close": SignalAction.EXIT,
    "flat": SignalAction.EXIT,
    "reverse": SignalAction.REVERSE,
    "cancel": SignalAction.CANCEL,
}

QUANTITY_TYPE_ALIASES: dict[str, QuantityType] = {
    "fixed": QuantityType.FIXED,
    "shares": QuantityType.FIXED,
    "amount": QuantityType.AMOUNT,
    "cash": QuantityType.AMOUNT,
    "dollar_amount": QuantityType.AMOUNT,
    "percent_of_equity": QuantityType.PERCENT_EQUITY,
    "percent_equity": QuantityType.PERCENT_EQUITY,
    "percent_of_position": QuantityType.PERCENT_POSITION,
    "percent_position": QuantityType.PERCENT_POSITION,
}

_KRX_CODE = re.compile(r"^[0-9A-Z]\d{4}[0-9A-Z]$|^\d{6}$|^Q?\d{6}$")
_US_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
_DELAYED_SUFFIX = re.compile(r"_(DL|D)$")


class AlertError(ValueError):
    """The alert is well-formed JSON but cannot be traded as it is."""


def normalise_exchange(value: str) -> Market:
    cleaned = _DELAYED_SUFFIX.sub("", value.strip().upper())
    market = EXCHANGE_ALIASES.get(cleaned)
    if market is None:
        raise AlertError(f"unsupported exchange {value!r}: use KRX, NASDAQ, NYSE or AMEX")
    return market


def split_ticker(ticker: str, exchange: str | None) -> tuple[str, Market]:
    """``KRX:005930`` / ``005930`` + ``KRX`` / ``NASDAQ:AAPL`` -> (code, market)."""
    raw = ticker.strip().upper()
    prefix = None
    if ":" in raw:
        prefix, raw = raw.split(":", 1)
    raw = _DELAYED_SUFFIX.sub("", raw)
    source = exchange or prefix
    if not source:
        source = "KRX" if raw.isdigit() else ""
    if not source:
        raise AlertError('exchange missing: add "exchange" or write the ticker as EXCHANGE:TICKER')
    market = normalise_exchange(source)
    if market is Market.KRX:
        if raw.startswith("A") and len(raw) == 7 and raw[1:].isdigit():
            raw = raw[1:]
        if not _KRX_CODE.match(raw):
            raise AlertError(f"{ticker!r} is not a KRX stock code (six digits, e.g. 005930)")
    elif not _US_TICKER.match(raw):
        raise AlertError(f"{ticker!r} is not a US ticker")
    return raw, market


def parse_time(value: str | int | float | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = value.strip()
    if text.isdigit():
        return parse_time(int(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise AlertError(f"time {value!r} is not ISO 8601 (TradingView's {{{{timenow}}}})") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # TradingView's times are UTC
    return parsed.astimezone(UTC)


class Alert(BaseModel):
    """The JSON an alert message carries. Unknown keys are ignored (TradingView extras)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    secret: SecretStr | None = None
    strategy: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    ticker: str = Field(min_length=1, max_length=32)
    exchange: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=16)
    quantity: Decimal | None = Field(default=None, ge=0, max_digits=20)
    contracts: Decimal | None = Field(default=None, ge=0, max_digits=20)
    quantity_type: str | None = Field(default=None, alias="quantityType", max_length=32)
    price: Decimal | None = Field(default=None, gt=0, max_digits=20)
    order_type: str | None = Field(default=None, alias="orderType", max_length=16)
    stop_loss: Decimal | None = Field(default=None, alias="stopLoss", gt=0, max_digits=20)
    take_profit: Decimal | None = Field(default=None, alias="takeProfit", gt=0, max_digits=20)
    fired_at: str | int | None = Field(default=None, alias="timenow")
    id: str | None = Field(default=None, max_length=128)
    order_id: str | None = Field(default=None, max_length=128)
    comment: str | None = Field(default=None, max_length=256)
    market_position: str | None = Field(default=None, max_length=16)
    position_size: Decimal | None = Field(default=None, max_digits=20)
    account: str | None = Field(default=None, max_length=32)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fired_at" in data and "timenow" not in data:
            data = dict(data)
            data["timenow"] = data.pop("fired_at")
        return data

    @field_validator("quantity", "contracts", "price", "stop_loss", "take_profit", "position_size", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a number is required")
        if isinstance(value, str) and value.strip() == "":
            return None
        if isinstance(value, float):
            return Decimal(repr(value))
        return value

    @field_validator("quantity", "contracts", "price", "stop_loss", "take_profit", "position_size")
    @classmethod
    def _finite(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not value.is_finite():
            raise ValueError("must be a finite number")
        return value


def derive_signal_id(alert: Alert, ticker: str, market: Market, fired_at: datetime | None) -> str:
    """The alert's idempotency key: its explicit id, else a hash of what identifies it."""
    if alert.id:
        return "id-" + hashlib.sha256(f"{alert.strategy}\x1f{alert.id}".encode()).hexdigest()[:32]
    parts = [
        alert.strategy,
        market.value,
        ticker,
        alert.action.lower(),
        alert.order_id or "",
        fired_at.isoformat() if fired_at else "",
        str(alert.quantity if alert.quantity is not None else alert.contracts or ""),
        str(alert.price or ""),
    ]
    return "h-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def to_signal(alert: Alert, received_at: datetime) -> Signal:
    ticker, market = split_ticker(alert.ticker, alert.exchange)
    action = ACTION_ALIASES.get(alert.action.lower())
    if action is None:
        raise AlertError(f"unknown action {alert.action!r}: use buy, sell, exit, reverse or cancel")
    quantity_type = QuantityType.FIXED
    if alert.quantity_type:
        found = QUANTITY_TYPE_ALIASES.get(alert.quantity_type.lower())
        if found is None:
            raise AlertError(f"unknown quantity type {alert.quantity_type!r}")
        quantity_type = found
    order_type = OrderType.MARKET
    if alert.order_type:
        try:
            order_type = OrderType(alert.order_type.lower())
        except ValueError as exc:
            raise AlertError(f"unknown order type {alert.order_type!r}: use market or limit") from exc
    if order_type is OrderType.LIMIT and alert.price is None:
        raise AlertError("a limit order needs a price")
    fired_at = parse_time(alert.fired_at)
    quantity = alert.quantity if alert.quantity is not None else alert.contracts
    return Signal(
        signal_id=derive_signal_id(alert, ticker, market, fired_at),
        strategy=alert.strategy,
        ticker=ticker,
        market=market,
        action=action,
        quantity=quantity,
        quantity_type=quantity_type,
        order_type=order_type,
        price=alert.price,
        stop_loss=alert.stop_loss,
        take_profit=alert.take_profit,
        fired_at=fired_at,
        received_at=received_at,
        order_id=alert.order_id,
        comment=alert.comment,
        market_position=alert.market_position,
        position_size=alert.position_size,
        account=alert.account,
    )
