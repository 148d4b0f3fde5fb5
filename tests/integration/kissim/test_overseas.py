"""US orders, revise/cancel, balances and quotes; the tr_id decides the side like KIS."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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


def ccnl(kis: Kis, **params: str) -> dict[str, Any]:
    query = kis.acct | {"PDNO": "", "ORD_STRT_DT": "20000101", "ORD_END_DT": "20991231", "SLL_BUY_DVSN": "00",
                        "CCLD_NCCS_DVSN": "00", "OVRS_EXCG_CD": "", "SORT_SQN": "DS", "ORD_DT": "",
                        "ORD_GNO_BRNO": "", "ODNO": "", "CTX_AREA_NK200": "", "CTX_AREA_FK200": ""}  # fmt: skip
    query |= params
    body: dict[str, Any] = kis.get(f"{OVERSEAS}/trading/inquire-ccnl", kis.tr("TTTS3035R"), query).json()
    return body


def test_inquire_ccnl_when_orders_then_rows_with_fills_newest_first(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "QQQ", "480.00")
    filled = real.us_order("TTTT1002U", "QQQ", 2, "481.00").json()["output"]["ODNO"]
    resting = real.us_order("TTTT1002U", "QQQ", 1, "470.00").json()["output"]["ODNO"]
    body = ccnl(real)
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "KIOK0510")
    assert [r["odno"] for r in body["output"]] == [resting, filled]
    newest, oldest = body["output"]
    assert (oldest["ft_ord_qty"], oldest["ft_ccld_qty"], oldest["nccs_qty"], oldest["sll_buy_dvsn_cd"]) == (
        "2", "2", "0", "02",
    )  # fmt: skip
    assert Decimal(oldest["ft_ccld_unpr3"]) == Decimal(480)
    assert Decimal(oldest["ft_ccld_amt3"]) == Decimal(960)
    assert (newest["ft_ccld_qty"], newest["nccs_qty"], newest["ovrs_excg_cd"]) == ("0", "1", "NASD")
    assert len(newest["dmst_ord_dt"]) == len(newest["thco_ord_tmd"]) + 2 == 8
    assert [r["odno"] for r in ccnl(real, SORT_SQN="AS")["output"]] == [filled, resting]
    assert [r["odno"] for r in ccnl(real, CCLD_NCCS_DVSN="02")["output"]] == [resting]


def test_inquire_ccnl_when_virtual_then_vtts3035r_and_paging(virtual_server: SimServer, virtual: Kis) -> None:
    set_price(virtual_server, "SPY", "550.00")
    for _ in range(16):
        assert virtual.us_order("VTTT1002U", "SPY", 1, "540.00").json()["rt_cd"] == "0"
    first = virtual.get(f"{OVERSEAS}/trading/inquire-ccnl", "VTTS3035R", virtual.acct | {"SORT_SQN": "DS"})
    assert (first.status_code, first.headers["tr_cont"]) == (200, "M")
    page = first.json()
    assert len(page["output"]) == 15
    params = virtual.acct | {"CTX_AREA_FK200": page["ctx_area_fk200"], "CTX_AREA_NK200": page["ctx_area_nk200"]}
    rest = virtual.get(f"{OVERSEAS}/trading/inquire-ccnl", "VTTS3035R", params, tr_cont="N")
    assert (rest.headers["tr_cont"], len(rest.json()["output"])) == ("D", 1)
    wrong = virtual.get(f"{OVERSEAS}/trading/inquire-ccnl", "TTTS3035R", virtual.acct)
    assert wrong.status_code == 500
