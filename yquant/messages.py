"""Versioned, immutable messages that travel on the bus.

Every message is an envelope (``type``, ``v``, ``id``, ``correlation_id``,
``occurred_at`` in UTC) with a typed payload in the same flat object. Commands are
imperative (``SubmitOrder``), events past tense (``OrderFilled``). Prices and money
are ``Decimal``; quantities are integers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from yquant.errors import MessageDecodeError


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Market(StrEnum):
    KRX = "KRX"
    NASD = "NASD"
    NYSE = "NYSE"
    AMEX = "AMEX"

    @property
    def currency(self) -> str:
        return "KRW" if self is Market.KRX else "USD"

    @property
    def is_us(self) -> bool:
        return self is not Market.KRX


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class SignalAction(StrEnum):
    BUY = "buy"
    SELL = "sell"
    EXIT = "exit"
    REVERSE = "reverse"
    CANCEL = "cancel"


class QuantityType(StrEnum):
    FIXED = "fixed"  # number of shares
    AMOUNT = "amount"  # cash amount in the market's currency
    PERCENT_EQUITY = "percent_of_equity"
    PERCENT_POSITION = "percent_of_position"


class SignalSource(StrEnum):
    """Who produced a signal. The order manager takes it from the stream a signal arrived on
    (``keys.SIGNAL_STREAMS``), so a producer can only claim the sources its stream allows."""

    WEBHOOK = "webhook"  # a TradingView alert
    DASHBOARD = "dashboard"  # a manual order placed by a signed-in trader
    FLATTEN = "flatten"  # the emergency flatten (allowed while HALTED)
    LIQUIDATION = "liquidation"  # a liquidation asked for on the dashboard or console (allowed while HALTED)
    SCHEDULE = "schedule"  # a scheduled order falling due
    EXIT = "exit"  # a stop-loss or take-profit rule that triggered
    END_OF_DAY = "eod"  # the end-of-day exit of a strategy that holds nothing overnight


class OrderOrigin(StrEnum):
    """Why an order exists, as its record and ``SubmitOrder`` say."""

    SIGNAL = "signal"
    MANUAL = "manual"
    SCHEDULE = "schedule"
    EXIT = "exit"
    LIQUIDATION = "liquidation"


class OrderState(StrEnum):
    NEW = "NEW"  # recorded by the order manager, command appended
    SUBMITTING = "SUBMITTING"  # the gateway is calling the broker: outcome not yet known
    ACCEPTED = "ACCEPTED"  # the broker booked it and returned its order number
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"  # refused by the broker (reason kept)
    FAILED = "FAILED"  # outcome unknown and not found at the broker: not sent again

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.FAILED})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(Frozen):
    """The envelope fields every message carries."""

    v: int = 1
    id: str = Field(default_factory=new_id)
    correlation_id: str = Field(default_factory=new_id)
    occurred_at: datetime = Field(default_factory=utcnow)


class Signal(Frozen):
    """A validated trading alert, as the webhook understood it."""

    signal_id: str
    strategy: str
    ticker: str
    market: Market
    action: SignalAction
    quantity: Decimal | None = None
    quantity_type: QuantityType = QuantityType.FIXED
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    fired_at: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)
    source: SignalSource = SignalSource.WEBHOOK
    order_id: str | None = None  # TradingView's {{strategy.order.id}}
    comment: str | None = None
    market_position: str | None = None
    position_size: Decimal | None = None
    account: str | None = None  # restrict to one account of the strategy (manual orders)


class SignalReceived(Message):
    type: Literal["SignalReceived"] = "SignalReceived"
    signal: Signal


class SubmitOrder(Message):
    type: Literal["SubmitOrder"] = "SubmitOrder"
    client_order_id: str
    account: str
    market: Market
    ticker: str
    side: Side
    quantity: int = Field(gt=0)
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    strategy: str
    origin: OrderOrigin = OrderOrigin.SIGNAL
    signal_id: str | None = None
    reduce_only: bool = False
    # When the signal fired (or arrived): an order whose outcome was unknown is sent again only
    # while its signal is younger than the stale-alert limit.
    signal_at: datetime | None = None


class CancelOrder(Message):
    type: Literal["CancelOrder"] = "CancelOrder"
    client_order_id: str
    account: str
    reason: str = ""


class ReviseOrder(Message):
    """Change the price and/or lower the quantity of an open limit order (``yquant.orders.revision_problem``
    says whether it may). ``quantity`` is the order's new total, fills included: KIS cannot raise it.
    ``by``: who asked, for the order's history."""

    type: Literal["ReviseOrder"] = "ReviseOrder"
    client_order_id: str
    account: str
    limit_price: Decimal | None = Field(default=None, gt=0)
    quantity: int | None = Field(default=None, gt=0)
    by: str

    @model_validator(mode="after")
    def _changes_something(self) -> ReviseOrder:
        if self.limit_price is None and self.quantity is None:
            raise ValueError("a revision needs a new price or a new quantity")
        return self

    def describe(self) -> str:
        """What was asked, as its log line and a refusal name it: "price 69900, quantity 5"."""
        parts = [f"price {self.limit_price}"] if self.limit_price is not None else []
        if self.quantity is not None:
            parts.append(f"quantity {self.quantity}")
        return ", ".join(parts)


class SignalDenied(Message):
    """A signal that did not trade (in one account, or in all when ``account`` is None), and why."""

    type: Literal["SignalDenied"] = "SignalDenied"
    signal_id: str
    strategy: str
    ticker: str
    account: str | None = None
    reason_code: str
    reason: str


class SignalAccepted(Message):
    type: Literal["SignalAccepted"] = "SignalAccepted"
    signal_id: str
    strategy: str
    ticker: str
    client_order_ids: list[str]
    note: str = ""


class OrderSubmitted(Message):
    type: Literal["OrderSubmitted"] = "OrderSubmitted"
    client_order_id: str
    account: str


class OrderAccepted(Message):
    type: Literal["OrderAccepted"] = "OrderAccepted"
    client_order_id: str
    account: str
    broker_order_id: str
    broker_org_no: str = ""
    reconciled: bool = False  # adopted after an unknown outcome


class OrderRejected(Message):
    """The broker refused the order (its message kept)."""

    type: Literal["OrderRejected"] = "OrderRejected"
    client_order_id: str
    account: str
    reason_code: str
    reason: str


class OrderFailed(Message):
    """The order never reached the broker, or its outcome stayed unknown and the broker does not
    have it: final, not sent again."""

    type: Literal["OrderFailed"] = "OrderFailed"
    client_order_id: str
    account: str
    reason_code: str
    reason: str


class OrderFilled(Message):
    type: Literal["OrderFilled"] = "OrderFilled"
    client_order_id: str
    account: str
    broker_order_id: str
    market: Market
    ticker: str
    side: Side
    fill_quantity: int
    fill_price: Decimal
    cumulative_quantity: int
    average_price: Decimal
    remaining_quantity: int
    fee: Decimal = Decimal(0)
    source: str = "poll"  # poll | websocket


class OrderCancelled(Message):
    type: Literal["OrderCancelled"] = "OrderCancelled"
    client_order_id: str
    account: str
    cancelled_quantity: int
    reason: str = ""


class OrderRevised(Message):
    """KIS took a revision: the order's price and quantity now, and its KIS number (new after a
    price change)."""

    type: Literal["OrderRevised"] = "OrderRevised"
    client_order_id: str
    account: str
    broker_order_id: str
    limit_price: Decimal | None
    quantity: int
    by: str


class OrderRevisionRefused(Message):
    """A revision that was not carried out (the order manager's limits, or KIS); the order is as it was."""

    type: Literal["OrderRevisionRefused"] = "OrderRevisionRefused"
    client_order_id: str
    account: str
    reason: str


class TokenIssuance(Message):
    """The gateway's KIS token issuance for one app key started failing (``ok`` false, with KIS's
    answer) or works again; written on a change, not per attempt (keys.HEALTH)."""

    type: Literal["TokenIssuance"] = "TokenIssuance"
    app: str  # the accounts that share the app key ("main+isa"); never the key itself
    ok: bool
    reason_code: str = ""
    reason: str = ""


class Position(Frozen):
    market: Market
    ticker: str
    name: str = ""
    quantity: int
    sellable_quantity: int
    average_price: Decimal
    current_price: Decimal
    market_value: Decimal
    unrealized_pnl: Decimal
    return_pct: Decimal
    currency: str
    strategy: str | None = None


class AccountSynced(Message):
    type: Literal["AccountSynced"] = "AccountSynced"
    account: str
    cash: dict[str, Decimal]
    positions: list[Position]


class QuoteRequested(Message):
    type: Literal["QuoteRequested"] = "QuoteRequested"
    request_id: str = Field(default_factory=new_id)
    market: Market
    ticker: str
    account: str | None = None


class Quote(Frozen):
    market: Market
    ticker: str
    price: Decimal
    tick_size: Decimal | None = None
    upper_limit: Decimal | None = None
    lower_limit: Decimal | None = None
    previous_close: Decimal | None = None
    currency: str
    as_of: datetime


AnyMessage = Annotated[
    SignalReceived
    | SubmitOrder
    | CancelOrder
    | ReviseOrder
    | SignalDenied
    | SignalAccepted
    | OrderSubmitted
    | OrderAccepted
    | OrderRejected
    | OrderFailed
    | OrderFilled
    | OrderCancelled
    | OrderRevised
    | OrderRevisionRefused
    | AccountSynced
    | QuoteRequested
    | TokenIssuance,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[AnyMessage] = TypeAdapter(AnyMessage)


def encode(message: Message) -> bytes:
    return message.model_dump_json().encode()


def decode(data: bytes | str) -> AnyMessage:
    try:
        return _ADAPTER.validate_python(orjson.loads(data))
    except (ValidationError, orjson.JSONDecodeError) as exc:
        raise MessageDecodeError(str(exc)) from exc
