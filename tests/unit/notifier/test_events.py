"""How a broker's refusal reads in a chat message."""

from __future__ import annotations

import orjson

from notifier.events import from_entry
from yquant.messages import OrderFailed, OrderRejected


def _text(message: OrderRejected | OrderFailed) -> str:
    fields = {b"type": message.type.encode(), b"data": orjson.dumps(message.model_dump(mode="json"))}
    event = from_entry("yq:stream:executions", "1-0", fields, "demo")
    assert event is not None
    return event.text["en"]


def test_a_kis_refusal_that_already_names_its_code_names_it_once() -> None:
    rejected = OrderRejected(
        client_order_id="yq-1", account="main", reason_code="APBK0952", reason="주문가능금액을 초과 했습니다 (APBK0952)"
    )
    text = _text(rejected)
    assert text.endswith("main [demo]: 주문가능금액을 초과 했습니다 (APBK0952)")
    assert text.count("APBK0952") == 1


def test_a_reason_without_its_code_gets_the_code_appended() -> None:
    failed = OrderFailed(client_order_id="yq-2", account="main", reason_code="NO_PRICE", reason="KIS has no price")
    assert _text(failed).endswith("main [demo]: KIS has no price (NO_PRICE)")
