"""Order books and candles (domestic and US) over real HTTP: KIS's paths, tr_ids and field names,
every value a string, and numbers that agree with the simulator's own prices and fills."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest

from .helpers import DOMESTIC, Kis, SimServer

QUOTES = f"{DOMESTIC}/quotations"
US_QUOTES = "/uapi/overseas-price/v1/quotations"


def strings_only(value: Any) -> bool:
    """Every leaf of a KIS answer is a string (KIS sends numbers as strings)."""
    if isinstance(value, dict):
        return all(strings_only(v) for v in value.values())
    if isinstance(value, list):
        return all(strings_only(v) for v in value)
    return isinstance(value, str)


def ok(response: Any, tr_id: str) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert response.headers["tr_id"] == tr_id
    assert body["rt_cd"] == "0", body
    assert body["msg_cd"]
    assert body["msg1"].strip()
    assert strings_only(body), body
    return body


def krx(code: str, **extra: str) -> dict[str, str]:
    return {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code, **extra}


def week_of(yyyymmdd: str) -> tuple[int, int]:
    iso = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])).isocalendar()
    return (iso[0], iso[1])


def set_price(server: SimServer, ticker: str, price: str, market: str = "KRX") -> None:
    server.admin("/admin/price", {"ticker": ticker, "price": price, "market": market})


def test_asking_price_when_quoted_then_ten_levels_around_price_and_fill_at_best_ask(
    real_server: SimServer, real: Kis
) -> None:
    set_price(real_server, "035720", "45000")
    body = ok(real.get(f"{QUOTES}/inquire-asking-price-exp-ccn", "FHKST01010200", krx("035720")), "FHKST01010200")
    book, expected = body["output1"], body["output2"]
    asks = [int(book[f"askp{i}"]) for i in range(1, 11)]
    bids = [int(book[f"bidp{i}"]) for i in range(1, 11)]
    assert asks[0] == 45000
    assert bids[0] == 44950
    assert asks == sorted(asks)
    assert bids == sorted(bids, reverse=True)
    quantities = [int(book[f"askp_rsqn{i}"]) for i in range(1, 11)]
    assert book["total_askp_rsqn"] == str(sum(quantities))
    assert {"aspr_acpt_hour", "bidp_rsqn1", "total_bidp_rsqn", "ntby_aspr_rsqn"} <= set(book)
    assert (expected["stck_prpr"], expected["stck_shrn_iscd"], expected["stck_sdpr"]) == ("45000", "035720", "45000")
    assert {"antc_cnpr", "antc_cntg_vrss_sign", "antc_vol"} <= set(expected)
    # A buy limit at the best ask is marketable: it fills at once, as the book promises.
    assert real.order_cash("buy", "035720", 3, book["askp1"]).json()["rt_cd"] == "0"
    assert [o["state"] for o in real.orders()] == ["filled"]


def test_daily_price_when_days_then_30_newest_first_today_is_live_quote(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "051910", "303000")
    params = krx("051910", FID_PERIOD_DIV_CODE="D", FID_ORG_ADJ_PRC="1")
    rows = ok(real.get(f"{QUOTES}/inquire-daily-price", "FHKST01010400", params), "FHKST01010400")["output"]
    assert len(rows) == 30
    days = [row["stck_bsop_date"] for row in rows]
    assert days == sorted(days, reverse=True)
    assert len(set(days)) == 30
    today, yesterday = rows[0], rows[1]
    assert today["stck_clpr"] == "303000"
    assert yesterday["stck_clpr"] == "300000"  # the previous close the quote is based on
    assert (today["prdy_vrss"], today["prdy_vrss_sign"], today["prdy_ctrt"]) == ("3000", "2", "1.00")
    for row in rows:
        assert int(row["stck_lwpr"]) <= min(int(row["stck_oprc"]), int(row["stck_clpr"]))
        assert int(row["stck_hgpr"]) >= max(int(row["stck_oprc"]), int(row["stck_clpr"]))
    assert {"acml_vol", "prdy_vrss_vol_rate", "hts_frgn_ehrt", "frgn_ntby_qty", "acml_prtt_rate"} <= set(today)


def test_daily_chart_when_date_range_then_candles_in_range_and_weeks_fold_days(
    real_server: SimServer, real: Kis
) -> None:
    set_price(real_server, "068270", "180000")
    every = krx("068270", FID_INPUT_DATE_1="20000101", FID_INPUT_DATE_2="20991231", FID_ORG_ADJ_PRC="0")
    daily = ok(
        real.get(f"{QUOTES}/inquire-daily-itemchartprice", "FHKST03010100", every | {"FID_PERIOD_DIV_CODE": "D"}),
        "FHKST03010100",
    )
    summary, rows = daily["output1"], daily["output2"]
    assert len(rows) == 100  # KIS answers at most 100 candles per call
    assert (summary["stck_prpr"], summary["stck_prdy_clpr"]) == ("180000", "180000")
    assert summary["hts_kor_isnm"] == "셀트리온"
    assert (summary["stck_mxpr"], summary["stck_llam"]) == ("234000", "126000")
    assert rows[0]["stck_clpr"] == "180000"
    for newer, older in itertools.pairwise(rows):
        assert newer["stck_bsop_date"] > older["stck_bsop_date"]
        assert int(newer["prdy_vrss"]) == int(newer["stck_clpr"]) - int(older["stck_clpr"])
    assert {"acml_tr_pbmn", "flng_cls_code", "mod_yn", "revl_issu_reas"} <= set(rows[0])

    window = every | {"FID_INPUT_DATE_1": rows[20]["stck_bsop_date"], "FID_INPUT_DATE_2": rows[10]["stck_bsop_date"]}
    window_rows = real.get(
        f"{QUOTES}/inquire-daily-itemchartprice", "FHKST03010100", window | {"FID_PERIOD_DIV_CODE": "D"}
    ).json()["output2"]
    assert window_rows == rows[10:21]

    weekly = real.get(
        f"{QUOTES}/inquire-daily-itemchartprice", "FHKST03010100", every | {"FID_PERIOD_DIV_CODE": "W"}
    ).json()["output2"]
    last_week = week_of(weekly[1]["stck_bsop_date"])
    its_days = [r for r in rows if week_of(r["stck_bsop_date"]) == last_week]
    assert weekly[1]["stck_clpr"] == its_days[0]["stck_clpr"]
    assert weekly[1]["stck_oprc"] == its_days[-1]["stck_oprc"]
    assert weekly[1]["stck_hgpr"] == str(max(int(r["stck_hgpr"]) for r in its_days))
    assert weekly[1]["acml_vol"] == str(sum(int(r["acml_vol"]) for r in its_days))


def test_minute_chart_when_trades_then_bars_carry_price_and_volume(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "105560", "80000")
    assert real.order_cash("buy", "105560", 7, "0", ord_dvsn="01").json()["rt_cd"] == "0"
    params = krx("105560", FID_INPUT_HOUR_1="", FID_PW_DATA_INCU_YN="Y", FID_ETC_CLS_CODE="")
    body = ok(real.get(f"{QUOTES}/inquire-time-itemchartprice", "FHKST03010200", params), "FHKST03010200")
    summary, bars = body["output1"], body["output2"]
    assert (summary["stck_prpr"], summary["acml_vol"], summary["acml_tr_pbmn"]) == ("80000", "7", "560000")
    assert 1 <= len(bars) <= 30
    assert bars[0]["stck_prpr"] == "80000"
    assert sum(int(bar["cntg_vol"]) for bar in bars) == 7
    assert bars[0]["acml_tr_pbmn"] == "560000"
    assert {"stck_bsop_date", "stck_cntg_hour", "stck_oprc", "stck_hgpr", "stck_lwpr"} <= set(bars[0])
    # Nothing before 00:00:01 today.
    early = params | {"FID_INPUT_HOUR_1": "000001"}
    assert real.get(f"{QUOTES}/inquire-time-itemchartprice", "FHKST03010200", early).json()["output2"] == []


@pytest.mark.parametrize(
    ("path", "tr_id"),
    [
        ("inquire-asking-price-exp-ccn", "FHKST01010200"),
        ("inquire-daily-price", "FHKST01010400"),
        ("inquire-daily-itemchartprice", "FHKST03010100"),
        ("inquire-time-itemchartprice", "FHKST03010200"),
        ("inquire-ccnl", "FHKST01010300"),
    ],
)
def test_quotations_when_virtual_then_same_tr_id_and_wrong_tr_id_is_kis_error(
    virtual: Kis, path: str, tr_id: str
) -> None:
    """Quotation tr_ids are the same on both domains; another endpoint's tr_id is a gateway error."""
    params = krx("005930", FID_PERIOD_DIV_CODE="D", FID_INPUT_DATE_1="20000101", FID_INPUT_DATE_2="20991231")
    ok(virtual.get(f"{QUOTES}/{path}", tr_id, params), tr_id)
    wrong = virtual.get(f"{QUOTES}/{path}", "FHKST01010100", params)
    assert wrong.status_code == 500
    assert set(wrong.json()) == {"rt_cd", "msg_cd", "msg1"}
    assert (wrong.json()["rt_cd"], wrong.json()["msg_cd"]) == ("1", "EGW00202")


def test_quotations_when_bad_market_code_then_refused_in_envelope(real: Kis) -> None:
    params = {"FID_COND_MRKT_DIV_CODE": "X", "FID_INPUT_ISCD": "005930"}
    body = real.get(f"{QUOTES}/inquire-asking-price-exp-ccn", "FHKST01010200", params).json()
    assert body["rt_cd"] == "1"
    assert body["msg_cd"]


def test_overseas_price_detail_when_quoted_then_kis_fields_agree_with_price(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "IBM", "221.50", market="US")
    params = {"AUTH": "", "EXCD": "NYS", "SYMB": "IBM"}
    output = ok(real.get(f"{US_QUOTES}/price-detail", "HHDFS76200200", params), "HHDFS76200200")["output"]
    assert (output["rsym"], output["last"], output["base"]) == ("DNYSIBM", "221.5000", "220.0000")
    assert output["curr"] == "USD"
    assert float(output["h52p"]) >= 221.5 >= float(output["l52p"])
    assert {"open", "high", "low", "tvol", "tamt", "uplp", "dnlp", "perx", "e_ordyn", "e_hogau", "t_rate"} <= set(
        output
    )
    wrong = real.get(f"{US_QUOTES}/price-detail", "HHDFS00000300", params)
    assert (wrong.status_code, wrong.json()["msg_cd"]) == (500, "EGW00202")


def test_overseas_price_detail_when_virtual_then_not_offered(virtual: Kis) -> None:
    """KIS offers price-detail on the real domain only."""
    response = virtual.get(f"{US_QUOTES}/price-detail", "HHDFS76200200", {"AUTH": "", "EXCD": "NAS", "SYMB": "AAPL"})
    assert response.status_code == 500
    assert response.json()["msg1"] == "모의투자 TR 이 아닙니다."


def test_overseas_asking_price_and_candles_when_quoted_then_agree_with_price(real_server: SimServer, real: Kis) -> None:
    set_price(real_server, "META", "500.00", market="US")
    quote = {"AUTH": "", "EXCD": "NAS", "SYMB": "META"}
    book = ok(real.get(f"{US_QUOTES}/inquire-asking-price", "HHDFS76200100", quote), "HHDFS76200100")
    assert (book["output1"]["last"], book["output2"]["pask1"], book["output2"]["pbid1"]) == (
        "500.0000",
        "500.0000",
        "499.9900",
    )
    daily = ok(
        real.get(f"{US_QUOTES}/dailyprice", "HHDFS76240000", quote | {"GUBN": "0", "BYMD": "", "MODP": "1"}),
        "HHDFS76240000",
    )
    rows = daily["output2"]
    assert daily["output1"]["nrec"] == str(len(rows)) == "100"
    assert (rows[0]["clos"], rows[1]["clos"]) == ("500.0000", "500.0000")
    minutes = {"AUTH": "", "EXCD": "NAS", "SYMB": "META", "NMIN": "1", "PINC": "1", "NEXT": "", "NREC": "120"}
    minutes |= {"FILL": "", "KEYB": ""}
    chart = ok(real.get(f"{US_QUOTES}/inquire-time-itemchartprice", "HHDFS76950200", minutes), "HHDFS76950200")
    assert chart["output2"][0]["last"] == "500.0000"
    assert {"xymd", "xhms", "kymd", "khms", "evol", "eamt"} <= set(chart["output2"][0])


def test_inquire_price_when_history_then_every_kis_field_and_52_week_range_holds_price(
    real_server: SimServer, real: Kis
) -> None:
    set_price(real_server, "207940", "812000")
    output = ok(real.get(f"{QUOTES}/inquire-price", "FHKST01010100", krx("207940")), "FHKST01010100")["output"]
    assert len(output) == 82  # every column of the official sample's list
    assert int(output["w52_lwpr"]) <= 812000 <= int(output["w52_hgpr"])
    assert int(output["d250_lwpr"]) <= 812000 <= int(output["d250_hgpr"])
    assert {"pvt_pont_val", "d250_hgpr", "stck_dryy_lwpr", "new_hgpr_lwpr_cls_code"} <= set(output)
