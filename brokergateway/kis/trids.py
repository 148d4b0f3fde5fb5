"""KIS transaction ids (tr_id), pinned against docs/kis-protocol.md.

Real ids start with T/C/H; virtual ids replace the leading T with V, except where KIS
says otherwise (the virtual US sell is VTTT1001U, not VTTT1006U).
"""

from __future__ import annotations

from typing import Literal

from yquant.messages import Market, Side

Env = Literal["real", "virtual"]

DOMESTIC_ORDER = {
    ("real", Side.BUY): "TTTC0012U",
    ("real", Side.SELL): "TTTC0011U",
    ("virtual", Side.BUY): "VTTC0012U",
    ("virtual", Side.SELL): "VTTC0011U",
}
DOMESTIC_REVISE_CANCEL = {"real": "TTTC0013U", "virtual": "VTTC0013U"}
DOMESTIC_BALANCE = {"real": "TTTC8434R", "virtual": "VTTC8434R"}
DOMESTIC_BUYABLE = {"real": "TTTC8908R", "virtual": "VTTC8908R"}
KRX_CALENDAR = "CTCA0903R"  # chk-holiday: real domain only
DOMESTIC_DAILY_CCLD = {"real": "TTTC0081R", "virtual": "VTTC0081R"}
DOMESTIC_PRICE = "FHKST01010100"
# inquire-psbl-rvsecncl, the open (revisable) orders: real domain only (older TTTC8036R); a virtual
# account reads its open orders from inquire-daily-ccld with CCLD_DVSN 02 (unfilled) instead.
DOMESTIC_OPEN_ORDERS = "TTTC0084R"

OVERSEAS_ORDER = {
    ("real", Side.BUY): "TTTT1002U",
    ("real", Side.SELL): "TTTT1006U",
    ("virtual", Side.BUY): "VTTT1002U",
    ("virtual", Side.SELL): "VTTT1001U",
}
OVERSEAS_REVISE_CANCEL = {"real": "TTTT1004U", "virtual": "VTTT1004U"}
OVERSEAS_BALANCE = {"real": "TTTS3012R", "virtual": "VTTS3012R"}
OVERSEAS_PRESENT_BALANCE = {"real": "CTRP6504R", "virtual": "VTRP6504R"}
OVERSEAS_PRICE = "HHDFS00000300"
# UNCERTAIN (docs/kis-protocol.md §5.7): the overseas order list with fills, OT examples_llm inquire_ccnl.
OVERSEAS_ORDER_LIST = {"real": "TTTS3035R", "virtual": "VTTS3035R"}
OVERSEAS_OPEN_ORDERS = {"real": "TTTS3018R", "virtual": "VTTS3018R"}  # inquire-nccs


def open_orders_tr_id(env: Env, market: Market) -> str:
    """The tr_id that reads the open orders of ``market``'s segment (docs/kis-protocol.md §4.7, §5.8):
    inquire-psbl-rvsecncl on the real domain; inquire-daily-ccld (CCLD_DVSN 02) on the virtual
    one, which offers no list of revisable orders; inquire-nccs for the US on both."""
    if market.is_us:
        return OVERSEAS_OPEN_ORDERS[env]
    return DOMESTIC_OPEN_ORDERS if env == "real" else DOMESTIC_DAILY_CCLD[env]


EXECUTION_NOTICE = {"real": "H0STCNI0", "virtual": "H0STCNI9"}
OVERSEAS_EXECUTION_NOTICE = {"real": "H0GSCNI0", "virtual": "H0GSCNI9"}

# Orders and balances use NASD/NYSE/AMEX; quotes use NAS/NYS/AMS.
QUOTE_EXCHANGE = {Market.NASD: "NAS", Market.NYSE: "NYS", Market.AMEX: "AMS"}
ORDER_EXCHANGE = {Market.NASD: "NASD", Market.NYSE: "NYSE", Market.AMEX: "AMEX"}


def order_tr_id(env: Env, market: Market, side: Side) -> str:
    table = DOMESTIC_ORDER if market is Market.KRX else OVERSEAS_ORDER
    return table[(env, side)]


def execution_notice_tr_ids(env: Env, markets: list[Market]) -> list[str]:
    """The WebSocket execution-notice feeds an account with ``markets`` needs."""
    tr_ids = []
    if Market.KRX in markets:
        tr_ids.append(EXECUTION_NOTICE[env])
    if any(market.is_us for market in markets):
        tr_ids.append(OVERSEAS_EXECUTION_NOTICE[env])
    return tr_ids
