"""What a careful client asks before it revises, sells or buys: open (revisable) domestic orders
``inquire-psbl-rvsecncl`` (TTTC0084R, older TTTC8036R; real only), the sellable quantity
``inquire-psbl-sell`` (TTTC8408R; real only), open US orders ``inquire-nccs`` (TTTS3018R /
VTTS3018R) and the US buyable amount ``inquire-psamount`` (TTTS3007R / VTTS3007R).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from starlette.responses import Response

from kissim import protocol as p
from kissim.domestic import parse_price
from kissim.fmt import fixed, rate, won, ymd
from kissim.gateway import Call
from kissim.hours import new_york_time
from kissim.market import family_of
from kissim.orders import ORDER_TYPE_NAMES, Order, Side
from kissim.paging import page
from kissim.protocol import KST, KisError, Messages


def open_orders(call: Call, family: str) -> list[Order]:
    cano, product = call.account()
    return [o for o in call.sim.engine.orders_of(cano + product, "KRX" if family == "KRX" else "US") if o.remaining > 0]


def _side_code(order: Order) -> str:
    return "02" if order.side is Side.BUY else "01"


async def psbl_rvsecncl(call: Call) -> Response:
    """Open domestic orders with the quantity that can still be revised or cancelled (psbl_qty).
    INQR_DVSN_1: 0 by order (newest first), 1 by stock; INQR_DVSN_2: 0 all, 1 sell, 2 buy."""
    orders = open_orders(call, "KRX")
    sides = call.field("INQR_DVSN_2", "0")
    if sides in ("1", "2"):
        wanted = Side.SELL if sides == "1" else Side.BUY
        orders = [o for o in orders if o.side is wanted]
    if call.field("INQR_DVSN_1", "0") == "1":
        orders.sort(key=lambda o: (o.ticker, -int(o.odno)))
    else:
        orders.sort(key=lambda o: -int(o.odno))
    rows = [
        (
            o.odno,
            {
                "ord_gno_brno": o.org_no,
                "odno": o.odno,
                "orgn_odno": o.original_odno,
                "ord_dvsn_name": ORDER_TYPE_NAMES.get(o.ord_dvsn, o.ord_dvsn),
                "pdno": o.ticker,
                "prdt_name": o.name,
                "rvse_cncl_dvsn_name": "정정" if o.original_odno else "",
                "ord_qty": str(o.quantity),
                "ord_unpr": won(o.price),
                "ord_tmd": o.ord_tmd,
                "tot_ccld_qty": str(o.filled_quantity),
                "tot_ccld_amt": won(o.filled_amount),
                "psbl_qty": str(o.remaining),
                "sll_buy_dvsn_cd": _side_code(o),
                "ord_dvsn_cd": o.ord_dvsn,
                "mgco_aptm_odno": "",
                "excg_dvsn_cd": "01",
                "excg_id_dvsn_cd": "KRX",
                "excg_id_dvsn_name": "한국거래소",
                "stpm_cndt_pric": "0",
                "stpm_efct_occr_yn": "N",
            },
        )
        for o in orders
    ]
    cano, product = call.account()
    fk = f"{cano}^{product}^{call.field('INQR_DVSN_1', '0')}^{sides}^"
    return page(call, rows, 50, fk, 100, rows_key="output")


async def psbl_sell(call: Call) -> Response:
    """The sellable quantity of one KRX holding (output.ord_psbl_qty)."""
    cano, product = call.account()
    ticker = call.field("PDNO")
    if family_of(ticker) != "KRX":
        raise KisError(Messages.BAD_REQUEST, detail=f" [PDNO={ticker}]")
    account = call.sim.engine.account(cano, product)
    holding = account.holdings.get(("KRX", ticker))
    quote = call.sim.prices.quote("KRX", ticker)
    quantity = holding.quantity if holding else 0
    cost = holding.cost if holding else Decimal(0)
    value = quote.price * quantity
    output = {
        "pdno": ticker,
        "prdt_name": holding.name if holding else "",
        "buy_qty": str(holding.bought_today if holding else 0),
        "sll_qty": str(holding.sold_today if holding else 0),
        "cblc_qty": str(quantity),
        "nsvg_qty": "0",
        "ord_psbl_qty": str(holding.sellable if holding else 0),
        "pchs_avg_pric": fixed(holding.average_price if holding else Decimal(0), 4),
        "pchs_amt": won(cost),
        "now_pric": won(quote.price),
        "evlu_amt": won(value),
        "evlu_pfls_amt": won(value - cost),
        "evlu_pfls_rt": rate(value - cost, cost),
    }
    return p.json_response(p.ok_body(Messages.INQUIRY_DONE, output=output), tr_id=call.tr_id)


def _us_order_row(order: Order) -> dict[str, str]:
    # ord_dt / ord_tmd in New York time, as inquire-ccnl's (UNCERTAIN: KIS's list says 주문일자/주문시각).
    local = new_york_time(datetime.fromtimestamp(order.received_at_ns / 1e9, KST))
    return {
        "ord_dt": ymd(local.date()),
        "ord_gno_brno": order.org_no,
        "odno": order.odno,
        "orgn_odno": order.original_odno,
        "pdno": order.ticker,
        "prdt_name": order.name,
        "sll_buy_dvsn_cd": _side_code(order),
        "sll_buy_dvsn_cd_name": "매수" if order.side is Side.BUY else "매도",
        "rvse_cncl_dvsn_cd": "01" if order.original_odno else "",
        "rvse_cncl_dvsn_cd_name": "정정" if order.original_odno else "",
        "rjct_rson": "",
        "rjct_rson_name": "",
        "ord_tmd": local.strftime("%H%M%S"),
        "tr_mket_name": {"NASD": "나스닥", "NYSE": "뉴욕", "AMEX": "아멕스"}.get(order.exchange, ""),
        "tr_crcy_cd": "USD",
        "natn_cd": "840",
        "natn_kor_name": "미국",
        "ft_ord_qty": str(order.quantity),
        "ft_ccld_qty": str(order.filled_quantity),
        "nccs_qty": str(order.remaining),
        "ft_ord_unpr3": fixed(order.price, 8),
        "ft_ccld_unpr3": fixed(order.average_price, 8),
        "ft_ccld_amt3": fixed(order.filled_amount, 5),
        "ovrs_excg_cd": order.exchange,
        "prcs_stat_name": "",
        "loan_type_cd": "10",
        "loan_dt": "",
        "usa_amk_exts_rqst_yn": "N",
    }


async def inquire_nccs(call: Call) -> Response:
    """Open US orders, newest first (SORT_SQN DS) or oldest first; OVRS_EXCG_CD empty/% or NASD for
    all US exchanges, NYSE / AMEX for one."""
    orders = open_orders(call, "US")
    exchange = call.field("OVRS_EXCG_CD", "").upper()
    if exchange in ("NYSE", "AMEX"):
        orders = [o for o in orders if o.exchange == exchange]
    newest_first = call.field("SORT_SQN", "DS").upper() != "AS"
    orders.sort(key=lambda o: int(o.odno), reverse=newest_first)
    cano, product = call.account()
    fk = f"{cano}^{product}^{exchange}^"
    return page(call, [(o.odno, _us_order_row(o)) for o in orders], 100, fk, 200, rows_key="output")


async def inquire_psamount(call: Call) -> Response:
    """The US buyable amount and quantity at OVRS_ORD_UNPR for ITEM_CD."""
    cano, product = call.account()
    account = call.sim.engine.account(cano, product)
    symbol = call.field("ITEM_CD").upper()
    price = parse_price(call.field("OVRS_ORD_UNPR", ""))
    if price <= 0 and symbol:
        price = call.sim.prices.quote("US", symbol).price
    cash = max(Decimal(0), account.usd.available)
    per_share = price * (1 + call.sim.config.overseas_fee_rate) if price > 0 else Decimal(0)
    quantity = (cash / per_share).to_integral_value(rounding=ROUND_FLOOR) if per_share else Decimal(0)
    fx = call.sim.config.usd_krw_rate
    output = {
        "tr_crcy_cd": "USD",
        "ord_psbl_frcr_amt": fixed(cash, 2),
        "sll_ruse_psbl_amt": "0.00",
        "ovrs_ord_psbl_amt": fixed(cash, 2),
        "max_ord_psbl_qty": str(quantity),
        "echm_af_ord_psbl_amt": "0.00",
        "echm_af_ord_psbl_qty": "0",
        "ord_psbl_qty": str(quantity),
        "exrt": fixed(fx, 8),
        "frcr_ord_psbl_amt1": fixed(cash, 6),
        "ovrs_max_ord_psbl_qty": str(quantity),
    }
    return p.json_response(p.ok_body(Messages.INQUIRY_DONE, output=output), tr_id=call.tr_id)
