"""Realised profit by period, from the simulator's own fills: domestic ``inquire-period-trade-profit``
TTTC8715R (기간별매매손익현황조회, per day and product), domestic ``inquire-period-profit`` TTTC8708R
(기간별손익일별합산조회, per day) and overseas ``inquire-period-profit`` TTTS3039R (해외주식 기간손익),
all real domain only, as at KIS.

Every sell fill records the purchase cost it took off the holding (``Order.released_cost``, at the
holding's average price then), so a row's realised profit is its sell amount less that cost and the
sell fees, exactly what the account's cash gained over the cost it gave up. Rows are per trading day
and product: the Korean date for KRX orders, the New York date for US orders (as ``inquire-ccnl``).
Columns as KIS's official samples list them (examples_llm ``inquire_period_trade_profit``, domestic
and overseas ``inquire_period_profit``). UNCERTAIN: page sizes (50 domestic, 100 overseas), that the
domestic lists also have days with buys only, and that WCRC_FRCR_DVSN_CD 02 gives the realised
amounts in won at the simulator's fixed rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from starlette.responses import Response

from kissim.fmt import ZERO, fixed, rate, won, ymd
from kissim.gateway import Call
from kissim.hours import new_york_time
from kissim.orders import Order, Side
from kissim.paging import page
from kissim.protocol import KST


def trade_day(order: Order) -> date:
    if order.family == "KRX":
        return order.ord_dt
    return new_york_time(datetime.fromtimestamp(order.received_at_ns / 1e9, KST)).date()


class _Day:
    """One trading day's fills of one product."""

    def __init__(self, orders: Iterable[Order]) -> None:
        self.orders = list(orders)
        first = self.orders[0]
        self.ticker, self.name, self.exchange = first.ticker, first.name, first.exchange
        buys = [o for o in self.orders if o.side is Side.BUY]
        sells = [o for o in self.orders if o.side is Side.SELL]
        self.buy_qty = sum(o.filled_quantity for o in buys)
        self.buy_amt = sum((o.filled_amount for o in buys), ZERO)
        self.buy_fee = sum((o.fees for o in buys), ZERO)
        self.sell_qty = sum(o.filled_quantity for o in sells)
        self.sell_amt = sum((o.filled_amount for o in sells), ZERO)
        self.sell_fee = sum((o.fees for o in sells), ZERO)
        self.cost = sum((o.released_cost for o in sells), ZERO)
        self.realised = self.sell_amt - self.cost - self.sell_fee if self.sell_qty else ZERO

    @property
    def unit_cost(self) -> Decimal:
        """매입단가: the average cost of the shares sold, or of those bought on a day without sells."""
        if self.sell_qty:
            return self.cost / self.sell_qty
        return self.buy_amt / self.buy_qty if self.buy_qty else ZERO


def trade_days(keep: Iterable[Order]) -> dict[tuple[date, str], _Day]:
    groups: dict[tuple[date, str], list[Order]] = defaultdict(list)
    for order in keep:
        groups[(trade_day(order), order.ticker)].append(order)
    return {key: _Day(orders) for key, orders in groups.items()}


def filled_orders(call: Call, family: str, start: date, end: date) -> list[Order]:
    cano, product = call.account()
    call.sim.engine.account(cano, product)
    ticker = call.field("PDNO", "").upper()
    return [
        o
        for o in call.sim.engine.orders_of(cano + product, "KRX" if family == "KRX" else "US")
        if o.filled_quantity > 0 and start <= trade_day(o) <= end and ticker in ("", "%", o.ticker)
    ]


def _domestic_totals(days: Iterable[_Day], buy_qty_name: str) -> dict[str, str]:
    """output2 of the domestic period lists (TTTC8715R spells the buy quantity ``buyqty_smtl``,
    TTTC8708R ``buy_qty_smtl``)."""
    every = list(days)
    sell_qty, buy_qty = sum(d.sell_qty for d in every), sum(d.buy_qty for d in every)
    sell_amt, buy_amt = sum((d.sell_amt for d in every), ZERO), sum((d.buy_amt for d in every), ZERO)
    sell_fee, buy_fee = sum((d.sell_fee for d in every), ZERO), sum((d.buy_fee for d in every), ZERO)
    return {
        "sll_qty_smtl": str(sell_qty),
        "sll_tr_amt_smtl": won(sell_amt),
        "sll_fee_smtl": won(sell_fee),
        "sll_tltx_smtl": "0",
        "sll_excc_amt_smtl": won(sell_amt - sell_fee),
        buy_qty_name: str(buy_qty),
        "buy_tr_amt_smtl": won(buy_amt),
        "buy_fee_smtl": won(buy_fee),
        "buy_tax_smtl": "0",
        "buy_excc_amt_smtl": won(buy_amt + buy_fee),
        "tot_qty": str(sell_qty + buy_qty),
        "tot_tr_amt": won(sell_amt + buy_amt),
        "tot_fee": won(sell_fee + buy_fee),
        "tot_tltx": "0",
        "tot_excc_amt": won(sell_amt - sell_fee - buy_amt - buy_fee),
        "tot_rlzt_pfls": won(sum((d.realised for d in every), ZERO)),
        "loan_int": "0",
    }


async def period_trade_profit(call: Call) -> Response:
    """TTTC8715R: per day and product, what was bought and sold and the realised profit."""
    cano, product = call.account()
    start, end = call.date_field("INQR_STRT_DT"), call.date_field("INQR_END_DT")
    days = trade_days(filled_orders(call, "KRX", start, end))
    keys = sorted(days, reverse=call.field("SORT_DVSN", "00") != "01")
    holdings = call.sim.engine.account(cano, product).holdings
    rows: list[tuple[str, dict[str, str]]] = []
    for key in keys:
        day = days[key]
        holding = holdings.get(("KRX", day.ticker))
        rows.append(
            (
                f"{ymd(key[0])}{day.ticker}",
                {
                    "trad_dt": ymd(key[0]),
                    "pdno": day.ticker,
                    "prdt_name": day.name,
                    "trad_dvsn_name": "현금",
                    "loan_dt": "",
                    "hldg_qty": str(holding.quantity if holding else 0),
                    "pchs_unpr": won(day.unit_cost),
                    "buy_qty": str(day.buy_qty),
                    "buy_amt": won(day.buy_amt),
                    "sll_pric": won(day.sell_amt / day.sell_qty if day.sell_qty else ZERO),
                    "sll_qty": str(day.sell_qty),
                    "sll_amt": won(day.sell_amt),
                    "rlzt_pfls": won(day.realised),
                    "pfls_rt": rate(day.realised, day.cost),
                    "fee": won(day.buy_fee + day.sell_fee),
                    "tl_tax": "0",
                    "loan_int": "0",
                },
            )
        )
    totals = _domestic_totals(days.values(), "buyqty_smtl")
    totals["tot_pftrt"] = rate(
        sum((d.realised for d in days.values()), ZERO), sum((d.cost for d in days.values()), ZERO)
    )
    fk = f"{cano}^{product}^{ymd(start)}^{ymd(end)}^"
    return page(call, rows, 50, fk, 100, output2=totals)


async def period_profit(call: Call) -> Response:
    """TTTC8708R: per trading day, every product together: bought, sold and the realised profit.
    SORT_DVSN 01 oldest first, 00 and 02 newest first."""
    cano, product = call.account()
    start, end = call.date_field("INQR_STRT_DT"), call.date_field("INQR_END_DT")
    days = trade_days(filled_orders(call, "KRX", start, end))
    by_date: dict[date, list[_Day]] = defaultdict(list)
    for (day, _ticker), fills in days.items():
        by_date[day].append(fills)
    rows: list[tuple[str, dict[str, str]]] = []
    for day in sorted(by_date, reverse=call.field("SORT_DVSN", "00") != "01"):
        group = by_date[day]
        realised = sum((d.realised for d in group), ZERO)
        rows.append(
            (
                ymd(day),
                {
                    "trad_dt": ymd(day),
                    "buy_amt": won(sum((d.buy_amt for d in group), ZERO)),
                    "sll_amt": won(sum((d.sell_amt for d in group), ZERO)),
                    "rlzt_pfls": won(realised),
                    "fee": won(sum((d.buy_fee + d.sell_fee for d in group), ZERO)),
                    "loan_int": "0",
                    "tl_tax": "0",
                    "pfls_rt": rate(realised, sum((d.cost for d in group), ZERO)),
                    "sll_qty1": str(sum(d.sell_qty for d in group)),
                    "buy_qty1": str(sum(d.buy_qty for d in group)),
                },
            )
        )
    fk = f"{cano}^{product}^{ymd(start)}^{ymd(end)}^"
    return page(call, rows, 50, fk, 100, output2=_domestic_totals(days.values(), "buy_qty_smtl"))


async def overseas_period_profit(call: Call) -> Response:
    """TTTS3039R: per day and product, the sells and their realised profit (in USD; 02: in won)."""
    cano, product = call.account()
    start, end = call.date_field("INQR_STRT_DT"), call.date_field("INQR_END_DT")
    exchange = call.field("OVRS_EXCG_CD", "").upper()
    every_us = exchange in ("", "%", "NASD")
    sold = [
        o for o in filled_orders(call, "US", start, end) if o.side is Side.SELL and (every_us or o.exchange == exchange)
    ]
    days = trade_days(sold)
    fx = call.sim.config.usd_krw_rate
    in_won = call.field("WCRC_FRCR_DVSN_CD", "01") == "02"

    def amount(value: Decimal) -> str:
        return won(value * fx) if in_won else fixed(value, 2)

    rows: list[tuple[str, dict[str, str]]] = []
    for key in sorted(days, reverse=True):
        day = days[key]
        rows.append(
            (
                f"{ymd(key[0])}{day.ticker}",
                {
                    "trad_day": ymd(key[0]),
                    "ovrs_pdno": day.ticker,
                    "ovrs_item_name": day.name,
                    "slcl_qty": str(day.sell_qty),
                    "pchs_avg_pric": fixed(day.cost / day.sell_qty, 4),
                    "frcr_pchs_amt1": fixed(day.cost, 2),
                    "avg_sll_unpr": fixed(day.sell_amt / day.sell_qty, 4),
                    "frcr_sll_amt_smtl1": fixed(day.sell_amt, 2),
                    "stck_sll_tlex": fixed(day.sell_fee, 2),
                    "ovrs_rlzt_pfls_amt": amount(day.realised),
                    "pftrt": rate(day.realised, day.cost, 4),
                    "exrt": fixed(fx, 8),
                    "ovrs_excg_cd": day.exchange,
                    "frst_bltn_exrt": fixed(fx, 8),
                },
            )
        )
    every = list(days.values())
    sell_amt = sum((d.sell_amt for d in every), ZERO)
    cost = sum((d.cost for d in every), ZERO)
    fees = sum((d.sell_fee for d in every), ZERO)
    realised = sum((d.realised for d in every), ZERO)
    totals = {
        "stck_sll_amt_smtl": amount(sell_amt),
        "stck_buy_amt_smtl": amount(cost),
        "smtl_fee1": amount(fees),
        "excc_dfrm_amt": amount(sell_amt - fees),
        "ovrs_rlzt_pfls_tot_amt": amount(realised),
        "tot_pftrt": rate(realised, cost, 8),
        "bass_dt": ymd(call.sim.engine.now().date()),
        "exrt": fixed(fx, 8),
    }
    fk = f"{cano}^{product}^{ymd(start)}^{ymd(end)}^"
    return page(call, rows, 100, fk, 200, output2=totals)
