"""Every action the dashboard takes, in one adapter: Valkey only, never the broker.

* A manual order is a ``SignalReceived`` (``source="dashboard"``, ``account=<alias>``, a fixed
  quantity the trader confirmed) appended to ``keys.SIGNALS_DASHBOARD`` by the ``yq_ingest`` server
  function: it passes the order manager's trading-state and risk checks like any alert and
  lands in the decision log with the reason if denied. The signal id comes from the
  confirmation's nonce, so a double submit is dropped as a duplicate.
* Confirmations are issued by the server (``issue_confirmation``): the nonce names what the preview
  showed, for the session that saw it, for ``CONFIRMATION_TTL_S``. A submit or flatten whose nonce
  the server did not issue to this session, or that carries another order, sends nothing.
* Flatten, trading state, risk limits and schedules go through ``yquant.controls``
  (the order manager's own functions); a flatten confirmation is single-use.
* Cancel is a ``CancelOrder`` on ``keys.CANCELS``, the stream of a person's cancels: the gateway
  accepts nothing else there, and this user cannot append to the order manager's ``keys.ORDERS``.
* Revise is a ``ReviseOrder`` on ``keys.REVISIONS``: the order manager checks it against the risk
  limits (a buy made worth more passes the limits of a new buy) before it passes it to the gateway
  (ADR 0014); a refusal shows in the order's reason.
* Quotes are asked on ``keys.QUERIES_DASHBOARD`` (``requester="dash"``), which the gateway serves
  from its cache and, past it, within a small budget that leaves KIS's request slots to orders.
Every action is written to the audit log.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from yquant import audit, bus, controls, ingest, keys, quotes, trading_state
from yquant.messages import (
    CancelOrder,
    Frozen,
    Market,
    OrderType,
    QuantityType,
    Quote,
    ReviseOrder,
    Side,
    Signal,
    SignalAction,
    SignalReceived,
    SignalSource,
)
from yquant.orders import OrderRecord
from yquant.risk_limits import RiskLimits
from yquant.schedules import Schedule
from yquant.settings import Settings

DEDUPE_TTL_S = 86_400
CONFIRMATION_TTL_S = 600  # a confirmation page older than this is previewed again, never sent
NONCE_PATTERN = r"^[0-9a-f]{32}$"


def new_nonce() -> str:
    return secrets.token_hex(16)


async def issue_confirmation(client: aioredis.Redis, session: str, purpose: str, payload: str = "") -> str:
    """A nonce for one confirmation page: valid for this session and purpose, carrying ``payload``."""
    nonce = new_nonce()
    value = orjson.dumps({"session": session, "purpose": purpose, "payload": payload})
    await client.set(keys.dashboard_confirmation(nonce), value, ex=CONFIRMATION_TTL_S)
    return nonce


async def confirmed(client: aioredis.Redis, nonce: str, session: str, purpose: str) -> str | None:
    """The payload issued with ``nonce`` to this session for ``purpose``; None if it was not (or expired)."""
    raw = await client.get(keys.dashboard_confirmation(nonce))
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("session") != session or data.get("purpose") != purpose:
        return None
    return str(data.get("payload", ""))


class ManualOrder(Frozen):
    account: str
    market: Market
    ticker: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None


class Actor(Frozen):
    """Who acts, for the audit log."""

    user: str
    address: str


async def _ingest(
    client: aioredis.Redis, settings: Settings, signal: Signal, actor: Actor, action: str
) -> tuple[bool, bool]:
    """Append the signal once (dedupe by id) and audit it, in one round trip; then (created, on disk).

    ``on disk``: Valkey's AOF has it (WAITAOF in the same round trip), so a Valkey crash now does not
    lose the order the trader was told was sent. False when AOF is off or slower than the timeout.
    """
    message = SignalReceived(correlation_id=signal.signal_id, signal=signal)
    async with client.pipeline(transaction=False) as pipe:
        pipe.fcall(
            ingest.FUNCTION,
            ingest.NUMKEYS,
            *ingest.arguments(
                keys.signal_dedupe(signal.signal_id),
                keys.SIGNALS_DASHBOARD,
                DEDUPE_TTL_S,
                settings.bus.stream_maxlen,
                message.model_dump_json(),
            ),
        )
        detail = signal.model_dump(mode="json", include={"signal_id", "account", "market", "ticker", "action"})
        detail.update({"quantity": str(signal.quantity), "order_type": signal.order_type.value})
        pipe.xadd(keys.AUDIT_LOG, audit.entry(actor.user, action, detail, actor.address), maxlen=audit.AUDIT_MAXLEN)
        wait_ms = settings.dashboard.durable_ack_timeout_ms
        if wait_ms:
            pipe.execute_command("WAITAOF", 1, 0, wait_ms)
        results = await pipe.execute(raise_on_error=False)
    entry = results[0]
    if isinstance(entry, Exception):
        raise entry
    if not wait_ms:
        return bool(entry != 0), True  # not asked for
    synced = results[2]
    on_disk = isinstance(synced, list | tuple) and int(synced[0]) >= 1  # an error: AOF is off
    return bool(entry != 0), on_disk


async def submit_manual_order(
    client: aioredis.Redis, settings: Settings, order: ManualOrder, nonce: str, actor: Actor
) -> tuple[str, bool, bool]:
    """Send a confirmed manual order; returns (signal id, False if it was already sent, on disk)."""
    now = datetime.now(UTC)
    signal = Signal(
        signal_id=f"dash-{nonce}",
        strategy=settings.dashboard.manual_strategy,
        ticker=order.ticker,
        market=order.market,
        action=SignalAction.BUY if order.side is Side.BUY else SignalAction.SELL,
        quantity=Decimal(order.quantity),
        quantity_type=QuantityType.FIXED,
        order_type=order.order_type,
        price=order.limit_price if order.order_type is OrderType.LIMIT else None,
        fired_at=now,  # the order manager's age limit applies: never executed late
        received_at=now,
        source=SignalSource.DASHBOARD,
        account=order.account,
        comment=f"manual order by {actor.user}",
    )
    created, on_disk = await _ingest(client, settings, signal, actor, "manual_order")
    return signal.signal_id, created, on_disk


async def flatten(
    client: aioredis.Redis, settings: Settings, nonce: str, actor: Actor
) -> tuple[list[str], bool] | None:
    """Sell every position (the order manager cancels open buys first); (signal ids, on disk), or
    None if already confirmed. On disk: as for a manual order (WAITAOF in the append's round trip)."""
    if not await client.set(keys.signal_dedupe(f"flatten-{nonce}"), "1", nx=True, ex=DEDUPE_TTL_S):
        return None
    sent, on_disk = await controls.liquidate_durably(
        client, settings, source=SignalSource.FLATTEN, wait_aof_ms=settings.dashboard.durable_ack_timeout_ms
    )
    await audit.record(client, actor.user, "flatten_all", {"signals": len(sent)}, actor.address)
    return sent, on_disk


async def cancel_order(client: aioredis.Redis, settings: Settings, record: OrderRecord, actor: Actor) -> None:
    command = CancelOrder(
        correlation_id=record.correlation_id or record.client_order_id,
        client_order_id=record.client_order_id,
        account=record.account,
        reason=f"cancelled on the dashboard by {actor.user}",
    )
    async with client.pipeline(transaction=False) as pipe:
        pipe.xadd(keys.CANCELS, bus.fields_of(command), maxlen=settings.bus.stream_maxlen, approximate=True)
        detail = {"client_order_id": record.client_order_id, "account": record.account, "ticker": record.ticker}
        pipe.xadd(
            keys.AUDIT_LOG, audit.entry(actor.user, "cancel_order", detail, actor.address), maxlen=audit.AUDIT_MAXLEN
        )
        await pipe.execute()


async def revise_order(
    client: aioredis.Redis,
    settings: Settings,
    record: OrderRecord,
    limit_price: Decimal | None,
    quantity: int | None,
    actor: Actor,
) -> ReviseOrder:
    """Ask for a revision (checked by the caller with ``orders.revision_problem``), audited in the
    same round trip."""
    command = ReviseOrder(
        correlation_id=record.correlation_id or record.client_order_id,
        client_order_id=record.client_order_id,
        account=record.account,
        limit_price=limit_price,
        quantity=quantity,
        by=actor.user,
    )
    async with client.pipeline(transaction=False) as pipe:
        pipe.xadd(keys.REVISIONS, bus.fields_of(command), maxlen=settings.bus.stream_maxlen, approximate=True)
        detail = {
            "client_order_id": record.client_order_id,
            "account": record.account,
            "ticker": record.ticker,
            "limit_price": "" if limit_price is None else str(limit_price),
            "quantity": "" if quantity is None else str(quantity),
        }
        pipe.xadd(
            keys.AUDIT_LOG, audit.entry(actor.user, "revise_order", detail, actor.address), maxlen=audit.AUDIT_MAXLEN
        )
        await pipe.execute()
    return command


async def set_trading_state(client: aioredis.Redis, scope: str, state: str, actor: Actor) -> None:
    parsed = trading_state.parse_state(state)
    account = None if scope == trading_state.GLOBAL else scope
    await controls.set_trading_state(client, parsed, account)
    await audit.record(client, actor.user, "trading_state", {"scope": scope, "state": parsed.value}, actor.address)


async def load_limits(client: aioredis.Redis, settings: Settings) -> tuple[dict[str, Any], set[str]]:
    """The limits in force (JSON-ready) and the names overridden at runtime."""
    current = await controls.get_risk_limits(client, settings)
    overridden = set(await controls.get_risk_limit_overrides(client))
    return current.model_dump(mode="json"), overridden


LIMIT_NAMES: tuple[str, ...] = tuple(RiskLimits.model_fields)


async def set_limit(client: aioredis.Redis, settings: Settings, name: str, value: Any, actor: Actor) -> None:
    """Raises ValueError with a readable reason when the value does not validate."""
    await controls.set_risk_limits(client, settings, {name: value})
    await audit.record(client, actor.user, "risk_limit", {"name": name, "value": value}, actor.address)


async def reset_limit(client: aioredis.Redis, settings: Settings, name: str, actor: Actor) -> None:
    await controls.reset_risk_limits(client, settings, [name])
    await audit.record(client, actor.user, "risk_limit_reset", {"name": name}, actor.address)


async def save_schedule(
    client: aioredis.Redis, settings: Settings, schedule_id: str | None, spec: dict[str, Any], actor: Actor
) -> Schedule:
    """Create (``schedule_id`` None) or replace a schedule's spec; ValueError says what is wrong."""
    if schedule_id is None:
        saved = await controls.create_schedule(client, settings, spec)
    else:
        saved = await controls.update_schedule(client, settings, schedule_id, spec)
    detail = {"schedule_id": saved.schedule_id, "schedule": saved.spec.describe(), "enabled": saved.spec.enabled}
    action = "schedule_create" if schedule_id is None else "schedule_update"
    await audit.record(client, actor.user, action, detail, actor.address)
    return saved


async def delete_schedule(client: aioredis.Redis, schedule_id: str, actor: Actor) -> bool:
    deleted = await controls.delete_schedule(client, schedule_id)
    await audit.record(client, actor.user, "schedule_delete", {"schedule_id": schedule_id}, actor.address)
    return deleted


async def get_quote(client: aioredis.Redis, market: Market, ticker: str, timeout_s: float) -> Quote | None:
    """A fresh quote from the cache or the gateway (``yquant.quotes``), None when there is none."""
    return await quotes.get_quote(client, market, ticker, timeout_s, requester="dash")


async def cached_quote(client: aioredis.Redis, market: Market, ticker: str) -> Quote | None:
    """The cached quote if fresh, without asking the gateway."""
    return await quotes.cached_quote(client, market, ticker)
