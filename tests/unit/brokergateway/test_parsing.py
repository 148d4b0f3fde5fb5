"""KIS rows -> positions, cash, order statuses, quotes; the reconciliation match (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from brokergateway.accounts import unique_positions
from brokergateway.kis.balances import domestic_cash, domestic_positions, overseas_positions, usd_cash
from brokergateway.kis.notices import ExecutionNotice
from brokergateway.kis.order_list import SEOUL, domestic_status, overseas_status
from brokergateway.kis.prices import domestic_quote, overseas_quote
from brokergateway.kis.values import order_number
from brokergateway.order_match import matches
from brokergateway.tallies import NoticeTally, all_plausible, notice_amount, plausible
from yquant.errors import BrokerRejected
from yquant.messages import Market, OrderState, OrderType, Side
from yquant.orders import OrderRecord

NOW = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 10:00 KST


def record(**overrides: Any) -> OrderRecord:
    fields: dict[str, Any] = {
        "client_order_id": "yq-1",
        "account": "main",
        "market": Market.KRX,
        "ticker": "005930",
        "side": Side.BUY,
        "quantity": 3,
        "order_type": OrderType.MARKET,
        "strategy": "demo",
        "origin": "signal",
        "state": OrderState.SUBMITTING,
        "created_at": NOW,
        "updated_at": NOW,
        "submitted_at": NOW,
    }
    fields.update(overrides)
    return OrderRecord.model_validate(fields)


def daily_row(**overrides: str) -> dict[str, str]:
    row = {
        "ord_dt": "20260303",
        "ord_gno_brno": "06010",
        "odno": "0000001234",
        "orgn_odno": "",
        "sll_buy_dvsn_cd": "02",
        "pdno": "005930",
        "ord_qty": "3",
        "ord_unpr": "0",
        "ord_tmd": "100001",
        "tot_ccld_qty": "2",
        "avg_prvs": "70050",
        "tot_ccld_amt": "140100",
        "cncl_yn": "N",
        "rmn_qty": "1",
        "rjct_qty": "0",
    }
    row.update(overrides)
    return row


def test_domestic_positions_skip_sold_out_rows_and_keep_average_price_and_pnl() -> None:
    rows = [
        {"pdno": "005930", "prdt_name": "삼성전자", "hldg_qty": "10", "ord_psbl_qty": "8",
         "pchs_avg_pric": "70100.5000", "prpr": "71000", "evlu_amt": "710000", "evlu_pfls_amt": "8995",
         "evlu_pfls_rt": "1.28"},
        {"pdno": "000660", "hldg_qty": "0", "pchs_avg_pric": "0"},
    ]  # fmt: skip
    [position] = domestic_positions(rows)
    assert (position.ticker, position.quantity, position.sellable_quantity) == ("005930", 10, 8)
    assert position.average_price == Decimal("70100.50")
    assert (position.unrealized_pnl, position.return_pct, position.currency) == (Decimal(8995), Decimal("1.28"), "KRW")


def test_overseas_positions_map_exchange_codes_and_dedupe_across_exchanges() -> None:
    row = {"ovrs_pdno": "AAPL", "ovrs_cblc_qty": "5", "ord_psbl_qty": "5", "pchs_avg_pric": "190.1234",
           "now_pric2": "191.000000", "ovrs_stck_evlu_amt": "955.00000", "frcr_evlu_pfls_amt": "4.383",
           "evlu_pfls_rt": "0.46", "ovrs_excg_cd": "NASD"}  # fmt: skip
    positions = overseas_positions([row], Market.NYSE) + overseas_positions([row], Market.NASD)
    [position] = unique_positions(positions)
    assert (position.market, position.quantity, position.currency) == (Market.NASD, 5, "USD")
    assert position.average_price == Decimal("190.1234")


def test_cash_krw_is_the_d2_deposit_and_usd_comes_from_the_currency_rows() -> None:
    assert domestic_cash({"dnca_tot_amt": "100", "prvs_rcdl_excc_amt": "90"}) == Decimal(90)
    assert domestic_cash({"dnca_tot_amt": "100"}) == Decimal(100)
    currencies = [{"crcy_cd": "JPY", "frcr_dncl_amt_2": "5"}, {"crcy_cd": "USD", "frcr_dncl_amt_2": "1234.567"}]
    assert usd_cash(currencies) == Decimal("1234.57")
    assert usd_cash([]) is None


def test_order_numbers_compare_without_padding() -> None:
    assert order_number("0000001234") == order_number("1234") == "1234"
    assert order_number("") == ""
    assert order_number("0000000000") == "0"


def test_domestic_row_becomes_a_cumulative_status() -> None:
    status = domestic_status(daily_row())
    assert (status.broker_order_id, status.filled_quantity, status.remaining_quantity) == ("1234", 2, 1)
    assert status.filled_amount == Decimal(140100)
    assert not status.done
    assert not status.amendment
    assert status.placed_at == datetime(2026, 3, 3, 10, 0, 1, tzinfo=SEOUL)
    cancel = domestic_status(daily_row(odno="0000001300", orgn_odno="0000001234", cncl_yn="Y"))
    assert cancel.amendment
    assert domestic_status(daily_row(rmn_qty="0")).done


def test_overseas_row_uses_the_korean_order_time_and_ft_fields() -> None:
    row = {"odno": "0000002001", "orgn_odno": "", "sll_buy_dvsn_cd": "01", "pdno": "aapl", "ft_ord_qty": "4",
           "ft_ord_unpr3": "189.50000000", "ft_ccld_qty": "4", "ft_ccld_unpr3": "189.60000000",
           "ft_ccld_amt3": "758.40000", "nccs_qty": "0", "prcs_stat_name": "완료", "rjct_rson": "",
           "rvse_cncl_dvsn": "00", "ord_dt": "20260302", "ord_tmd": "200001", "dmst_ord_dt": "20260303",
           "thco_ord_tmd": "100001"}  # fmt: skip
    status = overseas_status(row)
    assert (status.ticker, status.side, status.quantity, status.price) == ("AAPL", Side.SELL, 4, Decimal("189.5"))
    assert status.done
    assert not status.rejected
    assert status.placed_at == datetime(2026, 3, 3, 10, 0, 1, tzinfo=SEOUL)
    assert overseas_status(row | {"dmst_ord_dt": ""}).placed_at is not None  # falls back to New York time


def test_reconciliation_matches_ticker_side_quantity_price_and_time() -> None:
    since = NOW - timedelta(seconds=30)
    status = domestic_status(daily_row())
    assert matches(record(), status, since)
    assert not matches(record(ticker="000660"), status, since)
    assert not matches(record(side=Side.SELL), status, since)
    assert not matches(record(quantity=4), status, since)
    assert not matches(record(), status, NOW + timedelta(minutes=1))  # placed before our POST: not ours
    limit = record(order_type=OrderType.LIMIT, limit_price=Decimal(70000))
    assert matches(limit, domestic_status(daily_row(ord_unpr="70000")), since)
    assert not matches(limit, domestic_status(daily_row(ord_unpr="70100")), since)
    assert not matches(record(), domestic_status(daily_row(orgn_odno="0000001000")), since)  # a cancel record


def test_us_market_order_matches_on_the_marketable_limit_it_was_sent_with() -> None:
    us = record(market=Market.NASD, ticker="AAPL", limit_price=Decimal("191.90"))
    row = {"odno": "1", "sll_buy_dvsn_cd": "02", "pdno": "AAPL", "ft_ord_qty": "3", "ft_ord_unpr3": "191.90000000",
           "nccs_qty": "3", "dmst_ord_dt": "20260303", "thco_ord_tmd": "100000"}  # fmt: skip
    assert matches(us, overseas_status(row), NOW - timedelta(seconds=30))
    assert not matches(us, overseas_status(row | {"ft_ord_unpr3": "191.80"}), NOW - timedelta(seconds=30))


def test_quotes_parse_kis_outputs_and_refuse_a_missing_price() -> None:
    krx = domestic_quote("005930", {"stck_prpr": "70100", "aspr_unit": "100", "stck_mxpr": "91000",
                                    "stck_llam": "49000", "stck_sdpr": "70000"}, NOW)  # fmt: skip
    assert (krx.price, krx.tick_size, krx.upper_limit, krx.currency) == (
        Decimal(70100),
        Decimal(100),
        Decimal(91000),
        "KRW",
    )
    us = overseas_quote(Market.NASD, "AAPL", {"last": "190.5000", "base": "189.0000"}, NOW)
    assert (us.price, us.tick_size, us.previous_close) == (Decimal("190.5"), Decimal("0.01"), Decimal(189))
    with pytest.raises(BrokerRejected):
        overseas_quote(Market.NASD, "NOPE", {"last": ""}, NOW)


def notice(**overrides: Any) -> ExecutionNotice:
    fields: dict[str, Any] = {
        "us": False, "account_number": "5000000101", "broker_order_id": "1234", "original_order_id": "",
        "side": Side.BUY, "amendment": "0", "ticker": "005930", "quantity": 1, "price": Decimal(70000),
        "time": "100001", "refused": False, "is_fill": True,
    }  # fmt: skip
    fields.update(overrides)
    return ExecutionNotice(**fields)


def test_a_notice_that_does_not_fit_the_order_is_not_applied() -> None:
    limit = record(state=OrderState.ACCEPTED, order_type=OrderType.LIMIT, limit_price=Decimal(70000))
    assert plausible(limit, notice())
    assert not plausible(limit, notice(ticker="000660"))
    assert not plausible(limit, notice(side=Side.SELL))
    assert not plausible(limit, notice(price=Decimal(70100)))  # a buy never fills above its limit
    assert not plausible(limit, notice(price=Decimal(700)))  # a price on another scale
    assert plausible(record(state=OrderState.ACCEPTED), notice(price=Decimal(99999)))  # a market order


def test_notice_amount_prices_new_shares_at_the_notices_not_applied_yet() -> None:
    fresh = record(state=OrderState.ACCEPTED, quantity=10)
    assert notice_amount(fresh, (4, Decimal(400)), (0, Decimal(0)), 4) == Decimal(400)
    tally, applied = (10, Decimal(400 + 6 * 110)), (4, Decimal(400))
    partly = record(state=OrderState.PARTIALLY_FILLED, quantity=10, filled_quantity=4, average_price=Decimal(100))
    assert notice_amount(partly, tally, applied, 10) == Decimal(1060)
    # A poll stored 7 shares (4 @ 100, 3 @ 110) before the notices of the last 6 were applied.
    polled = record(state=OrderState.PARTIALLY_FILLED, quantity=10, filled_quantity=7, average_price=Decimal(730) / 7)
    assert notice_amount(polled, tally, applied, 10) == Decimal(1060)


def test_a_tally_counts_each_notice_once_and_checks_every_notice() -> None:
    tally = NoticeTally()
    assert tally.add(notice(quantity=2))
    assert not tally.add(notice(quantity=2))  # the same notice again
    assert tally.add(notice(quantity=2, time="100002"))
    assert tally.snapshot == (4, Decimal(280000))
    market_order = record(state=OrderState.ACCEPTED)
    assert all_plausible(market_order, tally)
    tally.add(notice(ticker="000660", time="100003"))
    assert not all_plausible(market_order, tally)
