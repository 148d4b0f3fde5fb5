"""Plain async functions the dashboard (and the CLI) call to steer the order manager.

Nothing here places an order directly: liquidation, flatten and manual orders append
signals, so they are decided by the order manager, checked, and written to the decision
log like any alert. Refusals of bad input raise ``ValueError`` with a readable message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from yquant import exit_rules, keys, orders, portfolio, risk_limits, schedule_store
from yquant.bus import fields_of
from yquant.markets import symbol_key
from yquant.messages import Market, Signal, SignalAction, SignalReceived, SignalSource, utcnow
from yquant.risk_limits import RiskLimits
from yquant.schedules import Schedule, ScheduleSpec, next_occurrence, upcoming, why_never
from yquant.settings import Settings, effective_accounts
from yquant.trading_state import (
    TradingState,
    get_trading_state,
    get_trading_states,
    parse_state,
    set_trading_state,
)

__all__ = [
    "TradingState",
    "create_schedule",
    "delete_exit_rule",
    "delete_schedule",
    "flatten_all",
    "get_risk_limit_overrides",
    "get_risk_limits",
    "get_schedule",
    "get_trading_state",
    "get_trading_states",
    "liquidate",
    "list_exit_rules",
    "list_schedules",
    "parse_state",
    "preview_schedule",
    "reset_risk_limits",
    "set_exit_rule",
    "set_risk_limits",
    "set_trading_state",
    "update_schedule",
]


# --- liquidation ---------------------------------------------------------------------------
async def liquidate(
    client: aioredis.Redis,
    settings: Settings,
    *,
    account: str | None = None,
    market: Market | str | None = None,
    strategy: str | None = None,
    now: datetime | None = None,
    source: SignalSource = SignalSource.LIQUIDATION,
) -> list[str]:
    """Sell every matching position and cancel matching open buys; allowed while HALTED.

    Filters: one account, one market, one owner (strategy name, ``manual`` or
    ``schedule``). Returns the ids of the signals appended (one per position or ticker).
    """
    signal_ids, _on_disk = await liquidate_durably(
        client, settings, account=account, market=market, strategy=strategy, now=now, source=source
    )
    return signal_ids


async def liquidate_durably(
    client: aioredis.Redis,
    settings: Settings,
    *,
    account: str | None = None,
    market: Market | str | None = None,
    strategy: str | None = None,
    now: datetime | None = None,
    source: SignalSource = SignalSource.LIQUIDATION,
    wait_aof_ms: int = 0,
) -> tuple[list[str], bool]:
    """``liquidate``, its signals appended in one round trip; with ``wait_aof_ms`` that round trip
    ends with WAITAOF, and the flag says whether Valkey has them on disk (always True without)."""
    moment = now or utcnow()
    market_filter = Market(market) if market is not None else None
    aliases = (
        [account]
        if account
        else sorted(set(effective_accounts(settings)) | set(await portfolio.account_aliases(client)))
    )
    batch = uuid.uuid4().hex[:10]
    open_records = await orders.open_orders(client)
    signals: list[SignalReceived] = []
    for alias in aliases:
        attribution = {
            keys.text(k): keys.text(v) for k, v in (await client.hgetall(keys.position_attribution(alias))).items()
        }
        targets: dict[tuple[Market, str], tuple[SignalAction, str]] = {}
        for position in await portfolio.get_positions(client, alias):
            owner = attribution.get(symbol_key(position.market, position.ticker), position.strategy) or "manual"
            if position.quantity <= 0 or (market_filter and position.market is not market_filter):
                continue
            if strategy and owner != strategy:
                continue
            targets[(position.market, position.ticker)] = (SignalAction.EXIT, owner)
        for record in open_records:
            if record.account != alias or (market_filter and record.market is not market_filter):
                continue
            if strategy and record.strategy != strategy:
                continue
            targets.setdefault((record.market, record.ticker), (SignalAction.CANCEL, record.strategy))
        for (position_market, ticker), (action, owner) in sorted(targets.items()):
            signal = Signal(
                signal_id=f"{source}-{batch}-{alias}-{position_market.value}-{ticker}",
                strategy=owner,
                ticker=ticker,
                market=position_market,
                action=action,
                fired_at=moment,
                received_at=moment,
                source=source,
                account=alias,
                comment=f"{source}: account={account or '*'} market={market_filter or '*'} strategy={strategy or '*'}",
            )
            signals.append(SignalReceived(signal=signal))
    if not signals:
        return [], True
    async with client.pipeline(transaction=False) as pipe:
        for message in signals:
            pipe.xadd(keys.SIGNALS_DASHBOARD, fields_of(message), maxlen=settings.bus.stream_maxlen, approximate=True)
        if wait_aof_ms:
            pipe.execute_command("WAITAOF", 1, 0, wait_aof_ms)
        results = await pipe.execute(raise_on_error=False)
    for result in results[: len(signals)]:
        if isinstance(result, Exception):
            raise result
    synced = results[-1] if wait_aof_ms else [1]
    on_disk = isinstance(synced, list | tuple) and int(synced[0]) >= 1  # an error: AOF is off
    return [m.signal.signal_id for m in signals], on_disk


async def flatten_all(
    client: aioredis.Redis, settings: Settings, *, account: str | None = None, now: datetime | None = None
) -> list[str]:
    """The emergency flatten: every position sold, every open buy cancelled (allowed while HALTED)."""
    return await liquidate(client, settings, account=account, now=now, source=SignalSource.FLATTEN)


# --- schedules -----------------------------------------------------------------------------
async def list_schedules(client: aioredis.Redis) -> list[Schedule]:
    """Every schedule, soonest next run first (``next_run_at`` None: finished or disabled)."""
    return await schedule_store.list_all(client)


async def get_schedule(client: aioredis.Redis, schedule_id: str) -> Schedule | None:
    return await schedule_store.load(client, schedule_id)


def preview_schedule(
    spec: ScheduleSpec, now: datetime | None = None, count: int = 5, *, always_open: bool = False
) -> list[datetime]:
    """The next runs of a spec before saving it (holidays skipped unless markets are always open)."""
    return upcoming(spec, now or utcnow(), count, always_open)


def _validate_account(settings: Settings, spec: ScheduleSpec) -> None:
    if spec.account not in effective_accounts(settings):
        raise ValueError(f"account {spec.account!r} is not configured")


async def create_schedule(
    client: aioredis.Redis, settings: Settings, spec: ScheduleSpec | Mapping[str, Any], *, now: datetime | None = None
) -> Schedule:
    chosen = spec if isinstance(spec, ScheduleSpec) else ScheduleSpec.model_validate(spec)
    _validate_account(settings, chosen)
    moment = now or utcnow()
    always_open = settings.markets_always_open
    next_run = next_occurrence(chosen, moment, always_open)
    if next_run is None and chosen.enabled:
        raise ValueError(f"the schedule would never run: {why_never(chosen, moment, always_open)}")
    schedule = Schedule(
        schedule_id=schedule_store.new_schedule_id(),
        spec=chosen,
        created_at=moment,
        updated_at=moment,
        next_run_at=next_run,
    )
    await schedule_store.save(client, schedule)
    return schedule


async def update_schedule(
    client: aioredis.Redis,
    settings: Settings,
    schedule_id: str,
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> Schedule:
    """Change fields of a schedule's spec (e.g. ``{"enabled": False}``); the next run is recomputed."""
    current = await schedule_store.load(client, schedule_id)
    if current is None:
        raise ValueError(f"no schedule {schedule_id!r}")
    spec = ScheduleSpec.model_validate({**current.spec.model_dump(), **changes})
    _validate_account(settings, spec)
    moment = now or utcnow()
    always_open = settings.markets_always_open
    next_run = next_occurrence(spec, moment, always_open) if spec.enabled else None
    if next_run is None and spec.enabled:
        raise ValueError(f"the schedule would never run: {why_never(spec, moment, always_open)}")
    updated = current.model_copy(update={"spec": spec, "updated_at": moment, "next_run_at": next_run})
    await schedule_store.save(client, updated)
    return updated


async def delete_schedule(client: aioredis.Redis, schedule_id: str) -> bool:
    return await schedule_store.delete(client, schedule_id)


# --- risk limits ---------------------------------------------------------------------------
async def get_risk_limits(client: aioredis.Redis, settings: Settings) -> RiskLimits:
    """The limits in force (settings' defaults with the runtime overrides applied)."""
    return await risk_limits.load_limits(client, settings)


async def get_risk_limit_overrides(client: aioredis.Redis) -> dict[str, Any]:
    """Only what was changed at runtime (name -> value)."""
    return await risk_limits.overridden_limits(client)


async def set_risk_limits(client: aioredis.Redis, settings: Settings, changes: Mapping[str, object]) -> RiskLimits:
    """Override limits at runtime, e.g. ``{"max_order_value": {"KRW": "5000000"}, "max_orders_per_minute": 10}``."""
    return await risk_limits.store_limits(client, settings, changes)


async def reset_risk_limits(
    client: aioredis.Redis, settings: Settings, names: Iterable[str] | None = None
) -> RiskLimits:
    return await risk_limits.reset_limits(client, settings, names)


# --- exit rules ----------------------------------------------------------------------------
async def list_exit_rules(client: aioredis.Redis, account: str | None = None) -> list[exit_rules.ExitRule]:
    aliases = [account] if account else await portfolio.account_aliases(client)
    rules: list[exit_rules.ExitRule] = []
    for alias in aliases:
        rules += await exit_rules.get_rules(client, alias)
    return rules


async def set_exit_rule(
    client: aioredis.Redis,
    *,
    account: str,
    market: Market | str,
    ticker: str,
    stop_loss_price: Decimal | None = None,
    stop_loss_percent: Decimal | None = None,
    take_profit_price: Decimal | None = None,
    take_profit_percent: Decimal | None = None,
    trailing_percent: Decimal | None = None,
    trailing_amount: Decimal | None = None,
    now: datetime | None = None,
) -> exit_rules.ExitRule:
    """Set (replace) a position's exit rule; percentages are of the position's average price."""
    chosen = Market(market)
    symbol = symbol_key(chosen, ticker)
    position = await portfolio.get_position(client, account, chosen.value, ticker)
    if position is None or position.quantity <= 0:
        raise ValueError(f"no {symbol} position in {account}")
    owner = await client.hget(keys.position_attribution(account), symbol)
    rule = exit_rules.build_rule(
        account=account,
        market=chosen,
        ticker=ticker,
        strategy=keys.text(owner) if owner else (position.strategy or "manual"),
        entry_price=position.average_price,
        now=now or utcnow(),
        stop_loss_price=stop_loss_price,
        stop_loss_percent=stop_loss_percent,
        take_profit_price=take_profit_price,
        take_profit_percent=take_profit_percent,
        trailing_percent=trailing_percent,
        trailing_amount=trailing_amount,
    )
    if rule is None:
        raise ValueError("set at least one of stop-loss, take-profit or trailing stop")
    await exit_rules.put_rule(client, rule)
    return rule


async def delete_exit_rule(client: aioredis.Redis, account: str, market: Market | str, ticker: str) -> bool:
    return await exit_rules.delete_rule(client, account, Market(market), ticker)
