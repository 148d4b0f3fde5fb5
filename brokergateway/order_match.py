"""The rule that recognises one of our orders in KIS's order list (pure functions).

KIS has no client order id, so an order whose POST outcome is unknown is recognised by
account, ticker, side, quantity, price (when we sent one) and placement time. The rows come
parsed from brokergateway.kis.order_list.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from brokergateway.kis.order_list import BrokerOrderStatus
from yquant.messages import OrderType
from yquant.orders import OrderRecord


def sent_price(record: OrderRecord) -> Decimal | None:
    """The price that went to KIS: a limit order's, or the marketable limit of a US market order."""
    if record.limit_price is None:
        return None
    if record.order_type is OrderType.LIMIT or record.market.is_us:
        return record.limit_price
    return None


def matches(record: OrderRecord, status: BrokerOrderStatus, since: datetime) -> bool:
    """Could ``status`` be ``record``, placed at or after ``since``?"""
    if status.amendment or not status.broker_order_id:
        return False
    if status.ticker != record.ticker or status.side is not record.side or status.quantity != record.quantity:
        return False
    price = sent_price(record)
    if price is not None and status.price != price:
        return False
    if status.placed_at is None:
        return True  # no usable time: ticker, side, quantity and price matched
    return status.placed_at >= since.replace(microsecond=0)
