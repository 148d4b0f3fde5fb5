"""Every tr_id the gateway sends, pinned against docs/kis-protocol.md (§4, §5, §8)."""

from __future__ import annotations

import pytest

from brokergateway.kis import trids
from yquant.messages import Market, Side

US_MARKETS = [Market.NASD, Market.NYSE, Market.AMEX]


@pytest.mark.parametrize(
    ("env", "side", "expected"),
    [
        ("real", Side.BUY, "TTTC0012U"),
        ("real", Side.SELL, "TTTC0011U"),
        ("virtual", Side.BUY, "VTTC0012U"),
        ("virtual", Side.SELL, "VTTC0011U"),
    ],
)
def test_domestic_cash_order_uses_the_new_tr_ids(env: trids.Env, side: Side, expected: str) -> None:
    assert trids.order_tr_id(env, Market.KRX, side) == expected


@pytest.mark.parametrize("market", US_MARKETS)
@pytest.mark.parametrize(
    ("env", "side", "expected"),
    [
        ("real", Side.BUY, "TTTT1002U"),
        ("real", Side.SELL, "TTTT1006U"),
        ("virtual", Side.BUY, "VTTT1002U"),
        ("virtual", Side.SELL, "VTTT1001U"),  # not "V" + TTTT1006U: the samples' bug (§5 note)
    ],
)
def test_us_order_tr_id_per_side_and_env(market: Market, env: trids.Env, side: Side, expected: str) -> None:
    assert trids.order_tr_id(env, market, side) == expected


@pytest.mark.parametrize("env", ["real", "virtual"])
@pytest.mark.parametrize("market", [Market.KRX, *US_MARKETS])
def test_a_sell_never_goes_out_with_a_buy_code(env: trids.Env, market: Market) -> None:
    buy, sell = trids.order_tr_id(env, market, Side.BUY), trids.order_tr_id(env, market, Side.SELL)
    assert buy != sell
    assert sell in {"TTTC0011U", "VTTC0011U", "TTTT1006U", "VTTT1001U"}
    assert buy in {"TTTC0012U", "VTTC0012U", "TTTT1002U", "VTTT1002U"}


def test_query_and_amend_tr_ids_match_the_protocol_notes() -> None:
    assert trids.DOMESTIC_REVISE_CANCEL == {"real": "TTTC0013U", "virtual": "VTTC0013U"}
    assert trids.DOMESTIC_BALANCE == {"real": "TTTC8434R", "virtual": "VTTC8434R"}
    assert trids.DOMESTIC_BUYABLE == {"real": "TTTC8908R", "virtual": "VTTC8908R"}
    assert trids.DOMESTIC_DAILY_CCLD == {"real": "TTTC0081R", "virtual": "VTTC0081R"}
    assert trids.DOMESTIC_PRICE == "FHKST01010100"
    assert trids.KRX_CALENDAR == "CTCA0903R"  # real domain only
    assert trids.OVERSEAS_REVISE_CANCEL == {"real": "TTTT1004U", "virtual": "VTTT1004U"}
    assert trids.OVERSEAS_BALANCE == {"real": "TTTS3012R", "virtual": "VTTS3012R"}
    assert trids.OVERSEAS_PRESENT_BALANCE == {"real": "CTRP6504R", "virtual": "VTRP6504R"}
    assert trids.OVERSEAS_PRICE == "HHDFS00000300"
    assert trids.OVERSEAS_ORDER_LIST == {"real": "TTTS3035R", "virtual": "VTTS3035R"}
    assert trids.DOMESTIC_OPEN_ORDERS == "TTTC0084R"  # real domain only
    assert trids.OVERSEAS_OPEN_ORDERS == {"real": "TTTS3018R", "virtual": "VTTS3018R"}


@pytest.mark.parametrize(
    ("env", "market", "expected"),
    [
        ("real", Market.KRX, "TTTC0084R"),  # inquire-psbl-rvsecncl
        ("virtual", Market.KRX, "VTTC0081R"),  # no psbl-rvsecncl there: inquire-daily-ccld, unfilled
        *[("real", market, "TTTS3018R") for market in US_MARKETS],  # inquire-nccs
        *[("virtual", market, "VTTS3018R") for market in US_MARKETS],
    ],
)
def test_open_orders_are_read_with_one_tr_id_per_domain_and_segment(
    env: trids.Env, market: Market, expected: str
) -> None:
    assert trids.open_orders_tr_id(env, market) == expected


def test_exchange_codes_differ_for_orders_and_quotes() -> None:
    assert trids.ORDER_EXCHANGE == {Market.NASD: "NASD", Market.NYSE: "NYSE", Market.AMEX: "AMEX"}
    assert trids.QUOTE_EXCHANGE == {Market.NASD: "NAS", Market.NYSE: "NYS", Market.AMEX: "AMS"}


@pytest.mark.parametrize(
    ("env", "markets", "expected"),
    [
        ("real", [Market.KRX, Market.NASD], ["H0STCNI0", "H0GSCNI0"]),
        ("virtual", [Market.KRX, Market.NYSE], ["H0STCNI9", "H0GSCNI9"]),
        ("real", [Market.KRX], ["H0STCNI0"]),
        ("virtual", [Market.AMEX], ["H0GSCNI9"]),
    ],
)
def test_execution_notice_feeds_per_env_and_markets(env: trids.Env, markets: list[Market], expected: list[str]) -> None:
    assert trids.execution_notice_tr_ids(env, markets) == expected
