"""Walks every KIS data endpoint the simulator routes (``kissim.app.kis_table``), under every tr_id it
accepts there (real, virtual, older spellings, both order sides), against an account with holdings,
fills and open orders on each domain: each answers in KIS's envelope (rt_cd "0", msg_cd, msg1), with
the output keys and column names KIS's samples read, every value a string. A tr_id of the other
domain is refused as KIS refuses it, a path the simulator does not serve answers KIS's error
envelope. The cases are checked against the route table both ways, so a route added without a case
here (or a tr_id dropped from one) fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kissim.app import kis_table
from kissim.fmt import names
from kissim.protocol import SHARED_TR_IDS

from .helpers import DOMESTIC, OVERSEAS, Kis, SimServer
from .test_market_data import ok

DQ = f"{DOMESTIC}/quotations"
DT = f"{DOMESTIC}/trading"
OQ = "/uapi/overseas-price/v1/quotations"
OT = f"{OVERSEAS}/trading"
KRX = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
US = {"AUTH": "", "EXCD": "NAS", "SYMB": "AAPL"}
WIDE = {"INQR_STRT_DT": "20000101", "INQR_END_DT": "20991231"}
ENVELOPE = frozenset({"rt_cd", "msg_cd", "msg1"})

Shape = tuple[str, tuple[str, ...]]  # ("rows" | "record" | "text", column names that must be there)
Body = Callable[[Kis, str], dict[str, str]]  # (client, the tr_id's action) -> POST body


def rows(columns: str) -> Shape:
    return ("rows", names(columns))


def record(columns: str) -> Shape:
    return ("record", names(columns))


TEXT: Shape = ("text", ())
CTX = {"ctx_area_fk": TEXT, "ctx_area_nk": TEXT}
CTX100 = {"ctx_area_fk100": TEXT, "ctx_area_nk100": TEXT}
CTX200 = {"ctx_area_fk200": TEXT, "ctx_area_nk200": TEXT}


@dataclass(frozen=True)
class Case:
    tr_ids: str  # every tr_id the route accepts, space-separated
    outputs: dict[str, Shape]
    params: dict[str, str] = field(default_factory=dict)  # GET query, after the account's CANO/ACNT_PRDT_CD
    account: bool = False
    body: Body | None = None  # POST


def order_cash(kis: Kis, action: str) -> dict[str, str]:
    return kis.acct | {"PDNO": "005930", "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0", "EXCG_ID_DVSN_CD": "KRX"}


def domestic_cancel(kis: Kis, action: str) -> dict[str, str]:
    placed = kis.order_cash("buy", "005930", 1, "60000").json()["output"]
    return kis.acct | {
        "KRX_FWDG_ORD_ORGNO": placed["KRX_FWDG_ORD_ORGNO"],
        "ORGN_ODNO": placed["ODNO"],
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
    }


def us_order(kis: Kis, action: str) -> dict[str, str]:
    price = "191.00" if action == "buy" else "189.00"  # marketable either way
    return kis.acct | {
        "OVRS_EXCG_CD": "NASD",
        "PDNO": "AAPL",
        "ORD_QTY": "1",
        "OVRS_ORD_UNPR": price,
        "CTAC_TLNO": "",
        "MGCO_APTM_ODNO": "",
        "SLL_TYPE": "00" if action == "sell" else "",
        "ORD_SVR_DVSN_CD": "0",
        "ORD_DVSN": "00",
    }


def us_cancel(kis: Kis, action: str) -> dict[str, str]:
    placed = kis.us_order(kis.tr("TTTT1002U"), "AAPL", 1, "150.00").json()["output"]
    return kis.acct | {
        "OVRS_EXCG_CD": "NASD",
        "PDNO": "AAPL",
        "ORGN_ODNO": placed["ODNO"],
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "1",
        "OVRS_ORD_UNPR": "0",
        "MGCO_APTM_ODNO": "",
        "ORD_SVR_DVSN_CD": "0",
    }


ORDER_OUTPUT = {"output": record("KRX_FWDG_ORD_ORGNO ODNO ORD_TMD")}
DOMESTIC_BALANCE_TOTALS = "dnca_tot_amt prvs_rcdl_excc_amt thdt_tlex_amt tot_evlu_amt nass_amt evlu_pfls_smtl_amt"
DOMESTIC_HOLDING = "pdno prdt_name hldg_qty ord_psbl_qty pchs_avg_pric pchs_amt prpr evlu_amt evlu_pfls_amt"
PROFIT_TOTALS = "sll_qty_smtl sll_tr_amt_smtl sll_fee_smtl tot_rlzt_pfls tot_fee"

CASES: dict[str, Case] = {
    f"{DT}/order-cash": Case(
        "TTTC0011U TTTC0012U TTTC0801U TTTC0802U VTTC0011U VTTC0012U VTTC0801U VTTC0802U", ORDER_OUTPUT, body=order_cash
    ),
    f"{DT}/order-rvsecncl": Case("TTTC0013U TTTC0803U VTTC0013U VTTC0803U", ORDER_OUTPUT, body=domestic_cancel),
    f"{DT}/inquire-balance": Case(
        "TTTC8434R VTTC8434R",
        CTX100 | {"output1": rows(DOMESTIC_HOLDING), "output2": rows(DOMESTIC_BALANCE_TOTALS)},
        {"AFHR_FLPR_YN": "N", "INQR_DVSN": "02", "UNPR_DVSN": "01", "PRCS_DVSN": "00"},
        account=True,
    ),
    f"{DT}/inquire-psbl-order": Case(
        "TTTC8908R VTTC8908R",
        {"output": record("ord_psbl_cash nrcvb_buy_amt nrcvb_buy_qty max_buy_amt max_buy_qty psbl_qty_calc_unpr")},
        {"PDNO": "005930", "ORD_UNPR": "70000", "ORD_DVSN": "00"},
        account=True,
    ),
    f"{DT}/inquire-daily-ccld": Case(
        "TTTC0081R CTSC9215R TTTC8001R CTSC9115R VTTC0081R VTSC9215R VTTC8001R VTSC9115R",
        CTX100
        | {
            "output1": rows(
                "ord_dt odno orgn_odno sll_buy_dvsn_cd pdno ord_qty ord_unpr tot_ccld_qty avg_prvs rmn_qty"
            ),
            "output2": record("tot_ord_qty tot_ccld_qty tot_ccld_amt pchs_avg_pric prsm_tlex_smtl"),
        },
        WIDE | {"SLL_BUY_DVSN_CD": "00", "INQR_DVSN": "00", "PDNO": "", "CCLD_DVSN": "00", "INQR_DVSN_3": "00"},
        account=True,
    ),
    f"{DT}/inquire-psbl-rvsecncl": Case(
        "TTTC0084R TTTC8036R",
        CTX100
        | {"output": rows("ord_gno_brno odno orgn_odno pdno ord_qty ord_unpr tot_ccld_qty psbl_qty sll_buy_dvsn_cd")},
        {"INQR_DVSN_1": "0", "INQR_DVSN_2": "0"},
        account=True,
    ),
    f"{DT}/inquire-psbl-sell": Case(
        "TTTC8408R",
        {"output": record("pdno prdt_name ord_psbl_qty cblc_qty pchs_avg_pric now_pric")},
        {"PDNO": "005930"},
        account=True,
    ),
    f"{DT}/inquire-period-trade-profit": Case(
        "TTTC8715R",
        CTX100
        | {
            "output1": rows("trad_dt pdno prdt_name buy_qty buy_amt sll_qty sll_amt rlzt_pfls pfls_rt fee"),
            "output2": record(PROFIT_TOTALS + " buyqty_smtl tot_pftrt"),
        },
        WIDE | {"SORT_DVSN": "00", "PDNO": "", "CBLC_DVSN": "00"},
        account=True,
    ),
    f"{DT}/inquire-period-profit": Case(
        "TTTC8708R",
        CTX100
        | {
            "output1": rows("trad_dt buy_amt sll_amt rlzt_pfls fee loan_int tl_tax pfls_rt sll_qty1 buy_qty1"),
            "output2": record(PROFIT_TOTALS + " buy_qty_smtl"),
        },
        WIDE | {"SORT_DVSN": "00", "INQR_DVSN": "00", "CBLC_DVSN": "00", "PDNO": ""},
        account=True,
    ),
    f"{DT}/inquire-balance-rlz-pl": Case(
        "TTTC8494R",
        CTX100
        | {
            "output1": rows(DOMESTIC_HOLDING),
            "output2": rows(DOMESTIC_BALANCE_TOTALS + " rlzt_pfls rlzt_erng_rt real_evlu_pfls real_evlu_pfls_erng_rt"),
        },
        {"AFHR_FLPR_YN": "N", "INQR_DVSN": "02", "UNPR_DVSN": "01", "PRCS_DVSN": "01", "COST_ICLD_YN": "N"},
        account=True,
    ),
    f"{DT}/inquire-account-balance": Case(
        "CTRP6548R",
        {
            "output1": rows("pchs_amt evlu_amt evlu_pfls_amt crdt_lnd_amt real_nass_amt whol_weit_rt"),
            "output2": record("pchs_amt_smtl nass_tot_amt evlu_amt_smtl tot_asst_amt dncl_amt ovrs_stck_evlu_amt1"),
        },
        {"INQR_DVSN_1": "", "BSPR_BF_DT_APLY_YN": ""},
        account=True,
    ),
    f"{DQ}/inquire-price": Case(
        "FHKST01010100", {"output": record("stck_prpr prdy_vrss prdy_ctrt stck_oprc stck_hgpr stck_lwpr acml_vol")}, KRX
    ),
    f"{DQ}/inquire-asking-price-exp-ccn": Case(
        "FHKST01010200",
        {
            "output1": record("askp1 bidp1 askp_rsqn1 bidp_rsqn1 askp10 bidp10"),
            "output2": record("antc_cnpr stck_prpr"),
        },
        KRX,
    ),
    f"{DQ}/inquire-ccnl": Case("FHKST01010300", {"output": rows("stck_cntg_hour stck_prpr cntg_vol")}, KRX),
    f"{DQ}/inquire-daily-price": Case(
        "FHKST01010400",
        {"output": rows("stck_bsop_date stck_oprc stck_hgpr stck_lwpr stck_clpr acml_vol")},
        KRX | {"FID_PERIOD_DIV_CODE": "D", "FID_ORG_ADJ_PRC": "0"},
    ),
    f"{DQ}/inquire-daily-itemchartprice": Case(
        "FHKST03010100",
        {"output1": record("stck_prpr hts_kor_isnm"), "output2": rows("stck_bsop_date stck_oprc stck_clpr acml_vol")},
        KRX | {"FID_INPUT_DATE_1": "20250101", "FID_INPUT_DATE_2": "20991231", "FID_PERIOD_DIV_CODE": "D"},
    ),
    f"{DQ}/inquire-time-itemchartprice": Case(
        "FHKST03010200",
        {"output1": record("stck_prpr"), "output2": rows("stck_bsop_date stck_cntg_hour stck_prpr cntg_vol")},
        KRX | {"FID_INPUT_HOUR_1": "", "FID_PW_DATA_INCU_YN": "Y", "FID_ETC_CLS_CODE": ""},
    ),
    f"{DQ}/search-info": Case(
        "CTPF1604R",
        {"output": record("pdno prdt_type_cd prdt_name std_pdno")},
        {"PDNO": "005930", "PRDT_TYPE_CD": "300"},
    ),
    f"{DQ}/search-stock-info": Case(
        "CTPF1002R",
        {"output": record("pdno prdt_type_cd prdt_name lstg_stqt")},
        {"PDNO": "005930", "PRDT_TYPE_CD": "300"},
    ),
    f"{DQ}/chk-holiday": Case(
        "CTCA0903R",
        CTX | {"output": rows("bass_dt wday_dvsn_cd bzdy_yn tr_day_yn opnd_yn sttl_day_yn")},
        {"BASS_DT": "20260105", "CTX_AREA_FK": "", "CTX_AREA_NK": ""},
    ),
    f"{OQ}/price": Case("HHDFS00000300", {"output": record("rsym zdiv base last sign diff rate tvol")}, US),
    f"{OQ}/dailyprice": Case(
        "HHDFS76240000",
        {"output1": record("rsym zdiv nrec"), "output2": rows("xymd clos open high low tvol")},
        US | {"GUBN": "0", "BYMD": "", "MODP": "1"},
    ),
    f"{OQ}/price-detail": Case("HHDFS76200200", {"output": record("rsym last open high low tvol perx e_hogau")}, US),
    f"{OQ}/inquire-asking-price": Case(
        "HHDFS76200100",
        {"output1": record("rsym last"), "output2": record("pask1 pbid1 vask1 vbid1"), "output3": record("")},
        US,
    ),
    f"{OQ}/inquire-time-itemchartprice": Case(
        "HHDFS76950200",
        {"output1": record("rsym nrec"), "output2": rows("xymd xhms open high low last evol")},
        US | {"NMIN": "1", "PINC": "1", "NEXT": "", "NREC": "120", "FILL": "", "KEYB": ""},
    ),
    f"{OQ}/search-info": Case(
        "CTPF1702R",
        {"output": record("std_pdno ovrs_item_name ovrs_excg_cd natn_cd")},
        {"PDNO": "AAPL", "PRDT_TYPE_CD": "512"},
    ),
    f"{OVERSEAS}/quotations/countries-holiday": Case(
        "CTOS5011R",
        CTX | {"output": rows("prdt_type_cd tr_natn_cd tr_mket_cd acpl_sttl_dt dmst_sttl_dt")},
        {"TRAD_DT": "20260105", "CTX_AREA_FK": "", "CTX_AREA_NK": ""},
    ),
    f"{OT}/order": Case("TTTT1002U TTTT1006U VTTT1002U VTTT1001U VTTT1006U", ORDER_OUTPUT, body=us_order),
    f"{OT}/order-rvsecncl": Case("TTTT1004U VTTT1004U", ORDER_OUTPUT, body=us_cancel),
    f"{OT}/inquire-nccs": Case(
        "TTTS3018R VTTS3018R",
        CTX200
        | {"output": rows("ord_dt odno orgn_odno pdno sll_buy_dvsn_cd ft_ord_qty ft_ord_unpr3 ft_ccld_qty nccs_qty")},
        {"OVRS_EXCG_CD": "NASD", "SORT_SQN": "DS", "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""},
        account=True,
    ),
    f"{OT}/inquire-psamount": Case(
        "TTTS3007R VTTS3007R",
        {"output": record("tr_crcy_cd ord_psbl_frcr_amt max_ord_psbl_qty ovrs_max_ord_psbl_qty exrt")},
        {"OVRS_EXCG_CD": "NASD", "OVRS_ORD_UNPR": "190.00", "ITEM_CD": "AAPL"},
        account=True,
    ),
    f"{OT}/inquire-balance": Case(
        "TTTS3012R VTTS3012R",
        CTX200
        | {
            "output1": rows("ovrs_pdno ovrs_item_name ovrs_cblc_qty ord_psbl_qty pchs_avg_pric now_pric2 ovrs_excg_cd"),
            "output2": record("frcr_pchs_amt1 ovrs_rlzt_pfls_amt tot_evlu_pfls_amt tot_pftrt"),
        },
        {"OVRS_EXCG_CD": "NASD", "TR_CRCY_CD": "USD", "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""},
        account=True,
    ),
    f"{OT}/inquire-present-balance": Case(
        "CTRP6504R VTRP6504R",
        {
            "output1": rows("pdno prdt_name cblc_qty13 ord_psbl_qty1 avg_unpr3 ovrs_now_pric1 frcr_evlu_amt2"),
            "output2": rows("crcy_cd frcr_dncl_amt_2 frst_bltn_exrt frcr_drwg_psbl_amt_1"),
            "output3": record("pchs_amt_smtl evlu_amt_smtl tot_asst_amt frcr_use_psbl_amt"),
        },
        {"WCRC_FRCR_DVSN_CD": "02", "NATN_CD": "840", "TR_MKET_CD": "00", "INQR_DVSN_CD": "00"},
        account=True,
    ),
    f"{OT}/inquire-ccnl": Case(
        "TTTS3035R VTTS3035R",
        CTX200
        | {"output": rows("ord_dt odno orgn_odno pdno sll_buy_dvsn_cd ft_ord_qty ft_ccld_qty ft_ccld_unpr3 nccs_qty")},
        {"PDNO": "%", "ORD_STRT_DT": "20000101", "ORD_END_DT": "20991231", "SLL_BUY_DVSN": "00", "CCLD_NCCS_DVSN": "00"}
        | {"OVRS_EXCG_CD": "%", "SORT_SQN": "DS", "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""},
        account=True,
    ),
    f"{OT}/inquire-period-profit": Case(
        "TTTS3039R",
        CTX200
        | {
            "output1": rows("trad_day ovrs_pdno slcl_qty pchs_avg_pric avg_sll_unpr ovrs_rlzt_pfls_amt pftrt"),
            "output2": record("stck_sll_amt_smtl stck_buy_amt_smtl ovrs_rlzt_pfls_tot_amt tot_pftrt"),
        },
        WIDE | {"OVRS_EXCG_CD": "NASD", "NATN_CD": "", "CRCY_CD": "", "PDNO": "", "WCRC_FRCR_DVSN_CD": "01"},
        account=True,
    ),
}

ROUTES = {path: (method, tr_table) for path, method, tr_table, _ in kis_table()}
# (path, method, tr_id, action, domain it is served on)
SERVED = [
    (path, method, tr_id, spec.action, domain)
    for path, (method, tr_table) in ROUTES.items()
    for tr_id, spec in tr_table.items()
    for domain in (("real", "virtual") if tr_id in SHARED_TR_IDS else ("virtual" if spec.virtual else "real",))
]
OTHER_DOMAIN = [
    (path, method, tr_id, "real" if domain == "virtual" else "virtual")
    for path, method, tr_id, _, domain in SERVED
    if tr_id not in SHARED_TR_IDS
]
REFUSAL = {"virtual": "모의투자 TR 이 아닙니다.", "real": "실전투자 TR 이 아닙니다."}


def test_cases_when_compared_with_route_table_then_every_route_and_tr_id_has_one() -> None:
    """A route or tr_id added to the simulator without a case here fails (and a stale case too)."""
    routed = {path: sorted(tr_table) for path, (_, tr_table) in ROUTES.items()}
    covered = {path: sorted(case.tr_ids.split()) for path, case in CASES.items()}
    assert routed == covered
    assert all((case.body is not None) == (ROUTES[path][0] == "POST") for path, case in CASES.items())


def seed(server: SimServer, kis: Kis) -> Kis:
    """Holdings, fills on both sides and open orders in both markets, so every list has rows."""
    server.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    server.admin("/admin/price", {"ticker": "AAPL", "price": "190.00", "market": "US"})
    assert kis.order_cash("buy", "005930", 100, ord_dvsn="01").json()["rt_cd"] == "0"
    assert kis.order_cash("sell", "005930", 3, ord_dvsn="01").json()["rt_cd"] == "0"
    assert kis.order_cash("buy", "005930", 1, "60000").json()["rt_cd"] == "0"
    assert kis.us_order(kis.tr("TTTT1002U"), "AAPL", 100, "190.00").json()["rt_cd"] == "0"
    sell = "VTTT1001U" if kis.virtual else "TTTT1006U"
    assert kis.us_order(sell, "AAPL", 2, "190.00").json()["rt_cd"] == "0"
    assert kis.us_order(kis.tr("TTTT1002U"), "AAPL", 1, "150.00").json()["rt_cd"] == "0"
    return kis


@pytest.fixture(scope="module")
def accounts(real_server: SimServer, virtual_server: SimServer) -> Iterator[dict[str, Kis]]:
    clients = {
        "real": seed(real_server, Kis(real_server).login()),
        "virtual": seed(virtual_server, Kis(virtual_server).login()),
    }
    yield clients
    for client in clients.values():
        client.close()


def call(kis: Kis, path: str, method: str, tr_id: str, action: str) -> Any:
    case = CASES[path]
    if method == "POST":
        assert case.body is not None
        return kis.post(path, tr_id, case.body(kis, action))
    return kis.get(path, tr_id, (kis.acct if case.account else {}) | case.params)


def check_shape(body: dict[str, Any], outputs: dict[str, Shape]) -> None:
    assert set(body) == ENVELOPE | set(outputs), sorted(body)
    for key, (kind, columns) in outputs.items():
        value = body[key]
        if kind == "text":
            assert isinstance(value, str)
            continue
        if kind == "rows":
            assert isinstance(value, list), key
            assert value, f"{key}: no rows"
            assert all(set(columns) <= set(row) for row in value), (key, sorted(value[0]))
        else:
            assert isinstance(value, dict), key
            assert set(columns) <= set(value), (key, sorted(value))


@pytest.mark.parametrize(
    ("path", "method", "tr_id", "action", "domain"), SERVED, ids=[f"{s[4]}:{s[2]}:{s[0]}" for s in SERVED]
)
def test_endpoint_when_called_with_its_tr_id_then_kis_envelope_and_columns(
    accounts: dict[str, Kis], path: str, method: str, tr_id: str, action: str, domain: str
) -> None:
    body = ok(call(accounts[domain], path, method, tr_id, action), tr_id)
    check_shape(body, CASES[path].outputs)


@pytest.mark.parametrize(
    ("path", "method", "tr_id", "domain"), OTHER_DOMAIN, ids=[f"{s[3]}:{s[2]}:{s[0]}" for s in OTHER_DOMAIN]
)
def test_endpoint_when_tr_id_of_other_domain_then_kis_refusal(
    accounts: dict[str, Kis], path: str, method: str, tr_id: str, domain: str
) -> None:
    kis = accounts[domain]
    response = kis.post(path, tr_id, kis.acct) if method == "POST" else kis.get(path, tr_id, kis.acct)
    assert response.status_code == 500
    assert response.json() == {"rt_cd": "1", "msg_cd": "EGW00213", "msg1": REFUSAL[domain]}
    assert response.headers["tr_id"] == tr_id


NOT_SERVED = [
    (f"{DT}/inquire-credit-psamount", "TTTC8909R"),
    (f"{DT}/order-resv", "CTSC0008U"),
    (f"{DQ}/inquire-member", "FHKST01010600"),
    (f"{OQ}/inquire-search", "HHDFS76410000"),
    (f"{OT}/inquire-paymt-stdr-balance", "CTRP6010R"),
    ("/uapi/domestic-futureoption/v1/quotations/inquire-price", "FHMIF10000000"),
    ("/no/such/path", "TTTC8434R"),
]


@pytest.mark.parametrize(("path", "tr_id"), NOT_SERVED)
def test_path_when_not_served_then_kis_error_envelope_404(accounts: dict[str, Kis], path: str, tr_id: str) -> None:
    assert path not in ROUTES
    for kis in accounts.values():
        response = kis.get(path, tr_id, kis.acct)
        assert response.status_code == 404
        assert response.json() == {"rt_cd": "1", "msg_cd": "EGW00202", "msg1": "GW라우팅 중 오류가 발생했습니다."}
        assert response.headers["tr_id"] == tr_id
        assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_served_path_when_tr_id_unknown_there_then_kis_gateway_error(accounts: dict[str, Kis], path: str) -> None:
    kis = accounts["real"]
    tr_id = "FHKST99999999"
    response = kis.post(path, tr_id, kis.acct) if ROUTES[path][0] == "POST" else kis.get(path, tr_id, kis.acct)
    assert response.status_code == 500
    assert response.json() == {"rt_cd": "1", "msg_cd": "EGW00202", "msg1": "GW라우팅 중 오류가 발생했습니다."}
