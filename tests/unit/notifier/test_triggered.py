"""How an exit or a schedule that placed orders reads, and which heartbeats make an outage (pure logic)."""

from __future__ import annotations

import orjson

from notifier.events import from_entry
from notifier.health import HeartbeatWatch
from yquant.messages import Market, Signal, SignalAccepted, SignalAction, SignalSource


def _accepted(signal: Signal, ids: list[str], note: str = "") -> dict[bytes, bytes]:
    accepted = SignalAccepted(
        signal_id=signal.signal_id, strategy=signal.strategy, ticker=signal.ticker, client_order_ids=ids, note=note
    )
    return {b"type": b"SignalAccepted", b"data": orjson.dumps(accepted.model_dump(mode="json"))}


def _signal(source: SignalSource, account: str | None = "main") -> Signal:
    return Signal(
        signal_id="sched-1",
        strategy="schedule",
        ticker="005930",
        market=Market.KRX,
        action=SignalAction.BUY,
        source=source,
        account=account,
        comment="schedule morning buy",
    )


def test_a_schedule_for_every_account_names_each_order_and_its_account() -> None:
    signal = _signal(SignalSource.SCHEDULE, account=None)
    placed = [
        {"client_order_id": "yq-a", "account": "main", "side": "buy", "quantity": "3"},
        {"client_order_id": "yq-b", "account": "isa", "side": "buy", "quantity": "1"},
    ]
    event = from_entry("yq:stream:decisions", "1-0", _accepted(signal, ["yq-a", "yq-b"]), signal=signal, placed=placed)
    assert event is not None
    assert event.kind == "schedule"
    assert event.text["en"] == (
        "⏰ Schedule fired: KRX:005930 [schedule]: schedule morning buy → BUY 3 · main (yq-a), BUY 1 · isa (yq-b)"
    )
    assert event.text["ko"].endswith("→ 매수 3주 · main (yq-a), 매수 1주 · isa (yq-b)")
    assert [o["account"] for o in event.data["orders"]] == ["main", "isa"]


def test_an_alert_from_tradingview_is_not_news_of_its_own() -> None:
    signal = _signal(SignalSource.WEBHOOK)
    assert from_entry("yq:stream:decisions", "1-0", _accepted(signal, ["yq-a"]), signal=signal) is None


def test_an_exit_that_placed_nothing_says_why() -> None:
    signal = _signal(SignalSource.EXIT)
    event = from_entry("yq:stream:decisions", "1-0", _accepted(signal, [], note="nothing to sell"), signal=signal)
    assert event is not None
    assert event.kind == "exit"
    assert event.text["en"].endswith("→ no order (nothing to sell)")


def test_a_heartbeat_deleted_young_is_a_stop_and_one_that_expired_is_an_outage() -> None:
    watch = HeartbeatWatch(missing_after_s=12)
    assert watch.observe(0, {("ordermanager", "om-1"): 1.0, ("webhook", "wh-1"): 11.0}).out == {}
    verdict = watch.observe(3, {})  # both gone: one at 4 s old (deleted), one at 14 s (expired)
    assert verdict.out == {"webhook": ("wh-1", 14.0)}


def test_a_service_with_one_instance_beating_is_not_missing() -> None:
    watch = HeartbeatWatch(missing_after_s=12)
    verdict = watch.observe(0, {("brokergateway", "gw-1"): 13.0, ("brokergateway", "gw-2"): 2.0, ("notifier", "n"): 30})
    assert verdict.out == {}
    assert verdict.beating == {"brokergateway"}


def test_an_instance_an_earlier_life_saw_and_this_one_finds_gone_is_out_after_the_grace() -> None:
    watch = HeartbeatWatch(missing_after_s=12)
    watch.presume(100, [("ordermanager", "om-1"), ("webhook", "wh-1"), ("notifier", "n-1")])
    assert watch.observe(100, {}).out == {}
    assert watch.observe(111, {("webhook", "wh-1"): 0.5}).out == {}  # the webhook started again in time
    verdict = watch.observe(112, {("webhook", "wh-1"): 1.5})
    assert verdict.out == {"ordermanager": ("om-1", 12.0)}
    assert verdict.unseen == {"ordermanager"}
    assert verdict.vanished == {("ordermanager", "om-1")}
    assert watch.observe(200, {}).out == {"webhook": ("wh-1", 89.5)}  # seen since: an outage like any other
    assert watch.seen == {}
