"""KIS order-list rows (domestic inquire-daily-ccld, overseas inquire-ccnl) as one status shape,
``BrokerOrderStatus`` (pure functions; docs/kis-protocol.md §4.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from brokergateway.kis.values import dec, integer, order_number
from yquant.messages import Side

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
SIDES = {"01": Side.SELL, "02": Side.BUY}


@dataclass(frozen=True)
class BrokerOrderStatus:
    broker_order_id: str
    original_order_id: str
    ticker: str
    side: Side | None
    quantity: int
    price: Decimal
    filled_quantity: int
    filled_amount: Decimal
    average_price: Decimal
    remaining_quantity: int
    rejected: bool
    amendment: bool  # a revise or cancel record, not an order of its own
    placed_at: datetime | None
    branch: str = ""
    revision: bool = False  # an amendment that is a revise (a new price for what was left), not a cancel

    @property
    def done(self) -> bool:
        """Nothing left to fill: filled, cancelled, expired or rejected."""
        return self.remaining_quantity <= 0 or self.rejected


def stamp(day: object, moment: object, zone: ZoneInfo) -> datetime | None:
    text = f"{str(day or '').strip()}{str(moment or '').strip()}"
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=zone)
    except ValueError:
        return None


def _average(amount: Decimal, quantity: int, reported: Decimal) -> Decimal:
    if reported > 0:
        return reported
    return amount / quantity if quantity else Decimal(0)


def domestic_status(row: dict[str, Any]) -> BrokerOrderStatus:
    """A row of inquire-daily-ccld (docs/kis-protocol.md §4.5)."""
    original = order_number(row.get("orgn_odno"))
    filled = integer(row.get("tot_ccld_qty"))
    amount = dec(row.get("tot_ccld_amt"))
    return BrokerOrderStatus(
        broker_order_id=order_number(row.get("odno")),
        original_order_id=original,
        ticker=str(row.get("pdno", "")).strip(),
        side=SIDES.get(str(row.get("sll_buy_dvsn_cd", "")).strip()),
        quantity=integer(row.get("ord_qty")),
        price=dec(row.get("ord_unpr")),
        filled_quantity=filled,
        filled_amount=amount,
        average_price=_average(amount, filled, dec(row.get("avg_prvs"))),
        remaining_quantity=integer(row.get("rmn_qty")),
        rejected=integer(row.get("rjct_qty")) > 0,
        amendment=str(row.get("cncl_yn", "")).strip() == "Y" or original not in ("", "0"),
        placed_at=stamp(row.get("ord_dt"), row.get("ord_tmd"), SEOUL),
        branch=str(row.get("ord_gno_brno", "")).strip(),
        revision=original not in ("", "0") and str(row.get("cncl_yn", "")).strip() != "Y",
    )


def overseas_status(row: dict[str, Any]) -> BrokerOrderStatus:
    """A row of overseas inquire-ccnl (UNCERTAIN: field names from OT examples_llm inquire_ccnl)."""
    original = order_number(row.get("orgn_odno"))
    filled = integer(row.get("ft_ccld_qty"))
    amount = dec(row.get("ft_ccld_amt3"))
    state = str(row.get("prcs_stat_name", "")).strip()
    placed_at = stamp(row.get("dmst_ord_dt"), row.get("thco_ord_tmd"), SEOUL) or stamp(
        row.get("ord_dt"), row.get("ord_tmd"), NEW_YORK
    )
    return BrokerOrderStatus(
        broker_order_id=order_number(row.get("odno")),
        original_order_id=original,
        ticker=str(row.get("pdno", "")).strip().upper(),
        side=SIDES.get(str(row.get("sll_buy_dvsn_cd", "")).strip()),
        quantity=integer(row.get("ft_ord_qty")),
        price=dec(row.get("ft_ord_unpr3")),
        filled_quantity=filled,
        filled_amount=amount,
        average_price=_average(amount, filled, dec(row.get("ft_ccld_unpr3"))),
        remaining_quantity=integer(row.get("nccs_qty")),
        rejected=bool(str(row.get("rjct_rson", "")).strip()) or state == "거부",
        amendment=str(row.get("rvse_cncl_dvsn", "")).strip() in ("01", "02") or original not in ("", "0"),
        placed_at=placed_at,
        branch=str(row.get("ord_gno_brno", "")).strip(),
        revision=str(row.get("rvse_cncl_dvsn", "")).strip() == "01",
    )
