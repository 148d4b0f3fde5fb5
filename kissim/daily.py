"""Domestic ``inquire-daily-ccld``: orders and executions of a date range, filtered and paged."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from starlette.responses import Response

from kissim.fmt import fixed, won, ymd
from kissim.gateway import Call
from kissim.orders import ORDER_TYPE_NAMES, Order, OrderKind, Side, condition_name
from kissim.paging import page
from kissim.protocol import KST

SIDE_NAMES = {
    (OrderKind.NEW, Side.BUY): "현금매수",
    (OrderKind.NEW, Side.SELL): "현금매도",
    (OrderKind.REVISE, Side.BUY): "매수정정*",
    (OrderKind.REVISE, Side.SELL): "매도정정*",
    (OrderKind.CANCEL, Side.BUY): "매수취소*",
    (OrderKind.CANCEL, Side.SELL): "매도취소*",
}


def _day(text: str, default: date) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=KST).date()
    except ValueError:
        return default


def ccld_row(order: Order) -> dict[str, str]:
    cancel = order.kind is OrderKind.CANCEL
    return {
        "ord_dt": ymd(order.ord_dt),
        "ord_gno_brno": order.org_no,
        "odno": order.odno,
        "orgn_odno": order.original_odno,
        "ord_dvsn_name": ORDER_TYPE_NAMES.get(order.ord_dvsn, order.ord_dvsn),
        "sll_buy_dvsn_cd": "02" if order.side is Side.BUY else "01",
        "sll_buy_dvsn_cd_name": SIDE_NAMES[(order.kind, order.side)],
        "pdno": order.ticker,
        "prdt_name": order.name,
        "ord_qty": str(order.quantity),
        "ord_unpr": won(order.price),
        "ord_tmd": order.ord_tmd,
        "tot_ccld_qty": str(order.filled_quantity),
        "avg_prvs": won(order.average_price),
        "cncl_yn": "Y" if cancel else "N",
        "tot_ccld_amt": won(order.filled_amount),
        "loan_dt": "",
        "ordr_empno": "",
        "ord_dvsn_cd": order.ord_dvsn,
        "cncl_cfrm_qty": str(order.cancelled_quantity if cancel else 0),
        "rmn_qty": str(order.remaining),
        "rjct_qty": "0",
        "ccld_cndt_name": condition_name(order.ord_dvsn),
        "inqr_ipad_addr": "",
        "cpbc_ordp_ord_rcit_dvsn_cd": "",
        "cpbc_ordp_infm_mthd_dvsn_cd": "",
        "infm_tmd": "",
        "ctac_tlno": "",
        "prdt_type_cd": "300",
        "excg_dvsn_cd": "02",
        "cpbc_ordp_mtrl_dvsn_cd": "",
        "ord_orgno": "",
        "rsvn_ord_end_dt": "",
        "excg_id_dvsn_Cd": "KRX",
        "stpm_cndt_pric": "0",
        "stpm_efct_occr_dtmd": "",
    }


def _selected(call: Call, order: Order, start: date, end: date) -> bool:
    side = call.field("SLL_BUY_DVSN_CD", "00")
    ticker = call.field("PDNO", "")
    odno = call.field("ODNO", "")
    branch = call.field("ORD_GNO_BRNO", "")
    filled = call.field("CCLD_DVSN", "00")
    if not start <= order.ord_dt <= end:
        return False
    if (side == "01" and order.side is not Side.SELL) or (side == "02" and order.side is not Side.BUY):
        return False
    if ticker and order.ticker != ticker:
        return False
    if odno and (not odno.isdigit() or int(odno) != int(order.odno)):
        return False
    if branch and branch != order.org_no:
        return False
    if filled == "01" and order.filled_quantity == 0:
        return False
    return not (filled == "02" and order.remaining == 0)


async def inquire_daily_ccld(call: Call) -> Response:
    cano, product = call.account()
    engine = call.sim.engine
    engine.account(cano, product)
    today = engine.now().date()
    start = _day(call.field("INQR_STRT_DT", ""), today)
    end = _day(call.field("INQR_END_DT", ""), today)
    orders = [o for o in engine.orders_of(cano + product, "KRX") if _selected(call, o, start, end)]
    if call.field("INQR_DVSN", "00") != "01":
        orders.reverse()
    filled_quantity = sum(o.filled_quantity for o in orders)
    filled_amount = sum((o.filled_amount for o in orders), Decimal(0))
    totals = {
        "tot_ord_qty": str(sum(o.quantity for o in orders if o.kind is not OrderKind.CANCEL)),
        "tot_ccld_qty": str(filled_quantity),
        "tot_ccld_amt": won(filled_amount),
        "prsm_tlex_smtl": won(sum((o.fees for o in orders), Decimal(0))),
        "pchs_avg_pric": fixed(filled_amount / filled_quantity if filled_quantity else Decimal(0), 4),
    }
    keyed = [(o.odno, ccld_row(o)) for o in orders]
    fk = f"{cano}^{product}^{ymd(start)}^{ymd(end)}^{call.field('SLL_BUY_DVSN_CD', '00')}^"
    return page(call, keyed, 15 if call.virtual else 100, fk, 100, output2=totals)
