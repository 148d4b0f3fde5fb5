"""Domestic order-cash / order-rvsecncl / inquiries over real HTTP, real and virtual domains."""

from __future__ import annotations

import re

import pytest

from .helpers import DOMESTIC, Kis, SimServer


def set_price(server: SimServer, ticker: str, price: str) -> None:
    server.admin("/admin/price", {"ticker": ticker, "price": price})


def test_market_buy_when_real_then_filled_at_current_price(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "005930", "70000")
    response = real.order_cash("buy", "005930", 10, "0", ord_dvsn="01")
    body = response.json()
    assert response.status_code == 200
    assert response.headers["tr_id"] == "TTTC0012U"
    assert (body["rt_cd"], body["msg_cd"], body["msg1"].strip()) == ("0", "APBK0013", "주문 전송 완료 되었습니다.")
    assert set(body["output"]) == {"KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"}
    assert re.fullmatch(r"\d{10}", body["output"]["ODNO"])
    assert re.fullmatch(r"\d{6}", body["output"]["ORD_TMD"])
    [order] = real.orders()
    assert (order["state"], order["filled_quantity"], order["avg_price"]) == ("filled", 10, "70000")
    assert order["odno"] == body["output"]["ODNO"]


@pytest.mark.parametrize(("side", "msg_cd"), [("buy", "40600000"), ("sell", "40590000")])
def test_order_when_virtual_then_virtual_messages(
    virtual_server: SimServer, virtual: Kis, side: str, msg_cd: str
) -> None:
    set_price(virtual_server, "000660", "180000")
    if side == "sell":
        virtual.order_cash("buy", "000660", 1, "0", ord_dvsn="01")
    body = virtual.order_cash(side, "000660", 1, "0", ord_dvsn="01", old=True).json()
    assert (body["rt_cd"], body["msg_cd"]) == ("0", msg_cd)
    assert body["output"]["KRX_FWDG_ORD_ORGNO"] == "00950"


def test_order_when_real_tr_id_on_virtual_then_http500(virtual: Kis) -> None:
    body = virtual.acct | {"PDNO": "005930", "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"}
    response = virtual.post(f"{DOMESTIC}/trading/order-cash", "TTTC0012U", body)
    assert response.status_code == 500
    assert response.json()["msg1"] == "모의투자 TR 이 아닙니다."
    assert virtual.orders() == []


def test_order_when_unsupported_ord_dvsn_then_clear_refusal(real: Kis) -> None:
    body = real.order_cash("buy", "005930", 1, "0", ord_dvsn="05").json()
    assert body["rt_cd"] == "1"
    assert "ORD_DVSN=05" in body["msg1"]
    assert real.orders()[0]["state"] == "rejected"


def test_limit_order_when_off_tick_then_refused(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "005930", "70000")
    body = real.order_cash("buy", "005930", 1, "70050").json()
    assert body["rt_cd"] == "1"
    assert body["msg1"].strip() == "호가단위 오류입니다."


def test_limit_order_when_virtual_off_tick_then_virtual_message(virtual_server: SimServer, virtual: Kis) -> None:
    set_price(virtual_server, "035720", "45000")
    body = virtual.order_cash("buy", "035720", 1, "45010").json()
    assert body["msg1"].strip() == "모의투자 주문처리가 안되었습니다(호가단위 오류)"


def test_buy_when_cash_short_then_insufficient_cash(virtual_server: SimServer, virtual: Kis) -> None:
    set_price(virtual_server, "005930", "70000")
    body = virtual.order_cash("buy", "005930", 2000, "70000").json()
    assert (body["rt_cd"], body["msg_cd"]) == ("1", "40250000")
    assert body["msg1"].strip() == "모의투자 주문가능금액이 부족합니다."


def test_market_buy_when_cash_covers_price_but_not_upper_limit_then_refused(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "005380", "200000")
    # 100,000,000 KRW buys 499 shares at 200,000 but only 384 at the 260,000 upper limit.
    assert real.order_cash("buy", "005380", 450, "0", ord_dvsn="01").json()["rt_cd"] == "1"
    assert real.order_cash("buy", "005380", 380, "0", ord_dvsn="01").json()["rt_cd"] == "0"


def test_sell_when_more_than_held_then_refused(real: Kis) -> None:
    body = real.order_cash("sell", "035420", 1, "0", ord_dvsn="01").json()
    assert body["rt_cd"] == "1"
    assert real.orders()[0]["state"] == "rejected"


def test_limit_buy_when_price_crosses_then_rests_then_fills(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "051910", "300000")
    odno = real.order_cash("buy", "051910", 3, "299000").json()["output"]["ODNO"]
    assert real.orders()[0]["state"] == "open"
    set_price(real_server, "051910", "298500")
    [order] = real.orders()
    assert (order["odno"], order["state"], order["avg_price"]) == (odno, "filled", "299000")


def test_revise_when_price_changed_then_new_odno_fills(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "068270", "180000")
    placed = real.order_cash("buy", "068270", 5, "170000").json()["output"]
    revised = real.rvsecncl(placed["ODNO"], placed["KRX_FWDG_ORD_ORGNO"], cancel=False, price="181000").json()
    assert revised["rt_cd"] == "0"
    assert revised["output"]["ODNO"] != placed["ODNO"]
    states = {o["odno"]: o["state"] for o in real.orders()}
    assert states == {placed["ODNO"]: "cancelled", revised["output"]["ODNO"]: "filled"}


def test_cancel_when_partial_then_rest_stays_open(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "105560", "80000")
    placed = real.order_cash("buy", "105560", 10, "70000").json()["output"]
    cancel = real.rvsecncl(placed["ODNO"], placed["KRX_FWDG_ORD_ORGNO"], cancel=True, quantity=4).json()
    assert cancel["rt_cd"] == "0"
    original = next(o for o in real.orders() if o["odno"] == placed["ODNO"])
    assert (original["state"], original["remaining_quantity"]) == ("open", 6)
    rest = real.rvsecncl(placed["ODNO"], placed["KRX_FWDG_ORD_ORGNO"], cancel=True).json()
    assert rest["rt_cd"] == "0"
    assert next(o for o in real.orders() if o["odno"] == placed["ODNO"])["state"] == "cancelled"


def test_cancel_when_quantity_above_remaining_then_apbk1359(real: Kis) -> None:
    placed = real.order_cash("buy", "105560", 2, "70000").json()["output"]
    body = real.rvsecncl(placed["ODNO"], placed["KRX_FWDG_ORD_ORGNO"], cancel=True, quantity=3).json()
    assert (body["rt_cd"], body["msg_cd"]) == ("7", "APBK1359")


def test_cancel_when_already_filled_then_refused(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "005930", "70000")
    placed = real.order_cash("buy", "005930", 1, "0", ord_dvsn="01").json()["output"]
    body = real.rvsecncl(placed["ODNO"], placed["KRX_FWDG_ORD_ORGNO"], cancel=True).json()
    assert body["rt_cd"] == "7"
    assert body["msg1"].strip() == "정정/취소할 수량이 없습니다."


def test_balance_when_holdings_then_kis_fields_and_virtual_pages_of_20(virtual_server: SimServer, virtual: Kis) -> None:
    tickers = [f"{100000 + i:06d}" for i in range(25)]
    for ticker in tickers:
        assert virtual.order_cash("buy", ticker, 1, "0", ord_dvsn="01").json()["rt_cd"] == "0"
    first = virtual.balance()
    body = first.json()
    assert first.headers["tr_cont"] == "M"
    assert len(body["output1"]) == 20
    assert len(body["ctx_area_nk100"]) == 100
    assert len(body["ctx_area_fk100"]) == 100
    row, totals = body["output1"][0], body["output2"][0]
    assert {"pdno", "prdt_name", "hldg_qty", "ord_psbl_qty", "pchs_avg_pric", "evlu_amt", "thdt_buyqty"} <= set(row)
    assert {"dnca_tot_amt", "prvs_rcdl_excc_amt", "tot_evlu_amt", "thdt_tlex_amt", "nass_amt"} <= set(totals)
    assert int(totals["thdt_tlex_amt"]) > 0
    second = virtual.balance("N", body["ctx_area_fk100"], body["ctx_area_nk100"])
    assert second.headers["tr_cont"] == "D"
    assert [r["pdno"] for r in body["output1"] + second.json()["output1"]] == tickers


def test_daily_ccld_when_filtered_and_paged_then_kis_rows(virtual_server: SimServer, virtual: Kis) -> None:
    set_price(virtual_server, "005930", "70000")
    odnos = [virtual.order_cash("buy", "005930", 1, "60000").json()["output"]["ODNO"] for _ in range(17)]
    filled = virtual.order_cash("buy", "005930", 2, "0", ord_dvsn="01").json()["output"]["ODNO"]
    first = virtual.daily_ccld()
    body = first.json()
    assert (first.headers["tr_cont"], len(body["output1"])) == ("M", 15)
    assert body["output1"][0]["odno"] == filled  # INQR_DVSN 00: newest first
    rest = virtual.daily_ccld("N", body["ctx_area_fk100"], body["ctx_area_nk100"]).json()["output1"]
    assert len(rest) == 3
    oldest_first = virtual.daily_ccld(INQR_DVSN="01").json()["output1"]
    assert oldest_first[0]["odno"] == odnos[0]
    only_filled = virtual.daily_ccld(CCLD_DVSN="01").json()
    [row] = only_filled["output1"]
    assert (row["odno"], row["tot_ccld_qty"], row["avg_prvs"], row["rmn_qty"], row["cncl_yn"]) == (
        filled,
        "2",
        "70000",
        "0",
        "N",
    )
    assert only_filled["output2"]["tot_ccld_amt"] == "140000"
    assert int(only_filled["output2"]["prsm_tlex_smtl"]) > 0
    assert virtual.daily_ccld(ODNO=odnos[3]).json()["output1"][0]["odno"] == odnos[3]
    assert virtual.daily_ccld(SLL_BUY_DVSN_CD="01").json()["output1"] == []


def test_psbl_order_when_priced_then_buyable_quantity(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "005930", "70000")
    params = real.acct | {"PDNO": "005930", "ORD_UNPR": "70000", "ORD_DVSN": "00"}
    params |= {"CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N"}
    body = real.get(f"{DOMESTIC}/trading/inquire-psbl-order", "TTTC8908R", params).json()
    output = body["output"]
    assert output["ord_psbl_cash"] == "100000000"
    assert output["nrcvb_buy_qty"] == "1428"  # 100,000,000 / (70,000 * 1.00015)
    assert output["psbl_qty_calc_unpr"] == "70000"


def test_inquire_price_when_known_ticker_then_quote_fields(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "005930", "71000")
    params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    response = real.get(f"{DOMESTIC}/quotations/inquire-price", "FHKST01010100", params)
    output = response.json()["output"]
    assert response.json()["rt_cd"] == "0"
    assert output["stck_prpr"] == "71000"
    assert output["aspr_unit"] == "100"
    assert (output["stck_sdpr"], output["stck_mxpr"], output["stck_llam"]) == ("70000", "91000", "49000")
    assert (output["prdy_vrss"], output["prdy_vrss_sign"], output["prdy_ctrt"]) == ("1000", "2", "1.43")
