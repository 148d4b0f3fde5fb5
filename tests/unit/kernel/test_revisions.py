"""Which revisions of an order may go to KIS, and the refusal a person reads otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from yquant.messages import Market, OrderOrigin, OrderState, OrderType, ReviseOrder, Side, decode, encode
from yquant.orders import OrderRecord, revision_problem


def record(**overrides: object) -> OrderRecord:
    now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    fields: dict[str, object] = {
        "client_order_id": "yq-1",
        "account": "main",
        "market": Market.KRX,
        "ticker": "005930",
        "side": Side.BUY,
        "quantity": 10,
        "order_type": OrderType.LIMIT,
        "limit_price": Decimal(70000),
        "strategy": "manual",
        "origin": OrderOrigin.MANUAL,
        "state": OrderState.ACCEPTED,
        "created_at": now,
        "updated_at": now,
        "broker_order_id": "0000012345",
        "filled_quantity": 0,
    }
    fields.update(overrides)
    return OrderRecord.model_validate(fields)


def test_a_price_on_the_grid_and_a_lower_quantity_are_accepted() -> None:
    assert revision_problem(record(), Decimal(69900), None) is None
    assert revision_problem(record(filled_quantity=4, state=OrderState.PARTIALLY_FILLED), None, 5) is None
    assert revision_problem(record(market=Market.NASD, limit_price=Decimal("120.50")), Decimal("119.99"), 8) is None


@pytest.mark.parametrize(
    ("changes", "price", "quantity", "refusal"),
    [
        ({}, Decimal(69950), None, "69950 is not on the KRX price grid (tick 100 at that price)"),
        ({"market": Market.NASD}, Decimal("120.005"), None, "120.005 is not on the NASD price grid (tick 0.01"),
        ({}, None, 11, "KIS cannot raise an order's quantity (now 10)"),
        ({"filled_quantity": 4}, None, 4, "the new quantity must be above the 4 already filled"),
        ({}, Decimal(70000), 10, "nothing to change"),
        ({"order_type": OrderType.MARKET, "limit_price": None}, Decimal(70000), None, "only a limit order"),
        ({"state": OrderState.FILLED}, Decimal(69900), None, "the order is FILLED: only an order open at KIS"),
        ({"state": OrderState.SUBMITTING}, Decimal(69900), None, "the order is SUBMITTING"),
        ({}, Decimal(-100), None, "the price must be positive"),
    ],
)
def test_a_revision_kis_would_refuse_is_refused_with_the_reason(
    changes: dict[str, object], price: Decimal | None, quantity: int | None, refusal: str
) -> None:
    problem = revision_problem(record(**changes), price, quantity)
    assert problem is not None
    assert problem.startswith(refusal)


def test_the_command_names_a_change_and_survives_the_bus() -> None:
    command = ReviseOrder(client_order_id="yq-1", account="main", limit_price=Decimal("69900"), by="admin")
    assert decode(encode(command)) == command
    with pytest.raises(ValidationError, match="a new price or a new quantity"):
        ReviseOrder(client_order_id="yq-1", account="main", by="admin")
    with pytest.raises(ValidationError):
        ReviseOrder(client_order_id="yq-1", account="main", quantity=0, by="admin")
