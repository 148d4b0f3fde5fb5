"""Overseas ``inquire-ccnl`` (해외주식 주문체결내역): the account's US orders with their fills.

UNCERTAIN (docs/kis-protocol.md §5.7). Path, tr_id (TTTS3035R / VTTS3035R), query keys
and row fields follow OT ``examples_llm/overseas_stock/inquire_ccnl`` (rows under ``output``, paging
with CTX_AREA_FK200 / NK200). Dates are the New York trading date (``ORD_STRT_DT`` "현지시각 기준");
``dmst_ord_dt`` / ``thco_ord_tmd`` carry the Korean date and time. ``PDNO`` / ``OVRS_EXCG_CD`` of
"" or "%" mean every item; ``SORT_SQN`` "DS" lists the newest first, "AS" the oldest first. KIS
cannot search by order number here; ``ODNO`` is ignored. Page sizes (100 real, 15 virtual) are guesses.
"""

from __future__ import annotations

from datetime import date, datetime

from starlette.responses import Response

from kissim.fmt import fixed, ymd
from kissim.gateway import Call
from kissim.hours import new_york_time
from kissim.orders import Order, OrderKind, OrderState, Side
from kissim.paging import page
from kissim.protocol import KST

MARKET_NAMES = {"NASD": "나스닥", "NYSE": "뉴욕", "AMEX": "아멕스"}
AMEND_CODES = {OrderKind.NEW: "00", OrderKind.REVISE: "01", OrderKind.CANCEL: "02"}
AMEND_NAMES = {OrderKind.NEW: "", OrderKind.REVISE: "정정", OrderKind.CANCEL: "취소"}
STATE_NAMES = {
    OrderState.OPEN: "",
    OrderState.PARTIALLY_FILLED: "",
    OrderState.FILLED: "완료",
    OrderState.CANCELLED: "완료",
    OrderState.REJECTED: "거부",
}


def _day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=KST).date()
    except ValueError:
        return None


def ccnl_row(order: Order) -> dict[str, str]:
    received = datetime.fromtimestamp(order.received_at_ns / 1e9, KST)
    local = new_york_time(received)
    return {
        "ord_dt": ymd(local.date()),
        "ord_gno_brno": order.org_no,
        "odno": order.odno,
        "orgn_odno": order.original_odno,
        "sll_buy_dvsn_cd": "02" if order.side is Side.BUY else "01",
        "sll_buy_dvsn_cd_name": "매수" if order.side is Side.BUY else "매도",
        "rvse_cncl_dvsn": AMEND_CODES[order.kind],
        "rvse_cncl_dvsn_name": AMEND_NAMES[order.kind],
        "pdno": order.ticker,
        "prdt_name": order.name,
        "ft_ord_qty": str(order.quantity),
        "ft_ord_unpr3": fixed(order.price, 8),
        "ft_ccld_qty": str(order.filled_quantity),
        "ft_ccld_unpr3": fixed(order.average_price, 8),
        "ft_ccld_amt3": fixed(order.filled_amount, 5),
        "nccs_qty": str(order.remaining),
        "prcs_stat_name": STATE_NAMES[order.state],
        "rjct_rson": "",
        "rjct_rson_name": "",
        "ord_tmd": local.strftime("%H%M%S"),
        "tr_mket_name": MARKET_NAMES.get(order.exchange, order.exchange),
        "tr_crcy_cd": "USD",
        "tr_natn": "840",
        "tr_natn_name": "미국",
        "ovrs_excg_cd": order.exchange,
        "dmst_ord_dt": ymd(order.ord_dt),
        "thco_ord_tmd": order.ord_tmd,
        "loan_type_cd": "10",
        "loan_dt": "",
        "mdia_dvsn_name": "OpenAPI",
        "usa_amk_exts_rqst_yn": "N",
        "splt_buy_attr_name": "",
    }


def _every(value: str) -> bool:
    return value in ("", "%")


def _selected(call: Call, order: Order, start: date, end: date) -> bool:
    local_day = new_york_time(datetime.fromtimestamp(order.received_at_ns / 1e9, KST)).date()
    if not start <= local_day <= end:
        return False
    ticker = call.field("PDNO", "").upper()
    if not _every(ticker) and order.ticker != ticker:
        return False
    side = call.field("SLL_BUY_DVSN", "00")
    if (side == "01" and order.side is not Side.SELL) or (side == "02" and order.side is not Side.BUY):
        return False
    filled = call.field("CCLD_NCCS_DVSN", "00")
    if (filled == "01" and order.filled_quantity == 0) or (filled == "02" and order.remaining == 0):
        return False
    exchange = call.field("OVRS_EXCG_CD", "").upper()
    every_us = _every(exchange) or (exchange == "NASD" and not call.virtual)
    return every_us or order.exchange == exchange


async def inquire_ccnl(call: Call) -> Response:
    cano, product = call.account()
    engine = call.sim.engine
    engine.account(cano, product)
    today = new_york_time(engine.now()).date()
    start = _day(call.field("ORD_STRT_DT", "")) or today
    end = _day(call.field("ORD_END_DT", "")) or today
    orders = [o for o in engine.orders_of(cano + product, "US") if _selected(call, o, start, end)]
    if call.field("SORT_SQN", "DS").upper() != "AS":
        orders.reverse()
    keyed = [(o.odno, ccnl_row(o)) for o in orders]
    fk = f"{cano}^{product}^{ymd(start)}^{ymd(end)}^"
    return page(call, keyed, 15 if call.virtual else 100, fk, 200, rows_key="output")
