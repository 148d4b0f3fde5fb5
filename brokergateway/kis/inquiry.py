"""KIS read-only calls: balances, order lists with fills, prices (docs/kis-protocol.md §4.3-4.6, §5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from brokergateway.kis import trids
from brokergateway.kis.client import KisClient
from yquant.messages import Market, Side

DOMESTIC = "/uapi/domestic-stock/v1"
OVERSEAS = "/uapi/overseas-stock/v1"
SIDE_CODES = {None: "00", Side.SELL: "01", Side.BUY: "02"}

Row = dict[str, Any]


@dataclass
class PresentBalance:
    """inquire-present-balance: holdings (output1), per-currency cash (output2), totals (output3)."""

    rows: list[Row] = field(default_factory=list)
    currencies: list[Row] = field(default_factory=list)
    totals: Row = field(default_factory=dict)


def rows_of(value: Any) -> list[Row]:
    """An ``output`` as a list of rows (KIS gives a list, one object, or nothing)."""
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return [value] if isinstance(value, dict) and value else []


def _summary(value: Any) -> Row:
    rows = rows_of(value)
    return rows[0] if rows else {}


async def domestic_balance(kis: KisClient) -> tuple[list[Row], Row]:
    """inquire-balance: holdings (output1) and the account summary (output2[0])."""

    def params(fk: str, nk: str) -> dict[str, str]:
        return {
            "CANO": kis.account.cano,
            "ACNT_PRDT_CD": kis.account.product_code,
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }

    rows: list[Row] = []
    summary: Row = {}
    async for page in kis.pages(f"{DOMESTIC}/trading/inquire-balance", trids.DOMESTIC_BALANCE[kis.env], params, 100):
        rows.extend(rows_of(page.body.get("output1")))
        summary = _summary(page.body.get("output2")) or summary
    return rows, summary


async def overseas_balance(kis: KisClient, market: Market) -> tuple[list[Row], Row]:
    """Overseas inquire-balance for one exchange (real: NASD means every US exchange)."""

    def params(fk: str, nk: str) -> dict[str, str]:
        return {
            "CANO": kis.account.cano,
            "ACNT_PRDT_CD": kis.account.product_code,
            "OVRS_EXCG_CD": trids.ORDER_EXCHANGE[market],
            "TR_CRCY_CD": "USD",
            "CTX_AREA_FK200": fk,
            "CTX_AREA_NK200": nk,
        }

    rows: list[Row] = []
    summary: Row = {}
    async for page in kis.pages(f"{OVERSEAS}/trading/inquire-balance", trids.OVERSEAS_BALANCE[kis.env], params, 200):
        rows.extend(rows_of(page.body.get("output1")))
        summary = _summary(page.body.get("output2")) or summary
    return rows, summary


async def overseas_present_balance(kis: KisClient) -> PresentBalance:
    """inquire-present-balance in foreign currency for the US: the USD cash is in output2."""
    params = {
        "CANO": kis.account.cano,
        "ACNT_PRDT_CD": kis.account.product_code,
        "WCRC_FRCR_DVSN_CD": "02",
        "NATN_CD": "840",
        "TR_MKET_CD": "00",
        "INQR_DVSN_CD": "00",
    }
    page = await kis.query(
        f"{OVERSEAS}/trading/inquire-present-balance", trids.OVERSEAS_PRESENT_BALANCE[kis.env], params
    )
    return PresentBalance(
        rows=rows_of(page.body.get("output1")),
        currencies=rows_of(page.body.get("output2")),
        totals=_summary(page.body.get("output3")),
    )


async def daily_order_pages(
    kis: KisClient,
    day: date,
    *,
    ticker: str = "",
    side: Side | None = None,
    newest_first: bool = True,
    unfilled_only: bool = False,
    max_pages: int = 20,
) -> AsyncIterator[list[Row]]:
    """inquire-daily-ccld for one day, page by page (a caller may stop once it found its orders);
    ``unfilled_only``: CCLD_DVSN 02, the orders with shares left."""
    stamp = day.strftime("%Y%m%d")

    def params(fk: str, nk: str) -> dict[str, str]:
        return {
            "CANO": kis.account.cano,
            "ACNT_PRDT_CD": kis.account.product_code,
            "INQR_STRT_DT": stamp,
            "INQR_END_DT": stamp,
            "SLL_BUY_DVSN_CD": SIDE_CODES[side],
            "INQR_DVSN": "00" if newest_first else "01",
            "PDNO": ticker,
            "CCLD_DVSN": "02" if unfilled_only else "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "EXCG_ID_DVSN_CD": "KRX",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }

    path = f"{DOMESTIC}/trading/inquire-daily-ccld"
    async for page in kis.pages(path, trids.DOMESTIC_DAILY_CCLD[kis.env], params, 100, max_pages):
        yield rows_of(page.body.get("output1"))


async def daily_orders(kis: KisClient, day: date, *, ticker: str = "", side: Side | None = None) -> list[Row]:
    rows: list[Row] = []
    async for page in daily_order_pages(kis, day, ticker=ticker, side=side):
        rows.extend(page)
    return rows


async def overseas_order_pages(
    kis: KisClient, start: date, end: date, *, max_pages: int = 20
) -> AsyncIterator[list[Row]]:
    """Overseas inquire-ccnl (UNCERTAIN, docs/kis-protocol.md §5.7), newest first where KIS sorts.

    Dates are New York dates. Virtual accounts accept only "every item" filters, so
    the caller filters rows itself; KIS cannot search this list by order number.
    """
    virtual = kis.env == "virtual"

    def params(fk: str, nk: str) -> dict[str, str]:
        return {
            "CANO": kis.account.cano,
            "ACNT_PRDT_CD": kis.account.product_code,
            "PDNO": "" if virtual else "%",
            "ORD_STRT_DT": start.strftime("%Y%m%d"),
            "ORD_END_DT": end.strftime("%Y%m%d"),
            "SLL_BUY_DVSN": "00",
            "CCLD_NCCS_DVSN": "00",
            "OVRS_EXCG_CD": "" if virtual else "NASD",
            "SORT_SQN": "DS",
            "ORD_DT": "",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "CTX_AREA_NK200": nk,
            "CTX_AREA_FK200": fk,
        }

    path = f"{OVERSEAS}/trading/inquire-ccnl"
    async for page in kis.pages(path, trids.OVERSEAS_ORDER_LIST[kis.env], params, 200, max_pages):
        yield rows_of(page.body.get("output") or page.body.get("output1"))


async def domestic_price(kis: KisClient, ticker: str, *, slot: str | None = None) -> Row:
    page = await kis.query(
        f"{DOMESTIC}/quotations/inquire-price",
        trids.DOMESTIC_PRICE,
        {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": ticker},
        slot=slot,
    )
    return _summary(page.body.get("output"))


async def overseas_price(kis: KisClient, market: Market, ticker: str, *, slot: str | None = None) -> Row:
    page = await kis.query(
        "/uapi/overseas-price/v1/quotations/price",
        trids.OVERSEAS_PRICE,
        {"AUTH": "", "EXCD": trids.QUOTE_EXCHANGE[market], "SYMB": ticker},
        slot=slot,
    )
    return _summary(page.body.get("output"))


async def krx_calendar(kis: KisClient, start: date, days: int, *, max_pages: int = 10) -> dict[date, bool]:
    """chk-holiday (CTCA0903R, real domain only): for each day from ``start``, whether KRX opens
    (``opnd_yn``), paged with CTX_AREA_FK / CTX_AREA_NK until ``days`` days are known."""
    found: dict[date, bool] = {}
    fk = nk = tr_cont = ""
    for _ in range(max_pages):
        params = {"BASS_DT": start.strftime("%Y%m%d"), "CTX_AREA_FK": fk, "CTX_AREA_NK": nk}
        page = await kis.query(f"{DOMESTIC}/quotations/chk-holiday", trids.KRX_CALENDAR, params, tr_cont)
        for row in rows_of(page.body.get("output")):
            text = str(row.get("bass_dt", "")).strip()
            try:
                day = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
            except ValueError:
                continue
            found[day] = str(row.get("opnd_yn", "")).strip().upper() == "Y"
        if len(found) >= days or not page.has_more:
            break
        fk, nk, tr_cont = str(page.body.get("ctx_area_fk", "")), str(page.body.get("ctx_area_nk", "")), "N"
    return {day: is_open for day, is_open in sorted(found.items()) if day < start + timedelta(days=days)}
