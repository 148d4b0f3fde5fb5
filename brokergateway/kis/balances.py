"""KIS balance answers (inquire-balance, overseas inquire-balance and inquire-present-balance) as
the project's positions and cash (pure functions; docs/kis-protocol.md §4.3-4.4)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from brokergateway.kis.values import dec, integer
from yquant.messages import Market, Position


def domestic_positions(rows: Iterable[dict[str, Any]]) -> list[Position]:
    positions = []
    for row in rows:
        quantity = integer(row.get("hldg_qty"))
        if quantity <= 0:
            continue  # KIS keeps sold-out rows until D+2
        positions.append(
            Position(
                market=Market.KRX,
                ticker=str(row.get("pdno", "")).strip(),
                name=str(row.get("prdt_name", "")).strip(),
                quantity=quantity,
                sellable_quantity=integer(row.get("ord_psbl_qty")),
                average_price=dec(row.get("pchs_avg_pric")).quantize(Decimal("0.01")),
                current_price=dec(row.get("prpr")),
                market_value=dec(row.get("evlu_amt")),
                unrealized_pnl=dec(row.get("evlu_pfls_amt")),
                return_pct=dec(row.get("evlu_pfls_rt")),
                currency="KRW",
            )
        )
    return positions


US_MARKETS = {
    "NASD": Market.NASD,
    "NAS": Market.NASD,
    "NYSE": Market.NYSE,
    "NYS": Market.NYSE,
    "AMEX": Market.AMEX,
    "AMS": Market.AMEX,
}


def overseas_positions(rows: Iterable[dict[str, Any]], default_market: Market) -> list[Position]:
    positions = []
    for row in rows:
        quantity = integer(row.get("ovrs_cblc_qty"))
        if quantity <= 0:
            continue
        market = US_MARKETS.get(str(row.get("ovrs_excg_cd", "")).strip().upper(), default_market)
        positions.append(
            Position(
                market=market,
                ticker=str(row.get("ovrs_pdno", "")).strip(),
                name=str(row.get("ovrs_item_name", "")).strip(),
                quantity=quantity,
                sellable_quantity=integer(row.get("ord_psbl_qty")),
                average_price=dec(row.get("pchs_avg_pric")).quantize(Decimal("0.0001")),
                current_price=dec(row.get("now_pric2")),
                market_value=dec(row.get("ovrs_stck_evlu_amt")),
                unrealized_pnl=dec(row.get("frcr_evlu_pfls_amt")),
                return_pct=dec(row.get("evlu_pfls_rt")),
                currency="USD",
            )
        )
    return positions


def domestic_cash(summary: dict[str, Any]) -> Decimal:
    """Cash that settles by D+2 (what the account can really spend)."""
    if "prvs_rcdl_excc_amt" in summary:
        return dec(summary.get("prvs_rcdl_excc_amt"))
    return dec(summary.get("dnca_tot_amt"))


def usd_cash(currencies: Iterable[dict[str, Any]]) -> Decimal | None:
    """The USD deposit from inquire-present-balance's per-currency rows (None if absent)."""
    for row in currencies:
        if str(row.get("crcy_cd", "")).strip().upper() != "USD":
            continue
        for name in ("frcr_dncl_amt_2", "frcr_drwg_psbl_amt_1"):
            if str(row.get(name, "")).strip():
                return dec(row.get(name)).quantize(Decimal("0.01"))
    return None
