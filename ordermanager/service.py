"""The order manager's signal handler: every signal ends accepted or denied, with a reason.

Exactly-once: the ``client_order_id`` is derived from (signal id, account), and the order
record and its command are written atomically, so a redelivered signal creates nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR
from pathlib import Path

import redis.asyncio as aioredis

from yquant import decisions, orders, portfolio
from yquant.markets import is_open, next_open
from yquant.messages import (
    AnyMessage,
    OrderDenied,
    QuantityType,
    Side,
    Signal,
    SignalAccepted,
    SignalAction,
    SignalReceived,
    SubmitOrder,
)
from yquant.settings import Settings, StrategySettings, effective_accounts, effective_strategies

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Denial:
    code: str
    reason: str


def client_order_id(signal_id: str, account: str, leg: str = "") -> str:
    digest = hashlib.sha256(f"{signal_id}\x1f{account}\x1f{leg}".encode()).hexdigest()[:24]
    return f"yq-{digest}"


class OrderManager:
    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.accounts = effective_accounts(settings)
        self.strategies = effective_strategies(settings)
        self.maxlen = settings.bus.stream_maxlen
        # Opening hours are relaxed only against the simulator, never a real KIS domain.
        self.always_open = settings.ordermanager.always_open and settings.kis.rest_url is not None

    def partition_key(self, message: AnyMessage) -> str:
        if isinstance(message, SignalReceived):
            return f"{message.signal.strategy}:{message.signal.market.value}:{message.signal.ticker}"
        return message.id

    async def handle(self, message: AnyMessage) -> None:
        if isinstance(message, SignalReceived):
            self._maybe_crash("after_read")
            await self.handle_signal(message.signal, message.correlation_id)
        else:
            logger.warning("ignoring unexpected message", extra={"type": message.type})

    def _maybe_crash(self, point: str) -> None:
        cfg = self.settings.ordermanager
        if cfg.crash_at != point:
            return
        marker: Path | None = cfg.crash_marker
        if marker is not None and marker.exists():
            return
        if marker is not None:
            marker.write_text(point)
        logger.critical("fault injection: exiting abruptly", extra={"point": point})
        os._exit(137)

    async def handle_signal(self, signal: Signal, correlation_id: str) -> None:
        await decisions.record_received(self.client, signal)
        denial = self._check_signal(signal)
        if denial is not None:
            await self._deny(signal, correlation_id, None, denial)
            return
        strategy = self.strategies[signal.strategy]
        accounts = [signal.account] if signal.account else strategy.accounts
        created: list[str] = []
        denials: list[tuple[str, Denial]] = []
        for account in accounts:
            if account not in strategy.accounts or account not in self.accounts:
                denials.append((account, Denial("UNKNOWN_ACCOUNT", f"account {account!r} is not mapped")))
                continue
            result = await self._order_for_account(signal, strategy, account, correlation_id)
            if isinstance(result, Denial):
                denials.append((account, result))
            else:
                created.append(result)
        if created:
            note = "; ".join(f"{a}: {d.reason}" for a, d in denials)
            accepted = SignalAccepted(
                correlation_id=correlation_id,
                signal_id=signal.signal_id,
                strategy=signal.strategy,
                ticker=signal.ticker,
                client_order_ids=created,
                note=note,
            )
            await decisions.record_decision(self.client, signal, accepted, self.maxlen)
            logger.info("signal accepted", extra={"orders": created})
        else:
            if denials:
                await self._deny(signal, correlation_id, denials[0][0], denials[0][1])
            else:
                await self._deny(signal, correlation_id, None, Denial("NO_ACCOUNT", "no account"))

    def _check_signal(self, signal: Signal) -> Denial | None:
        if signal.strategy not in self.strategies:
            return Denial("UNKNOWN_STRATEGY", f"strategy {signal.strategy!r} is not configured")
        if signal.fired_at is not None:
            age = datetime.now(UTC) - signal.fired_at
            limit = self.settings.ordermanager.max_signal_age_s
            if age > timedelta(seconds=limit):
                return Denial("STALE", f"signal is {age.total_seconds():.0f}s old (limit {limit:.0f}s)")
        if signal.action is SignalAction.CANCEL:
            return None
        if not self.always_open and not is_open(signal.market, datetime.now(UTC)):
            opens = next_open(signal.market, datetime.now(UTC))
            return Denial("MARKET_CLOSED", f"{signal.market.value} is closed; next open {opens.isoformat()}")
        return None

    async def _order_for_account(
        self, signal: Signal, strategy: StrategySettings, account: str, correlation_id: str
    ) -> str | Denial:
        if signal.action not in (SignalAction.BUY, SignalAction.SELL, SignalAction.EXIT):
            return Denial("UNSUPPORTED_ACTION", f"action {signal.action.value} is not supported yet")
        side = Side.BUY if signal.action is SignalAction.BUY else Side.SELL
        quantity = self._requested_quantity(signal, strategy)
        if side is Side.SELL:
            position = await portfolio.get_position(self.client, account, signal.market.value, signal.ticker)
            held = position.sellable_quantity if position else 0
            if held <= 0:
                return Denial("NO_POSITION", f"no {signal.ticker} position to sell")
            if signal.action is SignalAction.EXIT or quantity is None or quantity > held:
                quantity = held  # sells are sized from holdings, never above what is held
        if quantity is None or quantity <= 0:
            return Denial("NO_QUANTITY", "the alert carries no quantity and the strategy sets none")
        coid = client_order_id(signal.signal_id, account)
        command = SubmitOrder(
            correlation_id=correlation_id,
            client_order_id=coid,
            account=account,
            market=signal.market,
            ticker=signal.ticker,
            side=side,
            quantity=quantity,
            order_type=signal.order_type,
            limit_price=signal.price if signal.order_type.value == "limit" else None,
            strategy=signal.strategy,
            origin=signal.source if signal.source != "webhook" else "signal",
            signal_id=signal.signal_id,
            reduce_only=side is Side.SELL,
        )
        created = await orders.create_order(self.client, command, self.maxlen)
        if not created:
            logger.info("order already recorded for this signal; nothing appended", extra={"client_order_id": coid})
        self._maybe_crash("after_order_append")
        return coid

    @staticmethod
    def _requested_quantity(signal: Signal, strategy: StrategySettings) -> int | None:
        if signal.quantity is not None and signal.quantity_type is QuantityType.FIXED:
            return int(signal.quantity.to_integral_value(rounding=ROUND_FLOOR))
        if strategy.quantity is not None:
            return strategy.quantity
        return None

    async def _deny(self, signal: Signal, correlation_id: str, account: str | None, denial: Denial) -> None:
        denied = OrderDenied(
            correlation_id=correlation_id,
            signal_id=signal.signal_id,
            strategy=signal.strategy,
            ticker=signal.ticker,
            account=account,
            reason_code=denial.code,
            reason=denial.reason,
        )
        await decisions.record_decision(self.client, signal, denied, self.maxlen)
        logger.info("signal denied", extra={"code": denial.code, "reason": denial.reason})
