"""The exit evaluator: exit rules on quotes, and end-of-day liquidation per strategy.

An exit does not place an order itself: it appends an EXIT signal (source ``exit`` or
``eod``) for the position's account, so the order goes through the same decision path
and appears in the decision log with the reason it triggered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from ordermanager.clock import Clock
from ordermanager.metrics import EXITS_TRIGGERED
from ordermanager.placement import QuoteSource
from yquant import exit_rules, keys, portfolio, runtime
from yquant.bus import publish
from yquant.markets import is_open, is_trading_day, local_date, session_close, symbol_key
from yquant.messages import Market, Signal, SignalAction, SignalReceived, SignalSource
from yquant.settings import StrategySettings

logger = logging.getLogger(__name__)

MARKER_TTL_S = 7 * 86_400


class ExitWatcher:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        accounts: Iterable[str],
        strategies: dict[str, StrategySettings],
        clock: Clock,
        quote_source: QuoteSource,
        maxlen: int,
        always_open: bool = False,
    ) -> None:
        self.client = client
        self.accounts = list(accounts)
        self.strategies = strategies
        self.clock = clock
        self.quote_source = quote_source
        self.maxlen = maxlen
        self.always_open = always_open

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        await runtime.every(stop, interval_s, self.tick, logger, "exit evaluation failed; retrying next round")

    async def tick(self) -> list[str]:
        """One round: every rule against a fresh quote, then end-of-day. Returns the signal ids appended."""
        appended: list[str] = []
        for account in self.accounts:
            for rule in await exit_rules.get_rules(self.client, account):
                signal_id = await self._check_rule(rule)
                if signal_id:
                    appended.append(signal_id)
        appended += await self.end_of_day()
        return appended

    async def _check_rule(self, rule: exit_rules.ExitRule) -> str | None:
        now = self.clock.now()
        if not (self.always_open or is_open(rule.market, now)):
            return None
        quote = await self.quote_source(rule.market, rule.ticker)
        if quote is None:
            return None
        hit = exit_rules.evaluate(rule, quote.price)
        if hit is None:
            raised = exit_rules.raise_high_water(rule, quote.price)
            if raised is not None:
                await exit_rules.update_rule(self.client, raised)
            return None
        claimed = await self.client.set(
            keys.exit_triggered(rule.account, rule.rule_id), hit.kind, nx=True, ex=MARKER_TTL_S
        )
        if not claimed:
            return None  # another order manager triggered it
        signal = Signal(
            signal_id=f"exit-{rule.rule_id}",
            strategy=rule.strategy,
            ticker=rule.ticker,
            market=rule.market,
            action=SignalAction.EXIT,
            fired_at=now,
            received_at=now,
            source=SignalSource.EXIT,
            account=rule.account,
            comment=hit.reason,
        )
        await publish(self.client, keys.SIGNALS_INTERNAL, SignalReceived(signal=signal), self.maxlen)
        await exit_rules.delete_rule(self.client, rule.account, rule.market, rule.ticker, rule.rule_id)
        EXITS_TRIGGERED.labels(hit.kind).inc()
        logger.warning(
            "exit triggered",
            extra={"account": rule.account, "ticker": rule.ticker, "kind": hit.kind, "reason": hit.reason},
        )
        return signal.signal_id

    async def end_of_day(self) -> list[str]:
        """Sell the positions of strategies with ``eod_liquidation`` in the minutes before the close."""
        now = self.clock.now()
        appended: list[str] = []
        for name, strategy in self.strategies.items():
            if not strategy.eod_liquidation:
                continue
            owned = await self._owned_positions(name, strategy.accounts)
            for market in sorted({m for _, m, _ in owned}):
                day = local_date(market, now)
                if not is_trading_day(market, day):
                    continue
                close = session_close(market, day)
                if not close - timedelta(minutes=strategy.eod_minutes_before_close) <= now < close:
                    continue
                marker = keys.end_of_day_done(name, market.value, day.isoformat())
                if not await self.client.set(marker, "1", nx=True, ex=2 * 86_400):
                    continue
                for account, position_market, ticker in owned:
                    if position_market is market:
                        appended.append(await self._liquidate(name, account, market, ticker, day.isoformat(), now))
        return appended

    async def _owned_positions(self, strategy: str, accounts: list[str]) -> list[tuple[str, Market, str]]:
        owned: list[tuple[str, Market, str]] = []
        for account in accounts:
            attribution = {
                keys.text(k): keys.text(v)
                for k, v in (await self.client.hgetall(keys.position_attribution(account))).items()
            }
            for position in await portfolio.get_positions(self.client, account):
                owner = attribution.get(symbol_key(position.market, position.ticker), position.strategy)
                if owner == strategy and position.quantity > 0:
                    owned.append((account, position.market, position.ticker))
        return owned

    async def _liquidate(
        self, strategy: str, account: str, market: Market, ticker: str, day: str, now: datetime
    ) -> str:
        signal = Signal(
            signal_id=f"eod-{strategy}-{account}-{market.value}-{ticker}-{day}",
            strategy=strategy,
            ticker=ticker,
            market=market,
            action=SignalAction.EXIT,
            fired_at=now,
            received_at=now,
            source=SignalSource.END_OF_DAY,
            account=account,
            comment="end-of-day liquidation",
        )
        await publish(self.client, keys.SIGNALS_INTERNAL, SignalReceived(signal=signal), self.maxlen)
        logger.info("end-of-day liquidation", extra={"strategy": strategy, "account": account, "ticker": ticker})
        return signal.signal_id
