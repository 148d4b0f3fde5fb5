"""The account seen whole (domestic TTTC8494R balance with today's realised profit, CTRP6548R assets by
class) from the simulator's own state: a buy then a sell at a higher price shows the holding left,
its evaluation and today's realised profit; dollars and US shares appear in won; real domain only,
as at KIS; the balance pages like inquire-balance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kissim.assets import ASSET_CLASSES

from .helpers import DOMESTIC, Kis, SimServer
from .test_profit import round_trip_krx

RLZ_PL = f"{DOMESTIC}/trading/inquire-balance-rlz-pl"
ACCOUNT_BALANCE = f"{DOMESTIC}/trading/inquire-account-balance"
RLZ_PL_QUERY = {
    "AFHR_FLPR_YN": "N",
    "OFL_YN": "",
    "INQR_DVSN": "02",
    "UNPR_DVSN": "01",
    "FUND_STTL_ICLD_YN": "N",
    "FNCG_AMT_AUTO_RDPT_YN": "N",
    "PRCS_DVSN": "01",
    "COST_ICLD_YN": "N",
    "CTX_AREA_FK100": "",
    "CTX_AREA_NK100": "",
}


def rlz_pl(kis: Kis, tr_cont: str = "", **params: str) -> Any:
    response = kis.get(RLZ_PL, "TTTC8494R", kis.acct | RLZ_PL_QUERY | params, tr_cont)
    assert response.status_code == 200, response.text
    assert response.headers["tr_id"] == "TTTC8494R"
    return response


def account_balance(kis: Kis) -> Any:
    response = kis.get(ACCOUNT_BALANCE, "CTRP6548R", kis.acct | {"INQR_DVSN_1": "", "BSPR_BF_DT_APLY_YN": ""})
    assert response.status_code == 200, response.text
    assert (response.headers["tr_id"], response.headers["tr_cont"]) == ("CTRP6548R", "D")
    return response.json()


def test_balance_rlz_pl_when_sold_higher_today_then_holding_and_realised_profit(
    real_server: SimServer, real: Kis
) -> None:
    round_trip_krx(real_server, real)
    body = rlz_pl(real).json()
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "KIOK0510")
    [row] = body["output1"]
    assert {k: row[k] for k in ("pdno", "hldg_qty", "ord_psbl_qty", "pchs_amt", "prpr", "evlu_amt")} == {
        "pdno": "005930",
        "hldg_qty": "6",
        "ord_psbl_qty": "6",
        "pchs_amt": "420000",
        "prpr": "72000",
        "evlu_amt": "432000",
    }
    assert row["evlu_pfls_amt"] == "12000"
    assert "item_mgna_rt_name" not in row  # inquire-balance's margin columns are not in this list
    [totals] = body["output2"]
    sell_fee = int(totals["thdt_tlex_amt"]) - 105  # 700,000 x 0.015 % for the buy
    assert sell_fee in (43, 44)
    assert totals["rlzt_pfls"] == "8000"  # 288,000 sold less the 280,000 it cost, before fees
    assert totals["rlzt_erng_rt"] == f"{8000 / 280000 * 100:.8f}"
    assert totals["real_evlu_pfls"] == "20000"
    assert totals["evlu_pfls_smtl_amt"] == "12000"
    assert all(isinstance(v, str) for v in totals.values())
    with_costs = rlz_pl(real, COST_ICLD_YN="Y").json()["output2"][0]
    assert with_costs["rlzt_pfls"] == str(8000 - sell_fee)


def test_balance_rlz_pl_when_51_holdings_then_pages_of_50(real_server: SimServer, real: Kis) -> None:
    tickers = [f"{200000 + i:06d}" for i in range(51)]
    for ticker in tickers:
        assert real.order_cash("buy", ticker, 1, "0", ord_dvsn="01").json()["rt_cd"] == "0"
    first = rlz_pl(real)
    body = first.json()
    assert (first.headers["tr_cont"], len(body["output1"]), body["msg_cd"]) == ("M", 50, "KIOK0500")
    assert len(body["ctx_area_fk100"]) == len(body["ctx_area_nk100"]) == 100
    second = rlz_pl(real, "N", CTX_AREA_FK100=body["ctx_area_fk100"], CTX_AREA_NK100=body["ctx_area_nk100"])
    assert (second.headers["tr_cont"], second.json()["msg_cd"]) == ("D", "KIOK0460")
    assert [r["pdno"] for r in body["output1"] + second.json()["output1"]] == tickers


def test_account_balance_when_krx_and_us_positions_then_asset_rows_in_won(real_server: SimServer, real: Kis) -> None:
    fresh = account_balance(real)
    assert (fresh["rt_cd"], fresh["msg_cd"]) == ("0", "KIOK0510")
    assert fresh["output2"]["tot_asst_amt"] == str(100_000_000 + 100_000 * 1350)
    round_trip_krx(real_server, real)
    real_server.admin("/admin/price", {"ticker": "AAPL", "price": "190.00", "market": "US"})
    assert real.us_order("TTTT1002U", "AAPL", 10, "190.00").json()["rt_cd"] == "0"
    real_server.admin("/admin/price", {"ticker": "AAPL", "price": "200.00", "market": "US"})
    body = account_balance(real)
    rows = dict(zip(ASSET_CLASSES, body["output1"], strict=True))
    assert rows["주식"] | {"whol_weit_rt": ""} == {
        "pchs_amt": "420000",
        "evlu_amt": "432000",
        "evlu_pfls_amt": "12000",
        "crdt_lnd_amt": "0",
        "real_nass_amt": "432000",
        "whol_weit_rt": "",
    }
    assert (rows["해외주식"]["pchs_amt"], rows["해외주식"]["evlu_amt"]) == ("2565000", "2700000")
    krw_cash = int(rows["예수금+CMA"]["evlu_amt"])
    usd_cash_won = int(rows["외화"]["evlu_amt"])
    assert usd_cash_won <= (100_000 - 1900) * 1350  # the dollars the AAPL buy and its fee spent are gone
    assert krw_cash == int(real.balance().json()["output2"][0]["prvs_rcdl_excc_amt"])  # cash now, as settled
    total = 432_000 + 2_700_000 + krw_cash + usd_cash_won
    assert body["output2"]["tot_asst_amt"] == rows["합계"]["evlu_amt"] == str(total)
    assert body["output2"]["evlu_amt_smtl"] == str(432_000 + 2_700_000)
    assert body["output2"]["ovrs_stck_evlu_amt1"] == "2700000"
    assert body["output2"]["dncl_amt"] == str(krw_cash)
    weights = sum((Decimal(r["whol_weit_rt"]) for name, r in rows.items() if name != "합계"), Decimal(0))
    assert abs(weights - 100) < Decimal("0.05")
    assert rows["채권"]["evlu_amt"] == "0"
    assert all(isinstance(v, str) for row in body["output1"] for v in row.values())


def test_account_views_when_virtual_then_refused_as_kis_does(virtual: Kis) -> None:
    for path, tr_id in ((RLZ_PL, "TTTC8494R"), (ACCOUNT_BALANCE, "CTRP6548R")):
        refused = virtual.get(path, tr_id, virtual.acct | RLZ_PL_QUERY)
        assert refused.status_code == 500
        assert refused.json() == {"rt_cd": "1", "msg_cd": "EGW00213", "msg1": "모의투자 TR 이 아닙니다."}
