"""Exit rules: stop-loss, take-profit and trailing stop on prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from yquant.exit_rules import ExitRule, build_rule, evaluate, raise_high_water
from yquant.messages import Market

NOW = datetime(2025, 6, 10, 1, 0, tzinfo=UTC)


def rule(**fields: object) -> ExitRule:
    built = build_rule(
        account="main",
        market=Market.KRX,
        ticker="005930",
        strategy="swing",
        entry_price=Decimal(70_000),
        now=NOW,
        **fields,  # type: ignore[arg-type]
    )
    assert built is not None
    return built


def test_percentages_become_prices_of_the_entry() -> None:
    built = rule(stop_loss_percent=Decimal(3), take_profit_percent=Decimal(10))
    assert built.stop_loss_price == Decimal(67_900)
    assert built.take_profit_price == Decimal(77_000)


def test_a_price_wins_over_a_percentage() -> None:
    assert rule(stop_loss_price=Decimal(65_000), stop_loss_percent=Decimal(3)).stop_loss_price == Decimal(65_000)


def test_nothing_set_means_no_rule() -> None:
    assert (
        build_rule(account="main", market=Market.KRX, ticker="005930", strategy="s", entry_price=Decimal(1), now=NOW)
        is None
    )


def test_stop_loss_triggers_at_or_below_the_stop() -> None:
    stop = rule(stop_loss_price=Decimal(68_000))
    assert evaluate(stop, Decimal(68_100)) is None
    hit = evaluate(stop, Decimal(68_000))
    assert hit is not None
    assert hit.kind == "stop_loss"
    assert hit.reason == "stop-loss: price 68000 at or below 68000"


def test_take_profit_triggers_at_or_above() -> None:
    target = rule(take_profit_price=Decimal(75_000))
    assert evaluate(target, Decimal(74_900)) is None
    hit = evaluate(target, Decimal(75_500))
    assert hit is not None
    assert hit.kind == "take_profit"


def test_trailing_stop_follows_the_peak() -> None:
    trailing = rule(trailing_percent=Decimal(5))
    assert evaluate(trailing, Decimal(67_000)) is None  # 5 % below 70,000 is 66,500
    raised = raise_high_water(trailing, Decimal(80_000))
    assert raised is not None
    assert raised.high_water == Decimal(80_000)
    assert raise_high_water(raised, Decimal(79_000)) is None
    hit = evaluate(raised, Decimal(75_900))  # 5 % below 80,000 is 76,000
    assert hit is not None
    assert hit.kind == "trailing_stop"


def test_trailing_amount() -> None:
    trailing = rule(trailing_amount=Decimal(2_000))
    assert evaluate(trailing, Decimal(68_100)) is None
    assert evaluate(trailing, Decimal(68_000)) is not None


def test_high_water_only_for_trailing_rules() -> None:
    assert raise_high_water(rule(stop_loss_price=Decimal(1)), Decimal(90_000)) is None


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        rule(stop_loss_price=Decimal(-1))
    with pytest.raises(ValueError, match="below 100"):
        rule(trailing_percent=Decimal(100))
