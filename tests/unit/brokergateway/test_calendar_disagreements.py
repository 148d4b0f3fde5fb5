"""Which days KIS's KRX calendar and ``yquant.markets`` disagree on (pure logic)."""

from __future__ import annotations

from datetime import date

from brokergateway.calendar_check import disagreements

CHRISTMAS = date(2026, 12, 25)  # a Friday, a KRX holiday in the holidays package
MONDAY = date(2026, 12, 21)
SATURDAY = date(2026, 12, 26)


def test_both_directions_are_reported_with_the_holiday_name() -> None:
    found = disagreements({MONDAY: False, CHRISTMAS: True, SATURDAY: False})
    assert [(d.day, d.kis_open, d.ours_open) for d in found] == [(MONDAY, False, True), (CHRISTMAS, True, False)]
    assert found[0].describe() == "2026-12-21: KIS says closed, yQuant's calendar says open"
    assert found[1].describe().startswith("2026-12-25: KIS says open, yQuant's calendar says closed (")
    assert found[1].holiday


def test_agreeing_days_are_not_reported() -> None:
    assert disagreements({MONDAY: True, CHRISTMAS: False, SATURDAY: False}) == []
