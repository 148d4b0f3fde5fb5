"""How a broker's refusal reads in a chat message."""

from __future__ import annotations

import orjson

from notifier.events import from_entry
from yquant.messages import OrderCancelled, OrderFailed, OrderRejected


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


def _event(message: OrderRejected | OrderFailed, order: dict[str, str]) -> dict[str, str]:
    fields = {b"type": message.type.encode(), b"data": orjson.dumps(message.model_dump(mode="json"))}
    event = from_entry("yq:stream:executions", "1-0", fields, order.get("strategy", ""), order)
    assert event is not None
    return event.text


def test_a_refusal_says_what_was_refused_from_the_order_record() -> None:
    rejected = OrderRejected(client_order_id="yq-3", account="main", reason_code="APBK0952", reason="no cash")
    record = {"strategy": "demo", "market": "KRX", "ticker": "035420", "side": "buy", "quantity": "20"}
    text = _event(rejected, record)
    assert text["en"].startswith("❌ Rejected by the broker: BUY KRX:035420 20 · yq-3 · main [demo]: ")
    assert text["ko"].startswith("❌ 주문 거부: KRX:035420 매수 20주 · yq-3 · main [demo]: ")


def test_a_failure_of_an_order_without_a_record_still_names_its_id() -> None:
    failed = OrderFailed(client_order_id="yq-4", account="isa", reason_code="NO_PRICE", reason="KIS has no price")
    assert _event(failed, {})["en"] == "❌ Order failed: yq-4 · isa: KIS has no price (NO_PRICE)"


def test_a_cancel_says_what_was_cancelled() -> None:
    cancelled = OrderCancelled(client_order_id="yq-5", account="main", cancelled_quantity=7)
    fields = {b"type": b"OrderCancelled", b"data": orjson.dumps(cancelled.model_dump(mode="json"))}
    record = {"market": "NASD", "ticker": "AAPL", "side": "sell", "quantity": "7"}
    event = from_entry("yq:stream:executions", "1-0", fields, "", record)
    assert event is not None
    assert event.text["en"] == "↩️ Cancelled: SELL NASD:AAPL 7 · yq-5 (7) · main"
