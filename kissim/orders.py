"""Order vocabulary: requests, the booked ``Order``, refusals and the notices the engine emits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from kissim.accounts import ZERO
from kissim.market import Family

# Domestic ORD_DVSN codes the simulator serves (KIS's specification; docs/kis-protocol.md §4.1).
LIMIT, MARKET, BEST_LIMIT, TOP_LIMIT = "00", "01", "03", "04"
IOC_LIMIT, FOK_LIMIT, IOC_MARKET, FOK_MARKET = "11", "12", "13", "14"
ORDER_TYPE_NAMES = {
    LIMIT: "지정가",
    MARKET: "시장가",
    BEST_LIMIT: "최유리지정가",
    TOP_LIMIT: "최우선지정가",
    IOC_LIMIT: "IOC지정가",
    FOK_LIMIT: "FOK지정가",
    IOC_MARKET: "IOC시장가",
    FOK_MARKET: "FOK시장가",
}
MARKET_PRICED = frozenset({MARKET, IOC_MARKET, FOK_MARKET})  # fill at the current price, no ORD_UNPR
BEST_PRICED = frozenset({BEST_LIMIT, TOP_LIMIT})  # priced from the order book when booked, no ORD_UNPR
IOC = frozenset({IOC_LIMIT, IOC_MARKET})  # fill what is marketable now, cancel the rest
FOK = frozenset({FOK_LIMIT, FOK_MARKET})  # fill all now or cancel all


def condition(ord_dvsn: str) -> str:
    """KIS's order condition (H0STCNI0 ``ODER_COND``): ``0`` none, ``1`` IOC, ``2`` FOK."""
    return "1" if ord_dvsn in IOC else "2" if ord_dvsn in FOK else "0"


def condition_name(ord_dvsn: str) -> str:
    """``ccld_cndt_name`` of the daily order list: 없음, IOC or FOK."""
    return {"0": "없음", "1": "IOC", "2": "FOK"}[condition(ord_dvsn)]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderKind(StrEnum):
    NEW = "new"
    REVISE = "revise"
    CANCEL = "cancel"


class OrderState(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Refusal(StrEnum):
    """Why the engine denied an order; the HTTP layer turns it into KIS's message for the mode."""

    MARKET_CLOSED = "market_closed"
    NO_CASH = "insufficient_cash"
    NO_HOLDING = "insufficient_holding"
    TICK = "tick_size"
    PRICE_LIMIT = "price_limit"
    BAD_QUANTITY = "bad_quantity"
    BAD_PRICE = "bad_price"
    UNSUPPORTED = "unsupported_order_type"
    NOT_TRADABLE = "not_tradable"
    BAD_EXCHANGE = "bad_exchange"
    ORDER_NOT_FOUND = "order_not_found"
    NOTHING_TO_CHANGE = "nothing_to_change"
    QTY_EXCEEDS = "quantity_exceeds_remaining"
    BAD_ACCOUNT = "bad_account"
    MISSING_FIELD = "missing_field"


class OrderDenied(Exception):
    def __init__(self, reason: Refusal, detail: str = "") -> None:
        super().__init__(f"{reason.value} {detail}".strip())
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class OrderRequest:
    """A new order as received (values already parsed from the wire)."""

    cano: str
    product_code: str
    tr_id: str
    family: Family
    exchange: str  # "KRX", "NASD", "NYSE", "AMEX"
    ticker: str
    side: Side
    ord_dvsn: str
    quantity: int
    price: Decimal
    received_at_ns: int


@dataclass(frozen=True)
class AmendRequest:
    """A revise (``cancel=False``) or cancel of ``original_odno``; quantity None means all remaining."""

    cano: str
    product_code: str
    tr_id: str
    family: Family
    original_odno: str
    org_no: str
    cancel: bool
    ord_dvsn: str
    quantity: int | None
    price: Decimal
    received_at_ns: int


@dataclass
class Order:
    odno: str
    org_no: str
    cano: str
    product_code: str
    tr_id: str
    family: Family
    exchange: str
    ticker: str
    name: str
    side: Side
    ord_dvsn: str
    quantity: int
    price: Decimal
    received_at_ns: int
    ord_dt: date
    ord_tmd: str
    session_date: date  # the trading day the order lives for (New York date for US orders)
    kind: OrderKind = OrderKind.NEW
    original_odno: str = ""
    filled_quantity: int = 0
    filled_amount: Decimal = ZERO
    cancelled_quantity: int = 0
    revised_quantity: int = 0
    fees: Decimal = ZERO
    released_cost: Decimal = ZERO  # purchase cost of the shares its sell fills took off the holding
    reserve_unit: Decimal = ZERO  # cash held per unfilled share (buy orders)
    reserved_left: Decimal = ZERO
    rejected: bool = False
    reject_reason: str = ""
    response_dropped: bool = False
    seq: int = -1  # position in the engine's order log

    @property
    def account(self) -> str:
        return self.cano + self.product_code

    @property
    def remaining(self) -> int:
        if self.rejected or self.kind is OrderKind.CANCEL:
            return 0
        return self.quantity - self.filled_quantity - self.cancelled_quantity - self.revised_quantity

    @property
    def average_price(self) -> Decimal:
        return self.filled_amount / self.filled_quantity if self.filled_quantity else ZERO

    @property
    def state(self) -> OrderState:
        if self.rejected:
            return OrderState.REJECTED
        if self.kind is OrderKind.CANCEL:
            return OrderState.CANCELLED
        if self.remaining > 0:
            return OrderState.PARTIALLY_FILLED if self.filled_quantity else OrderState.OPEN
        return OrderState.FILLED if self.filled_quantity == self.quantity else OrderState.CANCELLED

    def to_admin(self) -> dict[str, Any]:
        return {
            "received_at_ns": self.received_at_ns,
            "account": self.account,
            "tr_id": self.tr_id,
            "market": self.exchange,
            "ticker": self.ticker,
            "side": self.side.value,
            "ord_dvsn": self.ord_dvsn,
            "quantity": self.quantity,
            "price": str(self.price),
            "odno": self.odno,
            "org_no": self.org_no,
            "state": self.state.value,
            "filled_quantity": self.filled_quantity,
            "avg_price": plain(self.average_price.quantize(Decimal("0.0001"))),
            "response_dropped": self.response_dropped,
            "kind": self.kind.value,
            "original_odno": self.original_odno,
            "remaining_quantity": self.remaining,
            "cancelled_quantity": self.cancelled_quantity + self.revised_quantity,
            "fees": str(self.fees),
            "reject_reason": self.reject_reason,
        }


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 70000, 190.5."""
    return format(value.normalize(), "f") if value else "0"


@dataclass(frozen=True)
class Notice:
    """An execution-notice event: ``accepted`` (CNTG_YN 1) or ``filled`` (CNTG_YN 2)."""

    order: Order
    kind: Literal["accepted", "filled"]
    quantity: int
    price: Decimal
    at: datetime
