"""Stream entries as notification events, and events as text (English or Korean).

Amounts follow their currency: KRW without decimals, USD with two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from yquant import keys, markets
from yquant.errors import MessageDecodeError
from yquant.messages import (
    Market,
    OrderCancelled,
    OrderFailed,
    OrderFilled,
    OrderRejected,
    Signal,
    SignalAccepted,
    SignalDenied,
    SignalSource,
    TokenIssuance,
    decode,
)

# The signal sources whose accepted decision is news of its own: an exit rule or an end-of-day
# exit triggered, a schedule fired (their signal ids start so: ordermanager's exit_triggers and
# schedule_runner; the signal record's ``source`` confirms it).
SOURCE_PREFIXES = {"exit-": "exit", "eod-": "eod", "sched-": "schedule"}


@dataclass(frozen=True)
class Event:
    stream: str
    entry_id: str
    kind: str
    text: dict[str, str]  # language -> one line
    reason_code: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def money(amount: Decimal, currency: str) -> str:
    return markets.format_amount(currency, amount)


def _price(amount: Decimal, market: Market) -> str:
    return money(amount, market.currency)


def _text(value: Any) -> str:
    return keys.text(value)


def _what(order: Mapping[str, str], language: str) -> str:
    """What an order was, from its record: "BUY KRX:005930 20" (ko: "KRX:005930 매수 20주"); "" unknown."""
    ticker = order.get("ticker", "")
    if not ticker:
        return ""
    where = markets.symbol_key(order["market"], ticker) if order.get("market") else ticker
    side = order.get("side", "")
    quantity = order.get("quantity", "")
    if language == "ko":
        side_ko = {"buy": "매수", "sell": "매도"}.get(side, side)
        return " ".join(p for p in (where, side_ko, f"{quantity}주" if quantity else "") if p) + " · "
    return " ".join(p for p in (side.upper(), where, quantity) if p) + " · "


def from_entry(
    stream: str,
    entry_id: str,
    fields: dict[Any, Any],
    strategy: str = "",
    order: Mapping[str, str] | None = None,
    signal: Signal | None = None,
    placed: Sequence[Mapping[str, str]] = (),
) -> Event | None:
    """The event of one stream entry, or None when it is nothing to report.

    ``order`` is the order's record (ticker, side, quantity, market) for the events that carry only
    its id (a refusal, a failure, a cancel); ``signal`` the signal of an accepted decision (an exit
    or a schedule is reported, a TradingView alert is not: its fill will be) and ``placed`` the
    records of the orders it placed."""
    order = order or {}
    raw_type = _text(fields.get(b"type") or fields.get("type") or "")
    raw_data = fields.get(b"data") or fields.get("data") or b"{}"
    if raw_type == "DeadLetter":
        return _dead_letter(stream, entry_id, raw_data)
    if raw_type == "DashboardAction":
        return _audit(stream, entry_id, raw_data)
    if raw_type == "Notice":
        return _notice(stream, entry_id, raw_data)
    if raw_type not in {
        "OrderFilled",
        "OrderRejected",
        "OrderFailed",
        "OrderCancelled",
        "SignalDenied",
        "SignalAccepted",
        "TokenIssuance",
    }:
        return None
    try:
        message = decode(raw_data)
    except MessageDecodeError:
        return None
    if isinstance(message, TokenIssuance):
        return _token(stream, entry_id, message)
    if isinstance(message, SignalAccepted):
        return _triggered(stream, entry_id, message, signal, placed) if signal is not None else None
    by = f" [{strategy}]" if strategy else ""
    if isinstance(message, OrderFilled):
        full = message.remaining_quantity == 0
        value = message.fill_price * message.fill_quantity
        fee = f", fee {_price(message.fee, message.market)}" if message.fee else ""
        fee_ko = f", 수수료 {_price(message.fee, message.market)}" if message.fee else ""
        side_en = "BUY" if message.side.value == "buy" else "SELL"
        side_ko = "매수" if message.side.value == "buy" else "매도"
        head_en = "Filled" if full else "Partially filled"
        head_ko = "체결" if full else "부분체결"
        qty_en = (
            f"{message.fill_quantity}"
            if full
            else f"{message.fill_quantity} ({message.cumulative_quantity} so far, {message.remaining_quantity} left)"
        )
        qty_ko = (
            f"{message.fill_quantity}주"
            if full
            else (
                f"{message.fill_quantity}주 (누적 {message.cumulative_quantity}주, 잔량 {message.remaining_quantity}주)"
            )
        )
        price = _price(message.fill_price, message.market)
        worth = _price(value, message.market)
        symbol = markets.symbol_key(message.market, message.ticker)
        return Event(
            stream,
            entry_id,
            "filled",
            {
                "en": f"✅ {head_en}: {side_en} {symbol} {qty_en} @ {price} = {worth}{fee} · {message.account}{by}",
                "ko": f"✅ {head_ko}: {symbol} {side_ko} {qty_ko} @ {price} = {worth}{fee_ko} · {message.account}{by}",
            },
            data={"client_order_id": message.client_order_id, "ticker": message.ticker, "full": full},
        )
    if isinstance(message, OrderRejected | OrderFailed):
        kind = "rejected" if isinstance(message, OrderRejected) else "failed"
        en = "Rejected by the broker" if kind == "rejected" else "Order failed"
        ko = "주문 거부" if kind == "rejected" else "주문 실패"
        code = message.reason_code
        # KIS refusals arrive as "msg1 (msg_cd)" already: the code once, not twice.
        detail = f"{message.reason} ({code})" if code and code not in message.reason else message.reason
        return Event(
            stream,
            entry_id,
            kind,
            {
                "en": f"❌ {en}: {_what(order, 'en')}{message.client_order_id} · {message.account}{by}: {detail}",
                "ko": f"❌ {ko}: {_what(order, 'ko')}{message.client_order_id} · {message.account}{by}: {detail}",
            },
            reason_code=message.reason_code,
            data={"client_order_id": message.client_order_id, **_order_data(order)},
        )
    if isinstance(message, OrderCancelled):
        why = f": {message.reason}" if message.reason else ""
        cid, n = message.client_order_id, message.cancelled_quantity
        return Event(
            stream,
            entry_id,
            "cancelled",
            {
                "en": f"↩️ Cancelled: {_what(order, 'en')}{cid} ({n}) · {message.account}{by}{why}",
                "ko": f"↩️ 주문 취소: {_what(order, 'ko')}{cid} ({n}주) · {message.account}{by}{why}",
            },
            data={"client_order_id": message.client_order_id, **_order_data(order)},
        )
    assert isinstance(message, SignalDenied)
    where = f" · {message.account}" if message.account else ""
    return Event(
        stream,
        entry_id,
        "denied",
        {
            "en": f"⛔ Signal denied: {message.strategy} {message.ticker}{where}: {message.reason_code} — "
            f"{message.reason}",
            "ko": f"⛔ 신호 거부: {message.strategy} {message.ticker}{where}: {message.reason_code} — {message.reason}",
        },
        reason_code=message.reason_code,
        data={"signal_id": message.signal_id},
    )


def _token(stream: str, entry_id: str, message: TokenIssuance) -> Event:
    if message.ok:
        text = {
            "en": f"🔑 KIS token issued again for {message.app}: orders can reach KIS",
            "ko": f"🔑 KIS 토큰 발급 복구 ({message.app}): 주문을 보낼 수 있습니다",
        }
    else:
        code = message.reason_code
        detail = f"{message.reason} ({code})" if code and code not in message.reason else message.reason
        text = {
            "en": f"🔑 KIS token issuance failing for {message.app}: {detail}",
            "ko": f"🔑 KIS 토큰 발급 실패 ({message.app}): {detail}",
        }
    return Event(stream, entry_id, "token", text, message.reason_code, {"app": message.app, "ok": message.ok})


def _triggered(
    stream: str, entry_id: str, message: SignalAccepted, signal: Signal, placed: Sequence[Mapping[str, str]]
) -> Event | None:
    """An exit that triggered or a schedule that fired, and the orders it placed: "SELL 10 · main
    (yq-…)" each, from the order's record (a schedule for every account of a strategy places one per
    account)."""
    heads = {
        SignalSource.EXIT: ("exit", "🛑 Exit triggered", "🛑 청산 조건 발동"),
        SignalSource.END_OF_DAY: ("exit", "🌇 End-of-day exit", "🌇 장 마감 청산"),
        SignalSource.SCHEDULE: ("schedule", "⏰ Schedule fired", "⏰ 예약 주문 실행"),
    }
    if signal.source not in heads:
        return None
    kind, en, ko = heads[signal.source]
    where = f" · {signal.account}" if signal.account else ""
    what = f"{markets.symbol_key(signal.market, signal.ticker)}{where} [{signal.strategy}]"
    why = f": {signal.comment}" if signal.comment else ""
    records = {r.get("client_order_id", ""): r for r in placed}
    orders_en = ", ".join(_placed(cid, records.get(cid, {}), "en") for cid in message.client_order_ids)
    orders_ko = ", ".join(_placed(cid, records.get(cid, {}), "ko") for cid in message.client_order_ids)
    note = f" ({message.note})" if message.note else ""
    then_en = f" → {orders_en}" if orders_en else f" → no order{note}"
    then_ko = f" → {orders_ko}" if orders_ko else f" → 주문 없음{note}"
    return Event(
        stream,
        entry_id,
        kind,
        {"en": f"{en}: {what}{why}{then_en}", "ko": f"{ko}: {what}{why}{then_ko}"},
        data={
            "signal_id": message.signal_id,
            "source": signal.source.value,
            "market": signal.market.value,
            "ticker": signal.ticker,
            "account": signal.account or "",
            "orders": [
                {
                    "client_order_id": cid,
                    **_order_data(records.get(cid, {})),
                    "account": records.get(cid, {}).get("account", ""),
                }
                for cid in message.client_order_ids
            ],
        },
    )


def _placed(cid: str, order: Mapping[str, str], language: str) -> str:
    """One order an exit or a schedule placed: "SELL 10 · main (yq-…)" (ko: "매도 10주 · main (yq-…)")."""
    side, quantity, account = order.get("side", ""), order.get("quantity", ""), order.get("account", "")
    if language == "ko":
        head = " ".join(
            p for p in ({"buy": "매수", "sell": "매도"}.get(side, side), f"{quantity}주" if quantity else "") if p
        )
    else:
        head = " ".join(p for p in (side.upper(), quantity) if p)
    parts = [p for p in (head, account) if p]
    return f"{' · '.join(parts)} ({cid})" if parts else cid


def _notice(stream: str, entry_id: str, raw: Any) -> Event | None:
    """One of the notifier's own events (keys.NOTICES): its texts were written with it."""
    data = _json(raw)
    kind, en, ko = data.get("kind"), data.get("en"), data.get("ko")
    if not isinstance(kind, str) or not isinstance(en, str):
        return None
    extra = data.get("data")
    return Event(
        stream,
        entry_id,
        kind,
        {"en": en, "ko": ko if isinstance(ko, str) else en},
        data=extra if isinstance(extra, dict) else {},
    )


def _order_data(order: Mapping[str, str]) -> dict[str, Any]:
    """The order's ticker, side and quantity for the generic webhook's JSON (what the record has)."""
    data: dict[str, Any] = {k: order[k] for k in ("market", "ticker", "side") if order.get(k)}
    if order.get("quantity", "").isdigit():
        data["quantity"] = int(order["quantity"])
    return data


def _json(raw: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _dead_letter(stream: str, entry_id: str, raw: Any) -> Event:
    data = _json(raw)
    where = f"{data.get('stream', '?')} ({data.get('group', '?')})"
    reason = str(data.get("reason", ""))
    return Event(
        stream,
        entry_id,
        "deadletter",
        {
            "en": f"☠️ Dead letter from {where}: {reason}",
            "ko": f"☠️ 처리 실패 메시지 {where}: {reason}",
        },
        data={"entry_id": data.get("entry_id")},
    )


def _audit(stream: str, entry_id: str, raw: Any) -> Event | None:
    data = _json(raw)
    if data.get("action") == "notify_test":
        user, address = data.get("user", "?"), data.get("address", "?")
        return Event(
            stream,
            entry_id,
            "test",
            {
                "en": f"🔔 Test notification from the dashboard (by {user} from {address}): this destination works",
                "ko": f"🔔 대시보드 테스트 알림 ({user}, {address}): 이 알림 채널이 작동합니다",
            },
        )
    if data.get("action") != "trading_state":
        return None
    detail = data.get("detail") if isinstance(data.get("detail"), dict) else {}
    assert isinstance(detail, dict)
    scope = str(detail.get("scope", "*"))
    state = str(detail.get("state", "?"))
    scope_en = "all accounts" if scope == "*" else scope
    scope_ko = "전체 계좌" if scope == "*" else scope
    user, address = data.get("user", "?"), data.get("address", "?")
    return Event(
        stream,
        entry_id,
        "trading_state",
        {
            "en": f"🚦 Trading state of {scope_en} is now {state} (by {user} from {address})",
            "ko": f"🚦 {scope_ko} 거래 상태: {state} ({user}, {address})",
        },
        data={"scope": scope, "state": state},
    )


def wanted(event: Event, kinds: list[str], deny_reasons: list[str]) -> bool:
    if event.kind == "test":
        return True  # asked for from the dashboard: every destination, whatever it subscribes to
    if event.kind not in kinds:
        return False
    return not (event.kind == "denied" and deny_reasons and event.reason_code not in deny_reasons)


def render(events: list[Event], language: str) -> str:
    lines = [e.text.get(language) or e.text["en"] for e in events]
    if len(lines) == 1:
        return lines[0]
    head = f"yQuant: {len(lines)} events" if language == "en" else f"yQuant: 알림 {len(lines)}건"
    return "\n".join([head, *lines])
