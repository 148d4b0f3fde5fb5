"""One signal, one account: trading state, sizing, pre-trade risk, then the order (or a denial).

Exactly-once: the ``client_order_id`` is derived from (signal id, account, leg) and the
order record and its command are written atomically (``orders.create_order``). If the
order already exists (a redelivered signal) it is returned without checking again, so a
retry can neither duplicate nor flip an earlier decision.

The throttles (duplicate window, order rate) are the last checks. For a signal of one account
they go with the order as its ``Guard`` and are checked in ``yq_order_place``, which writes the
reservation, the order and the acceptance only if both pass, and the refusal's decision
otherwise (``place_arguments``; ADR 0013). With neither throttle on, the order and its decision
still go as that one command, its throttles off. Orders of a signal of several accounts are
throttled and written one at a time (``_throttle``, ``_create``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from ordermanager import baselines, denials, exposure, guards, risk
from ordermanager.denials import Denial
from ordermanager.exposure import AccountRead, AccountReader
from ordermanager.metrics import ORDERS_CREATED
from ordermanager.sizing import SizingInput, SizingPolicy, needs_price, policy_for, size_order
from yquant import keys, orders, trading_state
from yquant.bus import publish
from yquant.decisions import DECISION_TTL_S
from yquant.markets import marketable_limit, round_to_tick, symbol_key
from yquant.messages import CancelOrder, Market, OrderOrigin, OrderType, Quote, Side, Signal, SignalSource, SubmitOrder
from yquant.risk_limits import RiskLimits
from yquant.settings import StrategySettings
from yquant.trading_state import TradingState

logger = logging.getLogger(__name__)

QuoteSource = Callable[[Market, str], Awaitable[Quote | None]]

# Where an order came from, by the signal's source (SubmitOrder.origin).
ORIGINS: dict[SignalSource, OrderOrigin] = {
    SignalSource.WEBHOOK: OrderOrigin.SIGNAL,
    SignalSource.DASHBOARD: OrderOrigin.MANUAL,
    SignalSource.SCHEDULE: OrderOrigin.SCHEDULE,
    SignalSource.EXIT: OrderOrigin.EXIT,
    SignalSource.END_OF_DAY: OrderOrigin.LIQUIDATION,
    SignalSource.FLATTEN: OrderOrigin.LIQUIDATION,
    SignalSource.LIQUIDATION: OrderOrigin.LIQUIDATION,
}
# Sources exempt from the duplicate window (each triggers once by construction).
NO_DUPLICATE_CHECK = frozenset(
    {SignalSource.EXIT, SignalSource.END_OF_DAY, SignalSource.FLATTEN, SignalSource.LIQUIDATION}
)


def client_order_id(signal_id: str, account: str, leg: str = "") -> str:
    digest = hashlib.sha256(f"{signal_id}\x1f{account}\x1f{leg}".encode()).hexdigest()[:24]
    return f"yq-{digest}"


@dataclass(frozen=True)
class SignalContext:
    signal: Signal
    correlation_id: str
    limits: RiskLimits
    now: datetime
    strategy: StrategySettings | None  # the configured strategy, when there is one
    # Orders decided for this signal, written with its decision; None: each is written at once.
    deferred: list[PendingOrder] | None = None

    @property
    def sizing_strategy(self) -> StrategySettings | None:
        """Only alerts are sized by the strategy's policy; manual, schedule and exit signals carry their size."""
        return self.strategy if self.signal.source is SignalSource.WEBHOOK else None


class Placement:
    def __init__(
        self,
        client: aioredis.Redis,
        quotes: QuoteSource,
        maxlen: int,
        records: orders.RecordCache | None = None,
        *,
        us_quotes: QuoteSource | None = None,
        us_slippage_percent: Decimal = Decimal(1),
    ) -> None:
        self.client = client
        self.quotes = quotes
        self.us_quotes = us_quotes or quotes  # quotes recent enough to price a US market order
        self.us_slippage_percent = us_slippage_percent
        self.maxlen = maxlen
        self.records = records or orders.RecordCache()  # parsed order records, shared per process
        self.placed = PlacedBuys()  # the buys placed lately, for their fills
        self.reader = AccountReader(self.records)

    # --- buys ---------------------------------------------------------------------------
    async def buy(
        self, ctx: SignalContext, account: str, leg: str = "", read: AccountRead | None = None
    ) -> str | Denial:
        """``read``: the account as read with the signal (inside the account's lock); read here if None."""
        signal = ctx.signal
        coid = client_order_id(signal.signal_id, account, leg)
        read = read or await self.reader.read(self.client, account, [coid])
        if coid in read.existing:
            return coid
        state, scope = read.trading_state
        denial = risk.check_trading_state(state, scope, reducing=False, source=signal.source)
        denial = denial or risk.check_symbol(ctx.limits, signal.market, signal.ticker)
        if denial:
            return denial
        view = read.view
        currency = signal.market.currency
        equity = risk.equity_of(view.snapshot, currency) if view.snapshot else None
        if equity is not None and ctx.limits.max_daily_loss.get(currency):
            baseline = await baselines.daily_baseline(self.client, account, currency, equity, ctx.now)
            denial = risk.check_daily_loss(ctx.limits, currency, risk.daily_loss(baseline, equity))
            if denial:
                await trading_state.set_trading_state(self.client, TradingState.REDUCING, account)
                return denial
        price, quote = await self._reference_price(signal)
        if price is None:
            return Denial(denials.NO_PRICE, "no price: the alert has none and no fresh quote is available")
        held = view.position(signal.market, signal.ticker)
        sizing = self._sizing_input(ctx, Side.BUY, price, equity, held.quantity if held else 0)
        quantity = size_order(sizing)
        if isinstance(quantity, Denial):
            return quantity
        priced = await self._pricing(ctx, Side.BUY, price, quote)
        if isinstance(priced, Denial):
            return priced
        order_type, limit_price = priced
        unit = limit_price or price  # a US market order is checked at its marketable limit
        denial = risk.check_buy(
            ctx.limits, currency, unit * quantity, view.buy_exposure(signal.market, signal.ticker, unit)
        )
        if denial:
            return denial
        guard = self._guard(ctx, account, Side.BUY, coid)
        if ctx.deferred is None and guard is not None:
            denial = await self._throttle(guard)
            if denial:
                return denial
            guard = None
        reservation = (currency, unit, exposure.settled(view))
        await self._create(ctx, account, coid, Side.BUY, quantity, order_type, limit_price, reservation, guard)
        return coid

    # --- sells --------------------------------------------------------------------------
    async def sell(
        self, ctx: SignalContext, account: str, *, whole: bool, leg: str = "", read: AccountRead | None = None
    ) -> str | Denial:
        """``read``: the account as read with the signal (inside the account's lock); read here if None."""
        signal = ctx.signal
        coid = client_order_id(signal.signal_id, account, leg)
        read = read or await self.reader.read(self.client, account, [coid])
        if coid in read.existing:
            return coid
        state, scope = read.trading_state
        denial = risk.check_trading_state(state, scope, reducing=True, source=signal.source)
        if denial:
            return denial
        if signal.source in risk.LIQUIDATION_SOURCES:
            # The cancels are requests: the buys stay open (and counted) until the gateway confirms.
            await self.cancel_open(ctx, account, sides=(Side.BUY,), reason="liquidation")
        view = read.view
        held = view.sellable(signal.market, signal.ticker)
        if held <= 0:
            symbol = symbol_key(signal.market, signal.ticker)
            position = view.position(signal.market, signal.ticker)
            if position is not None and position.quantity > 0:
                # KIS counts the shares of open sells as not sellable (ord_psbl_qty): selling them
                # again would only be refused there.
                reason = f"nothing to sell in {symbol}: the {position.quantity} shares held are committed to open sells"
                return Denial(denials.NO_POSITION, reason)
            return Denial(denials.NO_POSITION, f"no {symbol} position to sell")
        currency = signal.market.currency
        equity = risk.equity_of(view.snapshot, currency) if view.snapshot else None
        sizing = self._sizing_input(ctx, Side.SELL, None, equity, held)
        if whole:
            sizing = SizingInput(
                side=Side.SELL, policy=SizingPolicy.CLOSE, currency=currency, price=None, equity=equity, held=held
            )
        price: Decimal | None = None
        quote: Quote | None = None
        if needs_price(sizing) or self._wants_limit(ctx):
            price, quote = await self._reference_price(signal)
            if price is None:
                return Denial(denials.NO_PRICE, "no price: the alert has none and no fresh quote is available")
            sizing = replace(sizing, price=price)
        quantity = size_order(sizing)
        if isinstance(quantity, Denial):
            return quantity
        priced = await self._pricing(ctx, Side.SELL, price, quote)
        if isinstance(priced, Denial):
            return priced
        order_type, limit_price = priced
        guard = None if signal.source in risk.LIQUIDATION_SOURCES else self._guard(ctx, account, Side.SELL, coid)
        if ctx.deferred is None and guard is not None:
            denial = await self._throttle(guard)
            if denial:
                return denial
            guard = None
        await self._create(ctx, account, coid, Side.SELL, quantity, order_type, limit_price, guard=guard)
        return coid

    # --- cancels ------------------------------------------------------------------------
    async def cancel_open(
        self, ctx: SignalContext, account: str, *, sides: tuple[Side, ...] = (Side.BUY, Side.SELL), reason: str = ""
    ) -> list[str]:
        """Append a CancelOrder for each open order of the signal's ticker in the account."""
        signal = ctx.signal
        cancelled: list[str] = []
        for record in await orders.open_orders(self.client):
            if record.account != account or record.market is not signal.market or record.ticker != signal.ticker:
                continue
            if record.side not in sides:
                continue
            command = CancelOrder(
                correlation_id=ctx.correlation_id,
                client_order_id=record.client_order_id,
                account=account,
                reason=reason or f"cancel signal {signal.signal_id}",
            )
            await publish(self.client, keys.ORDERS, command, self.maxlen)
            cancelled.append(record.client_order_id)
        return cancelled

    # --- helpers ------------------------------------------------------------------------
    def _sizing_input(
        self, ctx: SignalContext, side: Side, price: Decimal | None, equity: Decimal | None, held: int
    ) -> SizingInput:
        strategy = ctx.sizing_strategy
        return SizingInput(
            side=side,
            policy=policy_for(strategy, side),
            currency=ctx.signal.market.currency,
            price=price,
            equity=equity,
            held=held,
            strategy=strategy,
            quantity=ctx.signal.quantity,
            quantity_type=ctx.signal.quantity_type,
            stop_price=ctx.signal.stop_loss,
        )

    @staticmethod
    def _wants_limit(ctx: SignalContext) -> bool:
        strategy = ctx.sizing_strategy
        return ctx.signal.order_type is OrderType.LIMIT or (strategy is not None and strategy.order_type == "limit")

    async def _reference_price(self, signal: Signal) -> tuple[Decimal | None, Quote | None]:
        """The alert's price when it has one, else a fresh quote; never an assumed price."""
        if signal.price is not None and signal.price > 0:
            return signal.price, None
        quote = await self.quotes(signal.market, signal.ticker)
        if quote is None or quote.price <= 0:
            return None, None
        return quote.price, quote

    async def _pricing(
        self, ctx: SignalContext, side: Side, price: Decimal | None, quote: Quote | None
    ) -> tuple[OrderType, Decimal | None] | Denial:
        """The order type and limit. A US market order gets its marketable limit here (ADR 0007):
        KIS has none, and the gateway sends what it is given."""
        market = ctx.signal.market
        if self._wants_limit(ctx) and price is not None:
            tick = quote.tick_size if quote is not None and quote.tick_size and market is Market.KRX else None
            return OrderType.LIMIT, round_to_tick(market, price, down=side is Side.BUY, tick=tick)
        if not market.is_us:
            return OrderType.MARKET, None
        recent = await self.us_quotes(market, ctx.signal.ticker)
        if recent is None or recent.price <= 0:
            return Denial(
                denials.NO_PRICE,
                "a US market order is sent as a limit through the latest quote, and no recent quote is available",
            )
        limit = marketable_limit(market, recent.price, buy=side is Side.BUY, slippage_percent=self.us_slippage_percent)
        return OrderType.MARKET, limit

    @staticmethod
    def _guard(ctx: SignalContext, account: str, side: Side, coid: str) -> Guard | None:
        """The throttles an order must pass (None: neither applies to it)."""
        signal = ctx.signal
        limits = ctx.limits
        window_s = 0.0 if signal.source in NO_DUPLICATE_CHECK else limits.duplicate_window_s
        limit = limits.max_orders_per_minute
        if window_s <= 0 and limit <= 0:
            return None
        duplicate = Denial(
            denials.DUPLICATE,
            f"the same {side.value} of {signal.ticker} for {signal.strategy} came less than "
            f"{limits.duplicate_window_s:g}s ago",
        )
        rate = Denial(denials.RATE_LIMITED, f"more than {limit} orders in a minute for account {account}")
        return Guard(
            account,
            signal.market,
            signal.ticker,
            side,
            signal.strategy,
            signal.signal_id,
            window_s,
            limit,
            coid,
            ctx.now.timestamp(),
            duplicate,
            rate,
        )

    async def _throttle(self, guard: Guard) -> Denial | None:
        """The throttles on their own, for an order written at once (a signal of several accounts)."""
        verdict = await guards.claim_intent(self.client, **guard.claim_arguments())
        return guard.refusal(verdict)

    async def _create(
        self,
        ctx: SignalContext,
        account: str,
        coid: str,
        side: Side,
        quantity: int,
        order_type: OrderType,
        limit_price: Decimal | None,
        reservation: tuple[str, Decimal, list[str]] | None = None,
        guard: Guard | None = None,
    ) -> None:
        """Record the order and append its command; a buy's sizing price (``reservation``: currency,
        price, settled estimates to forget) is written in the same transaction. ``guard``: the
        throttles it has yet to pass, checked in the step that writes it with the decision."""
        signal = ctx.signal
        origin = ORIGINS[signal.source]
        command = SubmitOrder(
            correlation_id=ctx.correlation_id,
            client_order_id=coid,
            account=account,
            market=signal.market,
            ticker=signal.ticker,
            side=side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price,
            strategy=signal.strategy,
            origin=origin,
            signal_id=signal.signal_id,
            reduce_only=side is Side.SELL,
            signal_at=signal.fired_at or signal.received_at,
        )
        pending = PendingOrder(command, reservation, guard)
        if ctx.deferred is not None:  # written with the signal's decision, in one transaction
            ctx.deferred.append(pending)
            return
        async with self.client.pipeline(transaction=True) as pipe:
            at = queue_orders(pipe, [pending], self.maxlen)
            replies = await pipe.execute()
        orders_written([pending], [replies[i] for i in at], signal, self.placed)


@dataclass(frozen=True)
class Guard:
    """The duplicate window and the order rate one order must pass, and the denial of each."""

    account: str
    market: Market
    ticker: str
    side: Side
    strategy: str
    signal_id: str
    window_s: float  # 0: no window
    limit_per_minute: int  # 0: no limit
    member: str  # the client order id, as the rate window's member
    now: float
    duplicate: Denial
    rate: Denial

    def claim_arguments(self) -> dict[str, Any]:
        """``guards.claim_intent``'s keyword arguments, less the client."""
        return {
            "account": self.account,
            "market": self.market,
            "ticker": self.ticker,
            "side": self.side,
            "strategy": self.strategy,
            "signal_id": self.signal_id,
            "window_s": self.window_s,
            "limit_per_minute": self.limit_per_minute,
            "member": self.member,
            "now": self.now,
        }

    def place_arguments(self) -> list[Any]:
        """The throttles' part of ``yq_order_place``: its first two keys, then ARGV 1-7."""
        return [
            keys.duplicate_guard(self.account, self.market.value, self.ticker, self.side.value, self.strategy),
            keys.rate_window(self.account),
            self.signal_id,
            max(int(self.window_s * 1000), 1) if self.window_s > 0 else 0,
            max(self.limit_per_minute, 0),
            self.member,
            repr(self.now),
            repr(self.now - guards.RATE_WINDOW_S),
            int(guards.RATE_WINDOW_S * 2),
        ]

    def refusal(self, verdict: str) -> Denial | None:
        if verdict == "duplicate":
            return self.duplicate
        if verdict == "rate":
            return self.rate
        return None


@dataclass(frozen=True)
class PendingOrder:
    """An order decided but not yet written, a buy's reservation (currency, sizing price,
    settled estimates to forget) that goes with it, and the throttles it has yet to pass."""

    command: SubmitOrder
    reservation: tuple[str, Decimal, list[str]] | None = None
    guard: Guard | None = None


def queue_orders(pipe: Pipeline, pending: list[PendingOrder], maxlen: int) -> list[int]:
    """Queue each order (its reservation, then ``yq_order_create``); where each create's reply will be."""
    at: list[int] = []
    for order in pending:
        command = order.command
        if order.reservation is not None:
            currency, price, settled = order.reservation
            forget = [c for c in settled if c != command.client_order_id]
            if forget:
                pipe.hdel(keys.reservations(command.account), *forget)
            exposure.queue_reserve(pipe, command.account, command.client_order_id, currency, price)
        at.append(len(pipe))
        pipe.fcall("yq_order_create", *orders.create_arguments(command, maxlen))
    return at


@dataclass(frozen=True, slots=True)
class BuyEntry:
    """What a buy's fill needs for the position's exit rule, as the buy was placed: its record's
    strategy and origin, its signal's stop and target (none of which ever change)."""

    strategy: str
    origin: OrderOrigin
    stop_loss: Decimal | None
    take_profit: Decimal | None


class PlacedBuys:
    """The entries of the buys this process placed lately, so their fills need not read the order's
    record and its signal's again. Bounded; a buy not here (placed before a restart, by another
    instance, or long ago) is read from Valkey as before."""

    def __init__(self, size: int = 1024) -> None:  # ~10 s of buys at 100 alerts/s; under 320 KiB
        self.size = size
        self._entries: OrderedDict[str, BuyEntry] = OrderedDict()

    def remember(self, signal: Signal, pending: list[PendingOrder]) -> None:
        for order in pending:
            command = order.command
            if command.side is Side.BUY and command.signal_id == signal.signal_id:
                entry = BuyEntry(command.strategy, command.origin, signal.stop_loss, signal.take_profit)
                self._entries[command.client_order_id] = entry
                self._entries.move_to_end(command.client_order_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get(self, client_order_id: str) -> BuyEntry | None:
        return self._entries.get(client_order_id)

    def forget(self, client_order_id: str) -> None:
        """The buy filled completely: a fill delivered again is read from Valkey."""
        self._entries.pop(client_order_id, None)


def orders_written(
    pending: list[PendingOrder], replies: list[Any], signal: Signal | None = None, placed: PlacedBuys | None = None
) -> None:
    """Count and log the orders ``queue_orders`` wrote, by their ``yq_order_create`` replies; with
    ``placed``, remember the buys among them with ``signal``'s stop and target."""
    if placed is not None and signal is not None:
        placed.remember(signal, pending)
    for order, reply in zip(pending, replies, strict=True):
        command = order.command
        coid = command.client_order_id
        if orders.create_result(reply):
            ORDERS_CREATED.labels(command.origin, command.side.value).inc()
            logger.info(
                "order created",
                extra={
                    "client_order_id": coid,
                    "account": command.account,
                    "side": command.side.value,
                    "quantity": command.quantity,
                },
            )
        else:
            logger.info("order already recorded for this signal; nothing appended", extra={"client_order_id": coid})


def place_arguments(order: PendingOrder, signal_id: str, decisions: list[Any], maxlen: int) -> list[Any]:
    """``yq_order_place``'s arguments for a signal's one order: ``decisions`` holds the accepted
    decision, then the duplicate's and the rate's refusals (``decisions.decision_arguments``, or
    ``UNUSED_REFUSAL`` each for an order with no throttle to pass: its keys are named, not touched)."""
    command = order.command
    if order.guard is not None:
        duplicate_key, rate_key, *throttles = order.guard.place_arguments()
    else:
        duplicate_key = keys.duplicate_guard(
            command.account, command.market.value, command.ticker, command.side.value, command.strategy
        )
        rate_key = keys.rate_window(command.account)
        throttles = [signal_id, 0, 0, command.client_order_id, 0, 0, 0]
    reserve: list[Any] = [0, "", "", 0]
    if order.reservation is not None:
        currency, price, settled = order.reservation
        forget = [c for c in settled if c != command.client_order_id]
        value = exposure.reservation_value(currency, price)
        reserve = [len(forget), *forget, command.client_order_id, value, exposure.RESERVATION_TTL_S]
    create = orders.create_arguments(command, maxlen)
    return [
        11,
        duplicate_key,
        rate_key,
        keys.signal_record(signal_id),
        keys.SIGNALS_INDEX,
        keys.DECISIONS,
        keys.reservations(command.account),
        *create[1:6],
        *throttles,
        DECISION_TTL_S,
        time.time(),
        maxlen,
        *decisions,
        *reserve,
        *create[6:],
    ]
