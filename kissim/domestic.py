"""Domestic stock endpoints: order-cash, order-rvsecncl, inquire-balance, inquire-psbl-order,
inquire-daily-ccld and quotations/inquire-price (docs/kis-protocol.md §4)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from starlette.responses import Response

from kissim import protocol as p
from kissim.accounts import Account, Holding
from kissim.fmt import fixed, rate, won
from kissim.gateway import Call, withhold_response
from kissim.market import Quote, family_of
from kissim.orders import BEST_PRICED, MARKET_PRICED, AmendRequest, Order, OrderDenied, OrderRequest, Refusal, Side
from kissim.paging import page
from kissim.protocol import KisError, Messages
from kissim.quotes import change


def parse_quantity(text: str) -> int:
    return int(text) if text.isdigit() else -1


def parse_price(text: str) -> Decimal:
    try:
        value = Decimal(text or "0")
    except InvalidOperation:
        return Decimal(-1)
    return value if value.is_finite() else Decimal(-1)


def order_output(order: Order) -> dict[str, str]:
    return {"KRX_FWDG_ORD_ORGNO": order.org_no, "ODNO": order.odno, "ORD_TMD": order.ord_tmd}


async def answer_order(call: Call, order: Order, msg: p.Msg) -> Response:
    """The order reply, unless the drop_order_response fault withholds it."""
    if call.sim.faults.take("drop_order_response"):
        order.response_dropped = True
        call.sim.engine.touched.add(order.seq)
        call.sim.counters["dropped_order_responses"] += 1
        call.sim.save()  # booked is booked: on disk before the client can give up waiting
        await withhold_response(call.request, call.sim.config.drop_response_seconds)
    return p.json_response(p.ok_body(msg, output=order_output(order)), tr_id=call.tr_id)


async def dropped_before_booking(call: Call) -> Response | None:
    """Fault ``drop_before_booking``: the order is lost before the engine books it and no answer comes
    until the client hangs up, so a client that timed out finds nothing to reconcile with."""
    if not call.sim.faults.take("drop_before_booking"):
        return None
    call.sim.counters["dropped_before_booking"] += 1
    await withhold_response(call.request, call.sim.config.drop_response_seconds)
    return p.error_response(KisError.gateway(Messages.SERVER_ERROR), call.tr_id)


async def book_order(call: Call, request: OrderRequest, refusal: Refusal | None) -> Response:
    """Refuse (recorded), lose before booking (fault), or book and answer a new order."""
    if refusal is None and request.quantity < 0:
        refusal = Refusal.BAD_QUANTITY
    elif refusal is None and request.price < 0:
        refusal = Refusal.BAD_PRICE
    if refusal is not None:
        call.sim.engine.record_rejected(request, refusal)
        raise OrderDenied(refusal)
    dropped = await dropped_before_booking(call)
    if dropped is not None:
        return dropped
    order = call.sim.engine.submit(request)
    return await answer_order(call, order, accepted_message(call, order.side))


def accepted_message(call: Call, side: Side) -> p.Msg:
    if not call.virtual:
        return Messages.ORDER_SENT
    return Messages.VIRTUAL_BUY_DONE if side is Side.BUY else Messages.VIRTUAL_SELL_DONE


async def order_cash(call: Call) -> Response:
    cano, product = call.account()
    ticker = call.field("PDNO")
    request = OrderRequest(
        cano,
        product,
        call.tr_id,
        "KRX",
        "KRX",
        ticker,
        Side(call.action),
        call.field("ORD_DVSN"),
        parse_quantity(call.field("ORD_QTY")),
        parse_price(call.field("ORD_UNPR", "0")),
        call.received_at_ns,
    )
    exchange = call.field("EXCG_ID_DVSN_CD", "").upper()
    allowed = ("", "KRX") if call.virtual else ("", "KRX", "NXT", "SOR")
    refusal = None
    if exchange not in allowed:
        refusal = Refusal.BAD_EXCHANGE
    elif family_of(ticker) != "KRX":
        refusal = Refusal.NOT_TRADABLE
    return await book_order(call, request, refusal)


async def order_rvsecncl(call: Call) -> Response:
    cano, product = call.account()
    kind = call.field("RVSE_CNCL_DVSN_CD")
    if kind not in ("01", "02"):
        raise KisError(Messages.BAD_REQUEST)
    all_quantity = call.field("QTY_ALL_ORD_YN", "N").upper() == "Y"
    quantity = None if all_quantity else parse_quantity(call.field("ORD_QTY"))
    request = AmendRequest(
        cano,
        product,
        call.tr_id,
        "KRX",
        call.field("ORGN_ODNO"),
        call.field("KRX_FWDG_ORD_ORGNO", ""),
        kind == "02",
        call.field("ORD_DVSN"),
        quantity,
        parse_price(call.field("ORD_UNPR", "0")),
        call.received_at_ns,
    )
    record = call.sim.engine.amend(request)
    if not call.virtual:
        msg = Messages.ORDER_SENT
    else:
        msg = Messages.VIRTUAL_CANCEL_DONE if request.cancel else Messages.VIRTUAL_REVISE_DONE
    return await answer_order(call, record, msg)  # drop_order_response withholds a revise's answer too


# ---------------------------------------------------------------------------- inquiries


def holding_row(holding: Holding, quote: Quote) -> dict[str, str]:
    value = quote.price * holding.quantity
    pnl = value - holding.cost
    diff, _ = change(quote)
    return {
        "pdno": holding.ticker,
        "prdt_name": holding.name,
        "trad_dvsn_name": "현금",
        "bfdy_buy_qty": str(holding.bought_yesterday),
        "bfdy_sll_qty": str(holding.sold_yesterday),
        "thdt_buyqty": str(holding.bought_today),
        "thdt_sll_qty": str(holding.sold_today),
        "hldg_qty": str(holding.quantity),
        "ord_psbl_qty": str(holding.sellable),
        "pchs_avg_pric": fixed(holding.average_price, 4),
        "pchs_amt": won(holding.cost),
        "prpr": won(quote.price),
        "evlu_amt": won(value),
        "evlu_pfls_amt": won(pnl),
        "evlu_pfls_rt": rate(pnl, holding.cost),
        "evlu_erng_rt": "0.00000000",
        "loan_dt": "",
        "loan_amt": "0",
        "stln_slng_chgs": "0",
        "expd_dt": "",
        "fltt_rt": rate(diff, quote.base),
        "bfdy_cprs_icdc": won(diff),
        "item_mgna_rt_name": "20%",
        "grta_rt_name": "",
        "sbst_pric": "0",
        "stck_loan_unpr": "0.0000",
    }


def balance_totals(call: Call, account: Account) -> dict[str, str]:
    ledger = account.krw
    value = cost = base_value = Decimal(0)
    for holding in account.holdings.values():
        if holding.family == "KRX":
            quote = call.sim.prices.quote("KRX", holding.ticker)
            value += quote.price * holding.quantity
            held_yesterday = holding.quantity - holding.bought_today + holding.sold_today
            base_value += quote.base * held_yesterday
            cost += holding.cost
    total = value + ledger.cash
    before = base_value + ledger.deposit
    return {
        "dnca_tot_amt": won(ledger.deposit),
        "nxdy_excc_amt": won(ledger.deposit),
        "prvs_rcdl_excc_amt": won(ledger.cash),
        "cma_evlu_amt": "0",
        "bfdy_buy_amt": won(ledger.buy_yesterday),
        "thdt_buy_amt": won(ledger.buy_today),
        "nxdy_auto_rdpt_amt": "0",
        "bfdy_sll_amt": won(ledger.sell_yesterday),
        "thdt_sll_amt": won(ledger.sell_today),
        "d2_auto_rdpt_amt": "0",
        "bfdy_tlex_amt": won(ledger.fees_yesterday),
        "thdt_tlex_amt": won(ledger.fees_today),
        "tot_loan_amt": "0",
        "scts_evlu_amt": won(value),
        "tot_evlu_amt": won(total),
        "nass_amt": won(total),
        "fncg_gld_auto_rdpt_yn": "N",
        "pchs_amt_smtl_amt": won(cost),
        "evlu_amt_smtl_amt": won(value),
        "evlu_pfls_smtl_amt": won(value - cost),
        "tot_stln_slng_chgs": "0",
        "bfdy_tot_asst_evlu_amt": won(before),
        "asst_icdc_amt": won(total - before),
        "asst_icdc_erng_rt": "0.00000000",
    }


async def inquire_balance(call: Call) -> Response:
    cano, product = call.account()
    account = call.sim.engine.account(cano, product)
    include_empty = call.field("PRCS_DVSN", "00") != "01"
    holdings = sorted(
        (h for h in account.holdings.values() if h.family == "KRX" and (h.quantity > 0 or include_empty)),
        key=lambda h: h.ticker,
    )
    keyed = [(h.ticker, holding_row(h, call.sim.prices.quote("KRX", h.ticker))) for h in holdings]
    fk = f"{cano}^{product}^{call.field('AFHR_FLPR_YN', 'N')}^N^{call.field('INQR_DVSN', '02')}^"
    size = 20 if call.virtual else 50
    return page(call, keyed, size, fk, 100, output2=[balance_totals(call, account)])


async def inquire_psbl_order(call: Call) -> Response:
    cano, product = call.account()
    account = call.sim.engine.account(cano, product)
    available = max(Decimal(0), account.krw.available)
    ticker = call.field("PDNO", "")
    unit_price = parse_price(call.field("ORD_UNPR", ""))
    quantity = Decimal(0)
    if ticker and family_of(ticker) == "KRX":
        quote = call.sim.prices.quote("KRX", ticker)
        if unit_price <= 0:
            # An order without a price of its own is checked against cash at the upper limit.
            unpriced = call.field("ORD_DVSN", "00") in MARKET_PRICED | BEST_PRICED
            unit_price = quote.upper if unpriced else quote.price
        per_share = unit_price * (1 + call.sim.config.domestic_fee_rate)
        quantity = (available / per_share).to_integral_value(rounding="ROUND_FLOOR")
    unit_price = max(unit_price, Decimal(0))
    amount = quantity * unit_price if ticker else available
    output = {
        "ord_psbl_cash": won(available),
        "ord_psbl_sbst": "0",
        "ruse_psbl_amt": "0",
        "fund_rpch_chgs": "0",
        "psbl_qty_calc_unpr": won(unit_price),
        "nrcvb_buy_amt": won(amount),
        "nrcvb_buy_qty": won(quantity),
        "max_buy_amt": won(amount),
        "max_buy_qty": won(quantity),
        "cma_evlu_amt": "0",
        "ovrs_re_use_amt_wcrc": "0",
        "ord_psbl_frcr_amt_wcrc": "0",
    }
    return p.json_response(p.ok_body(Messages.INQUIRY_DONE, output=output), tr_id=call.tr_id)
