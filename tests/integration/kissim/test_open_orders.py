"""What a careful client asks before it revises, sells or buys: revisable domestic orders, the
sellable quantity, open US orders and the US buyable amount, over real HTTP, agreeing with the
simulator's orders and holdings."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from .helpers import DOMESTIC, OVERSEAS, Kis, SimServer
from .test_market_data import ok

RVSECNCL = f"{DOMESTIC}/trading/inquire-psbl-rvsecncl"
PSBL_SELL = f"{DOMESTIC}/trading/inquire-psbl-sell"
NCCS = f"{OVERSEAS}/trading/inquire-nccs"
PSAMOUNT = f"{OVERSEAS}/trading/inquire-psamount"


def set_price(server: SimServer, ticker: str, price: str, market: str = "KRX") -> None:
    server.admin("/admin/price", {"ticker": ticker, "price": price, "market": market})


def revisable(kis: Kis, tr_cont: str = "", fk: str = "", nk: str = "", **filters: str) -> Any:
    params = kis.acct | {"INQR_DVSN_1": "0", "INQR_DVSN_2": "0", "CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk}
    return kis.get(RVSECNCL, "TTTC0084R", params | filters, tr_cont)


def sellable(kis: Kis, ticker: str) -> dict[str, str]:
    output: dict[str, str] = ok(kis.get(PSBL_SELL, "TTTC8408R", kis.acct | {"PDNO": ticker}), "TTTC8408R")["output"]
    return output


def open_us(kis: Kis, tr_id: str = "TTTS3018R", exchange: str = "NASD") -> list[dict[str, str]]:
    params = kis.acct | {"OVRS_EXCG_CD": exchange, "SORT_SQN": "DS", "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}
    rows: list[dict[str, str]] = ok(kis.get(NCCS, tr_id, params), tr_id)["output"]
    return rows


def buyable(kis: Kis, ticker: str, price: str, tr_id: str = "TTTS3007R") -> dict[str, str]:
    params = kis.acct | {"OVRS_EXCG_CD": "NASD", "OVRS_ORD_UNPR": price, "ITEM_CD": ticker}
    output: dict[str, str] = ok(kis.get(PSAMOUNT, tr_id, params), tr_id)["output"]
    return output


def test_revisable_when_limit_rests_then_listed_revised_then_cancelled_then_gone(
    real_server: SimServer, real: Kis
) -> None:
    set_price(real_server, "005380", "200000")
    placed = real.order_cash("buy", "005380", 5, "190000").json()["output"]
    [row] = ok(revisable(real), "TTTC0084R")["output"]
    old_params = real.acct | {"INQR_DVSN_1": "0", "INQR_DVSN_2": "0", "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    assert ok(real.get(RVSECNCL, "TTTC8036R", old_params), "TTTC8036R")["output"] == [row]  # the older tr_id
    assert (row["odno"], row["ord_gno_brno"], row["pdno"], row["prdt_name"]) == (
        placed["ODNO"],
        placed["KRX_FWDG_ORD_ORGNO"],
        "005380",
        "현대차",
    )
    assert (row["ord_qty"], row["psbl_qty"], row["ord_unpr"], row["sll_buy_dvsn_cd"]) == ("5", "5", "190000", "02")
    assert (row["ord_dvsn_cd"], row["tot_ccld_qty"], row["orgn_odno"], row["ord_tmd"]) == (
        "00",
        "0",
        "",
        placed["ORD_TMD"],
    )

    revised = real.rvsecncl(placed["ODNO"], placed["KRX_FWDG_ORD_ORGNO"], cancel=False, price="191000").json()
    assert revised["rt_cd"] == "0"
    [row] = revisable(real).json()["output"]
    assert (row["odno"], row["orgn_odno"], row["ord_unpr"], row["psbl_qty"]) == (
        revised["output"]["ODNO"],
        placed["ODNO"],
        "191000",
        "5",
    )

    assert real.rvsecncl(row["odno"], row["ord_gno_brno"], cancel=True).json()["rt_cd"] == "0"
    assert revisable(real).json()["output"] == []


def test_revisable_when_partly_cancelled_or_filled_then_psbl_qty_is_what_remains(
    real_server: SimServer, real: Kis
) -> None:
    set_price(real_server, "035420", "190000")
    placed = real.order_cash("sell", "035420", 0, "0")  # nothing held: refused, never listed
    assert placed.json()["rt_cd"] != "0"
    assert real.order_cash("buy", "035420", 10, "0", ord_dvsn="01").json()["rt_cd"] == "0"  # filled: not listed
    resting = real.order_cash("sell", "035420", 10, "200000").json()["output"]
    assert real.rvsecncl(resting["ODNO"], resting["KRX_FWDG_ORD_ORGNO"], cancel=True, quantity=4).json()["rt_cd"] == "0"
    [row] = revisable(real).json()["output"]
    assert (row["odno"], row["ord_qty"], row["psbl_qty"], row["sll_buy_dvsn_cd"]) == (resting["ODNO"], "10", "6", "01")
    assert revisable(real, INQR_DVSN_2="2").json()["output"] == []  # buys only
    assert len(revisable(real, INQR_DVSN_2="1").json()["output"]) == 1  # sells only


def test_revisable_when_more_than_50_then_pages_with_tr_cont(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "000660", "180000")
    odnos = [real.order_cash("buy", "000660", 1, "150000").json()["output"]["ODNO"] for _ in range(52)]
    first = revisable(real)
    body = first.json()
    assert (first.headers["tr_cont"], len(body["output"]), body["msg_cd"]) == ("M", 50, "KIOK0500")
    assert (len(body["ctx_area_fk100"]), len(body["ctx_area_nk100"])) == (100, 100)
    second = revisable(real, "N", body["ctx_area_fk100"], body["ctx_area_nk100"])
    assert second.headers["tr_cont"] == "D"
    listed = [row["odno"] for row in body["output"] + second.json()["output"]]
    assert listed == odnos[::-1]  # INQR_DVSN_1 0: by order, newest first


def test_revisable_and_sellable_when_virtual_then_not_offered(virtual: Kis) -> None:
    """KIS offers both on the real domain only: the real tr_id is refused, a V-tr_id is unknown."""
    for path, tr_id in ((RVSECNCL, "TTTC0084R"), (PSBL_SELL, "TTTC8408R")):
        params = virtual.acct | {"PDNO": "005930", "INQR_DVSN_1": "0", "INQR_DVSN_2": "0"}
        refused = virtual.get(path, tr_id, params)
        assert refused.status_code == 500
        assert refused.json()["msg1"] == "모의투자 TR 이 아닙니다."
        unknown = virtual.get(path, "V" + tr_id[1:], params)
        assert (unknown.status_code, unknown.json()["rt_cd"], unknown.json()["msg_cd"]) == (500, "1", "EGW00202")


def test_sellable_when_bought_then_holding_less_resting_sells(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "373220", "350000")
    assert sellable(real, "373220")["ord_psbl_qty"] == "0"
    assert real.order_cash("buy", "373220", 12, "0", ord_dvsn="01").json()["rt_cd"] == "0"
    output = sellable(real, "373220")
    assert (output["pdno"], output["cblc_qty"], output["ord_psbl_qty"], output["buy_qty"]) == (
        "373220",
        "12",
        "12",
        "12",
    )
    assert (output["pchs_avg_pric"], output["pchs_amt"], output["now_pric"], output["evlu_amt"]) == (
        "350000.0000",
        "4200000",
        "350000",
        "4200000",
    )
    assert real.order_cash("sell", "373220", 5, "360000").json()["rt_cd"] == "0"  # rests above the price
    assert sellable(real, "373220")["ord_psbl_qty"] == "7"
    # What the sellable quantity promises holds: 7 more can be sold, 8 cannot.
    assert real.order_cash("sell", "373220", 8, "0", ord_dvsn="01").json()["rt_cd"] != "0"
    assert real.order_cash("sell", "373220", 7, "0", ord_dvsn="01").json()["rt_cd"] == "0"
    assert sellable(real, "373220")["ord_psbl_qty"] == "0"


def test_sellable_when_wrong_tr_id_then_gateway_error(real: Kis) -> None:
    response = real.get(PSBL_SELL, "TTTC8434R", real.acct | {"PDNO": "005930"})
    assert response.status_code == 500
    assert set(response.json()) == {"rt_cd", "msg_cd", "msg1"}


def test_us_open_orders_when_resting_then_listed_revised_then_cancelled_then_gone(
    real_server: SimServer, real: Kis
) -> None:
    set_price(real_server, "AMZN", "180.00", market="US")
    placed = real.us_order("TTTT1002U", "AMZN", 4, "170.00").json()["output"]
    assert real.us_order("TTTT1002U", "AMZN", 1, "181.00").json()["rt_cd"] == "0"  # fills: not listed
    [row] = open_us(real)
    assert (row["odno"], row["pdno"], row["sll_buy_dvsn_cd"], row["ovrs_excg_cd"]) == (
        placed["ODNO"],
        "AMZN",
        "02",
        "NASD",
    )
    assert (row["ft_ord_qty"], row["ft_ccld_qty"], row["nccs_qty"], row["tr_crcy_cd"]) == ("4", "0", "4", "USD")
    assert Decimal(row["ft_ord_unpr3"]) == Decimal("170.00")
    assert {"ord_dt", "ord_gno_brno", "orgn_odno", "rvse_cncl_dvsn_cd", "rjct_rson", "ord_tmd", "natn_cd"} <= set(row)
    assert open_us(real, exchange="NYSE") == []
    # The order's date and time in New York, as the order list with fills (inquire-ccnl) gives them.
    ccnl = real.get(
        f"{OVERSEAS}/trading/inquire-ccnl",
        "TTTS3035R",
        real.acct | {"PDNO": "AMZN", "ORD_STRT_DT": "20000101", "ORD_END_DT": "20991231", "SORT_SQN": "DS"},
    )
    [listed] = [r for r in ok(ccnl, "TTTS3035R")["output"] if r["odno"] == placed["ODNO"]]
    assert (row["ord_dt"], row["ord_tmd"]) == (listed["ord_dt"], listed["ord_tmd"])
    assert (row["ord_dt"], row["ord_tmd"]) != (listed["dmst_ord_dt"], listed["thco_ord_tmd"])  # not Korean time

    base = real.acct | {"OVRS_EXCG_CD": "NASD", "PDNO": "AMZN", "ORGN_ODNO": placed["ODNO"], "ORD_SVR_DVSN_CD": "0"}
    revise = base | {"RVSE_CNCL_DVSN_CD": "01", "ORD_QTY": "4", "OVRS_ORD_UNPR": "172.00"}
    revised = real.post(f"{OVERSEAS}/trading/order-rvsecncl", "TTTT1004U", revise).json()["output"]
    [row] = open_us(real)
    assert (row["odno"], row["orgn_odno"], row["nccs_qty"]) == (revised["ODNO"], placed["ODNO"], "4")
    assert Decimal(row["ft_ord_unpr3"]) == Decimal("172.00")

    cancel = base | {"ORGN_ODNO": revised["ODNO"], "RVSE_CNCL_DVSN_CD": "02", "ORD_QTY": "4", "OVRS_ORD_UNPR": "0"}
    assert real.post(f"{OVERSEAS}/trading/order-rvsecncl", "TTTT1004U", cancel).json()["rt_cd"] == "0"
    assert open_us(real) == []


def test_us_open_orders_when_virtual_then_vtts3018r(virtual_server: SimServer, virtual: Kis) -> None:
    set_price(virtual_server, "GOOGL", "170.00", market="US")
    placed = virtual.us_order("VTTT1002U", "GOOGL", 2, "160.00").json()["output"]
    assert [row["odno"] for row in open_us(virtual, "VTTS3018R")] == [placed["ODNO"]]
    refused = virtual.get(NCCS, "TTTS3018R", virtual.acct | {"OVRS_EXCG_CD": "NASD", "SORT_SQN": "DS"})
    assert (refused.status_code, refused.json()["msg1"]) == (500, "모의투자 TR 이 아닙니다.")


def test_us_buyable_when_cash_then_quantity_is_what_an_order_can_reserve(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "SPY", "550.00", market="US")
    fee = real_server.config.overseas_fee_rate
    before = buyable(real, "SPY", "500.00")
    assert (before["tr_crcy_cd"], before["ord_psbl_frcr_amt"], before["ovrs_ord_psbl_amt"]) == (
        "USD",
        "100000.00",
        "100000.00",
    )
    quantity = int((Decimal(100000) / (Decimal(500) * (1 + fee))).to_integral_value(rounding=ROUND_FLOOR))
    assert before["max_ord_psbl_qty"] == before["ord_psbl_qty"] == str(quantity)
    # The whole quantity can be ordered (it rests under the price); afterwards nothing more.
    assert real.us_order("TTTT1002U", "SPY", quantity, "500.00").json()["rt_cd"] == "0"
    after = buyable(real, "SPY", "500.00")
    assert after["max_ord_psbl_qty"] == "0"
    assert Decimal(after["ord_psbl_frcr_amt"]) < Decimal(500)
    assert real.us_order("TTTT1002U", "SPY", 1, "500.00").json()["rt_cd"] != "0"


def test_us_buyable_when_virtual_then_vtts3007r_and_wrong_tr_id_refused(virtual: Kis) -> None:
    assert buyable(virtual, "AAPL", "190.00", "VTTS3007R")["ord_psbl_frcr_amt"] == "100000.00"
    params = virtual.acct | {"OVRS_EXCG_CD": "NASD", "OVRS_ORD_UNPR": "190.00", "ITEM_CD": "AAPL"}
    wrong = virtual.get(PSAMOUNT, "VTTS3018R", params)
    assert (wrong.status_code, wrong.json()["rt_cd"], wrong.json()["msg_cd"]) == (500, "1", "EGW00202")


def test_revise_when_part_of_the_quantity_then_both_parts_listed_with_what_remains(
    real_server: SimServer, real: Kis
) -> None:
    """A revision of part of an order moves that part to a new order at the new price; the rest
    stays under the original number."""
    set_price(real_server, "207940", "800000")
    placed = real.order_cash("buy", "207940", 10, "780000").json()["output"]
    revised = real.rvsecncl(placed["ODNO"], placed["KRX_FWDG_ORD_ORGNO"], cancel=False, quantity=4, price="785000")
    assert revised.json()["rt_cd"] == "0"
    rows = {row["odno"]: row for row in revisable(real).json()["output"]}
    new_odno = revised.json()["output"]["ODNO"]
    assert (rows[placed["ODNO"]]["psbl_qty"], rows[placed["ODNO"]]["ord_unpr"]) == ("6", "780000")
    assert (rows[new_odno]["psbl_qty"], rows[new_odno]["ord_unpr"], rows[new_odno]["orgn_odno"]) == (
        "4",
        "785000",
        placed["ODNO"],
    )
