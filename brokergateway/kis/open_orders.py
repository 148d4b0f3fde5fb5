"""The account's open orders at KIS, as ``BrokerOrderStatus`` rows (docs/kis-protocol.md §4.7, §5.8).

* KRX, real domain: ``inquire-psbl-rvsecncl`` (TTTC0084R), every order with quantity left to
  revise or cancel (``psbl_qty``), 50 a page (FK100/NK100). KIS offers it on the real domain
  only, so a virtual account reads today's ``inquire-daily-ccld`` with ``CCLD_DVSN`` 02
  (unfilled) and keeps the rows with quantity left (``rmn_qty``).
* US: ``inquire-nccs`` (TTTS3018R / VTTS3018R), 100 a page (FK200/NK200); ``OVRS_EXCG_CD`` NASD
  stands for every US exchange on the real domain, the virtual domain is asked per exchange.

Every page is read (tr_cont F/M means more). Revise and cancel records are left out: an open
order is an order with shares left that KIS may still fill.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from brokergateway.kis import inquiry, trids
from brokergateway.kis.client import KisClient
from brokergateway.kis.order_list import NEW_YORK, SEOUL, SIDES, BrokerOrderStatus, domestic_status, stamp
from brokergateway.kis.values import dec, integer, order_number
from yquant.messages import Market

DOMESTIC_OPEN_PATH = f"{inquiry.DOMESTIC}/trading/inquire-psbl-rvsecncl"
OVERSEAS_OPEN_PATH = f"{inquiry.OVERSEAS}/trading/inquire-nccs"


def rvsecncl_status(row: dict[str, Any], today: datetime) -> BrokerOrderStatus:
    """A row of inquire-psbl-rvsecncl: inquire-daily-ccld's fields, with the quantity left to
    revise or cancel as what remains, and today's (Seoul) date, which its rows do not carry."""
    return replace(
        domestic_status(row),
        remaining_quantity=integer(row.get("psbl_qty")),
        rejected=False,
        amendment=False,  # a revised order is an order of its own here, with its own number
        revision=order_number(row.get("orgn_odno")) not in ("", "0"),  # open with an original: a revise
        placed_at=stamp(today.strftime("%Y%m%d"), row.get("ord_tmd"), SEOUL),
    )


def nccs_status(row: dict[str, Any]) -> BrokerOrderStatus:
    """A row of inquire-nccs (ord_dt / ord_tmd in New York time, as inquire-ccnl's)."""
    filled = integer(row.get("ft_ccld_qty"))
    amount = dec(row.get("ft_ccld_amt3"))
    return BrokerOrderStatus(
        broker_order_id=order_number(row.get("odno")),
        original_order_id=order_number(row.get("orgn_odno")),
        ticker=str(row.get("pdno", "")).strip().upper(),
        side=SIDES.get(str(row.get("sll_buy_dvsn_cd", "")).strip()),
        quantity=integer(row.get("ft_ord_qty")),
        price=dec(row.get("ft_ord_unpr3")),
        filled_quantity=filled,
        filled_amount=amount,
        average_price=dec(row.get("ft_ccld_unpr3")) or (amount / filled if filled else dec(0)),
        remaining_quantity=integer(row.get("nccs_qty")),
        rejected=bool(str(row.get("rjct_rson", "")).strip()),
        amendment=False,
        revision=order_number(row.get("orgn_odno")) not in ("", "0"),  # open with an original: a revise
        placed_at=stamp(row.get("ord_dt"), row.get("ord_tmd"), NEW_YORK),
        branch=str(row.get("ord_gno_brno", "")).strip(),
    )


async def domestic_open_orders(kis: KisClient) -> list[BrokerOrderStatus]:
    """KRX orders with shares left at KIS, newest first."""
    today = datetime.now(UTC).astimezone(SEOUL)
    if kis.env == "virtual":
        statuses: list[BrokerOrderStatus] = []
        async for rows in inquiry.daily_order_pages(kis, today.date(), unfilled_only=True, max_pages=200):
            statuses.extend(domestic_status(row) for row in rows)
        return [s for s in statuses if (s.revision or not s.amendment) and not s.done]

    def params(fk: str, nk: str) -> dict[str, str]:
        return {
            "CANO": kis.account.cano,
            "ACNT_PRDT_CD": kis.account.product_code,
            "INQR_DVSN_1": "0",  # by order, newest first
            "INQR_DVSN_2": "0",  # buys and sells
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }

    found: list[BrokerOrderStatus] = []
    tr_id = trids.open_orders_tr_id(kis.env, Market.KRX)
    async for page in kis.pages(DOMESTIC_OPEN_PATH, tr_id, params, 100, max_pages=200):
        found.extend(rvsecncl_status(row, today) for row in inquiry.rows_of(page.body.get("output")))
    return [s for s in found if s.broker_order_id and s.remaining_quantity > 0]


async def overseas_open_orders(kis: KisClient, markets: list[Market]) -> list[BrokerOrderStatus]:
    """US orders with shares left at KIS (``markets``: the US exchanges the account trades)."""
    exchanges = ["NASD"] if kis.env == "real" else sorted({trids.ORDER_EXCHANGE[m] for m in markets if m.is_us})
    seen: dict[str, BrokerOrderStatus] = {}
    for exchange in exchanges:

        def params(fk: str, nk: str, exchange: str = exchange) -> dict[str, str]:
            return {
                "CANO": kis.account.cano,
                "ACNT_PRDT_CD": kis.account.product_code,
                "OVRS_EXCG_CD": exchange,
                "SORT_SQN": "DS",
                "CTX_AREA_FK200": fk,
                "CTX_AREA_NK200": nk,
            }

        tr_id = trids.open_orders_tr_id(kis.env, Market.NASD)
        async for page in kis.pages(OVERSEAS_OPEN_PATH, tr_id, params, 200, max_pages=200):
            for row in inquiry.rows_of(page.body.get("output")):
                status = nccs_status(row)
                if status.broker_order_id and status.remaining_quantity > 0 and not status.rejected:
                    seen.setdefault(status.broker_order_id, status)
    return list(seen.values())
