"""The alert body: TradingView's templates, yQuant's fields, and the idempotency key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from tests.unit.webhook import tradingview
from webhook.normalise import AlertError
from webhook.schema import Alert, dedupe_key_of, derive_signal_id, to_signal
from yquant.messages import Market, OrderType, QuantityType, SignalAction

RECEIVED_AT = datetime(2026, 1, 5, 0, 15, 2, tzinfo=UTC)


def alert_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "secret": "s3cret",
        "strategy": "swing-kr",
        "ticker": "005930",
        "exchange": "KRX",
        "action": "buy",
        "quantity": 1,
        "fired_at": "2026-01-05T00:15:00Z",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def test_docs_hold_a_strategy_and_an_indicator_template() -> None:
    assert {"strategy", "indicator"} <= set(tradingview.templates())


def test_strategy_template_filled_by_tradingview_becomes_a_signal() -> None:
    template = tradingview.templates()["strategy"]
    message = tradingview.fill(template, tradingview.strategy_fill(timenow="2026-01-05T00:15:00Z"))
    assert tradingview.content_type(template).startswith("text/plain")  # bare numeric placeholders
    signal = to_signal(Alert.model_validate(json.loads(message)), RECEIVED_AT)
    assert (signal.strategy, signal.ticker, signal.market, signal.action) == (
        "demo",
        "005930",
        Market.KRX,
        SignalAction.BUY,
    )
    assert signal.quantity == Decimal(3)
    assert signal.price == Decimal(71200)
    assert signal.order_id == "Long entry"
    assert signal.comment == "breakout"
    assert signal.market_position == "long"
    assert signal.position_size == Decimal(3)
    assert signal.fired_at == datetime(2026, 1, 5, 0, 15, tzinfo=UTC)
    assert signal.received_at == RECEIVED_AT


def test_strategy_exit_fill_with_fractional_contracts_and_a_flat_position() -> None:
    values = tradingview.strategy_fill(
        **{
            "strategy.order.action": "sell",
            "strategy.order.contracts": "1.5",
            "strategy.market_position": "flat",
            "strategy.position_size": "0",
            "strategy.order.id": "Exit",
        }
    )
    alert = Alert.model_validate(json.loads(tradingview.fill(tradingview.templates()["strategy"], values)))
    signal = to_signal(alert, RECEIVED_AT)
    assert signal.action is SignalAction.SELL
    assert signal.quantity == Decimal("1.5")
    assert signal.market_position == "flat"


def test_indicator_template_on_a_delayed_us_feed_becomes_a_signal() -> None:
    message = tradingview.fill(tradingview.templates()["indicator"], tradingview.indicator_fill())
    alert = Alert.model_validate(json.loads(message))
    signal = to_signal(alert, RECEIVED_AT)
    assert (signal.ticker, signal.market, signal.action) == ("AAPL", Market.NASD, SignalAction.BUY)
    assert signal.quantity == Decimal(10)
    assert signal.quantity_type is QuantityType.FIXED
    assert signal.order_type is OrderType.MARKET
    assert signal.price == Decimal("187.44")  # exactly, not 187.43999999999999772626324556767940521240234375
    assert alert.meta == {"rsi": 28.61}


def test_unquoted_placeholder_that_became_a_word_is_not_json() -> None:
    template = tradingview.templates()["strategy"]
    message = tradingview.fill(template, tradingview.strategy_fill(**{"strategy.order.contracts": "NaN"}))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(message)  # what the webhook parses with: NaN is not JSON


def test_camel_case_spellings_are_read() -> None:
    alert = Alert.model_validate(
        alert_body(quantityType="percent_of_equity", orderType="limit", price=70000, stopLoss=65000, takeProfit=80000)
    )
    assert alert.quantity_type is QuantityType.PERCENT_EQUITY
    assert alert.order_type is OrderType.LIMIT
    assert (alert.stop_loss, alert.take_profit) == (Decimal(65000), Decimal(80000))


def test_timenow_is_read_as_fired_at() -> None:
    alert = Alert.model_validate(alert_body(fired_at=None, timenow="2026-01-05T00:15:00Z"))
    assert alert.fired_at == datetime(2026, 1, 5, 0, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "field", "kind"),
    [
        ({"quantiy": 1}, "quantiy", "extra_forbidden"),
        ({"timenow": "2026-01-05T00:15:00Z"}, "timenow", "extra_forbidden"),
        ({"ticker": None}, "ticker", "missing"),
        ({"strategy": None}, "strategy", "missing"),
        ({"action": "hold"}, "action", "value_error"),
        ({"quantity": -1}, "quantity", "greater_than_equal"),
        ({"quantity": True}, "quantity", "value_error"),
        ({"quantity": "NaN"}, "quantity", "finite_number"),
        ({"price": "Infinity"}, "price", "finite_number"),
        ({"price": 0}, "price", "greater_than"),
        ({"price": "1e999"}, "price", "decimal_max_digits"),
        ({"market_position": "sideways"}, "market_position", "literal_error"),
        ({"strategy": "no spaces please"}, "strategy", "value_error"),
        ({"order_type": "stop"}, "order_type", "value_error"),
        ({"fired_at": "last tuesday"}, "fired_at", "value_error"),
        ({"meta": ["not", "an", "object"]}, "meta", "dict_type"),
        ({"comment": "x" * 257}, "comment", "string_too_long"),
    ],
)
def test_malformed_field_names_the_field(overrides: dict[str, Any], field: str, kind: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Alert.model_validate(alert_body(**overrides))
    first = refused.value.errors()[0]
    assert first["loc"][0] == field
    assert first["type"] == kind


def test_quoted_numbers_and_empty_strings() -> None:
    alert = Alert.model_validate(alert_body(quantity="2", price="70100.5", stop_loss=""))
    assert (alert.quantity, alert.price, alert.stop_loss) == (Decimal(2), Decimal("70100.5"), None)


def test_quantity_wins_over_contracts() -> None:
    signal = to_signal(Alert.model_validate(alert_body(quantity=2, contracts=5)), RECEIVED_AT)
    assert signal.quantity == Decimal(2)


def test_limit_order_without_price_cannot_be_traded() -> None:
    with pytest.raises(AlertError) as refused:
        to_signal(Alert.model_validate(alert_body(order_type="limit")), RECEIVED_AT)
    assert refused.value.code == "limit_without_price"


def test_secret_is_kept_out_of_the_signal_and_the_repr() -> None:
    alert = Alert.model_validate(alert_body())
    assert "s3cret" not in repr(alert)
    assert "s3cret" not in to_signal(alert, RECEIVED_AT).model_dump_json()


def test_resend_has_the_same_idempotency_key_but_would_be_a_new_signal() -> None:
    first = to_signal(Alert.model_validate(alert_body()), RECEIVED_AT)
    again = to_signal(Alert.model_validate(alert_body()), datetime(2026, 1, 5, 0, 15, 7, tzinfo=UTC))
    assert dedupe_key_of(first.signal_id) == dedupe_key_of(again.signal_id)
    assert first.signal_id != again.signal_id  # accepted again after the window: a new decision


@pytest.mark.parametrize(
    "overrides",
    [
        {"quantity": 1.0},
        {"quantity": "1.00"},
        {"fired_at": "2026-01-05T00:15:00.731Z"},
        {"quantity_type": "fixed"},
        {"order_type": "market"},
    ],
)
def test_spellings_of_the_same_values_share_a_key(overrides: dict[str, Any]) -> None:
    first = to_signal(Alert.model_validate(alert_body()), RECEIVED_AT)
    other = to_signal(Alert.model_validate(alert_body(**overrides)), RECEIVED_AT)
    assert dedupe_key_of(first.signal_id) == dedupe_key_of(other.signal_id)


def test_explicit_id_is_compared_without_case() -> None:
    first = to_signal(Alert.model_validate(alert_body(id="Order-7")), RECEIVED_AT)
    other = to_signal(Alert.model_validate(alert_body(id="order-7")), RECEIVED_AT)
    assert dedupe_key_of(first.signal_id) == dedupe_key_of(other.signal_id)


@pytest.mark.parametrize(
    "overrides",
    [
        {"fired_at": "2026-01-05T00:15:01Z"},
        {"action": "sell"},
        {"ticker": "000660"},
        {"quantity": 2},
        {"order_id": "Long 2"},
        {"strategy": "other"},
        {"quantity_type": "percent_of_equity"},
        {"stop_loss": 60000},
        {"take_profit": 90000},
        {"order_type": "limit", "price": 70000},
        {"account": "second"},
    ],
)
def test_a_different_alert_has_a_different_key(overrides: dict[str, Any]) -> None:
    first = to_signal(Alert.model_validate(alert_body()), RECEIVED_AT)
    other = to_signal(Alert.model_validate(alert_body(**overrides)), RECEIVED_AT)
    assert first.signal_id != other.signal_id


def test_spellings_of_the_same_alert_share_a_key() -> None:
    plain = Alert.model_validate(alert_body())
    spelled = Alert.model_validate(alert_body(strategy="Swing-KR", ticker="KRX:005930", exchange=None, action="BUY"))
    assert derive_signal_id(plain, "005930", Market.KRX) == derive_signal_id(spelled, "005930", Market.KRX)
    assert to_signal(plain, RECEIVED_AT).signal_id == to_signal(spelled, RECEIVED_AT).signal_id


def test_explicit_id_is_the_key_whatever_the_time() -> None:
    first = to_signal(Alert.model_validate(alert_body(id="abc")), RECEIVED_AT)
    later = to_signal(Alert.model_validate(alert_body(id="abc", fired_at="2026-01-05T00:16:00Z")), RECEIVED_AT)
    other_strategy = to_signal(Alert.model_validate(alert_body(id="abc", strategy="b")), RECEIVED_AT)
    assert first.signal_id == later.signal_id
    assert first.signal_id.startswith("id-")
    assert other_strategy.signal_id != first.signal_id
