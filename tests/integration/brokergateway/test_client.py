"""The KIS client against the simulator over HTTP: every endpoint, each tr_id pinned (docs/kis-protocol.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from brokergateway.kis import inquiry, trading
from brokergateway.kis.client import http_pool
from tests.integration.kissim.helpers import SimServer
from yquant.messages import Market, OrderType, Side

from .conftest import MakeHarness

ORDER_CODES = {
    "real": {("KRX", "buy"): "TTTC0012U", ("KRX", "sell"): "TTTC0011U", ("US", "buy"): "TTTT1002U",
             ("US", "sell"): "TTTT1006U"},
    "virtual": {("KRX", "buy"): "VTTC0012U", ("KRX", "sell"): "VTTC0011U", ("US", "buy"): "VTTT1002U",
                ("US", "sell"): "VTTT1001U"},
}  # fmt: skip
QUERY_CODES = {
    "real": {"inquire-balance": {"TTTC8434R", "TTTS3012R"}, "inquire-present-balance": {"CTRP6504R"},
             "inquire-daily-ccld": {"TTTC0081R"}, "inquire-ccnl": {"TTTS3035R"}, "inquire-price": {"FHKST01010100"},
             "price": {"HHDFS00000300"}, "order-rvsecncl": {"TTTC0013U", "TTTT1004U"}},
    "virtual": {"inquire-balance": {"VTTC8434R", "VTTS3012R"}, "inquire-present-balance": {"VTRP6504R"},
                "inquire-daily-ccld": {"VTTC0081R"}, "inquire-ccnl": {"VTTS3035R"}, "inquire-price": {"FHKST01010100"},
                "price": {"HHDFS00000300"}, "order-rvsecncl": {"VTTC0013U", "VTTT1004U"}},
}  # fmt: skip
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(params=["real", "virtual"])
def any_sim(request: pytest.FixtureRequest, sim: SimServer, virtual_sim: SimServer) -> SimServer:
    return sim if request.param == "real" else virtual_sim


async def test_orders_go_out_with_the_tr_id_of_their_side_and_domain(
    any_sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(any_sim, start=False)
    kis = harness.gateway.workers[harness.alias].kis
    any_sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    any_sim.admin("/admin/price", {"ticker": "AAPL", "price": "190.00", "market": "US"})
    await trading.place_order(kis, Market.KRX, "005930", Side.BUY, 2, OrderType.MARKET, None)
    await trading.place_order(kis, Market.KRX, "005930", Side.SELL, 1, OrderType.LIMIT, Decimal(69000))
    await trading.place_order(kis, Market.NASD, "AAPL", Side.BUY, 3, OrderType.LIMIT, Decimal("191.00"))
    await trading.place_order(kis, Market.NASD, "AAPL", Side.SELL, 1, OrderType.LIMIT, Decimal("189.00"))
    booked = [(o["market"], o["side"], o["tr_id"], o["quantity"], o["state"]) for o in harness.sim_orders()]
    codes = ORDER_CODES[kis.env]
    assert booked == [
        ("KRX", "buy", codes[("KRX", "buy")], 2, "filled"),
        ("KRX", "sell", codes[("KRX", "sell")], 1, "filled"),
        ("NASD", "buy", codes[("US", "buy")], 3, "filled"),
        ("NASD", "sell", codes[("US", "sell")], 1, "filled"),  # a US sell never goes out as a buy
    ]


async def test_every_query_and_cancel_uses_its_pinned_tr_id(any_sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(any_sim, start=False)
    kis = harness.gateway.workers[harness.alias].kis
    any_sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    any_sim.admin("/admin/price", {"ticker": "IBM", "price": "220.00", "market": "US"})
    await trading.place_order(kis, Market.KRX, "005930", Side.BUY, 3, OrderType.MARKET, None)
    await trading.place_order(kis, Market.NYSE, "IBM", Side.BUY, 2, OrderType.LIMIT, Decimal("221.00"))
    resting = await trading.place_order(kis, Market.KRX, "005930", Side.BUY, 1, OrderType.LIMIT, Decimal(60000))
    resting_us = await trading.place_order(kis, Market.NYSE, "IBM", Side.BUY, 1, OrderType.LIMIT, Decimal("200.00"))

    rows, summary = await inquiry.domestic_balance(kis)
    assert [(r["pdno"], r["hldg_qty"]) for r in rows] == [("005930", "3")]
    assert Decimal(summary["prvs_rcdl_excc_amt"]) < Decimal(summary["dnca_tot_amt"])
    us_rows, _ = await inquiry.overseas_balance(kis, Market.NYSE)
    assert [(r["ovrs_pdno"], r["ovrs_cblc_qty"], r["ovrs_excg_cd"]) for r in us_rows] == [("IBM", "2", "NYSE")]
    present = await inquiry.overseas_present_balance(kis)
    assert [c["crcy_cd"] for c in present.currencies] == ["USD"]
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Seoul")).date()
    daily = await inquiry.daily_orders(kis, today, ticker="005930", side=Side.BUY)
    assert len(daily) == 2
    us_today = datetime.now(UTC).astimezone(NEW_YORK).date()
    us_orders = [
        row async for page in inquiry.overseas_order_pages(kis, us_today - timedelta(days=1), us_today) for row in page
    ]
    assert [row["pdno"] for row in us_orders] == ["IBM", "IBM"]
    assert (await inquiry.domestic_price(kis, "005930"))["stck_prpr"] == "70000"
    assert Decimal((await inquiry.overseas_price(kis, Market.NYSE, "IBM"))["last"]) == Decimal(220)
    await trading.cancel_order(kis, Market.KRX, "005930", resting.broker_order_id, resting.broker_org_no, 1)
    await trading.cancel_order(kis, Market.NYSE, "IBM", resting_us.broker_order_id, resting_us.broker_org_no, 1)
    states = {o["odno"]: o["state"] for o in harness.sim_orders()}
    assert states[resting.broker_order_id] == states[resting_us.broker_order_id] == "cancelled"

    for path_end, expected in QUERY_CODES[kis.env].items():
        used = set(harness.tr_ids("/" + path_end))
        assert used == expected, path_end
    quote_exchanges = [r.url.params["EXCD"] for r in harness.sent if r.url.path.endswith("/quotations/price")]
    assert quote_exchanges == ["NYS"]  # quotes use NAS/NYS/AMS, orders NASD/NYSE/AMEX


async def test_a_revision_moves_what_is_left_to_a_new_order_number_at_the_new_price(
    any_sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(any_sim, start=False)
    kis = harness.gateway.workers[harness.alias].kis
    any_sim.admin("/admin/price", {"ticker": "000660", "price": "200000"})
    any_sim.admin("/admin/price", {"ticker": "MSFT", "price": "420.00", "market": "US"})
    krx = await trading.place_order(kis, Market.KRX, "000660", Side.BUY, 5, OrderType.LIMIT, Decimal(190000))
    us = await trading.place_order(kis, Market.NASD, "MSFT", Side.BUY, 4, OrderType.LIMIT, Decimal("400.00"))

    # Part of the domestic order goes (a partial cancel keeps its number), then the rest moves up.
    await trading.cancel_order(kis, Market.KRX, "000660", krx.broker_order_id, krx.broker_org_no, 2, everything=False)
    krx_revised = await trading.revise_order(
        kis, Market.KRX, "000660", krx.broker_order_id, krx.broker_org_no, 3, Decimal(195000)
    )
    us_revised = await trading.revise_order(kis, Market.NASD, "MSFT", us.broker_order_id, "", 4, Decimal("410.50"))

    booked = {o["odno"]: o for o in harness.sim_orders()}
    assert krx_revised.broker_order_id != krx.broker_order_id
    assert us_revised.broker_order_id != us.broker_order_id
    for revised, original, quantity, price in [
        (krx_revised, krx, 3, "195000"),
        (us_revised, us, 4, "410.5"),
    ]:
        new = booked[revised.broker_order_id]
        assert (new["kind"], new["original_odno"], new["quantity"], new["remaining_quantity"]) == (
            "revise",
            original.broker_order_id,
            quantity,
            quantity,
        )
        assert Decimal(new["price"]) == Decimal(price)
        assert booked[original.broker_order_id]["remaining_quantity"] == 0
    amend = [r for r in harness.sent if r.url.path.endswith("/order-rvsecncl")]
    assert [r.headers["tr_id"] for r in amend] == [
        "VTTC0013U" if kis.env == "virtual" else "TTTC0013U",
        "VTTC0013U" if kis.env == "virtual" else "TTTC0013U",
        "VTTT1004U" if kis.env == "virtual" else "TTTT1004U",
    ]
    bodies = [orjson.loads(r.content) for r in amend]
    assert [(b["RVSE_CNCL_DVSN_CD"], b["ORD_QTY"], b.get("QTY_ALL_ORD_YN")) for b in bodies] == [
        ("02", "2", "N"),
        ("01", "0", "Y"),
        ("01", "4", None),
    ]
    assert (bodies[1]["ORD_UNPR"], bodies[2]["OVRS_ORD_UNPR"]) == ("195000", "410.5")


async def test_the_kis_pool_sends_no_cookie_back_whatever_the_server_sets() -> None:
    """KIS authenticates by headers: a cookie an answer sets (a load balancer's, say) must not ride
    along with the orders that follow."""
    heads: list[bytes] = []
    hung_up = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nSet-Cookie: lb=node-7; Path=/\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with http_pool(5.0) as http:
            for _ in range(2):
                response = await http.get(f"http://127.0.0.1:{port}/uapi/x")
                assert response.headers["set-cookie"] == "lb=node-7; Path=/"
            assert len(http.cookies) == 0
        await asyncio.wait_for(hung_up.wait(), 10)  # the pool closed its connection: the server's side ends
    finally:
        server.close()
        await server.wait_closed()
    assert len(heads) == 2
    assert all(b"\r\ncookie:" not in head.lower() for head in heads)
