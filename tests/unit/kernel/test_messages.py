"""Messages are immutable, versioned, and survive a round trip through the bus encoding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from yquant.errors import MessageDecodeError
from yquant.messages import (
    Market,
    OrderFilled,
    OrderState,
    Side,
    Signal,
    SignalAction,
    SignalReceived,
    SubmitOrder,
    decode,
    encode,
)


def submit(**overrides: object) -> SubmitOrder:
    fields: dict[str, object] = {
        "client_order_id": "yq-1",
        "account": "main",
        "market": Market.KRX,
        "ticker": "005930",
        "side": Side.BUY,
        "quantity": 3,
        "strategy": "demo",
    }
    fields.update(overrides)
    return SubmitOrder.model_validate(fields)


def test_round_trip_keeps_every_field_and_decimal_precision() -> None:
    filled = OrderFilled(
        client_order_id="yq-1",
        account="main",
        broker_order_id="0000012345",
        market=Market.NASD,
        ticker="AAPL",
        side=Side.SELL,
        fill_quantity=2,
        fill_price=Decimal("187.1234"),
        cumulative_quantity=2,
        average_price=Decimal("187.1234"),
        remaining_quantity=0,
    )
    decoded = decode(encode(filled))
    assert decoded == filled
    assert isinstance(decoded, OrderFilled)
    assert decoded.fill_price == Decimal("187.1234")


def test_envelope_carries_type_version_ids_and_utc_time() -> None:
    message = submit()
    assert message.type == "SubmitOrder"
    assert message.v == 1
    assert message.id != message.correlation_id
    assert message.occurred_at.utcoffset() is not None
    assert message.occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_messages_are_frozen() -> None:
    message = submit()
    with pytest.raises(ValidationError):
        message.quantity = 5  # type: ignore[misc]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        submit(colour="red")


def test_order_quantity_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        submit(quantity=0)


def test_garbage_raises_decode_error_not_a_crash() -> None:
    with pytest.raises(MessageDecodeError):
        decode(b'{"type": "Nope"}')
    with pytest.raises(MessageDecodeError):
        decode(b"not json")


def test_signal_received_round_trip() -> None:
    message = SignalReceived(
        signal=Signal(signal_id="s", strategy="demo", ticker="005930", market=Market.KRX, action=SignalAction.BUY)
    )
    assert decode(encode(message)) == message


def test_market_currency_and_final_states() -> None:
    assert Market.KRX.currency == "KRW"
    assert Market.AMEX.currency == "USD"
    assert OrderState.FILLED.is_final
    assert not OrderState.SUBMITTING.is_final
