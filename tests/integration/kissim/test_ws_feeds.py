"""WebSocket price feeds (H0STCNT0, H0STASP0, HDFSCNT0, HDFSASP0) and the US execution notice,
over a real WebSocket against a running simulator: frames in KIS's layouts whose numbers are the
fills and the REST quotations of the same moment. Prices are frozen (no walk), so every frame comes
from something the test did; the tests wait for frames, never for time to pass."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from kissim.feeds import COLUMNS

from .helpers import DOMESTIC, Kis, SimServer, base_config
from .test_ws import approval_key, control, decrypt, message

QUOTES = f"{DOMESTIC}/quotations"
US_QUOTES = "/uapi/overseas-price/v1/quotations"
# KIS's column counts (OT examples_llm ccnl_krx 46, asking_price_krx 59, ccnl_notice 26 and the
# overseas ccnl_notice 25 since 2026-01-02; HDFSCNT0 and HDFSASP0 with the RSYM KIS's
# specification and its example frames lead with: 26, and 71 for ten US levels).
KIS_FIELD_COUNTS = {
    "H0STCNT0": 46,
    "H0STASP0": 59,
    "HDFSCNT0": 26,
    "HDFSASP0": 71,
    "H0STCNI0": 26,
    "H0STCNI9": 26,
    "H0GSCNI0": 25,
    "H0GSCNI9": 25,
}


@pytest.fixture(scope="module")
def feed_server() -> Iterator[SimServer]:
    # The real domain: KIS serves HDFSCNT0/HDFSASP0 and the US order book there only.
    server = SimServer(base_config(mode="real")).start()
    yield server
    server.stop()


@pytest.fixture
def kis(feed_server: SimServer, make_kis: Callable[..., Kis]) -> Kis:
    return make_kis(feed_server, appkey=f"FEEDKEY{uuid.uuid4().hex}").login()


def subscribe(ws: ClientConnection, key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> dict[str, Any]:
    ws.send(message(key, tr_id, tr_key, tr_type))
    body: dict[str, Any] = control(ws)["body"]
    return body


def frame(ws: ClientConnection) -> tuple[str, str, int, list[list[str]]]:
    """The next data frame: (encrypted flag, tr_id, record count, records split by the tr_id's width)."""
    text = ws.recv(timeout=10)
    assert isinstance(text, str)
    assert text[0] in "01", text
    encrypted, tr_id, count, payload = text.split("|", 3)
    fields = payload.split("^")
    width = len(COLUMNS[tr_id])
    assert len(fields) == int(count) * width, (tr_id, count, len(fields))
    records = [fields[i * width : (i + 1) * width] for i in range(int(count))]
    return encrypted, tr_id, int(count), records


def named(tr_id: str, record: list[str]) -> dict[str, str]:
    return dict(zip(COLUMNS[tr_id], record, strict=True))


def frames_by_tr_id(ws: ClientConnection, expected: int) -> dict[str, list[dict[str, str]]]:
    got: dict[str, list[dict[str, str]]] = {}
    for _ in range(expected):
        encrypted, tr_id, _, records = frame(ws)
        assert encrypted == "0"
        got[tr_id] = [named(tr_id, record) for record in records]
    return got


def set_price(server: SimServer, ticker: str, price: str, market: str = "KRX") -> None:
    server.admin("/admin/price", {"ticker": ticker, "price": price, "market": market})


def rest(kis: Kis, path: str, tr_id: str, params: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = kis.get(path, tr_id, params).json()
    assert body["rt_cd"] == "0", body
    return body


def test_column_lists_when_pinned_then_kis_counts() -> None:
    assert {tr_id: len(COLUMNS[tr_id]) for tr_id in KIS_FIELD_COUNTS} == KIS_FIELD_COUNTS
    assert COLUMNS["HDFSASP0"][11:17] == ("PBID1", "PASK1", "VBID1", "VASK1", "DBID1", "DASK1")
    assert COLUMNS["HDFSASP0"][-1] == "DASK10"


def test_domestic_feeds_when_order_fills_then_trade_is_the_fill_and_book_is_rest(
    feed_server: SimServer, kis: Kis
) -> None:
    set_price(feed_server, "005380", "200000")
    with connect(feed_server.ws_url) as ws:
        key = approval_key(kis)
        for tr_id in ("H0STCNT0", "H0STASP0"):
            reply = subscribe(ws, key, tr_id, "005380")
            assert (reply["rt_cd"], reply["msg_cd"], reply["msg1"]) == ("0", "OPSP0000", "SUBSCRIBE SUCCESS")
        assert kis.order_cash("buy", "005380", 3, "0", ord_dvsn="01").json()["rt_cd"] == "0"
        got = frames_by_tr_id(ws, 2)
    (trade,), (book,) = got["H0STCNT0"], got["H0STASP0"]
    code = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005380"}
    output = rest(kis, f"{QUOTES}/inquire-price", "FHKST01010100", code)["output"]
    rest_book = rest(kis, f"{QUOTES}/inquire-asking-price-exp-ccn", "FHKST01010200", code)["output1"]
    assert (trade["MKSC_SHRN_ISCD"], trade["STCK_PRPR"], trade["CNTG_VOL"], trade["CCLD_DVSN"]) == (
        "005380",
        "200000",
        "3",
        "1",
    )
    assert trade["STCK_PRPR"] == output["stck_prpr"]
    assert trade["ACML_VOL"] == output["acml_vol"]
    assert (trade["PRDY_VRSS"], trade["PRDY_VRSS_SIGN"]) == (output["prdy_vrss"], output["prdy_vrss_sign"])
    assert (trade["ASKP1"], trade["BIDP1"]) == (rest_book["askp1"], rest_book["bidp1"]) == ("200000", "199500")
    for i in range(1, 11):
        assert (book[f"ASKP{i}"], book[f"BIDP{i}"]) == (rest_book[f"askp{i}"], rest_book[f"bidp{i}"])
        assert (book[f"ASKP_RSQN{i}"], book[f"BIDP_RSQN{i}"]) == (
            rest_book[f"askp_rsqn{i}"],
            rest_book[f"bidp_rsqn{i}"],
        )
    assert (book["TOTAL_ASKP_RSQN"], book["ACML_VOL"]) == (rest_book["total_askp_rsqn"], output["acml_vol"])


def test_domestic_trades_when_price_drop_fills_two_resting_orders_then_one_frame_of_three(
    feed_server: SimServer, kis: Kis
) -> None:
    set_price(feed_server, "051910", "300000")
    kis.order_cash("buy", "051910", 2, "299500")
    kis.order_cash("buy", "051910", 5, "299000")
    with connect(feed_server.ws_url) as ws:
        assert subscribe(ws, approval_key(kis), "H0STCNT0", "051910")["msg_cd"] == "OPSP0000"
        set_price(feed_server, "051910", "298500")
        encrypted, tr_id, count, records = frame(ws)
    assert (encrypted, tr_id, count) == ("0", "H0STCNT0", 3)
    trades = [named(tr_id, record) for record in records]
    # The move itself (no shares: an operator set the price), then each resting buy at its limit.
    assert [(t["STCK_PRPR"], t["CNTG_VOL"]) for t in trades] == [("298500", "0"), ("299500", "2"), ("299000", "5")]
    assert trades[-1]["ACML_VOL"] == str(int(trades[0]["ACML_VOL"]) + 7)
    assert trades[-1]["STCK_LWPR"] == "298500"


def test_us_feeds_when_order_fills_then_trade_is_the_fill_and_book_is_rest(feed_server: SimServer, kis: Kis) -> None:
    set_price(feed_server, "MSFT", "410.00", market="US")
    with connect(feed_server.ws_url) as ws:
        key = approval_key(kis)
        for tr_id, tr_key in (("HDFSCNT0", "DNASMSFT"), ("HDFSASP0", "DNASMSFT"), ("HDFSCNT0", "RBAQMSFT")):
            assert subscribe(ws, key, tr_id, tr_key)["msg_cd"] == "OPSP0000"
        assert kis.us_order("TTTT1002U", "MSFT", 2, "411.00").json()["rt_cd"] == "0"
        got: dict[tuple[str, str], dict[str, str]] = {}
        for _ in range(3):
            _, tr_id, count, records = frame(ws)
            assert count == 1
            record = named(tr_id, records[0])
            got[(tr_id, record["RSYM"])] = record
    query = {"AUTH": "", "EXCD": "NAS", "SYMB": "MSFT"}
    price = rest(kis, f"{US_QUOTES}/price", "HHDFS00000300", query)["output"]
    rest_book = rest(kis, f"{US_QUOTES}/inquire-asking-price", "HHDFS76200100", query)["output2"]
    trade, daytime, book = got[("HDFSCNT0", "DNASMSFT")], got[("HDFSCNT0", "RBAQMSFT")], got[("HDFSASP0", "DNASMSFT")]
    assert (trade["SYMB"], trade["ZDIV"], trade["LAST"], trade["EVOL"]) == ("MSFT", "4", "410.0000", "2")
    assert (trade["LAST"], trade["TVOL"]) == (price["last"], price["tvol"])
    assert (trade["PBID"], trade["PASK"]) == (rest_book["pbid1"], rest_book["pask1"]) == ("409.9900", "410.0000")
    assert daytime["LAST"] == trade["LAST"]
    for i in range(1, 11):
        for name in ("pbid", "pask", "vbid", "vask"):
            assert book[f"{name.upper()}{i}"] == rest_book[f"{name}{i}"], (name, i)


def test_unsubscribe_when_done_then_that_ticker_sends_no_more(feed_server: SimServer, kis: Kis) -> None:
    set_price(feed_server, "035420", "190000")
    set_price(feed_server, "035720", "45000")
    with connect(feed_server.ws_url) as ws:
        key = approval_key(kis)
        for code in ("035420", "035720"):
            assert subscribe(ws, key, "H0STCNT0", code)["msg_cd"] == "OPSP0000"
        set_price(feed_server, "035420", "190500")
        assert named("H0STCNT0", frame(ws)[3][0])["STCK_PRPR"] == "190500"
        reply = subscribe(ws, key, "H0STCNT0", "035420", tr_type="2")
        assert (reply["msg_cd"], reply["msg1"]) == ("OPSP0001", "UNSUBSCRIBE SUCCESS")
        set_price(feed_server, "035420", "191000")  # would come first, were it still subscribed
        set_price(feed_server, "035720", "45050")
        record = named("H0STCNT0", frame(ws)[3][0])
    assert (record["MKSC_SHRN_ISCD"], record["STCK_PRPR"]) == ("035720", "45050")


def test_registrations_when_42nd_across_feeds_then_max_subscribe_over_until_one_is_dropped(
    feed_server: SimServer, kis: Kis
) -> None:
    with connect(feed_server.ws_url) as ws:
        key = approval_key(kis)
        assert subscribe(ws, key, "H0STCNI0", "htsid")["msg_cd"] == "OPSP0000"
        feeds = [("H0STASP0", f"{n:06d}") for n in range(20)] + [("HDFSCNT0", f"DNASX{n:03d}") for n in range(20)]
        for tr_id, tr_key in feeds:
            assert subscribe(ws, key, tr_id, tr_key)["msg_cd"] == "OPSP0000"
        refused = subscribe(ws, key, "HDFSASP0", "DNASAAPL")
        assert (refused["rt_cd"], refused["msg_cd"], refused["msg1"]) == ("1", "OPSP0008", "MAX SUBSCRIBE OVER")
        again = subscribe(ws, key, "H0STASP0", "000000")
        assert (again["rt_cd"], again["msg_cd"]) == ("1", "OPSP0002")
        assert subscribe(ws, key, "H0STASP0", "000000", tr_type="2")["msg_cd"] == "OPSP0001"
        assert subscribe(ws, key, "HDFSASP0", "DNASAAPL")["msg_cd"] == "OPSP0000"


def test_us_notice_when_order_fills_then_25_fields_with_kis_codes(feed_server: SimServer, kis: Kis) -> None:
    set_price(feed_server, "NVDA", "120.00", market="US")
    kis.balance()  # the appkey has now used this account
    with connect(feed_server.ws_url) as ws:
        reply = subscribe(ws, approval_key(kis), "H0GSCNI0", "myhtsid")
        secret = reply["output"]["key"], reply["output"]["iv"]
        odno = kis.us_order("TTTT1002U", "NVDA", 2, "121.50").json()["output"]["ODNO"]
        notices = []
        for _ in range(2):
            encrypted, tr_id, count, payload = str(ws.recv(timeout=10)).split("|", 3)
            assert (encrypted, tr_id, count) == ("1", "H0GSCNI0", "001")
            notices.append(named(tr_id, decrypt(payload, *secret).split("^")))
    accepted, filled = notices
    for notice in notices:
        assert (notice["CUST_ID"], notice["ACNT_NO"], notice["ODER_NO"]) == ("myhtsid", kis.cano + "01", odno)
        assert (notice["SELN_BYOV_CLS"], notice["ODER_KIND2"], notice["STCK_SHRN_ISCD"]) == ("02", "2", "NVDA")
        assert (notice["ODER_COND"], notice["DEBT_GB"], notice["RFUS_YN"]) == ("6", "10", "0")
    assert (accepted["CNTG_YN"], accepted["CNTG_QTY"], accepted["CNTG_UNPR"], accepted["ODER_QTY"]) == (
        "1",
        "0000000002",
        "001215000",
        "",
    )
    assert (filled["CNTG_YN"], filled["CNTG_QTY"], filled["CNTG_UNPR"], filled["ODER_QTY"]) == (
        "2",
        "0000000002",
        "001200000",
        "2",
    )
    assert filled["CNTG_UNPR12"] == "120.0000"
