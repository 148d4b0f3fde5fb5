"""Every sizing policy, for buys and sells; sells never above the holding."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordermanager import denials
from ordermanager.denials import Denial
from ordermanager.sizing import (
    SizingInput,
    SizingPolicy,
    needs_price,
    parse_policy,
    policy_for,
    size_order,
    strategy_problems,
)
from yquant.messages import QuantityType, Side
from yquant.settings import StrategySettings


def strategy(**fields: object) -> StrategySettings:
    return StrategySettings.model_validate({"accounts": ["main"], **fields})


def buy(policy: SizingPolicy, **fields: object) -> SizingInput:
    base = SizingInput(
        side=Side.BUY, policy=policy, currency="KRW", price=Decimal(70_000), equity=Decimal(10_000_000), held=0
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def sell(policy: SizingPolicy, held: int, **fields: object) -> SizingInput:
    return replace(buy(policy, side=Side.SELL, held=held), **fields)  # type: ignore[arg-type]


def test_fixed_policy_buys_the_configured_quantity() -> None:
    assert size_order(buy(SizingPolicy.FIXED, strategy=strategy(sizing="fixed", quantity=7))) == 7


def test_fixed_policy_sell_is_capped_at_the_holding() -> None:
    assert size_order(sell(SizingPolicy.FIXED, 3, strategy=strategy(sizing="fixed", quantity=7))) == 3


def test_amount_policy_turns_cash_into_whole_shares() -> None:
    result = size_order(buy(SizingPolicy.AMOUNT, strategy=strategy(sizing="amount", amount=Decimal(1_000_000))))
    assert result == 14  # 1,000,000 / 70,000 = 14.28


def test_amount_policy_without_price_is_denied_not_assumed() -> None:
    data = buy(SizingPolicy.AMOUNT, price=None, strategy=strategy(sizing="amount", amount=Decimal(1_000_000)))
    result = size_order(data)
    assert isinstance(result, Denial)
    assert result.code == denials.NO_PRICE


def test_amount_in_another_currency_is_denied() -> None:
    data = buy(SizingPolicy.AMOUNT, strategy=strategy(sizing="amount", amount=Decimal(1000), currency="USD"))
    result = size_order(data)
    assert isinstance(result, Denial)
    assert result.code == denials.CURRENCY_MISMATCH


def test_amount_below_one_share_is_denied() -> None:
    result = size_order(buy(SizingPolicy.AMOUNT, strategy=strategy(sizing="amount", amount=Decimal(50_000))))
    assert isinstance(result, Denial)
    assert result.code == denials.NO_QUANTITY


def test_percent_of_equity_uses_the_account_equity() -> None:
    data = buy(SizingPolicy.PERCENT_EQUITY, strategy=strategy(sizing="percent_of_equity", percent=Decimal(10)))
    assert size_order(data) == 14  # 10 % of 10,000,000 / 70,000


def test_percent_of_equity_without_snapshot_is_denied() -> None:
    data = buy(
        SizingPolicy.PERCENT_EQUITY, equity=None, strategy=strategy(sizing="percent_of_equity", percent=Decimal(10))
    )
    result = size_order(data)
    assert isinstance(result, Denial)
    assert result.code == denials.NO_ACCOUNT_SNAPSHOT


def test_percent_of_position_sells_part_of_the_holding() -> None:
    data = sell(SizingPolicy.PERCENT_POSITION, 25, strategy=strategy(percent=Decimal(50)))
    assert size_order(data) == 12


def test_percent_of_position_buy_without_position_is_denied() -> None:
    result = size_order(buy(SizingPolicy.PERCENT_POSITION, strategy=strategy(percent=Decimal(50))))
    assert isinstance(result, Denial)
    assert result.code == denials.NO_POSITION


def test_risk_policy_divides_risk_by_stop_distance() -> None:
    rules = strategy(sizing="risk", risk_amount=Decimal(100_000), stop_loss_percent=Decimal(2))
    # stop distance 2 % of 70,000 = 1,400 -> 100,000 / 1,400 = 71.4
    assert size_order(buy(SizingPolicy.RISK, strategy=rules)) == 71


def test_risk_policy_prefers_the_alerts_stop_price() -> None:
    rules = strategy(sizing="risk", risk_amount=Decimal(100_000), stop_loss_percent=Decimal(2))
    assert size_order(buy(SizingPolicy.RISK, strategy=rules, stop_price=Decimal(65_000))) == 20


def test_risk_policy_is_capped_by_the_allocation() -> None:
    rules = strategy(
        sizing="risk", risk_percent=Decimal(1), stop_loss_percent=Decimal(1), allocation_percent=Decimal(20)
    )
    # risk 100,000 / 700 = 142 shares, but 20 % of equity = 2,000,000 -> 28 shares
    assert size_order(buy(SizingPolicy.RISK, strategy=rules)) == 28


def test_risk_policy_without_a_stop_is_denied() -> None:
    result = size_order(buy(SizingPolicy.RISK, strategy=strategy(sizing="risk", risk_amount=Decimal(100_000))))
    assert isinstance(result, Denial)
    assert "stop" in result.reason


def test_risk_policy_sell_closes_the_position() -> None:
    rules = strategy(sizing="risk", risk_amount=Decimal(100_000), stop_loss_percent=Decimal(2))
    assert size_order(sell(SizingPolicy.RISK, 9, strategy=rules)) == 9


def test_close_policy_sells_everything_and_refuses_buys() -> None:
    assert size_order(sell(SizingPolicy.CLOSE, 11)) == 11
    refused = size_order(buy(SizingPolicy.CLOSE))
    assert isinstance(refused, Denial)
    assert refused.code == denials.SIZING


def test_alert_quantity_is_used_and_fractions_round_down() -> None:
    assert size_order(buy(SizingPolicy.ALERT, quantity=Decimal("3.9"))) == 3


def test_alert_fraction_below_one_share_is_denied() -> None:
    result = size_order(buy(SizingPolicy.ALERT, quantity=Decimal("0.4")))
    assert isinstance(result, Denial)
    assert result.code == denials.NO_QUANTITY


def test_alert_amount_and_percent_types() -> None:
    assert size_order(buy(SizingPolicy.ALERT, quantity=Decimal(700_000), quantity_type=QuantityType.AMOUNT)) == 10
    percent = buy(SizingPolicy.ALERT, quantity=Decimal(7), quantity_type=QuantityType.PERCENT_EQUITY)
    assert size_order(percent) == 10
    part = sell(SizingPolicy.ALERT, 10, quantity=Decimal(30), quantity_type=QuantityType.PERCENT_POSITION)
    assert size_order(part) == 3


def test_alert_without_quantity_falls_back_to_the_strategy_or_whole_position() -> None:
    assert size_order(buy(SizingPolicy.ALERT, strategy=strategy(quantity=4))) == 4
    assert size_order(sell(SizingPolicy.ALERT, 6)) == 6
    refused = size_order(buy(SizingPolicy.ALERT))
    assert isinstance(refused, Denial)
    assert refused.code == denials.NO_QUANTITY


def test_sell_larger_than_holding_is_sized_to_the_holding() -> None:
    assert size_order(sell(SizingPolicy.ALERT, 5, quantity=Decimal(50))) == 5


def test_sell_with_nothing_held_is_denied() -> None:
    result = size_order(sell(SizingPolicy.ALERT, 0, quantity=Decimal(5)))
    assert isinstance(result, Denial)
    assert result.code == denials.NO_POSITION


@given(
    held=st.integers(min_value=1, max_value=10_000),
    asked=st.decimals(min_value=0, max_value=1_000_000, places=3, allow_nan=False),
)
def test_a_sell_never_exceeds_the_holding(held: int, asked: Decimal) -> None:
    result = size_order(sell(SizingPolicy.ALERT, held, quantity=asked))
    if not isinstance(result, Denial):
        assert 0 < result <= held


def test_needs_price_only_for_money_based_sizing() -> None:
    assert needs_price(buy(SizingPolicy.AMOUNT))
    assert needs_price(buy(SizingPolicy.RISK))
    assert not needs_price(sell(SizingPolicy.RISK, 1))
    assert not needs_price(sell(SizingPolicy.FIXED, 1))
    assert needs_price(sell(SizingPolicy.ALERT, 1, quantity=Decimal(1), quantity_type=QuantityType.AMOUNT))


def test_policy_for_uses_sell_sizing_for_sells() -> None:
    rules = strategy(sizing="amount", amount=Decimal(1), sell_sizing="close")
    assert policy_for(rules, Side.BUY) is SizingPolicy.AMOUNT
    assert policy_for(rules, Side.SELL) is SizingPolicy.CLOSE
    assert policy_for(None, Side.BUY) is SizingPolicy.ALERT


def test_unknown_policy_is_refused_with_the_options() -> None:
    with pytest.raises(ValueError, match="percent_of_equity"):
        parse_policy("kelly")


def test_strategy_problems_name_what_is_missing() -> None:
    problems = strategy_problems("swing", strategy(sizing="amount", sell_sizing="fixed"))
    assert any("'amount'" in p for p in problems)
    assert any("'quantity'" in p for p in problems)
    assert strategy_problems("ok", strategy(sizing="risk", risk_percent=Decimal(1))) == []
