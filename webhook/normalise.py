"""Turning what TradingView writes into yQuant's vocabulary.

Strategy names, tickers and exchanges (``KRX:005930``, ``005930`` + ``KRX``, ``NASDAQ``,
delayed-feed suffixes such as ``_DL``), action and quantity-type spellings, and the
alert's firing time (``{{timenow}}``, ISO 8601 in UTC, or an epoch in s or ms).
Every failure is an ``AlertError`` with a short machine code and a sentence for people.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from yquant.messages import Market, OrderType, QuantityType, SignalAction


class AlertError(ValueError):
    """The alert is well-formed JSON but cannot be traded as it is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


EXCHANGE_ALIASES: dict[str, Market] = {
    "KRX": Market.KRX,
    "KOSPI": Market.KRX,
    "KOSDAQ": Market.KRX,
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
    "NYSE ARCA": Market.AMEX,
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
    "fixed_quantity": QuantityType.FIXED,
    "shares": QuantityType.FIXED,
    "contracts": QuantityType.FIXED,
    "amount": QuantityType.AMOUNT,
    "cash": QuantityType.AMOUNT,
    "dollar_amount": QuantityType.AMOUNT,
    "percent_of_equity": QuantityType.PERCENT_EQUITY,
    "percent_equity": QuantityType.PERCENT_EQUITY,
    "percent_of_position": QuantityType.PERCENT_POSITION,
    "percent_position": QuantityType.PERCENT_POSITION,
}

ORDER_TYPE_ALIASES: dict[str, OrderType] = {"market": OrderType.MARKET, "limit": OrderType.LIMIT}

STRATEGY_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
_STRATEGY = re.compile(STRATEGY_PATTERN)
_KRX_CODE = re.compile(r"^\d[0-9A-Z]{5}$|^Q\d{6}$")  # 005930, new alphanumeric codes (0080G0), ETNs
_KRX_PREFIXED = re.compile(r"^A\d{6}$")  # the "A005930" spelling of Korean brokers
_US_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
_DELAYED_SUFFIX = re.compile(r"_(DLY|DL|D)$")
_EPOCH_NUMBER = re.compile(r"^\d{1,16}(\.\d{1,9})?$")

EARLIEST_FIRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_FIRED_AT = datetime(2100, 1, 1, tzinfo=UTC)
_MILLISECONDS_FROM = 10**11  # epochs above this are milliseconds (10**11 s is the year 5138)


def canonical_strategy(value: object) -> str | None:
    """The strategy name as configured (lower case), or ``None`` when it cannot be one."""
    if not isinstance(value, str):
        return None
    name = value.strip().lower()
    return name if _STRATEGY.match(name) else None


def normalise_exchange(value: str) -> Market:
    cleaned = _DELAYED_SUFFIX.sub("", value.strip().upper())
    market = EXCHANGE_ALIASES.get(cleaned)
    if market is None:
        raise AlertError("bad_exchange", f"unsupported exchange {value[:32]!r}: use KRX, NASDAQ, NYSE or AMEX")
    return market


def split_ticker(ticker: str, exchange: str | None) -> tuple[str, Market]:
    """``KRX:005930`` / ``005930`` + ``KRX`` / ``NASDAQ:AAPL`` / ``AAPL_DL`` -> (code, market)."""
    raw = ticker.strip().upper()
    prefix: str | None = None
    if ":" in raw:
        prefix, raw = raw.split(":", 1)
    raw = _DELAYED_SUFFIX.sub("", raw.strip())
    market: Market | None = None
    if exchange is not None and exchange.strip():
        market = normalise_exchange(exchange)
    if prefix:
        from_prefix = normalise_exchange(prefix)
        if market is not None and market is not from_prefix:
            raise AlertError("bad_exchange", f"ticker {ticker[:32]!r} contradicts exchange {exchange!r}")
        market = from_prefix
    if market is None:
        if not (raw.isdigit() or _KRX_PREFIXED.match(raw)):
            raise AlertError("bad_exchange", 'exchange missing: add "exchange" or write the ticker as EXCHANGE:TICKER')
        market = Market.KRX
    if market is Market.KRX:
        if _KRX_PREFIXED.match(raw):
            raw = raw[1:]
        if not _KRX_CODE.match(raw):
            raise AlertError("bad_ticker", f"{ticker[:32]!r} is not a KRX stock code (six characters, e.g. 005930)")
    elif not _US_TICKER.match(raw):
        raise AlertError("bad_ticker", f"{ticker[:32]!r} is not a US ticker")
    return raw, market


def normalise_action(value: object) -> SignalAction:
    action = ACTION_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if action is None:
        raise ValueError("use buy, sell, exit, reverse or cancel")
    return action


def normalise_quantity_type(value: object) -> QuantityType:
    found = QUANTITY_TYPE_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise ValueError("use fixed, amount, percent_of_equity or percent_of_position")
    return found


def normalise_order_type(value: object) -> OrderType:
    found = ORDER_TYPE_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise ValueError("use market or limit")
    return found


def parse_fired_at(value: object) -> datetime | None:
    """``{{timenow}}`` (``2024-05-02T01:02:03Z``), any ISO 8601 time, or an epoch in s or ms.

    Raises ``ValueError`` for anything else, including times before 2000 or after 2099.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("a time is required, not a boolean")
    if isinstance(value, str) and _EPOCH_NUMBER.match(value.strip()):
        value = Decimal(value.strip())
    if isinstance(value, int | float | Decimal):
        return _from_epoch(value)
    if not isinstance(value, str):
        raise ValueError("use ISO 8601 in UTC, as TradingView's {{timenow}} writes it")
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # TradingView's times are UTC
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("use ISO 8601 in UTC, as TradingView's {{timenow}} writes it") from None
    return _in_range(parsed)


def _from_epoch(value: int | float | Decimal) -> datetime:
    try:
        seconds = float(value)
    except (OverflowError, InvalidOperation, ValueError):
        raise ValueError("epoch out of range") from None
    if not math.isfinite(seconds) or seconds < 0 or seconds > 10**15:
        raise ValueError("epoch out of range")
    if seconds > _MILLISECONDS_FROM:
        seconds /= 1000
    if not EARLIEST_FIRED_AT.timestamp() <= seconds < LATEST_FIRED_AT.timestamp():
        raise ValueError("time out of range (2000-2099)")
    return datetime.fromtimestamp(seconds, UTC)


def _in_range(moment: datetime) -> datetime:
    if not EARLIEST_FIRED_AT <= moment < LATEST_FIRED_AT:
        raise ValueError("time out of range (2000-2099)")
    return moment
