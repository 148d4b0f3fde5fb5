"""What execution notices said about each broker order, and whether they fit an order (pure).

A tally counts each distinct notice once (time, quantity, price), so it can lag the truth
(a lost notice, or two identical fills in one second) but never run ahead of it. The
part of a tally already stored is remembered as a snapshot (quantity, amount), so notices
that arrive while a fill is being stored are applied afterwards, at their own price.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from brokergateway.kis.notices import ExecutionNotice
from brokergateway.order_match import sent_price
from yquant.messages import Side
from yquant.orders import OrderRecord

TALLY_MAX_AGE_S = 600.0
TALLY_RESOLVE_AFTER_S = 1.0  # a notice's order not accepted here by then: look it up in Valkey

Snapshot = tuple[int, Decimal]  # (quantity, amount) of a tally at one moment


@dataclass
class NoticeTally:
    """What execution notices said about one broker order: cumulative quantity and amount."""

    quantity: int = 0
    amount: Decimal = Decimal(0)
    notices: list[ExecutionNotice] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    updated: float = field(default_factory=time.monotonic)
    looked_up: bool = False
    applied: Snapshot = (0, Decimal(0))  # the notices already turned into a stored fill

    def add(self, notice: ExecutionNotice) -> bool:
        """Count ``notice`` once; False if it was seen already."""
        if notice.identity in self.seen:
            return False
        self.seen.add(notice.identity)
        self.notices.append(notice)
        self.quantity += notice.quantity
        self.amount += notice.price * notice.quantity
        self.updated = time.monotonic()
        return True

    @property
    def snapshot(self) -> Snapshot:
        return self.quantity, self.amount

    @property
    def pending(self) -> bool:
        return self.quantity > self.applied[0]


def notice_amount(record: OrderRecord, tally: Snapshot, applied: Snapshot, cumulative: int) -> Decimal:
    """The total amount of ``cumulative`` shares: what is stored, plus the new shares at the
    average price of the notices not applied yet (a poll may have stored some of them)."""
    quantity, amount = tally
    pending_quantity = quantity - applied[0]
    price = (amount - applied[1]) / pending_quantity if pending_quantity > 0 else amount / quantity
    stored = (record.average_price or Decimal(0)) * record.filled_quantity
    return stored + price * (cumulative - record.filled_quantity)


def plausible(record: OrderRecord, notice: ExecutionNotice) -> bool:
    """A fill notice that fits the order: same ticker and side, a price the order allows."""
    if notice.ticker != record.ticker or (notice.side is not None and notice.side is not record.side):
        return False
    if notice.quantity <= 0 or notice.price <= 0:
        return False
    limit = sent_price(record)
    if limit is None:
        return True
    if record.side is Side.BUY:
        return limit / 2 <= notice.price <= limit
    return limit <= notice.price <= limit * 2


def all_plausible(record: OrderRecord, tally: NoticeTally) -> bool:
    return all(plausible(record, notice) for notice in tally.notices)
