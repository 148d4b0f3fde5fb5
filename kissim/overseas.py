"""Overseas (US) endpoints: order, order-rvsecncl, inquire-balance, inquire-present-balance (§5).

The tr_id alone decides the side, exactly like KIS: a "sell" sent with the buy tr_id is booked as a
buy. Only limit orders (ORD_DVSN 00) are supported; there is no US market order.
"""

from __future__ import annotations

from decimal import Decimal

from starlette.responses import Response

from kissim import protocol as p
from kissim.accounts import Account, Holding
from kissim.domestic import (
    book_order,
    order_output,
    parse_price,
    parse_quantity,
)
from kissim.fmt import fixed, rate
from kissim.gateway import Call
from kissim.market import US_EXCHANGES
from kissim.orders import AmendRequest, OrderDenied, OrderRequest, Refusal, Side
from kissim.paging import page
from kissim.protocol import KisError, Messages

EXCHANGE_ALIASES = {"NAS": "NASD", "NASD": "NASD", "NYSE": "NYSE", "NYS": "NYSE", "AMEX": "AMEX", "AMS": "AMEX"}


def order_exchange(call: Call) -> str:
    exchange = call.field("OVRS_EXCG_CD").upper()
    if exchange not in US_EXCHANGES:
        raise OrderDenied(Refusal.BAD_EXCHANGE)
    return exchange


async def order(call: Call) -> Response:
    cano, product = call.account()
    request = OrderRequest(
        cano,
        product,
        call.tr_id,
        "US",
        call.field("OVRS_EXCG_CD").upper(),
        call.field("PDNO").upper(),
        Side(call.action),
        call.field("ORD_DVSN", "00"),
        parse_quantity(call.field("ORD_QTY")),
        parse_price(call.field("OVRS_ORD_UNPR")),
        call.received_at_ns,
    )
    refusal = Refusal.BAD_EXCHANGE if request.exchange not in US_EXCHANGES else None
    return await book_order(call, request, refusal)


async def order_rvsecncl(call: Call) -> Response:
    cano, product = call.account()
    order_exchange(call)
    kind = call.field("RVSE_CNCL_DVSN_CD")
    if kind not in ("01", "02"):
        raise KisError(Messages.BAD_REQUEST)
    quantity = parse_quantity(call.field("ORD_QTY", "0"))
    request = AmendRequest(
        cano,
        product,
        call.tr_id,
        "US",
        call.field("ORGN_ODNO"),
        "",
        kind == "02",
        "00",
        None if quantity == 0 else quantity,
        parse_price(call.field("OVRS_ORD_UNPR", "0")),
        call.received_at_ns,
    )
    record = call.sim.engine.amend(request)
    if not call.virtual:
        msg = Messages.ORDER_SENT
    else:
        msg = Messages.VIRTUAL_CANCEL_DONE if request.cancel else Messages.VIRTUAL_REVISE_DONE
    return p.json_response(p.ok_body(msg, output=order_output(record)), tr_id=call.tr_id)


def _us_holdings(call: Call, account: Account, exchange: str) -> list[Holding]:
    """Holdings on ``exchange``; in real mode NASD means every US exchange (docs §5)."""
    wanted = EXCHANGE_ALIASES.get(exchange.upper(), exchange.upper())
    everything = wanted == "NASD" and not call.virtual and exchange.upper() == "NASD"
    return sorted(
        (
            h
            for h in account.holdings.values()
            if h.family == "US" and h.quantity > 0 and (everything or h.exchange == wanted)
        ),
        key=lambda h: h.ticker,
    )


def _balance_row(call: Call, holding: Holding) -> dict[str, str]:
    price = call.sim.prices.quote("US", holding.ticker).price
    value = price * holding.quantity
    pnl = value - holding.cost
    return {
        "cano": call.field("CANO"),
        "acnt_prdt_cd": call.field("ACNT_PRDT_CD"),
        "prdt_type_cd": "512",
        "ovrs_pdno": holding.ticker,
        "ovrs_item_name": holding.name,
        "frcr_evlu_pfls_amt": fixed(pnl, 6),
        "evlu_pfls_rt": rate(pnl, holding.cost),
        "pchs_avg_pric": fixed(holding.average_price, 4),
        "ovrs_cblc_qty": str(holding.quantity),
        "ord_psbl_qty": str(holding.sellable),
        "frcr_pchs_amt1": fixed(holding.cost, 5),
        "ovrs_stck_evlu_amt": fixed(value, 5),
        "now_pric2": fixed(price, 6),
        "tr_crcy_cd": "USD",
        "ovrs_excg_cd": holding.exchange,
        "loan_type_cd": "10",
        "loan_dt": "",
        "expd_dt": "",
    }


async def inquire_balance(call: Call) -> Response:
    cano, product = call.account()
    account = call.sim.engine.account(cano, product)
    exchange = call.field("OVRS_EXCG_CD", "NASD")
    holdings = _us_holdings(call, account, exchange)
    rows = [(h.ticker, _balance_row(call, h)) for h in holdings]
    cost = sum((h.cost for h in holdings), Decimal(0))
    value = sum((call.sim.prices.quote("US", h.ticker).price * h.quantity for h in holdings), Decimal(0))
    realized = account.usd.realized_today
    totals = {
        "frcr_pchs_amt1": fixed(cost, 5),
        "ovrs_rlzt_pfls_amt": fixed(realized, 5),
        "ovrs_tot_pfls": fixed(value - cost + realized, 5),
        "rlzt_erng_rt": rate(realized, cost),
        "tot_evlu_pfls_amt": fixed(value - cost, 8),
        "tot_pftrt": rate(value - cost, cost, 8),
        "frcr_buy_amt_smtl1": fixed(account.usd.buy_today, 6),
        "ovrs_rlzt_pfls_amt2": fixed(realized, 5),
        "frcr_buy_amt_smtl2": fixed(account.usd.buy_today, 6),
    }
    fk = f"{cano}^{product}^{exchange.upper()}^{call.field('TR_CRCY_CD', 'USD')}^"
    return page(call, rows, 100, fk, 200, output2=totals)


async def inquire_present_balance(call: Call) -> Response:
    cano, product = call.account()
    account = call.sim.engine.account(cano, product)
    fx = call.sim.config.usd_krw_rate
    won_view = call.field("WCRC_FRCR_DVSN_CD", "02") == "01"
    factor = fx if won_view else Decimal(1)
    holdings = sorted(
        (h for h in account.holdings.values() if h.family == "US" and h.quantity > 0), key=lambda h: h.ticker
    )
    rows: list[dict[str, str]] = []
    cost = value = Decimal(0)
    for holding in holdings:
        price = call.sim.prices.quote("US", holding.ticker).price
        worth = price * holding.quantity
        cost += holding.cost
        value += worth
        rows.append(
            {
                "prdt_name": holding.name,
                "cblc_qty13": fixed(holding.quantity, 8),
                "thdt_buy_ccld_qty1": fixed(holding.bought_today, 8),
                "thdt_sll_ccld_qty1": fixed(holding.sold_today, 8),
                "ccld_qty_smtl1": fixed(holding.quantity, 8),
                "ord_psbl_qty1": fixed(holding.sellable, 8),
                "frcr_pchs_amt": fixed(holding.cost * factor, 4),
                "frcr_evlu_amt2": fixed(worth * factor, 6),
                "evlu_pfls_amt2": fixed((worth - holding.cost) * factor, 6),
                "evlu_pfls_rt1": rate(worth - holding.cost, holding.cost),
                "pdno": holding.ticker,
                "bass_exrt": fixed(fx, 8),
                "buy_crcy_cd": "USD",
                "ovrs_now_pric1": fixed(price, 8),
                "avg_unpr3": fixed(holding.average_price, 8),
                "tr_mket_name": holding.exchange,
                "natn_kor_name": "미국",
                "pchs_rmnd_wcrc_amt": fixed(holding.cost * fx, 2),
                "thdt_buy_ccld_frcr_amt": fixed(account.usd.buy_today, 4),
                "thdt_sll_ccld_frcr_amt": fixed(account.usd.sell_today, 4),
                "unit_amt": "1",
                "std_pdno": holding.ticker,
                "prdt_type_cd": "512",
                "scts_dvsn_name": "일반",
                "loan_rmnd": "0",
                "loan_dt": "",
                "loan_expd_dt": "",
                "ovrs_excg_cd": holding.exchange,
                "item_lnkg_excg_cd": "",
            }
        )
    usd = account.usd
    currency = {
        "crcy_cd": "USD",
        "crcy_cd_name": "미국 달러",
        "frcr_buy_amt_smtl": fixed(usd.buy_today, 6),
        "frcr_sll_amt_smtl": fixed(usd.sell_today, 6),
        "frcr_dncl_amt_2": fixed(usd.cash, 2),
        "frst_bltn_exrt": fixed(fx, 8),
        "frcr_buy_mgn_amt": fixed(usd.reserved, 2),
        "frcr_etc_mgna": "0.00",
        "frcr_drwg_psbl_amt_1": fixed(usd.available, 2),
        "frcr_evlu_amt2": fixed(usd.cash * fx, 2),
        "acpl_cstd_crcy_yn": "Y",
        "nxdy_frcr_drwg_psbl_amt": fixed(usd.available, 2),
    }
    cash_view = usd.cash * factor
    total = {
        "pchs_amt_smtl": fixed(cost * factor, 4),
        "evlu_amt_smtl": fixed(value * factor, 4),
        "evlu_pfls_amt_smtl": fixed((value - cost) * factor, 4),
        "dncl_amt": fixed(account.krw.cash, 2),
        "cma_evlu_amt": "0.00",
        "tot_dncl_amt": fixed(cash_view, 2),
        "etc_mgna": "0.00",
        "wdrw_psbl_tot_amt": fixed(usd.available * factor, 2),
        "frcr_evlu_tota": fixed((usd.cash + value) * factor, 4),
        "evlu_erng_rt1": rate(value - cost, cost, 8),
        "pchs_amt_smtl_amt": fixed(cost * factor, 4),
        "evlu_amt_smtl_amt": fixed(value * factor, 4),
        "tot_evlu_pfls_amt": fixed((value - cost) * factor, 4),
        "tot_asst_amt": fixed(account.krw.cash + (usd.cash + value) * fx, 4),
        "buy_mgn_amt": fixed(usd.reserved * factor, 2),
        "mgna_tota": "0.00",
        "frcr_use_psbl_amt": fixed(usd.available, 2),
        "ustl_sll_amt_smtl": "0.00",
        "ustl_buy_amt_smtl": "0.00",
        "tot_frcr_cblc_smtl": fixed(usd.cash, 2),
        "tot_loan_amt": "0.00",
    }
    body = p.ok_body(Messages.INQUIRY_DONE, output1=rows, output2=[currency], output3=total)
    return p.json_response(body, tr_id=call.tr_id, tr_cont="D")
