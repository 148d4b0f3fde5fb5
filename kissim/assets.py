"""The account seen whole, real domain only as at KIS: the domestic balance with today's realised
profit ``inquire-balance-rlz-pl`` TTTC8494R (주식잔고조회_실현손익) and the account's assets by class
``inquire-account-balance`` CTRP6548R (투자계좌자산현황조회).

Both are computed from the simulator's own state: holdings valued at the current quotes as
``inquire-balance`` values them, today's realised profit from today's sell fills as ``profit.py``
computes it (sell amount less the purchase cost the sells took off the holdings), US positions and
dollars in won at the simulator's fixed rate. Columns as KIS's official samples list them
(examples_llm ``inquire_balance_rlz_pl`` and ``inquire_account_balance``).

UNCERTAIN: that COST_ICLD_YN "Y" means the realised profit net of the sell fees (anything else:
before fees); that 실평가손익 (``real_evlu_pfls``) is the holdings' evaluation profit plus today's
realised profit; the rate formats; and the order of CTRP6548R's asset-class rows (``ASSET_CLASSES``,
as HTS screen 0891 lists them; KIS's rows carry no class name). The simulator holds no funds,
bonds, RP or loans: those rows and columns are zero.
"""

from __future__ import annotations

from decimal import Decimal

from starlette.responses import Response

from kissim import protocol as p
from kissim.accounts import Account
from kissim.domestic import balance_totals, holding_row
from kissim.fmt import ZERO, names, rate, won
from kissim.gateway import Call
from kissim.paging import page
from kissim.profit import filled_orders, trade_days
from kissim.protocol import Messages

# output1 of TTTC8494R: inquire-balance's holding row less its margin and collateral columns.
RLZ_PL_ROW = names(
    "pdno prdt_name trad_dvsn_name bfdy_buy_qty bfdy_sll_qty thdt_buyqty thdt_sll_qty hldg_qty ord_psbl_qty "
    "pchs_avg_pric pchs_amt prpr evlu_amt evlu_pfls_amt evlu_pfls_rt evlu_erng_rt loan_dt loan_amt "
    "stln_slng_chgs expd_dt stck_loan_unpr bfdy_cprs_icdc fltt_rt"
)
ASSET_CLASSES = (
    "주식",
    "펀드/MMF",
    "IMA",
    "채권",
    "ELS/DLS",
    "WRAP",
    "신탁/퇴직연금/외화신탁",
    "RP/발행어음",
    "해외주식",
    "해외채권",
    "금현물",
    "CD/CP",
    "단기사채",
    "타사상품",
    "외화단기사채",
    "외화 ELS/DLS",
    "외화",
    "예수금+CMA",
    "청약자예수금",
    "합계",
)


class _Today:
    """Today's domestic sells: realised profit (before and after their fees) and the cost given up."""

    def __init__(self, call: Call) -> None:
        today = call.sim.engine.now().date()
        days = trade_days(filled_orders(call, "KRX", today, today)).values()
        self.cost = sum((d.cost for d in days), ZERO)
        self.net = sum((d.realised for d in days), ZERO)
        self.fees = sum((d.sell_fee for d in days), ZERO)


async def inquire_balance_rlz_pl(call: Call) -> Response:
    """TTTC8494R: inquire-balance's rows and totals, the totals with today's realised profit."""
    cano, product = call.account()
    account = call.sim.engine.account(cano, product)
    include_empty = call.field("PRCS_DVSN", "00") != "01"
    holdings = sorted(
        (h for h in account.holdings.values() if h.family == "KRX" and (h.quantity > 0 or include_empty)),
        key=lambda h: h.ticker,
    )
    rows = []
    for holding in holdings:
        full = holding_row(holding, call.sim.prices.quote("KRX", holding.ticker))
        rows.append((holding.ticker, {name: full[name] for name in RLZ_PL_ROW}))
    today = _Today(call)
    realised = today.net if call.field("COST_ICLD_YN", "").upper() == "Y" else today.net + today.fees
    totals = balance_totals(call, account)
    evaluation = Decimal(totals["evlu_pfls_smtl_amt"])
    held_cost = Decimal(totals["pchs_amt_smtl_amt"])
    totals |= {
        "rlzt_pfls": won(realised),
        "rlzt_erng_rt": rate(realised, today.cost, 8),
        "real_evlu_pfls": won(evaluation + realised),
        "real_evlu_pfls_erng_rt": rate(evaluation + realised, held_cost + today.cost, 8),
    }
    fk = f"{cano}^{product}^{call.field('AFHR_FLPR_YN', 'N')}^N^{call.field('INQR_DVSN', '02')}^"
    return page(call, rows, 50, fk, 100, output2=[totals])


def _positions(call: Call, account: Account, family: str) -> tuple[Decimal, Decimal]:
    """(purchase cost, value now) of the account's holdings of one market, in its currency."""
    cost = value = ZERO
    for holding in account.holdings.values():
        if holding.family == family and holding.quantity > 0:
            cost += holding.cost
            value += call.sim.prices.quote(holding.family, holding.ticker).price * holding.quantity
    return cost, value


def _asset_row(cost: Decimal, value: Decimal, total: Decimal) -> dict[str, str]:
    return {
        "pchs_amt": won(cost),
        "evlu_amt": won(value),
        "evlu_pfls_amt": won(value - cost),
        "crdt_lnd_amt": "0",
        "real_nass_amt": won(value),
        "whol_weit_rt": rate(value, total),
    }


async def inquire_account_balance(call: Call) -> Response:
    """CTRP6548R: one row per asset class (``ASSET_CLASSES`` order) and the account's totals, in won."""
    cano, product = call.account()
    account = call.sim.engine.account(cano, product)
    fx = call.sim.config.usd_krw_rate
    krx_cost, krx_value = _positions(call, account, "KRX")
    us_cost, us_value = (amount * fx for amount in _positions(call, account, "US"))
    dollars = account.usd.cash * fx
    cash = account.krw.cash
    total = krx_value + us_value + dollars + cash
    held = {"주식": (krx_cost, krx_value), "해외주식": (us_cost, us_value), "외화": (dollars, dollars)}
    held |= {"예수금+CMA": (cash, cash), "합계": (krx_cost + us_cost + dollars + cash, total)}
    rows = [_asset_row(*held.get(name, (ZERO, ZERO)), total) for name in ASSET_CLASSES]
    securities_cost, securities_value = krx_cost + us_cost, krx_value + us_value
    totals = {
        "pchs_amt_smtl": won(securities_cost),
        "nass_tot_amt": won(total),
        "loan_amt_smtl": "0",
        "evlu_pfls_amt_smtl": won(securities_value - securities_cost),
        "evlu_amt_smtl": won(securities_value),
        "tot_asst_amt": won(total),
        "tot_lnda_tot_ulst_lnda": "0",
        "cma_auto_loan_amt": "0",
        "tot_mgln_amt": "0",
        "stln_evlu_amt": "0",
        "crdt_fncg_amt": "0",
        "ocl_apl_loan_amt": "0",
        "pldg_stup_amt": "0",
        "frcr_evlu_tota": won(dollars),
        "tot_dncl_amt": won(cash),
        "cma_evlu_amt": "0",
        "dncl_amt": won(cash),
        "tot_sbst_amt": "0",
        "thdt_rcvb_amt": "0",
        "ovrs_stck_evlu_amt1": won(us_value),
        "ovrs_bond_evlu_amt": "0",
        "mmf_cma_mgge_loan_amt": "0",
        "sbsc_dncl_amt": "0",
        "pbst_sbsc_fnds_loan_use_amt": "0",
        "etpr_crdt_grnt_loan_amt": "0",
    }
    body = p.ok_body(Messages.INQUIRY_DONE, output1=rows, output2=totals)
    return p.json_response(body, tr_id=call.tr_id, tr_cont="D")
