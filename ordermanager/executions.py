"""The order manager's view of executions (its own consumer group on ``keys.EXECUTIONS``).

* A reverse's entry is sent when its exit order has filled completely, and dropped (with
  the reason in the decision log) when the exit is rejected or cancelled.
* A filled buy gets its exit rule (stop-loss / take-profit / trailing stop).
* A sell that closes a position removes its exit rule and its attribution.
* Account syncs record the day's equity baseline and turn the account to REDUCING when
  the daily loss limit is reached; they also prune exit rules of positions that are gone.

Every step is idempotent: a redelivered event changes nothing twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis

from ordermanager import baselines, decision_log, denials, risk
from ordermanager.denials import Denial
from ordermanager.placement import BuyEntry
from ordermanager.service import OrderManager
from yquant import exit_rules, keys, orders, portfolio, trading_state
from yquant.markets import symbol_key
from yquant.messages import (
    AccountSynced,
    AnyMessage,
    OrderCancelled,
    OrderFailed,
    OrderFilled,
    OrderRejected,
    Side,
    Signal,
)
from yquant.portfolio import AccountSnapshot
from yquant.trading_state import TradingState

logger = logging.getLogger(__name__)

PRUNE_MARGIN = timedelta(seconds=5)


class ExecutionHandler:
    HANDLED_TYPES = frozenset({"OrderFilled", "OrderRejected", "OrderFailed", "OrderCancelled", "AccountSynced"})

    def __init__(self, manager: OrderManager) -> None:
        self.manager = manager
        self.client: aioredis.Redis = manager.client

    async def handle(self, message: AnyMessage) -> None:
        if isinstance(message, OrderFilled):
            await self.on_fill(message)
        elif isinstance(message, OrderRejected):
            await self.drop_entry(message.client_order_id, f"the exit order was rejected: {message.reason}")
        elif isinstance(message, OrderFailed):
            await self.drop_entry(message.client_order_id, f"the exit order failed: {message.reason}")
        elif isinstance(message, OrderCancelled):
            await self.drop_entry(message.client_order_id, "the exit order was cancelled before it filled")
        elif isinstance(message, AccountSynced):
            await self.on_sync(message)

    # --- fills --------------------------------------------------------------------------
    async def on_fill(self, event: OrderFilled) -> None:
        """A buy placed lately by this process is known without a read; any other buy's order record
        and a sell's reverse entry (on its last fill) are read in one round trip. Only a sell can
        hold a reverse's entry (the exit of a reverse is a sell: ``OrderManager._reverse``), so the
        last fill of a remembered buy costs no round trip at all."""
        coid = event.client_order_id
        buy, last = event.side is Side.BUY, event.remaining_quantity == 0
        entry = self.manager.placement.placed.get(coid) if buy else None
        read_record = buy and entry is None
        read_reverse = last and not buy
        replies: list[Any] = []
        if read_record or read_reverse:
            async with self.client.pipeline(transaction=False) as pipe:
                if read_record:
                    pipe.hgetall(keys.order(coid))
                if read_reverse:
                    pipe.get(keys.reverse_entry(coid))
                replies = await pipe.execute()
        if read_record:
            entry = await self._entry_of(orders.parse_record(replies[0]) if replies[0] else None)
        if entry is not None:
            await self.attach_exit_rule(event, entry)
            if last:
                self.manager.placement.placed.forget(coid)
        if read_reverse:
            await self.forget_closed_position(event)
            await self.release_entry(coid, replies[-1])

    async def _entry_of(self, record: orders.OrderRecord | None) -> BuyEntry | None:
        """A buy's entry from its stored record and its signal's."""
        if record is None:
            return None
        signal = await _signal_of(self.client, record.signal_id)
        return BuyEntry(
            record.strategy,
            record.origin,
            signal.stop_loss if signal else None,
            signal.take_profit if signal else None,
        )

    async def release_entry(self, exit_client_order_id: str, raw: bytes | None) -> None:
        """Send the entry of a reverse whose exit filled (``raw``: its stored entry, if any)."""
        if raw is None:
            return
        data = orjson.loads(raw)
        signal = Signal.model_validate(data["signal"])
        account = str(data["account"])
        correlation_id = str(data["correlation_id"])
        result = await self.manager.place_reverse_entry(signal, account, correlation_id)
        maxlen = self.manager.maxlen
        if isinstance(result, Denial):
            await decision_log.annotate(
                self.client,
                signal,
                correlation_id,
                account=account,
                order_id=None,
                note=f"entry not sent: {result.reason}",
                denial=result,
                maxlen=maxlen,
            )
        else:
            await decision_log.annotate(
                self.client,
                signal,
                correlation_id,
                account=account,
                order_id=result,
                note="entry sent after the exit filled",
                maxlen=maxlen,
            )
        await self.client.delete(keys.reverse_entry(exit_client_order_id))

    async def drop_entry(self, exit_client_order_id: str, why: str) -> None:
        raw = await self.client.get(keys.reverse_entry(exit_client_order_id))
        if raw is None:
            return
        data = orjson.loads(raw)
        signal = Signal.model_validate(data["signal"])
        denial = Denial(denials.EXIT_NOT_FILLED, f"entry not sent: {why}")
        await decision_log.annotate(
            self.client,
            signal,
            str(data["correlation_id"]),
            account=str(data["account"]),
            order_id=None,
            note=denial.reason,
            denial=denial,
            maxlen=self.manager.maxlen,
        )
        await self.client.delete(keys.reverse_entry(exit_client_order_id))

    async def attach_exit_rule(self, event: OrderFilled, entry: BuyEntry) -> None:
        """The first fill of a buy gives the position its exit rule, unless it has one."""
        owner = entry.strategy if entry.origin == "signal" else entry.origin
        strategy = self.manager.strategies.get(entry.strategy) if entry.origin == "signal" else None
        stop_price = entry.stop_loss
        take_price = entry.take_profit
        rule = exit_rules.build_rule(
            account=event.account,
            market=event.market,
            ticker=event.ticker,
            strategy=owner,
            entry_price=event.average_price if event.average_price > 0 else event.fill_price,
            now=self.manager.clock.now(),
            stop_loss_price=stop_price,
            stop_loss_percent=strategy.stop_loss_percent if strategy else None,
            take_profit_price=take_price,
            take_profit_percent=strategy.take_profit_percent if strategy else None,
            trailing_percent=strategy.trailing_stop_percent if strategy else None,
        )
        if rule is None:
            return
        if await exit_rules.put_rule_if_absent(self.client, rule):
            logger.info(
                "exit rule set", extra={"account": rule.account, "ticker": rule.ticker, "rule_id": rule.rule_id}
            )
        elif stop_price is not None or take_price is not None:
            # Adding to a position: the alert's explicit prices replace the old ones.
            current = await exit_rules.get_rule(self.client, event.account, event.market, event.ticker)
            if current is not None:
                updated = current.model_copy(
                    update={
                        "stop_loss_price": stop_price or current.stop_loss_price,
                        "take_profit_price": take_price or current.take_profit_price,
                    }
                )
                await exit_rules.update_rule(self.client, updated)

    async def forget_closed_position(self, event: OrderFilled) -> None:
        """A sell that sold everything held closes the position: its rule and owner go."""
        position = await portfolio.get_position(self.client, event.account, event.market.value, event.ticker)
        if position is not None and position.quantity > event.cumulative_quantity:
            return
        await exit_rules.delete_rule(self.client, event.account, event.market, event.ticker)
        await portfolio.forget_attribution(self.client, event.account, event.market.value, event.ticker)

    # --- syncs --------------------------------------------------------------------------
    async def reduce_after_loss(self, account: str, reason: str) -> None:
        """The daily loss limit is reached: only position-reducing orders from now on (until set ACTIVE)."""
        state = await trading_state.get_trading_state(self.client, account)
        if state is TradingState.ACTIVE:
            await trading_state.set_trading_state(self.client, TradingState.REDUCING, account)
            logger.warning("daily loss limit reached", extra={"account": account, "reason": reason})

    async def on_sync(self, event: AccountSynced) -> None:
        """The limits, the account's exit rules and each currency's day baseline (recorded if it is
        the day's first) in one round trip; then the loss check and the pruning of rules."""
        snapshot = AccountSnapshot(
            account=event.account, cash=event.cash, synced_at=event.occurred_at.isoformat(), positions=event.positions
        )
        equities = {currency: risk.equity_of(snapshot, currency) for currency in event.cash}
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.RISK_LIMITS)
            pipe.hgetall(keys.exit_rules(event.account))
            for currency, equity in equities.items():
                baselines.queue_daily_baseline(pipe, event.account, currency, equity, event.occurred_at)
            replies = await pipe.execute()
        limits = self.manager.limits.limits(replies[0])
        for at, currency in enumerate(equities):
            baseline = baselines.baseline_of(replies[2 + at * baselines.QUEUED : 2 + (at + 1) * baselines.QUEUED])
            denial = risk.check_daily_loss(limits, currency, risk.daily_loss(baseline, equities[currency]))
            if denial is not None:
                await self.reduce_after_loss(event.account, denial.reason)
        held = {symbol_key(p.market, p.ticker) for p in event.positions if p.quantity > 0}
        for rule in exit_rules.parse_rules(replies[1]):
            if rule.position_key not in held and rule.created_at < event.occurred_at - PRUNE_MARGIN:
                await exit_rules.delete_rule(self.client, event.account, rule.market, rule.ticker, rule.rule_id)
                logger.info("exit rule removed: position gone", extra={"account": event.account, "ticker": rule.ticker})


async def _signal_of(client: aioredis.Redis, signal_id: str | None) -> Signal | None:
    if not signal_id:
        return None
    raw = await client.hget(keys.signal_record(signal_id), "signal")
    return Signal.model_validate_json(raw) if raw else None
