"""Product information and calendars over real HTTP: search-info (which a popular client calls
before anything else), search-stock-info, overseas search-info, chk-holiday and countries-holiday."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from .helpers import DOMESTIC, Kis, SimServer, base_config
from .test_market_data import ok

QUOTES = f"{DOMESTIC}/quotations"
US_SEARCH = "/uapi/overseas-price/v1/quotations/search-info"
COUNTRIES = "/uapi/overseas-stock/v1/quotations/countries-holiday"
EXTRA_HOLIDAY = date(2026, 3, 4)  # a Wednesday the simulator is told to keep closed


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    started = SimServer(base_config(mode="real", krx_holidays=frozenset({EXTRA_HOLIDAY}))).start()
    yield started
    started.stop()


@pytest.fixture
def kis(server: SimServer) -> Iterator[Kis]:
    client = Kis(server).login()
    yield client
    client.close()


def test_search_info_when_krx_code_then_product_with_isin(kis: Kis) -> None:
    output = ok(kis.get(f"{QUOTES}/search-info", "CTPF1604R", {"PDNO": "005930", "PRDT_TYPE_CD": "300"}), "CTPF1604R")[
        "output"
    ]
    assert (output["pdno"], output["prdt_type_cd"], output["shtn_pdno"]) == ("00000A005930", "300", "005930")
    assert (output["prdt_name"], output["std_pdno"]) == ("삼성전자", "KR7005930003")  # Samsung's real ISIN
    assert {"prdt_sale_stat_cd", "prdt_risk_grad_cd", "prdt_clsf_cd", "frst_erlm_dt"} <= set(output)


def test_search_info_when_us_symbol_then_product(kis: Kis) -> None:
    output = ok(kis.get(f"{QUOTES}/search-info", "CTPF1604R", {"PDNO": "AAPL", "PRDT_TYPE_CD": "512"}), "CTPF1604R")[
        "output"
    ]
    assert (output["pdno"], output["prdt_name"], output["prdt_type_cd"]) == ("AAPL", "APPLE INC", "512")
    assert output["std_pdno"].startswith("US")
    assert len(output["std_pdno"]) == 12


def test_search_info_when_type_does_not_match_code_then_no_data_rt_cd_7(kis: Kis) -> None:
    response = kis.get(f"{QUOTES}/search-info", "CTPF1604R", {"PDNO": "005930", "PRDT_TYPE_CD": "512"})
    assert response.status_code == 200
    body = response.json()
    assert (body["rt_cd"], body["msg_cd"]) == ("7", "KIOK0560")
    assert "output" not in body


def test_search_stock_info_when_krx_code_then_every_column_and_today_s_prices(server: SimServer, kis: Kis) -> None:
    server.admin("/admin/price", {"ticker": "000660", "price": "181000"})
    params = {"PDNO": "000660", "PRDT_TYPE_CD": "300"}
    output = ok(kis.get(f"{QUOTES}/search-stock-info", "CTPF1002R", params), "CTPF1002R")["output"]
    assert len(output) == 67  # every column of the official sample's list
    assert (output["prdt_abrv_name"], output["mket_id_cd"], output["std_pdno"]) == ("SK하이닉스", "STK", "KR7000660001")
    assert (output["thdt_clpr"], output["bfdy_clpr"], output["tr_stop_yn"]) == ("181000", "180000", "N")


def test_overseas_search_info_when_nyse_symbol_then_exchange_and_price(server: SimServer, kis: Kis) -> None:
    server.admin("/admin/price", {"ticker": "IBM", "price": "221.00", "market": "US"})
    params = {"PRDT_TYPE_CD": "513", "PDNO": "IBM"}
    output = ok(kis.get(US_SEARCH, "CTPF1702R", params), "CTPF1702R")["output"]
    assert (output["ovrs_excg_cd"], output["natn_cd"], output["tr_crcy_cd"]) == ("NYSE", "840", "USD")
    assert (output["prdt_eng_name"], output["ovrs_now_pric1"]) == ("INTL BUSINESS MACHINES", "221.00000")
    assert len(output) == 55  # every column of the official sample's list


def test_product_info_when_wrong_tr_id_then_gateway_error(kis: Kis) -> None:
    response = kis.get(US_SEARCH, "CTPF1604R", {"PRDT_TYPE_CD": "512", "PDNO": "AAPL"})
    assert response.status_code == 500
    assert (response.json()["rt_cd"], response.json()["msg_cd"]) == ("1", "EGW00202")


def test_product_info_when_virtual_then_not_offered(virtual: Kis) -> None:
    response = virtual.get(f"{QUOTES}/search-info", "CTPF1604R", {"PDNO": "005930", "PRDT_TYPE_CD": "300"})
    assert response.status_code == 500
    assert response.json()["msg1"] == "모의투자 TR 이 아닙니다."


def test_chk_holiday_when_paged_then_calendar_agrees_with_exchange_and_configured_holidays(kis: Kis) -> None:
    path = f"{QUOTES}/chk-holiday"
    first = kis.get(path, "CTCA0903R", {"BASS_DT": "20251224", "CTX_AREA_FK": "", "CTX_AREA_NK": ""})
    body = ok(first, "CTCA0903R")
    assert first.headers["tr_cont"] == "M"
    days = {row["bass_dt"]: row for row in body["output"]}
    assert days["20251224"]["opnd_yn"] == "Y"
    assert days["20251225"]["opnd_yn"] == "N"  # Christmas
    assert (days["20251227"]["opnd_yn"], days["20251227"]["wday_dvsn_cd"]) == ("N", "07")  # a Saturday
    assert days["20251226"]["wday_dvsn_cd"] == "06"
    rows = list(body["output"])
    response = first
    while response.headers["tr_cont"] == "M":
        params = {"BASS_DT": "20251224", "CTX_AREA_FK": body["ctx_area_fk"], "CTX_AREA_NK": body["ctx_area_nk"]}
        response = kis.get(path, "CTCA0903R", params, tr_cont="N")
        body = response.json()
        rows += body["output"]
    dates = [row["bass_dt"] for row in rows]
    assert len(dates) == len(set(dates)) == 366
    assert dates == sorted(dates)
    extra = next(row for row in rows if row["bass_dt"] == "20260304")
    assert (extra["bzdy_yn"], extra["tr_day_yn"], extra["opnd_yn"]) == ("N", "N", "N")


def test_chk_holiday_when_bad_date_then_refused_in_envelope(kis: Kis) -> None:
    body = kis.get(f"{QUOTES}/chk-holiday", "CTCA0903R", {"BASS_DT": "2025-12-24"}).json()
    assert body["rt_cd"] == "1"
    assert "BASS_DT" in body["msg1"]


def test_countries_holiday_when_trade_before_christmas_then_settles_after_it(kis: Kis) -> None:
    params = {"TRAD_DT": "20251224", "CTX_AREA_NK": "", "CTX_AREA_FK": ""}
    rows = ok(kis.get(COUNTRIES, "CTOS5011R", params), "CTOS5011R")["output"]
    assert [row["prdt_type_cd"] for row in rows] == ["512", "513", "529"]
    assert {(row["acpl_sttl_dt"], row["dmst_sttl_dt"], row["tr_natn_cd"]) for row in rows} == {
        ("20251226", "20251229", "840")
    }
