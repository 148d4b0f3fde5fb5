"""US orders, revise/cancel, balances and quotes; the tr_id decides the side like KIS."""

from __future__ import annotations

from decimal import Decimal

from .helpers import OVERSEAS, Kis, SimServer


def set_price(server: SimServer, ticker: str, price: str) -> None:
    server.admin("/admin/price", {"ticker": ticker, "price": price, "market": "US"})


def test_buy_when_limit_above_price_then_filled_at_price(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "AAPL", "190.00")
    body = real.us_order("TTTT1002U", "AAPL", 3, "191.00").json()
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "APBK0013")
    assert set(body["output"]) == {"KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"}
    [order] = real.orders()
    assert (order["market"], order["side"], order["state"], order["avg_price"]) == ("NASD", "buy", "filled", "190")


def test_sell_fields_with_buy_tr_id_then_booked_as_buy(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "MSFT", "410.00")
    body = real.acct | {
        "OVRS_EXCG_CD": "NASD",
        "PDNO": "MSFT",
        "ORD_QTY": "1",
        "OVRS_ORD_UNPR": "409.00",
        "SLL_TYPE": "00",
        "ORD_SVR_DVSN_CD": "0",
        "ORD_DVSN": "00",
    }
    assert real.post(f"{OVERSEAS}/trading/order", "TTTT1002U", body).json()["rt_cd"] == "0"
    assert [o["side"] for o in real.orders()] == ["buy"]


def test_virtual_sell_when_vttt1001u_then_sell(virtual_server: SimServer, virtual: Kis) -> None:
    set_price(virtual_server, "NVDA", "120.00")
    assert virtual.us_order("VTTT1002U", "NVDA", 2, "121.00").json()["msg_cd"] == "40600000"
    body = virtual.us_order("VTTT1001U", "NVDA", 2, "119.00").json()
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "40590000")
    assert [(o["side"], o["state"]) for o in virtual.orders()] == [("buy", "filled"), ("sell", "filled")]


def test_order_when_market_type_code_then_refused(real: Kis) -> None:
    body = real.us_order("TTTT1002U", "AAPL", 1, "0", ord_dvsn="32").json()
    assert body["rt_cd"] == "1"
    assert real.orders()[0]["state"] == "rejected"


def test_order_when_sub_cent_price_then_refused(real: Kis) -> None:
    assert real.us_order("TTTT1002U", "AAPL", 1, "190.005").json()["rt_cd"] == "1"


def test_order_when_unknown_exchange_then_refused(real: Kis) -> None:
    assert real.us_order("TTTT1002U", "AAPL", 1, "190.00", exchange="NAS").json()["rt_cd"] == "1"


def test_revise_then_cancel_when_resting_then_new_odnos(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "TSLA", "250.00")
    placed = real.us_order("TTTT1002U", "TSLA", 4, "240.00", exchange="NASD").json()["output"]
    base = real.acct | {"OVRS_EXCG_CD": "NASD", "PDNO": "TSLA", "ORGN_ODNO": placed["ODNO"], "ORD_SVR_DVSN_CD": "0"}
    revise = base | {"RVSE_CNCL_DVSN_CD": "01", "ORD_QTY": "4", "OVRS_ORD_UNPR": "245.00"}
    revised = real.post(f"{OVERSEAS}/trading/order-rvsecncl", "TTTT1004U", revise).json()
    assert revised["rt_cd"] == "0"
    cancel = base | {"ORGN_ODNO": revised["output"]["ODNO"], "RVSE_CNCL_DVSN_CD": "02", "ORD_QTY": "4"}
    cancel |= {"OVRS_ORD_UNPR": "0"}
    assert real.post(f"{OVERSEAS}/trading/order-rvsecncl", "TTTT1004U", cancel).json()["rt_cd"] == "0"
    states = [(o["kind"], o["state"]) for o in real.orders()]
    assert states == [("new", "cancelled"), ("revise", "cancelled"), ("cancel", "cancelled")]
    usd = next(a for a in real_server.admin("/admin/accounts") if a["account"] == real.cano + "01")["usd"]
    assert (Decimal(usd["cash"]), Decimal(usd["reserved"])) == (Decimal(100000), Decimal(0))


def test_balances_when_holding_then_us_fields(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "IBM", "220.00")
    real.us_order("TTTT1002U", "IBM", 5, "220.00", exchange="NYSE")
    params = real.acct | {"OVRS_EXCG_CD": "NASD", "TR_CRCY_CD": "USD", "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}
    response = real.get(f"{OVERSEAS}/trading/inquire-balance", "TTTS3012R", params)
    body = response.json()
    assert response.headers["tr_cont"] == "D"
    assert len(body["ctx_area_fk200"]) == 200
    [row] = body["output1"]
    assert (row["ovrs_pdno"], row["ovrs_cblc_qty"], row["ovrs_excg_cd"]) == ("IBM", "5", "NYSE")
    assert {"frcr_pchs_amt1", "tot_evlu_pfls_amt", "ovrs_tot_pfls"} <= set(body["output2"])
    present = real.get(
        f"{OVERSEAS}/trading/inquire-present-balance",
        "CTRP6504R",
        real.acct | {"WCRC_FRCR_DVSN_CD": "02", "NATN_CD": "840", "TR_MKET_CD": "00", "INQR_DVSN_CD": "00"},
    ).json()
    assert present["output1"][0]["pdno"] == "IBM"
    assert present["output2"][0]["crcy_cd"] == "USD"
    assert "frcr_use_psbl_amt" in present["output3"]


def test_price_when_nas_symbol_then_rsym_and_decimals(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "AMZN", "181.25")
    params = {"AUTH": "", "EXCD": "NAS", "SYMB": "AMZN"}
    output = real.get("/uapi/overseas-price/v1/quotations/price", "HHDFS00000300", params).json()["output"]
    assert (output["rsym"], output["zdiv"], output["last"], output["base"]) == (
        "DNASAMZN",
        "4",
        "181.2500",
        "180.0000",
    )
    assert (output["sign"], output["diff"], output["rate"]) == ("2", "1.2500", "0.69")
