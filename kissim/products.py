"""Product information and calendars: ``search-info`` (CTPF1604R), ``search-stock-info`` (CTPF1002R),
overseas ``search-info`` (CTPF1702R), the KRX calendar ``chk-holiday`` (CTCA0903R) and the overseas
settlement calendar ``countries-holiday`` (CTOS5011R). Real domain only, as at KIS.

Field lists follow KIS's official samples; values the simulator has no notion of (listing dates,
capital, risk grades) are fixed plausible strings.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any

from starlette.responses import Response

from kissim import protocol as p
from kissim.fmt import fixed, names, ymd
from kissim.gateway import Call
from kissim.history import is_trading_day
from kissim.market import Family, family_of, instrument_name
from kissim.marketdata import today
from kissim.paging import page
from kissim.protocol import KST, KisError, Messages

# PRDT_TYPE_CD: 300 KRX stock, 512 NASDAQ, 513 NYSE, 529 AMEX (KIS's product type codes).
US_PRODUCT_TYPES = {
    "512": ("NASD", "나스닥", "NASDAQ"),
    "513": ("NYSE", "뉴욕", "NYSE"),
    "529": ("AMEX", "아멕스", "AMEX"),
}
KRX_PRODUCT_TYPES = frozenset({"300", "301", "302"})
NO_DATA = p.Msg("KIOK0560", "조회할 내용이 없습니다")  # rt_cd "7"; code UNCERTAIN


def _isin_check_digit(body: str) -> str:
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if i % 2 == 0 else 1)
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


def isin(family: Family, ticker: str) -> str:
    """A well-formed ISIN: KR7 + code + 00 for KRX (as KRX numbers common stock), a hashed one for US."""
    digits = str(int(hashlib.sha256(ticker.encode()).hexdigest(), 16))[:9]
    body = f"KR7{ticker}00" if family == "KRX" else "US" + digits
    return body + _isin_check_digit(body)


def _no_data() -> KisError:
    return KisError(NO_DATA, rt_cd="7")


def _ok(call: Call, output: Any) -> Response:
    return p.json_response(p.ok_body(Messages.INQUIRY_DONE, output=output), tr_id=call.tr_id)


async def search_info(call: Call) -> Response:
    """CTPF1604R: basic product information for a KRX code (type 300) or a US symbol (512/513/529)."""
    code = call.field("PDNO").upper()
    kind = call.field("PRDT_TYPE_CD")
    if kind in KRX_PRODUCT_TYPES and family_of(code) == "KRX":
        family: Family = "KRX"
        name = instrument_name("KRX", code)
        english = f"SIM {code}"
        classification = ("101210", "보통주")
    elif kind in US_PRODUCT_TYPES and family_of(code) == "US":
        family = "US"
        name = english = instrument_name("US", code)
        classification = ("101210", "보통주")
    else:
        raise _no_data()
    output = {
        "pdno": code if family == "US" else f"00000A{code}",
        "prdt_type_cd": kind,
        "prdt_name": name,
        "prdt_name120": name,
        "prdt_abrv_name": name,
        "prdt_eng_name": english,
        "prdt_eng_name120": english,
        "prdt_eng_abrv_name": english,
        "std_pdno": isin(family, code),
        "shtn_pdno": code,
        "prdt_sale_stat_cd": "",
        "prdt_risk_grad_cd": "",
        "prdt_clsf_cd": classification[0],
        "prdt_clsf_name": classification[1],
        "sale_strt_dt": "",
        "sale_end_dt": "",
        "wrap_asst_type_cd": "",
        "ivst_prdt_type_cd": "",
        "ivst_prdt_type_cd_name": "",
        "frst_erlm_dt": "20000101",
    }
    return _ok(call, output)


STOCK_INFO_FIELDS = names(
    "pdno prdt_type_cd prdt_name prdt_name120 prdt_abrv_name prdt_eng_name prdt_eng_name120 prdt_eng_abrv_name "
    "mket_id_cd scty_grp_id_cd excg_dvsn_cd setl_mmdd lstg_stqt lstg_cptl_amt cpta papr issu_pric kospi200_item_yn "
    "scts_mket_lstg_dt scts_mket_lstg_abol_dt kosdaq_mket_lstg_dt kosdaq_mket_lstg_abol_dt frbd_mket_lstg_dt "
    "frbd_mket_lstg_abol_dt reits_kind_cd etf_dvsn_cd oilf_fund_yn idx_bztp_lcls_cd idx_bztp_mcls_cd "
    "idx_bztp_scls_cd idx_bztp_lcls_cd_name idx_bztp_mcls_cd_name idx_bztp_scls_cd_name stck_kind_cd mfnd_opng_dt "
    "mfnd_end_dt dpsi_erlm_cncl_dt etf_cu_qty std_pdno dpsi_aptm_erlm_yn etf_txtn_type_cd etf_type_cd lstg_abol_dt "
    "nwst_odst_dvsn_cd sbst_pric thco_sbst_pric thco_sbst_pric_chng_dt tr_stop_yn admn_item_yn thdt_clpr bfdy_clpr "
    "clpr_chng_dt std_idst_clsf_cd std_idst_clsf_cd_name ocr_no crfd_item_yn elec_scty_yn issu_istt_cd "
    "etf_chas_erng_rt_dbnb etf_etn_ivst_heed_item_yn stln_int_rt_dvsn_cd frnr_psnl_lmt_rt lstg_rqsr_issu_istt_cd "
    "lstg_rqsr_item_cd trst_istt_issu_istt_cd cptt_trad_tr_psbl_yn nxt_tr_stop_yn"
)


async def search_stock_info(call: Call) -> Response:
    """CTPF1002R: stock details of a KRX code (type 300)."""
    code = call.field("PDNO")
    if call.field("PRDT_TYPE_CD") not in KRX_PRODUCT_TYPES or family_of(code) != "KRX":
        raise _no_data()
    quote = call.sim.prices.quote("KRX", code)
    name = instrument_name("KRX", code)
    known = {
        "pdno": f"00000A{code}",
        "prdt_type_cd": "300",
        "prdt_name": name,
        "prdt_name120": name,
        "prdt_abrv_name": name,
        "prdt_eng_name": f"SIM {code}",
        "prdt_eng_name120": f"SIM {code}",
        "prdt_eng_abrv_name": f"SIM {code}",
        "mket_id_cd": "STK",
        "scty_grp_id_cd": "ST",
        "excg_dvsn_cd": "02",
        "setl_mmdd": "12",
        "lstg_stqt": "100000000",
        "lstg_cptl_amt": "0",
        "cpta": "0",
        "papr": "100",
        "issu_pric": "100",
        "kospi200_item_yn": "Y" if code in ("005930", "000660", "005380", "035420") else "N",
        "scts_mket_lstg_dt": "20000101",
        "stck_kind_cd": "101",
        "std_pdno": isin("KRX", code),
        "sbst_pric": str(int(quote.base * 7 / 10)),
        "thco_sbst_pric": str(int(quote.base * 7 / 10)),
        "tr_stop_yn": "N",
        "admn_item_yn": "N",
        "thdt_clpr": str(quote.price),
        "bfdy_clpr": str(quote.base),
        "clpr_chng_dt": ymd(today(call, "KRX")),
        "elec_scty_yn": "Y",
        "cptt_trad_tr_psbl_yn": "N",
        "nxt_tr_stop_yn": "N",
        "frnr_psnl_lmt_rt": "0.00000000",
    }
    flags = {name for name in STOCK_INFO_FIELDS if name.endswith("_yn")}
    output = {name: known.get(name, "N" if name in flags else "") for name in STOCK_INFO_FIELDS}
    return _ok(call, output)


OVERSEAS_INFO_FIELDS = names(
    "std_pdno prdt_eng_name natn_cd natn_name tr_mket_cd tr_mket_name ovrs_excg_cd ovrs_excg_name tr_crcy_cd "
    "ovrs_papr crcy_name ovrs_stck_dvsn_cd prdt_clsf_cd prdt_clsf_name sll_unit_qty buy_unit_qty tr_unit_amt "
    "lstg_stck_num lstg_dt ovrs_stck_tr_stop_dvsn_cd lstg_abol_item_yn ovrs_stck_prdt_grp_no lstg_yn tax_levy_yn "
    "ovrs_stck_erlm_rosn_cd ovrs_stck_hist_rght_dvsn_cd chng_bf_pdno prdt_type_cd_2 ovrs_item_name sedol_no "
    "blbg_tckr_text ovrs_stck_etf_risk_drtp_cd etp_chas_erng_rt_dbnb istt_usge_isin_cd mint_svc_yn "
    "mint_svc_yn_chng_dt prdt_name lei_cd ovrs_stck_stop_rson_cd lstg_abol_dt mini_stk_tr_stat_dvsn_cd "
    "mint_frst_svc_erlm_dt mint_dcpt_trad_psbl_yn mint_fnum_trad_psbl_yn mint_cblc_cvsn_ipsb_yn ptp_item_yn "
    "ptp_item_trfx_exmt_yn ptp_item_trfx_exmt_strt_dt ptp_item_trfx_exmt_end_dt dtm_tr_psbl_yn sdrf_stop_ecls_yn "
    "sdrf_stop_ecls_erlm_dt memo_text1 ovrs_now_pric1 last_rcvg_dtime"
)


async def overseas_search_info(call: Call) -> Response:
    """CTPF1702R: overseas product information (PRDT_TYPE_CD 512 NASDAQ, 513 NYSE, 529 AMEX)."""
    symbol = call.field("PDNO").upper()
    kind = call.field("PRDT_TYPE_CD")
    market = US_PRODUCT_TYPES.get(kind)
    if market is None or family_of(symbol) != "US":
        raise _no_data()
    exchange, korean, english = market
    name = instrument_name("US", symbol)
    quote = call.sim.prices.quote("US", symbol)
    known = {
        "std_pdno": isin("US", symbol),
        "prdt_eng_name": name,
        "natn_cd": "840",
        "natn_name": "미국",
        "tr_mket_cd": {"NASD": "01", "NYSE": "02", "AMEX": "03"}[exchange],
        "tr_mket_name": korean,
        "ovrs_excg_cd": exchange,
        "ovrs_excg_name": english,
        "tr_crcy_cd": "USD",
        "ovrs_papr": "0.00000",
        "crcy_name": "미국달러",
        "ovrs_stck_dvsn_cd": "01",
        "prdt_clsf_cd": "101210",
        "prdt_clsf_name": "보통주",
        "sll_unit_qty": "1",
        "buy_unit_qty": "1",
        "tr_unit_amt": "0",
        "lstg_stck_num": "1000000000",
        "lstg_dt": "20000101",
        "ovrs_stck_tr_stop_dvsn_cd": "01",
        "lstg_yn": "Y",
        "tax_levy_yn": "N",
        "prdt_type_cd_2": kind,
        "ovrs_item_name": name,
        "blbg_tckr_text": f"{symbol} US Equity",
        "istt_usge_isin_cd": isin("US", symbol),
        "prdt_name": name,
        "dtm_tr_psbl_yn": "Y",
        "ovrs_now_pric1": fixed(quote.price, 5),
        "last_rcvg_dtime": datetime.fromtimestamp(call.sim.clock(), KST).strftime("%Y%m%d%H%M%S"),
    }
    flags = {name for name in OVERSEAS_INFO_FIELDS if name.endswith("_yn")}
    output = {name: known.get(name, "N" if name in flags else "") for name in OVERSEAS_INFO_FIELDS}
    return _ok(call, output)


CALENDAR_DAYS = 366  # rows a calendar answers in all (paged)
HOLIDAY_PAGE = 23  # UNCERTAIN: KIS's page size for chk-holiday


async def chk_holiday(call: Call) -> Response:
    """CTCA0903R: the KRX calendar from BASS_DT on, a page at a time (CTX_AREA_FK / CTX_AREA_NK)."""
    start = call.date_field("BASS_DT")
    extra = call.sim.config.krx_holidays
    rows = []
    for offset in range(CALENDAR_DAYS):
        day = start + timedelta(days=offset)
        open_day = is_trading_day("KRX", day, extra)
        rows.append(
            (
                ymd(day),
                {
                    "bass_dt": ymd(day),
                    "wday_dvsn_cd": f"{(day.isoweekday() % 7) + 1:02d}",  # 01 Sunday .. 07 Saturday
                    "bzdy_yn": "Y" if open_day else "N",
                    "tr_day_yn": "Y" if open_day else "N",
                    "opnd_yn": "Y" if open_day else "N",
                    "sttl_day_yn": "Y" if open_day else "N",
                },
            )
        )
    return page(call, rows, HOLIDAY_PAGE, f"{ymd(start)}^", 20, rows_key="output", names=("CTX_AREA_FK", "CTX_AREA_NK"))


def _next_trading_day(family: Family, day: date, extra: frozenset[date]) -> date:
    probe = day + timedelta(days=1)
    while not is_trading_day(family, probe, extra):
        probe += timedelta(days=1)
    return probe


async def countries_holiday(call: Call) -> Response:
    """CTOS5011R: settlement dates of US trades made on TRAD_DT, per market (UNCERTAIN: T+1 in New
    York, paid in Korea the next KRX business day after that)."""
    trade_day = call.date_field("TRAD_DT")
    us_extra, krx_extra = call.sim.config.us_holidays, call.sim.config.krx_holidays
    local = _next_trading_day("US", trade_day, us_extra)
    domestic = _next_trading_day("KRX", local, krx_extra)
    rows = []
    for kind, (_, korean, _) in US_PRODUCT_TYPES.items():
        rows.append(
            (
                kind,
                {
                    "prdt_type_cd": kind,
                    "tr_natn_cd": "840",
                    "natn_eng_abrv_cd": "US",
                    "tr_mket_cd": {"512": "01", "513": "02", "529": "03"}[kind],
                    "tr_mket_name": korean,
                    "acpl_sttl_dt": ymd(local),
                    "dmst_sttl_dt": ymd(domestic),
                },
            )
        )
    return page(call, rows, 100, f"{ymd(trade_day)}^", 20, rows_key="output", names=("CTX_AREA_FK", "CTX_AREA_NK"))
