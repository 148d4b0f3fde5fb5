"""Realised profit by period (domestic TTTC8715R per day and product, TTTC8708R per day, overseas
TTTS3039R) from the simulator's own fills: a buy then a sell at a higher price shows the sell amount,
the cost it gave up and the profit net of the sell fee; the real domain only, as at KIS; kept across
a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .helpers import DOMESTIC, OVERSEAS, Kis, SimProcess, SimServer, fresh_cano

TRADE_PROFIT = f"{DOMESTIC}/trading/inquire-period-trade-profit"
DAY_PROFIT = f"{DOMESTIC}/trading/inquire-period-profit"
US_PROFIT = f"{OVERSEAS}/trading/inquire-period-profit"
WIDE = {"INQR_STRT_DT": "20000101", "INQR_END_DT": "20991231"}


def trade_profit(kis: Kis, **params: str) -> Any:
    query = kis.acct | {"SORT_DVSN": "00", "PDNO": "", "CBLC_DVSN": "00", "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    response = kis.get(TRADE_PROFIT, "TTTC8715R", query | WIDE | params)
    assert response.status_code == 200, response.text
    return response.json()


def day_profit(kis: Kis, **params: str) -> Any:
    query = kis.acct | {"SORT_DVSN": "00", "INQR_DVSN": "00", "CBLC_DVSN": "00", "PDNO": ""}
    query |= {"CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    response = kis.get(DAY_PROFIT, "TTTC8708R", query | WIDE | params)
    assert response.status_code == 200, response.text
    assert (response.headers["tr_id"], response.headers["tr_cont"]) == ("TTTC8708R", "D")
    return response.json()


def us_profit(kis: Kis, **params: str) -> Any:
    query = kis.acct | {"OVRS_EXCG_CD": "NASD", "NATN_CD": "", "CRCY_CD": "", "PDNO": "", "WCRC_FRCR_DVSN_CD": "01"}
    query |= {"CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}
    response = kis.get(US_PROFIT, "TTTS3039R", query | WIDE | params)
    assert response.status_code == 200, response.text
    return response.json()


def round_trip_krx(server: SimServer | SimProcess, kis: Kis) -> None:
    server.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    assert kis.order_cash("buy", "005930", 10, ord_dvsn="01").json()["rt_cd"] == "0"
    server.admin("/admin/price", {"ticker": "005930", "price": "72000"})
    assert kis.order_cash("sell", "005930", 4, ord_dvsn="01").json()["rt_cd"] == "0"


def round_trip_us(server: SimServer | SimProcess, kis: Kis) -> None:
    server.admin("/admin/price", {"ticker": "AAPL", "price": "190.00", "market": "US"})
    assert kis.us_order("TTTT1002U", "AAPL", 10, "190.00").json()["rt_cd"] == "0"
    server.admin("/admin/price", {"ticker": "AAPL", "price": "200.00", "market": "US"})
    assert kis.us_order("TTTT1006U", "AAPL", 4, "200.00").json()["rt_cd"] == "0"


def test_trade_profit_when_bought_and_sold_higher_then_realised_net_of_sell_fee(
    real_server: SimServer, real: Kis
) -> None:
    assert trade_profit(real)["output1"] == []
    round_trip_krx(real_server, real)
    body = trade_profit(real)
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "KIOK0510")
    [row] = body["output1"]
    sell_fee = int(body["output2"]["sll_fee_smtl"])
    assert sell_fee in (43, 44)  # 288,000 x 0.015 %
    assert row | {"trad_dt": row["trad_dt"]} == {
        "trad_dt": row["trad_dt"],
        "pdno": "005930",
        "prdt_name": "삼성전자",
        "trad_dvsn_name": "현금",
        "loan_dt": "",
        "hldg_qty": "6",
        "pchs_unpr": "70000",
        "buy_qty": "10",
        "buy_amt": "700000",
        "sll_pric": "72000",
        "sll_qty": "4",
        "sll_amt": "288000",
        "rlzt_pfls": str(8000 - sell_fee),
        "pfls_rt": f"{(8000 - sell_fee) / 280000 * 100:.2f}",
        "fee": str(105 + sell_fee),
        "tl_tax": "0",
        "loan_int": "0",
    }
    assert body["output2"]["tot_rlzt_pfls"] == str(8000 - sell_fee)
    assert body["output2"]["buyqty_smtl"] == "10"
    assert body["output2"]["sll_qty_smtl"] == "4"
    assert all(isinstance(v, str) for v in body["output2"].values())
    # Another ticker filter and a period before the trade find nothing.
    assert trade_profit(real, PDNO="000660")["output1"] == []
    assert trade_profit(real, INQR_STRT_DT="20000101", INQR_END_DT="20000102")["output1"] == []


def test_period_profit_when_two_products_traded_then_one_row_for_the_day(real_server: SimServer, real: Kis) -> None:
    assert day_profit(real)["output1"] == []
    round_trip_krx(real_server, real)
    real_server.admin("/admin/price", {"ticker": "000660", "price": "100000"})
    assert real.order_cash("buy", "000660", 2, ord_dvsn="01").json()["rt_cd"] == "0"
    body = day_profit(real)
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "KIOK0510")
    [row] = body["output1"]
    by_product = trade_profit(real)
    assert [r["trad_dt"] for r in by_product["output1"]] == [row["trad_dt"]] * 2
    sell_fee = int(by_product["output2"]["sll_fee_smtl"])
    assert row == {
        "trad_dt": row["trad_dt"],
        "buy_amt": "900000",
        "sll_amt": "288000",
        "rlzt_pfls": str(8000 - sell_fee),
        "fee": str(105 + 30 + sell_fee),
        "loan_int": "0",
        "tl_tax": "0",
        "pfls_rt": f"{(8000 - sell_fee) / 280000 * 100:.2f}",
        "sll_qty1": "4",
        "buy_qty1": "12",
    }
    totals = body["output2"]
    assert totals["buy_qty_smtl"] == "12"
    assert "buyqty_smtl" not in totals  # TTTC8715R's spelling, not this list's
    assert totals["tot_rlzt_pfls"] == by_product["output2"]["tot_rlzt_pfls"] == str(8000 - sell_fee)
    assert day_profit(real, PDNO="000660")["output1"][0]["buy_amt"] == "200000"
    assert day_profit(real, INQR_STRT_DT="20000101", INQR_END_DT="20000102")["output1"] == []


def test_overseas_period_profit_when_sold_higher_then_usd_and_won_views(real_server: SimServer, real: Kis) -> None:
    round_trip_us(real_server, real)
    body = us_profit(real)
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "KIOK0510")
    [row] = body["output1"]
    assert row == {
        "trad_day": row["trad_day"],
        "ovrs_pdno": "AAPL",
        "ovrs_item_name": row["ovrs_item_name"],
        "slcl_qty": "4",
        "pchs_avg_pric": "190.0000",
        "frcr_pchs_amt1": "760.00",
        "avg_sll_unpr": "200.0000",
        "frcr_sll_amt_smtl1": "800.00",
        "stck_sll_tlex": "2.00",
        "ovrs_rlzt_pfls_amt": "38.00",
        "pftrt": "5.0000",
        "exrt": "1350.00000000",
        "ovrs_excg_cd": "NASD",
        "frst_bltn_exrt": "1350.00000000",
    }
    assert row["ovrs_item_name"]
    assert body["output2"]["ovrs_rlzt_pfls_tot_amt"] == "38.00"
    in_won = us_profit(real, WCRC_FRCR_DVSN_CD="02")
    assert in_won["output1"][0]["ovrs_rlzt_pfls_amt"] == "51300"
    assert us_profit(real, OVRS_EXCG_CD="NYSE")["output1"] == []


def test_profit_when_virtual_then_refused_as_kis_does(virtual: Kis) -> None:
    for path, tr_id in ((TRADE_PROFIT, "TTTC8715R"), (DAY_PROFIT, "TTTC8708R"), (US_PROFIT, "TTTS3039R")):
        refused = virtual.get(path, tr_id, virtual.acct | WIDE)
        assert refused.status_code == 500
        assert refused.json() == {"rt_cd": "1", "msg_cd": "EGW00213", "msg1": "모의투자 TR 이 아닙니다."}


def test_profit_when_simulator_restarts_then_realised_rows_unchanged(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    args = ("--always-open", "--no-rate-limit", "--price-step-seconds", "0", "--token-throttle-seconds", "0")
    server = SimProcess(*args, "--state-file", str(state)).start()
    kis = Kis(server, cano=fresh_cano()).login()  # type: ignore[arg-type]
    try:
        round_trip_krx(server, kis)
        round_trip_us(server, kis)
        before = (trade_profit(kis)["output1"], us_profit(kis)["output1"])
    finally:
        kis.close()
        assert server.stop() == 0
    server = SimProcess(*args, "--state-file", str(state)).start()
    again = Kis(server, cano=kis.cano, token=kis.token)  # type: ignore[arg-type]
    try:
        assert (trade_profit(again)["output1"], us_profit(again)["output1"]) == before
        assert before[0][0]["rlzt_pfls"] != "0"
        assert before[1][0]["ovrs_rlzt_pfls_amt"] == "38.00"
    finally:
        again.close()
        server.stop()
