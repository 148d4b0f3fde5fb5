"""KIS order requests: domestic ``order-cash`` / ``order-rvsecncl`` and overseas ``order`` /
``order-rvsecncl`` (docs/kis-protocol.md §4.1, §4.2, §5). The tr_id says buy or sell: KIS books
whatever the tr_id says, so it comes from ``trids.order_tr_id`` and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from brokergateway.kis import trids
from brokergateway.kis.client import KisClient
from yquant.errors import BrokerProtocolError, OrderInvalid
from yquant.messages import Market, OrderType, Side

DOMESTIC_ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
DOMESTIC_AMEND_PATH = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
OVERSEAS_ORDER_PATH = "/uapi/overseas-stock/v1/trading/order"
OVERSEAS_AMEND_PATH = "/uapi/overseas-stock/v1/trading/order-rvsecncl"
DOMESTIC_LIMIT = "00"
DOMESTIC_MARKET = "01"
REVISE = "01"  # RVSE_CNCL_DVSN_CD
CANCEL = "02"


@dataclass(frozen=True)
class OrderAck:
    broker_order_id: str
    broker_org_no: str
    order_time: str
    message: str


def plain(value: Decimal) -> str:
    """A price as KIS wants it: a plain decimal string, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def domestic_order_body(
    kis: KisClient, ticker: str, side: Side, quantity: int, order_type: OrderType, price: Decimal | None
) -> dict[str, str]:
    market_order = order_type is OrderType.MARKET
    if not market_order and (price is None or price <= 0):
        raise OrderInvalid("a limit order needs a positive limit price")
    body = {
        "CANO": kis.account.cano,
        "ACNT_PRDT_CD": kis.account.product_code,
        "PDNO": ticker,
        "ORD_DVSN": DOMESTIC_MARKET if market_order else DOMESTIC_LIMIT,
        "ORD_QTY": str(quantity),
        "ORD_UNPR": "0" if market_order or price is None else plain(price),
        "EXCG_ID_DVSN_CD": "KRX",
    }
    if side is Side.SELL:
        body["SLL_TYPE"] = "01"
    return body


def overseas_order_body(
    kis: KisClient, market: Market, ticker: str, side: Side, quantity: int, price: Decimal
) -> dict[str, str]:
    if price <= 0:
        raise OrderInvalid("a US order needs a positive limit price (KIS has no US market order)")
    return {
        "CANO": kis.account.cano,
        "ACNT_PRDT_CD": kis.account.product_code,
        "OVRS_EXCG_CD": trids.ORDER_EXCHANGE[market],
        "PDNO": ticker,
        "ORD_QTY": str(quantity),
        "OVRS_ORD_UNPR": plain(price),
        "CTAC_TLNO": "",
        "MGCO_APTM_ODNO": "",
        "SLL_TYPE": "00" if side is Side.SELL else "",
        "ORD_SVR_DVSN_CD": "0",
        "ORD_DVSN": "00",
    }


async def place_order(
    kis: KisClient,
    market: Market,
    ticker: str,
    side: Side,
    quantity: int,
    order_type: OrderType,
    price: Decimal | None,
    *,
    slot: str | None = None,
) -> OrderAck:
    """Send a new order. US orders are always limit orders: ``price`` is required. ``slot``:
    the pacing slot the caller already took."""
    tr_id = trids.order_tr_id(kis.env, market, side)
    if market is Market.KRX:
        body = domestic_order_body(kis, ticker, side, quantity, order_type, price)
        path = DOMESTIC_ORDER_PATH
    else:
        if price is None:
            raise OrderInvalid("a US order needs a limit price (KIS has no US market order)")
        body = overseas_order_body(kis, market, ticker, side, quantity, price)
        path = OVERSEAS_ORDER_PATH
    return _ack(await kis.command(path, tr_id, body, slot=slot))


async def cancel_order(
    kis: KisClient,
    market: Market,
    ticker: str,
    broker_order_id: str,
    broker_org_no: str,
    quantity: int,
    *,
    everything: bool = True,
) -> OrderAck:
    """Cancel what is left of an order, or ``quantity`` shares of it when not ``everything`` (the rest
    stays open under the same order number). KIS answers with a new order number for the cancel."""
    return await _amend(kis, market, ticker, broker_order_id, broker_org_no, CANCEL, quantity, None, everything)


async def revise_order(
    kis: KisClient, market: Market, ticker: str, broker_order_id: str, broker_org_no: str, quantity: int, price: Decimal
) -> OrderAck:
    """Move everything left of a limit order (``quantity`` shares) to ``price``. KIS books the
    revision as a new order with a new number, which carries the remaining shares and every later
    fill and notice; the original keeps its earlier fills and nothing left (docs/kis-protocol.md 4.2)."""
    if price <= 0:
        raise OrderInvalid("a revision needs a positive limit price")
    return await _amend(kis, market, ticker, broker_order_id, broker_org_no, REVISE, quantity, price, True)


async def _amend(
    kis: KisClient,
    market: Market,
    ticker: str,
    broker_order_id: str,
    broker_org_no: str,
    kind: str,
    quantity: int,
    price: Decimal | None,
    everything: bool,
) -> OrderAck:
    if market is Market.KRX:
        body = {
            "CANO": kis.account.cano,
            "ACNT_PRDT_CD": kis.account.product_code,
            "KRX_FWDG_ORD_ORGNO": broker_org_no,
            "ORGN_ODNO": broker_order_id,
            "ORD_DVSN": DOMESTIC_LIMIT,
            "RVSE_CNCL_DVSN_CD": kind,
            "ORD_QTY": "0" if everything else str(quantity),
            "ORD_UNPR": "0" if price is None else plain(price),
            "QTY_ALL_ORD_YN": "Y" if everything else "N",
            "EXCG_ID_DVSN_CD": "KRX",
        }
        return _ack(await kis.command(DOMESTIC_AMEND_PATH, trids.DOMESTIC_REVISE_CANCEL[kis.env], body))
    body = {
        "CANO": kis.account.cano,
        "ACNT_PRDT_CD": kis.account.product_code,
        "OVRS_EXCG_CD": trids.ORDER_EXCHANGE[market],
        "PDNO": ticker,
        "ORGN_ODNO": broker_order_id,
        "RVSE_CNCL_DVSN_CD": kind,
        "ORD_QTY": str(quantity),
        "OVRS_ORD_UNPR": "0" if price is None else plain(price),
        "MGCO_APTM_ODNO": "",
        "ORD_SVR_DVSN_CD": "0",
    }
    return _ack(await kis.command(OVERSEAS_AMEND_PATH, trids.OVERSEAS_REVISE_CANCEL[kis.env], body))


def _ack(data: dict[str, Any]) -> OrderAck:
    output = data.get("output") or {}
    if not isinstance(output, dict):
        raise BrokerProtocolError("KIS accepted the order without an order number", code="PROTOCOL")
    # Order outputs are UPPERCASE in KIS's examples; accept either case.
    broker_order_id = str(output.get("ODNO") or output.get("odno") or "").strip()
    if not broker_order_id:
        raise BrokerProtocolError("KIS accepted the order without an order number", code="PROTOCOL")
    return OrderAck(
        broker_order_id=broker_order_id,
        broker_org_no=str(output.get("KRX_FWDG_ORD_ORGNO") or output.get("krx_fwdg_ord_orgno") or "").strip(),
        order_time=str(output.get("ORD_TMD") or output.get("ord_tmd") or "").strip(),
        message=str(data.get("msg1", "")).strip(),
    )
