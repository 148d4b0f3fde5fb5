"""The order manager's signal handler: every signal ends accepted or denied, with a reason.

Order of the checks: strategy and account mapping, staleness, market hours, then per
account (``ordermanager.placement``) trading state, symbol lists, daily loss, price,
sizing, value and cash limits, duplicate window and order rate. Signals of one ticker are
handled in arrival order (the bus partitions by market and ticker); an account's checks
and order creation run one at a time in this process, so two buys cannot both spend the
same cash.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from ordermanager import decision_log, denials, risk
from ordermanager.clock import Clock, SystemClock
from ordermanager.denials import Denial
from ordermanager.exposure import AccountRead, AccountReader
from ordermanager.placement import (
    PendingOrder,
    Placement,
    QuoteSource,
    SignalContext,
    client_order_id,
    orders_written,
    place_arguments,
    queue_orders,
)
from ordermanager.sizing import strategy_problems
from yquant import decisions, keys, quotes
from yquant.errors import ConfigurationError
from yquant.markets import symbol_key
from yquant.messages import AnyMessage, Market, Quote, Signal, SignalAction, SignalReceived, SignalSource
from yquant.risk_limits import LimitsReader, RiskLimits, load_limits
from yquant.settings import Settings, StrategySettings, effective_accounts, effective_strategies
from yquant.trading_state import TradingState

logger = logging.getLogger(__name__)

# The cached quote of the signal being decided ((market, ticker), quote or None), read with its
# other reads; ``fresh_quote`` uses it instead of reading the cache again.
_PREFETCHED_QUOTE: ContextVar[tuple[tuple[Market, str], Quote | None] | None] = ContextVar(
    "prefetched_quote", default=None
)

__all__ = ["OrderManager", "client_order_id"]


@dataclass(frozen=True)
class Placed:
    client_order_id: str
    note: str = ""


AccountOutcome = Placed | Denial


class OrderManager:
    def __init__(
        self,
        client: aioredis.Redis,
        settings: Settings,
        *,
        clock: Clock | None = None,
        quote_source: QuoteSource | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.accounts = effective_accounts(settings)
        self.strategies = effective_strategies(settings)
        problems = [p for name, s in self.strategies.items() for p in strategy_problems(name, s)]
        if problems:
            raise ConfigurationError("; ".join(problems))
        self.maxlen = settings.bus.stream_maxlen
        # Opening hours are relaxed only against the simulator, never a real KIS domain.
        self.always_open = settings.markets_always_open
        self.clock: Clock = clock or SystemClock()
        self.quote_source: QuoteSource = quote_source or self.fresh_quote
        self.placement = Placement(
            client,
            self.quote_source,
            self.maxlen,
            us_quotes=quote_source or self.pricing_quote,
            us_slippage_percent=settings.ordermanager.us_market_slippage_percent,
        )
        self._account_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.limits = LimitsReader(settings)  # parsed again only when the stored limits change

    def account_lock(self, account: str) -> asyncio.Lock:
        """Held while an account's checks and the order they allow are written (signals, revisions)."""
        return self._account_locks[account]

    async def fresh_quote(self, market: Market, ticker: str) -> Quote | None:
        cfg = self.settings.ordermanager
        prefetched = _PREFETCHED_QUOTE.get()
        if prefetched is not None and prefetched[0] == (market, ticker):
            # The cache was read with the signal's other reads: only a miss asks the gateway.
            return await quotes.quote_after_cache(
                self.client,
                market,
                ticker,
                prefetched[1],
                cfg.quote_timeout_s,
                max_age_s=cfg.quote_max_age_s,
                now=self.clock.now(),
                wait_s=cfg.quote_wait_s,
            )
        return await quotes.get_quote(
            self.client,
            market,
            ticker,
            cfg.quote_timeout_s,
            max_age_s=cfg.quote_max_age_s,
            now=self.clock.now(),
            wait_s=cfg.quote_wait_s,
        )

    async def pricing_quote(self, market: Market, ticker: str) -> Quote | None:
        """A quote recent enough to price a US market order on (``us_quote_max_age_s``)."""
        cfg = self.settings.ordermanager
        prefetched = _PREFETCHED_QUOTE.get()
        cached = prefetched[1] if prefetched is not None and prefetched[0] == (market, ticker) else None
        if cached is not None and quotes.is_fresh(cached, self.clock.now(), cfg.us_quote_max_age_s):
            return cached
        return await quotes.get_quote(
            self.client,
            market,
            ticker,
            cfg.quote_timeout_s,
            max_age_s=cfg.us_quote_max_age_s,
            now=self.clock.now(),
            wait_s=cfg.quote_wait_s,
        )

    def partition_key(self, message: AnyMessage) -> str:
        """Signals of one market and ticker (any strategy, any account) are handled in arrival order."""
        if isinstance(message, SignalReceived):
            return symbol_key(message.signal.market, message.signal.ticker)
        return message.id

    async def handle(self, message: AnyMessage) -> None:
        """A signal from the webhook's stream (tests and tools that append alerts directly)."""
        await self.handle_from(keys.SIGNALS_WEBHOOK, message)

    def handler_for(self, stream: str) -> Callable[[AnyMessage], Awaitable[None]]:
        """The consumer handler of one signal stream: it trusts a signal's source only as far as
        ``keys.SIGNAL_STREAMS`` lets that stream's producer claim it."""

        async def handle(message: AnyMessage) -> None:
            await self.handle_from(stream, message)

        return handle

    async def handle_from(self, stream: str, message: AnyMessage) -> None:
        if not isinstance(message, SignalReceived):
            logger.warning("ignoring unexpected message", extra={"type": message.type})
            return
        signal = message.signal
        allowed = keys.SIGNAL_STREAMS[stream]
        if signal.source not in allowed:
            logger.warning(
                "signal refused: its source is not one its stream may carry",
                extra={"signal_id": signal.signal_id, "source": signal.source.value, "stream": stream},
            )
            await decisions.record_received(self.client, signal)
            denial = Denial(
                denials.FORGED_SOURCE,
                f"a signal on {stream} may not claim the source {signal.source.value!r}"
                f" (allowed: {', '.join(sorted(allowed))})",
            )
            await decision_log.deny(self.client, signal, message.correlation_id, None, denial, self.maxlen)
            return
        await self.handle_signal(signal, message.correlation_id)

    # --- one signal ---------------------------------------------------------------------
    async def handle_signal(self, signal: Signal, correlation_id: str) -> None:
        """One signal: its reads go in one round trip (the received record, the limits and, for a
        signal of one account, that account's view, taken inside the account's lock so no other
        signal's order can land between the read and this one's order)."""
        resolved = self._resolve(signal)
        account = self._only_account(signal, resolved)
        if account is None:
            await self._handle_signal(signal, correlation_id, resolved, None)
            return
        async with self._account_locks[account]:
            await self._handle_signal(signal, correlation_id, resolved, account)

    def _only_account(self, signal: Signal, resolved: tuple[StrategySettings | None, list[str]] | Denial) -> str | None:
        """The account whose view is read with the signal: the one it trades in, if only one."""
        if isinstance(resolved, Denial) or signal.action is SignalAction.CANCEL or len(resolved[1]) != 1:
            return None
        account = resolved[1][0]
        if account not in self.accounts or signal.market.value not in self.accounts[account].markets:
            return None
        return account

    @staticmethod
    def _order_ids(signal: Signal, account: str) -> list[str]:
        """The client order ids a signal may already have created in an account."""
        legs = ("exit", "entry") if signal.action is SignalAction.REVERSE else ("",)
        return [client_order_id(signal.signal_id, account, leg) for leg in legs]

    async def _handle_signal(
        self,
        signal: Signal,
        correlation_id: str,
        resolved: tuple[StrategySettings | None, list[str]] | Denial,
        account: str | None,
    ) -> None:
        order_ids = self._order_ids(signal, account) if account else []
        wants_quote = account is not None and self.quote_source == self.fresh_quote and not signal.price
        async with self.client.pipeline(transaction=False) as pipe:
            decisions.queue_received(pipe, signal)
            pipe.hgetall(keys.RISK_LIMITS)
            if account is not None:
                self.placement.reader.queue(pipe, account, order_ids)
            if wants_quote:
                pipe.get(keys.quote(signal.market.value, signal.ticker))
            replies = await pipe.execute()
        position = decisions.RECEIVED_COMMANDS
        limits = self.limits.limits(replies[position])
        position += 1
        read: AccountRead | None = None
        if account is not None:
            count = AccountReader.QUEUED + len(order_ids)
            read = await self.placement.reader.finish(
                self.client, account, order_ids, replies[position : position + count]
            )
            position += count
        token = None
        if wants_quote:
            token = _PREFETCHED_QUOTE.set(((signal.market, signal.ticker), quotes.parse_quote(replies[position])))
        try:
            await self._decide_signal(signal, correlation_id, resolved, limits, read)
        finally:
            if token is not None:
                _PREFETCHED_QUOTE.reset(token)

    async def _decide_signal(
        self,
        signal: Signal,
        correlation_id: str,
        resolved: tuple[StrategySettings | None, list[str]] | Denial,
        limits: RiskLimits,
        read: AccountRead | None,
    ) -> None:
        now = self.clock.now()
        if isinstance(resolved, Denial):
            await decision_log.deny(self.client, signal, correlation_id, None, resolved, self.maxlen)
            return
        strategy, accounts = resolved
        # With the account read inside its lock, the lock is held until the decision is written:
        # the order goes in the decision's transaction, and the next signal's read sees it.
        deferred: list[PendingOrder] | None = [] if read is not None else None
        ctx = SignalContext(signal, correlation_id, limits, now, strategy, deferred)
        denial = risk.check_stale(limits, signal.fired_at, now)
        if denial is None and signal.action is not SignalAction.CANCEL:
            denial = risk.check_market_open(signal.market, now, self.always_open)
        if denial is not None:
            await decision_log.deny(self.client, signal, correlation_id, None, denial, self.maxlen)
            return
        if signal.action is SignalAction.CANCEL:
            await self._cancel(ctx, accounts)
            return
        outcomes: list[tuple[str, AccountOutcome]] = []
        for account in accounts:
            if account not in self.accounts:
                outcomes.append((account, Denial(denials.UNKNOWN_ACCOUNT, f"account {account!r} is not configured")))
                continue
            if signal.market.value not in self.accounts[account].markets:
                reason = f"account {account!r} does not trade {signal.market.value}"
                outcomes.append((account, Denial(denials.MARKET_NOT_TRADED, reason)))
                continue
            if read is not None:  # read with the signal, and this task holds the account's lock
                outcomes.append((account, await self._for_account(ctx, account, read)))
                continue
            async with self._account_locks[account]:
                own = await self.placement.reader.read(self.client, account, self._order_ids(signal, account))
                outcomes.append((account, await self._for_account(ctx, account, own)))
        await self._decide(ctx, outcomes)

    def _resolve(self, signal: Signal) -> tuple[StrategySettings | None, list[str]] | Denial:
        """The strategy and the accounts a signal trades in.

        Alerts trade in their strategy's accounts (or the one named, if it is mapped).
        Internal signals (dashboard, schedule, exit, liquidation) name their account.
        """
        strategy = self.strategies.get(signal.strategy)
        if signal.source is not SignalSource.WEBHOOK and signal.account:
            if signal.account not in self.accounts:
                return Denial(denials.UNKNOWN_ACCOUNT, f"account {signal.account!r} is not configured")
            return strategy, [signal.account]
        if strategy is None:
            return Denial(denials.UNKNOWN_STRATEGY, f"strategy {signal.strategy!r} is not configured")
        if signal.account:
            if signal.account not in strategy.accounts:
                return Denial(
                    denials.UNKNOWN_ACCOUNT,
                    f"account {signal.account!r} is not mapped to strategy {signal.strategy!r}",
                )
            return strategy, [signal.account]
        return strategy, list(strategy.accounts)

    async def _for_account(self, ctx: SignalContext, account: str, read: AccountRead) -> AccountOutcome:
        action = ctx.signal.action
        result: str | Denial
        if action is SignalAction.BUY:
            result = await self.placement.buy(ctx, account, read=read)
        elif action is SignalAction.SELL:
            result = await self.placement.sell(ctx, account, whole=False, read=read)
        elif action is SignalAction.EXIT:
            result = await self.placement.sell(ctx, account, whole=True, read=read)
        elif action is SignalAction.REVERSE:
            return await self._reverse(ctx, account, read)
        else:
            result = Denial(denials.UNSUPPORTED_ACTION, f"action {action.value} is not supported")
        return result if isinstance(result, Denial) else Placed(result)

    # --- reverse: exit first, the entry waits for the exit's fill -----------------------
    async def _reverse(self, ctx: SignalContext, account: str, read: AccountRead) -> AccountOutcome:
        signal = ctx.signal
        exit_coid = client_order_id(signal.signal_id, account, "exit")
        if exit_coid in read.existing:
            return Placed(exit_coid, "reverse: entry waits for the exit's fill")
        if read.view.sellable(signal.market, signal.ticker) <= 0:
            entry = await self.placement.buy(ctx, account, leg="entry", read=read)
            return entry if isinstance(entry, Denial) else Placed(entry, "reverse: nothing to exit, entry sent")
        state, _scope = read.trading_state
        wants_entry = state is TradingState.ACTIVE
        pending_key = keys.reverse_entry(exit_coid)
        if wants_entry:
            # Written before the exit exists, so even an instant fill finds it.
            payload = {
                "signal": signal.model_dump(mode="json"),
                "account": account,
                "correlation_id": ctx.correlation_id,
            }
            timeout = max(int(self.settings.ordermanager.reverse_entry_timeout_s), 1)
            await self.client.set(pending_key, orjson.dumps(payload), ex=timeout)
        result = await self.placement.sell(ctx, account, whole=True, leg="exit", read=read)
        if isinstance(result, Denial):
            await self.client.delete(pending_key)
            return result
        if wants_entry:
            return Placed(result, "reverse: entry waits for the exit's fill")
        return Placed(result, f"reverse: exit only, entry skipped (trading is {state.value})")

    async def place_reverse_entry(self, signal: Signal, account: str, correlation_id: str) -> str | Denial:
        """The entry of a reverse, once its exit has filled (called by the executions handler)."""
        limits = await load_limits(self.client, self.settings)
        now = self.clock.now()
        denial = risk.check_market_open(signal.market, now, self.always_open)
        if denial is not None:
            return denial
        ctx = SignalContext(signal, correlation_id, limits, now, self.strategies.get(signal.strategy))
        async with self._account_locks[account]:
            return await self.placement.buy(ctx, account, leg="entry")

    # --- cancel -------------------------------------------------------------------------
    async def _cancel(self, ctx: SignalContext, accounts: list[str]) -> None:
        cancelled: list[str] = []
        for account in accounts:
            cancelled += await self.placement.cancel_open(ctx, account)
        if not cancelled:
            denial = Denial(denials.NOTHING_TO_CANCEL, f"no open {ctx.signal.ticker} orders to cancel")
            await decision_log.deny(self.client, ctx.signal, ctx.correlation_id, None, denial, self.maxlen)
            return
        note = f"cancel requested for {len(cancelled)} open order(s)"
        await decision_log.accept(self.client, ctx.signal, ctx.correlation_id, cancelled, note, self.maxlen)

    # --- the decision -------------------------------------------------------------------
    async def _decide(self, ctx: SignalContext, outcomes: list[tuple[str, AccountOutcome]]) -> None:
        placed = [(a, o) for a, o in outcomes if isinstance(o, Placed)]
        denied = [(a, o) for a, o in outcomes if isinstance(o, Denial)]
        if placed:
            notes = [f"{a}: {o.note}" for a, o in placed if o.note]
            notes += [f"{a}: not traded: {d.reason}" for a, d in denied]
            order_ids = [o.client_order_id for _, o in placed]
            pending = ctx.deferred or []
            if len(pending) == 1 and len(placed) == 1:
                await self._place_one(ctx, placed[0][0], order_ids, "; ".join(notes), pending[0])
                return
            at: list[int] = []
            replies = await decision_log.accept(
                self.client,
                ctx.signal,
                ctx.correlation_id,
                order_ids,
                "; ".join(notes),
                self.maxlen,
                prelude=lambda pipe: at.extend(queue_orders(pipe, pending, self.maxlen)),
            )
            orders_written(pending, [replies[i] for i in at], ctx.signal, self.placement.placed)
            return
        if ctx.deferred:  # not reached (an order is decided only for an account that placed it)
            async with self.client.pipeline(transaction=True) as pipe:
                at = queue_orders(pipe, ctx.deferred, self.maxlen)
                written = await pipe.execute()
            orders_written(ctx.deferred, [written[i] for i in at], ctx.signal, self.placement.placed)
        if not denied:
            denied = [("*", Denial(denials.UNKNOWN_ACCOUNT, "the strategy maps to no account"))]
        account, first = denied[0]
        reason = "; ".join([first.reason] + [f"{a}: {d.reason}" for a, d in denied[1:]])
        await decision_log.deny(
            self.client, ctx.signal, ctx.correlation_id, account, Denial(first.code, reason), self.maxlen
        )

    async def _place_one(
        self, ctx: SignalContext, account: str, order_ids: list[str], note: str, order: PendingOrder
    ) -> None:
        """The order, its throttles and the decision in one step (one command): the duplicate window
        and the rate slot are checked where the order is written, so a refusal writes no order and
        is recorded with its reason instead of the acceptance."""
        guard = order.guard
        refusal, created = await decision_log.place(
            self.client,
            ctx.signal,
            ctx.correlation_id,
            account,
            order_ids,
            note,
            (guard.duplicate, guard.rate) if guard is not None else None,
            lambda layout: place_arguments(order, ctx.signal.signal_id, layout, self.maxlen),
        )
        if refusal is None:
            orders_written([order], [created], ctx.signal, self.placement.placed)
        elif ctx.signal.action is SignalAction.REVERSE:
            await self.client.delete(keys.reverse_entry(order.command.client_order_id))  # no exit: no entry
