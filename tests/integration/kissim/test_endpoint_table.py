"""Walks every inquiry the simulator serves, on both domains, with KIS's headers: each answers in
KIS's envelope with string values under its real tr_id, and under its virtual tr_id where KIS offers
the call there (elsewhere the real tr_id is refused as KIS refuses it). Pins every tr_id."""

from __future__ import annotations

import pytest

from .helpers import DOMESTIC, OVERSEAS, Kis
from .test_market_data import ok

DQ = f"{DOMESTIC}/quotations"
DT = f"{DOMESTIC}/trading"
OQ = "/uapi/overseas-price/v1/quotations"
OT = f"{OVERSEAS}/trading"
KRX = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
US = {"AUTH": "", "EXCD": "NAS", "SYMB": "AAPL"}
ACCOUNT = "account"  # placeholder: the client's CANO and ACNT_PRDT_CD

# (path, real tr_id, virtual tr_id or None when KIS serves the call on the real domain only, params)
TABLE: list[tuple[str, str, str | None, dict[str, str]]] = [
    (f"{DQ}/inquire-price", "FHKST01010100", "FHKST01010100", KRX),
    (f"{DQ}/inquire-asking-price-exp-ccn", "FHKST01010200", "FHKST01010200", KRX),
    (f"{DQ}/inquire-ccnl", "FHKST01010300", "FHKST01010300", KRX),
    (f"{DQ}/inquire-daily-price", "FHKST01010400", "FHKST01010400", KRX | {"FID_PERIOD_DIV_CODE": "D"}),
    (
        f"{DQ}/inquire-daily-itemchartprice",
        "FHKST03010100",
        "FHKST03010100",
        KRX | {"FID_INPUT_DATE_1": "20250101", "FID_INPUT_DATE_2": "20991231", "FID_PERIOD_DIV_CODE": "D"},
    ),
    (f"{DQ}/inquire-time-itemchartprice", "FHKST03010200", "FHKST03010200", KRX | {"FID_INPUT_HOUR_1": ""}),
    (f"{DQ}/search-info", "CTPF1604R", None, {"PDNO": "005930", "PRDT_TYPE_CD": "300"}),
    (f"{DQ}/search-stock-info", "CTPF1002R", None, {"PDNO": "005930", "PRDT_TYPE_CD": "300"}),
    (f"{DQ}/chk-holiday", "CTCA0903R", None, {"BASS_DT": "20260105", "CTX_AREA_FK": "", "CTX_AREA_NK": ""}),
    (f"{DT}/inquire-psbl-rvsecncl", "TTTC0084R", None, {ACCOUNT: "", "INQR_DVSN_1": "0", "INQR_DVSN_2": "0"}),
    (f"{DT}/inquire-psbl-rvsecncl", "TTTC8036R", None, {ACCOUNT: "", "INQR_DVSN_1": "0", "INQR_DVSN_2": "0"}),
    (f"{DT}/inquire-psbl-sell", "TTTC8408R", None, {ACCOUNT: "", "PDNO": "005930"}),
    (f"{DT}/inquire-balance", "TTTC8434R", "VTTC8434R", {ACCOUNT: "", "INQR_DVSN": "02"}),
    (
        f"{DT}/inquire-psbl-order",
        "TTTC8908R",
        "VTTC8908R",
        {ACCOUNT: "", "PDNO": "005930", "ORD_UNPR": "70000", "ORD_DVSN": "00"},
    ),
    (
        f"{DT}/inquire-daily-ccld",
        "TTTC0081R",
        "VTTC0081R",
        {ACCOUNT: "", "INQR_STRT_DT": "20250101", "INQR_END_DT": "20991231"},
    ),
    (f"{OQ}/price", "HHDFS00000300", "HHDFS00000300", US),
    (f"{OQ}/dailyprice", "HHDFS76240000", "HHDFS76240000", US | {"GUBN": "0", "BYMD": "", "MODP": "1"}),
    (f"{OQ}/price-detail", "HHDFS76200200", None, US),
    (f"{OQ}/inquire-asking-price", "HHDFS76200100", None, US),
    (f"{OQ}/inquire-time-itemchartprice", "HHDFS76950200", None, US | {"NMIN": "1", "NREC": "120"}),
    (f"{OQ}/search-info", "CTPF1702R", None, {"PDNO": "AAPL", "PRDT_TYPE_CD": "512"}),
    (f"{OVERSEAS}/quotations/countries-holiday", "CTOS5011R", None, {"TRAD_DT": "20260105"}),
    (f"{OT}/inquire-nccs", "TTTS3018R", "VTTS3018R", {ACCOUNT: "", "OVRS_EXCG_CD": "NASD", "SORT_SQN": "DS"}),
    (
        f"{OT}/inquire-psamount",
        "TTTS3007R",
        "VTTS3007R",
        {ACCOUNT: "", "OVRS_EXCG_CD": "NASD", "OVRS_ORD_UNPR": "190.00", "ITEM_CD": "AAPL"},
    ),
    (f"{OT}/inquire-balance", "TTTS3012R", "VTTS3012R", {ACCOUNT: "", "OVRS_EXCG_CD": "NASD", "TR_CRCY_CD": "USD"}),
    (
        f"{OT}/inquire-present-balance",
        "CTRP6504R",
        "VTRP6504R",
        {ACCOUNT: "", "WCRC_FRCR_DVSN_CD": "02", "NATN_CD": "840", "TR_MKET_CD": "00", "INQR_DVSN_CD": "00"},
    ),
    (
        f"{OT}/inquire-ccnl",
        "TTTS3035R",
        "VTTS3035R",
        {ACCOUNT: "", "PDNO": "%", "ORD_STRT_DT": "20250101", "ORD_END_DT": "20991231", "SLL_BUY_DVSN": "00"},
    ),
]


def params_for(kis: Kis, params: dict[str, str]) -> dict[str, str]:
    if ACCOUNT not in params:
        return params
    return kis.acct | {k: v for k, v in params.items() if k != ACCOUNT}


@pytest.mark.parametrize(("path", "tr_id", "virtual_tr_id", "params"), TABLE, ids=[f"{r[0]}:{r[1]}" for r in TABLE])
def test_endpoint_when_real_then_kis_envelope_and_strings(
    real: Kis, path: str, tr_id: str, virtual_tr_id: str | None, params: dict[str, str]
) -> None:
    ok(real.get(path, tr_id, params_for(real, params)), tr_id)


@pytest.mark.parametrize(("path", "tr_id", "virtual_tr_id", "params"), TABLE, ids=[f"{r[0]}:{r[1]}" for r in TABLE])
def test_endpoint_when_virtual_then_virtual_tr_id_or_kis_refusal(
    virtual: Kis, path: str, tr_id: str, virtual_tr_id: str | None, params: dict[str, str]
) -> None:
    if virtual_tr_id is not None:
        ok(virtual.get(path, virtual_tr_id, params_for(virtual, params)), virtual_tr_id)
        return
    refused = virtual.get(path, tr_id, params_for(virtual, params))
    assert refused.status_code == 500
    assert refused.json() == {"rt_cd": "1", "msg_cd": "EGW00213", "msg1": "모의투자 TR 이 아닙니다."}
    assert refused.headers["tr_id"] == tr_id
