"""Domestic order types beyond limit and market (ORD_DVSN 03, 04, 11-14) over real HTTP: each is
placed, fills, rests or has its rest cancelled, and the daily order list, the open-orders list, the
cash and holdings and the execution notices all tell the same story."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest
from websockets.sync.client import connect

from .helpers import DOMESTIC, Kis, SimServer, base_config
from .test_open_orders import revisable
from .test_ws import approval_key, control, decrypt, message, next_data

START_CASH = 100_000_000
FEE_RATE = Decimal("0.00015")
TakeNotices = Callable[[int], list[list[str]]]


@pytest.fixture(scope="module")
def partial_server() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="real", partial_fills=True)).start()
    yield server
    server.stop()


def client(server: SimServer, make_kis: Callable[..., Kis]) -> Kis:
    """A fresh account on a fresh appkey, so the notices a test reads are its own."""
    kis: Kis = make_kis(server, appkey=f"OTKEY{uuid.uuid4().hex}")
    return kis.login()


def set_price(server: SimServer, ticker: str, price: str) -> None:
    server.admin("/admin/price", {"ticker": ticker, "price": price})


@contextlib.contextmanager
def notices(server: SimServer, kis: Kis) -> Iterator[TakeNotices]:
    """Subscribe to the account's execution notices; ``take(n)`` returns the next n, decrypted."""
    kis.balance()  # the appkey has now used this account
    tr_id = "H0STCNI9" if kis.virtual else "H0STCNI0"
    with connect(server.ws_url) as ws:
        ws.send(message(approval_key(kis), tr_id, "htsid"))
        output = control(ws)["body"]["output"]
        key, iv = output["key"], output["iv"]

        def take(count: int) -> list[list[str]]:
            got: list[list[str]] = []
            while len(got) < count:
                _, frame_tr_id, _, payload = next_data(ws).split("|", 3)
                fields = decrypt(payload, key, iv).split("^")
                if frame_tr_id == tr_id and fields[1] == kis.cano + kis.product:
                    got.append(fields)
            return got

        yield take


def placed(response: Any) -> dict[str, str]:
    body: dict[str, Any] = response.json()
    assert (response.status_code, body["rt_cd"]) == (200, "0"), body
    output: dict[str, str] = body["output"]
    return output


def notice(fields: list[str]) -> tuple[str, ...]:
    """ODER_NO, OODER_NO, RCTF_CLS, ODER_KIND, ODER_COND, CNTG_QTY, CNTG_UNPR, CNTG_YN, ACPT_YN."""
    return (fields[2], fields[3], fields[5], fields[6], fields[7], fields[9], fields[10], fields[13], fields[14])


def daily(kis: Kis) -> dict[str, dict[str, str]]:
    rows: list[dict[str, str]] = kis.daily_ccld().json()["output1"]
    return {row["odno"]: row for row in rows}


def row_view(row: dict[str, str]) -> tuple[str, ...]:
    """ord_dvsn_cd, ord_unpr, ord_qty, tot_ccld_qty, rmn_qty, cncl_yn, cncl_cfrm_qty, orgn_odno."""
    keys = ("ord_dvsn_cd", "ord_unpr", "ord_qty", "tot_ccld_qty", "rmn_qty", "cncl_yn", "cncl_cfrm_qty", "orgn_odno")
    return tuple(row[k] for k in keys)


def available(kis: Kis, ticker: str = "005930", ord_dvsn: str = "00") -> dict[str, str]:
    params = kis.acct | {"PDNO": ticker, "ORD_UNPR": "0", "ORD_DVSN": ord_dvsn}
    params |= {"CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N"}
    output: dict[str, str] = kis.get(f"{DOMESTIC}/trading/inquire-psbl-order", kis.tr("TTTC8908R"), params).json()[
        "output"
    ]
    return output


def cash_and_held(kis: Kis, ticker: str) -> tuple[int, int, int]:
    """(cash now, cash an order may still use, shares held of ``ticker``)."""
    body = kis.balance().json()
    held = sum(int(r["hldg_qty"]) for r in body["output1"] if r["pdno"] == ticker)
    free = int(available(kis, ticker)["ord_psbl_cash"])
    return int(body["output2"][0]["prvs_rcdl_excc_amt"]), free, held


def cost(price: int, quantity: int) -> int:
    """What a buy fill takes from cash: price times quantity plus the fee (floored to the won)."""
    amount = Decimal(price * quantity)
    return int(amount + (amount * FEE_RATE).to_integral_value(rounding=ROUND_FLOOR))


def free_while_resting(price: int, quantity: int) -> int:
    """``ord_psbl_cash`` while a buy of ``quantity`` at ``price`` rests: it holds price plus fee a share."""
    return int((START_CASH - Decimal(price) * (1 + FEE_RATE) * quantity).to_integral_value(rounding=ROUND_FLOOR))


def upper_limit(kis: Kis, ticker: str) -> str:
    params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": ticker}
    upper: str = kis.get(f"{DOMESTIC}/quotations/inquire-price", "FHKST01010100", params).json()["output"]["stck_mxpr"]
    return upper


def admin_order(kis: Kis, odno: str) -> dict[str, Any]:
    [order] = [o for o in kis.orders() if o["odno"] == odno]
    return order


# ---------------------------------------------------------------------------- 03 and 04


@pytest.mark.parametrize("domain", ["real", "virtual"])
def test_best_limit_buy_when_booked_then_priced_at_best_ask_and_filled_at_once(
    domain: str, request: pytest.FixtureRequest, make_kis: Callable[..., Kis]
) -> None:
    server: SimServer = request.getfixturevalue(f"{domain}_server")
    kis = client(server, make_kis)
    set_price(server, "005930", "70000")
    with notices(server, kis) as take:
        odno = placed(kis.order_cash("buy", "005930", 10, "0", ord_dvsn="03"))["ODNO"]
        accepted, filled = take(2)
    assert notice(accepted) == (odno, "", "0", "03", "0", "10", "70000", "1", "1")
    assert notice(filled) == (odno, "", "0", "03", "0", "10", "70000", "2", "2")
    row = daily(kis)[odno]
    assert row_view(row) == ("03", "70000", "10", "10", "0", "N", "0", "")
    assert (row["ord_dvsn_name"], row["avg_prvs"], row["ccld_cndt_name"]) == ("최유리지정가", "70000", "없음")
    assert cash_and_held(kis, "005930") == (START_CASH - cost(70000, 10), START_CASH - cost(70000, 10), 10)
    if domain == "real":
        assert revisable(kis).json()["output"] == []


def test_best_limit_sell_when_booked_then_priced_at_best_bid_and_filled(
    real_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = client(real_server, make_kis)
    set_price(real_server, "000660", "180000")
    placed(kis.order_cash("buy", "000660", 4, "0", ord_dvsn="01"))
    with notices(real_server, kis) as take:
        odno = placed(kis.order_cash("sell", "000660", 4, "0", ord_dvsn="03"))["ODNO"]
        accepted, filled = take(2)
    # The best bid is one tick (100 won at this price) below the current price; a sell there is
    # marketable and fills at once at the current price, as any marketable limit does here.
    assert notice(accepted) == (odno, "", "0", "03", "0", "4", "179900", "1", "1")
    assert notice(filled)[5:8] == ("4", "180000", "2")
    assert row_view(daily(kis)[odno]) == ("03", "179900", "4", "4", "0", "N", "0", "")
    assert cash_and_held(kis, "000660")[2] == 0


def test_top_limit_buy_when_booked_then_rests_at_best_bid_holding_only_that_price(
    real_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = client(real_server, make_kis)
    set_price(real_server, "005380", "200000")
    # Checked against cash at the upper limit, as a market buy is.
    assert available(kis, "005380", ord_dvsn="04")["psbl_qty_calc_unpr"] == upper_limit(kis, "005380")
    with notices(real_server, kis) as take:
        odno = placed(kis.order_cash("buy", "005380", 5, "0", ord_dvsn="04"))["ODNO"]
        [accepted] = take(1)
        assert notice(accepted) == (odno, "", "0", "04", "0", "5", "199500", "1", "1")  # bid: one 500-won tick down
        row = daily(kis)[odno]
        assert (row_view(row), row["ord_dvsn_name"]) == (("04", "199500", "5", "0", "5", "N", "0", ""), "최우선지정가")
        [open_row] = revisable(kis).json()["output"]
        assert (open_row["odno"], open_row["ord_dvsn_cd"], open_row["ord_unpr"], open_row["psbl_qty"]) == (
            odno,
            "04",
            "199500",
            "5",
        )
        assert cash_and_held(kis, "005380") == (START_CASH, free_while_resting(199500, 5), 0)

        set_price(real_server, "005380", "199500")  # the price comes down to the bid: it fills there
        [filled] = take(1)
    assert notice(filled) == (odno, "", "0", "04", "0", "5", "199500", "2", "2")
    assert row_view(daily(kis)[odno]) == ("04", "199500", "5", "5", "0", "N", "0", "")
    assert revisable(kis).json()["output"] == []
    assert cash_and_held(kis, "005380") == (START_CASH - cost(199500, 5), START_CASH - cost(199500, 5), 5)


def test_top_limit_buy_when_revised_then_cancelled_then_as_a_limit_order(
    real_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = client(real_server, make_kis)
    set_price(real_server, "035420", "200000")
    first = placed(kis.order_cash("buy", "035420", 6, "0", ord_dvsn="04"))
    with notices(real_server, kis) as take:
        revised = placed(kis.rvsecncl(first["ODNO"], first["KRX_FWDG_ORD_ORGNO"], cancel=False, price="198000"))
        [moved] = take(1)
        assert notice(moved)[:7] == (revised["ODNO"], first["ODNO"], "1", "00", "0", "6", "198000")
        assert [r["odno"] for r in revisable(kis).json()["output"]] == [revised["ODNO"]]
        assert cash_and_held(kis, "035420")[1] == free_while_resting(198000, 6)

        cancel = placed(kis.rvsecncl(revised["ODNO"], revised["KRX_FWDG_ORD_ORGNO"], cancel=True))
        [cancelled] = take(1)
    assert notice(cancelled)[:6] == (cancel["ODNO"], revised["ODNO"], "2", "00", "0", "6")
    rows = daily(kis)
    assert row_view(rows[first["ODNO"]]) == ("04", "199500", "6", "0", "0", "N", "0", "")
    assert row_view(rows[cancel["ODNO"]])[4:] == ("0", "Y", "6", revised["ODNO"])
    assert revisable(kis).json()["output"] == []
    assert cash_and_held(kis, "035420") == (START_CASH, START_CASH, 0)


def test_limit_when_revised_to_top_limit_then_repriced_at_best_bid(
    real_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = client(real_server, make_kis)
    set_price(real_server, "068270", "180000")
    first = placed(kis.order_cash("buy", "068270", 3, "170000"))
    revised = placed(kis.rvsecncl(first["ODNO"], first["KRX_FWDG_ORD_ORGNO"], cancel=False, ord_dvsn="04"))
    assert row_view(daily(kis)[revised["ODNO"]]) == ("04", "179900", "3", "0", "3", "N", "0", first["ODNO"])
    assert cash_and_held(kis, "068270")[1] == free_while_resting(179900, 3)


@pytest.mark.parametrize("domain", ["real", "virtual"])
def test_top_limit_sell_when_booked_then_priced_at_best_ask(
    domain: str, request: pytest.FixtureRequest, make_kis: Callable[..., Kis]
) -> None:
    server: SimServer = request.getfixturevalue(f"{domain}_server")
    kis = client(server, make_kis)
    set_price(server, "051910", "300000")
    placed(kis.order_cash("buy", "051910", 2, "0", ord_dvsn="01"))
    odno = placed(kis.order_cash("sell", "051910", 2, "0", ord_dvsn="04"))["ODNO"]
    # The best ask is the current price, where this book trades: like a sell limit there, it fills.
    assert row_view(daily(kis)[odno]) == ("04", "300000", "2", "2", "0", "N", "0", "")
    assert cash_and_held(kis, "051910")[2] == 0


# ---------------------------------------------------------------------------- IOC and FOK


@pytest.mark.parametrize(
    ("ord_dvsn", "price", "condition"), [("11", "70000", "1"), ("12", "70000", "2"), ("13", "0", "1"), ("14", "0", "2")]
)
def test_ioc_fok_when_marketable_then_filled_whole_and_nothing_cancelled(
    real_server: SimServer, make_kis: Callable[..., Kis], ord_dvsn: str, price: str, condition: str
) -> None:
    kis = client(real_server, make_kis)
    set_price(real_server, "005930", "70000")
    with notices(real_server, kis) as take:
        odno = placed(kis.order_cash("buy", "005930", 8, price, ord_dvsn=ord_dvsn))["ODNO"]
        accepted, filled = take(2)
    assert notice(accepted)[:5] == (odno, "", "0", ord_dvsn, condition)
    assert notice(filled) == (odno, "", "0", ord_dvsn, condition, "8", "70000", "2", "2")
    rows = daily(kis)
    assert list(rows) == [odno]
    assert row_view(rows[odno])[2:] == ("8", "8", "0", "N", "0", "")
    assert rows[odno]["ccld_cndt_name"] == ("IOC" if condition == "1" else "FOK")
    assert cash_and_held(kis, "005930") == (START_CASH - cost(70000, 8), START_CASH - cost(70000, 8), 8)


@pytest.mark.parametrize("ord_dvsn", ["11", "12"])
def test_ioc_fok_limit_when_not_marketable_then_cancelled_whole_at_once(
    real_server: SimServer, make_kis: Callable[..., Kis], ord_dvsn: str
) -> None:
    kis = client(real_server, make_kis)
    set_price(real_server, "005930", "70000")
    with notices(real_server, kis) as take:
        odno = placed(kis.order_cash("buy", "005930", 4, "69000", ord_dvsn=ord_dvsn))["ODNO"]
        accepted, cancelled = take(2)
    condition = "1" if ord_dvsn == "11" else "2"
    assert notice(accepted) == (odno, "", "0", ord_dvsn, condition, "4", "69000", "1", "1")
    cancel_odno = cancelled[2]
    # A cancel confirmation, flagged as the IOC/FOK cancel (ACPT_YN 3).
    assert notice(cancelled) == (cancel_odno, odno, "2", ord_dvsn, condition, "4", "69000", "1", "3")
    rows = daily(kis)
    assert set(rows) == {odno, cancel_odno}
    assert row_view(rows[odno]) == (ord_dvsn, "69000", "4", "0", "0", "N", "0", "")
    assert row_view(rows[cancel_odno]) == (ord_dvsn, "69000", "4", "0", "0", "Y", "4", odno)
    assert rows[cancel_odno]["sll_buy_dvsn_cd_name"] == "매수취소*"
    assert admin_order(kis, odno)["state"] == "cancelled"
    assert admin_order(kis, odno)["cancelled_quantity"] == 4
    assert revisable(kis).json()["output"] == []
    assert cash_and_held(kis, "005930") == (START_CASH, START_CASH, 0)


@pytest.mark.parametrize(("ord_dvsn", "price"), [("11", "70000"), ("13", "0")])
def test_ioc_when_partial_fills_then_half_filled_and_rest_cancelled(
    partial_server: SimServer, make_kis: Callable[..., Kis], ord_dvsn: str, price: str
) -> None:
    kis = client(partial_server, make_kis)
    set_price(partial_server, "005930", "70000")
    with notices(partial_server, kis) as take:
        odno = placed(kis.order_cash("buy", "005930", 10, price, ord_dvsn=ord_dvsn))["ODNO"]
        accepted, filled, cancelled = take(3)
    assert notice(accepted)[:6] == (odno, "", "0", ord_dvsn, "1", "10")
    assert notice(filled) == (odno, "", "0", ord_dvsn, "1", "5", "70000", "2", "2")
    cancel_odno = cancelled[2]
    assert notice(cancelled)[:6] + notice(cancelled)[7:] == (cancel_odno, odno, "2", ord_dvsn, "1", "5", "1", "3")
    rows = daily(kis)
    assert row_view(rows[odno])[2:] == ("10", "5", "0", "N", "0", "")
    assert row_view(rows[cancel_odno])[2:] == ("5", "0", "0", "Y", "5", odno)
    order = admin_order(kis, odno)
    assert (order["filled_quantity"], order["cancelled_quantity"], order["remaining_quantity"]) == (5, 5, 0)
    assert revisable(kis).json()["output"] == []
    # The reservation (the upper limit for 13) is gone: only the five shares bought cost anything.
    assert cash_and_held(kis, "005930") == (START_CASH - cost(70000, 5), START_CASH - cost(70000, 5), 5)


@pytest.mark.parametrize(("ord_dvsn", "price"), [("12", "70000"), ("14", "0")])
def test_fok_when_partial_fills_then_cancelled_whole(
    partial_server: SimServer, make_kis: Callable[..., Kis], ord_dvsn: str, price: str
) -> None:
    kis = client(partial_server, make_kis)
    set_price(partial_server, "005930", "70000")
    with notices(partial_server, kis) as take:
        odno = placed(kis.order_cash("buy", "005930", 10, price, ord_dvsn=ord_dvsn))["ODNO"]
        accepted, cancelled = take(2)
    assert notice(accepted)[:6] == (odno, "", "0", ord_dvsn, "2", "10")
    cancel_odno = cancelled[2]
    assert notice(cancelled)[:6] + notice(cancelled)[7:] == (cancel_odno, odno, "2", ord_dvsn, "2", "10", "1", "3")
    rows = daily(kis)
    assert row_view(rows[odno])[2:] == ("10", "0", "0", "N", "0", "")
    assert row_view(rows[cancel_odno])[2:] == ("10", "0", "0", "Y", "10", odno)
    assert admin_order(kis, odno)["state"] == "cancelled"
    assert cash_and_held(kis, "005930") == (START_CASH, START_CASH, 0)


def test_ioc_sell_when_partial_fills_then_rest_cancelled_and_shares_sellable_again(
    partial_server: SimServer, make_kis: Callable[..., Kis]
) -> None:
    kis = client(partial_server, make_kis)
    set_price(partial_server, "000660", "180000")
    odno = placed(kis.order_cash("buy", "000660", 8, "179000"))["ODNO"]  # below the price: rests
    partial_server.admin("/admin/fill", {"odno": odno})  # all eight at 179,000
    assert cash_and_held(kis, "000660")[2] == 8
    sell = placed(kis.order_cash("sell", "000660", 8, "0", ord_dvsn="13"))["ODNO"]
    order = admin_order(kis, sell)
    assert (order["filled_quantity"], order["cancelled_quantity"], order["state"]) == (4, 4, "cancelled")
    assert cash_and_held(kis, "000660")[2] == 4
    assert placed(kis.order_cash("sell", "000660", 4, "180000"))["ODNO"]  # the cancelled four are free


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("ord_dvsn", ["11", "12", "13", "14"])
def test_ioc_fok_when_virtual_then_refused_as_unsupported(virtual: Kis, ord_dvsn: str) -> None:
    body = virtual.order_cash("buy", "005930", 1, "70000", ord_dvsn=ord_dvsn).json()
    assert (body["rt_cd"], body["msg_cd"]) == ("1", "KSIM0001")
    assert f"ORD_DVSN={ord_dvsn}" in body["msg1"]
    assert [o["state"] for o in virtual.orders()] == ["rejected"]


@pytest.mark.parametrize("ord_dvsn", ["02", "05", "06", "07", "15", "16", "21", "22", "99"])
def test_other_codes_when_real_then_refused_as_unsupported(real: Kis, ord_dvsn: str) -> None:
    response = real.order_cash("buy", "005930", 1, "70000", ord_dvsn=ord_dvsn)
    body = response.json()
    assert (response.status_code, body["rt_cd"], body["msg_cd"]) == (200, "1", "KSIM0001")
    assert body["msg1"].strip() == f"kissim 미지원 주문구분입니다. (ORD_DVSN={ord_dvsn})"
    assert "output" not in body or not body["output"]
    assert [o["state"] for o in real.orders()] == ["rejected"]
    assert real.daily_ccld().json()["output1"] == []
