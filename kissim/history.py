"""Price history and order books that agree with the simulator's live prices.

* Past daily candles: a deterministic walk backwards from the quote's previous close (``base``),
  one candle per trading day of the exchange, ``HISTORY_DAYS`` of them; the same seed and ticker
  always give the same history. Today's candle is the live quote (open, high, low, price, volume).
* Minute candles: the bars the price book recorded today (``Quote.bars``).
* Order book: ten levels each side around the current price, the best ask at the price itself (a
  buy limit there fills at once, as the engine fills it) and the best bid one tick below.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache

from kissim.hours import exchange_holidays, new_york_time
from kissim.market import CENT, Family, Quote, round_to_tick, tick_for
from kissim.protocol import KST

HISTORY_DAYS = 500  # trading days before today
BOOK_DEPTH = 10


@dataclass(frozen=True)
class Candle:
    day: date  # the exchange's local date (KST for KRX, New York for US)
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    amount: Decimal


def is_trading_day(family: Family, day: date, extra: frozenset[date] = frozenset()) -> bool:
    exchange = "XKRX" if family == "KRX" else "NYSE"
    return day.weekday() < 5 and day not in exchange_holidays(exchange, day.year) and day not in extra


def local_date(family: Family, moment: datetime) -> date:
    return moment.astimezone(KST).date() if family == "KRX" else new_york_time(moment).date()


def trading_days_before(family: Family, day: date, count: int, extra: frozenset[date]) -> list[date]:
    """The ``count`` trading days before ``day``, newest first."""
    days: list[date] = []
    probe = day
    while len(days) < count:
        probe -= timedelta(days=1)
        if is_trading_day(family, probe, extra):
            days.append(probe)
    return days


def _tick(family: Family, value: Decimal, rounding: str) -> Decimal:
    if family == "US":
        return value.quantize(CENT, rounding=rounding)
    return max(Decimal(1), round_to_tick("KRX", value, rounding))


@lru_cache(maxsize=256)
def past_candles(
    seed: int, family: Family, ticker: str, base: Decimal, today: date, extra: frozenset[date]
) -> tuple[Candle, ...]:
    """``HISTORY_DAYS`` daily candles before ``today``, newest first; the newest closes at ``base``."""
    candles: list[Candle] = []
    close = base
    for day in trading_days_before(family, today, HISTORY_DAYS, extra):
        rng = random.Random(f"{seed}:{family}:{ticker}:{day.isoformat()}")
        change = Decimal(str(round(rng.uniform(-0.03, 0.03), 5)))
        previous = _tick(family, close / (1 + change), ROUND_FLOOR)
        opening = _tick(family, previous * (1 + Decimal(str(round(rng.uniform(-0.01, 0.01), 5)))), ROUND_FLOOR)
        high = _tick(family, max(opening, close) * (1 + Decimal(str(round(rng.uniform(0, 0.015), 5)))), ROUND_FLOOR)
        low = _tick(family, min(opening, close) * (1 - Decimal(str(round(rng.uniform(0, 0.015), 5)))), ROUND_CEILING)
        high, low = max(high, opening, close), min(low, opening, close)
        volume = rng.randint(100_000, 5_000_000) if family == "KRX" else rng.randint(1_000_000, 50_000_000)
        amount = (opening + close) / 2 * volume
        amount = amount.to_integral_value() if family == "KRX" else amount.quantize(CENT)
        candles.append(Candle(day, opening, high, low, close, volume, amount))
        close = previous
    return tuple(candles)


def today_candle(quote: Quote, today: date) -> Candle:
    return Candle(today, quote.open, quote.high, quote.low, quote.price, quote.volume, quote.turnover)


def daily_candles(seed: int, quote: Quote, today: date, extra: frozenset[date]) -> list[Candle]:
    """Today's candle (the live quote) and the past ones, newest first."""
    return [today_candle(quote, today), *past_candles(seed, quote.family, quote.ticker, quote.base, today, extra)]


def _period_key(day: date, period: str) -> tuple[int, ...]:
    if period == "W":
        iso = day.isocalendar()
        return (iso[0], iso[1])
    if period == "M":
        return (day.year, day.month)
    if period == "Y":
        return (day.year,)
    return (day.toordinal(),)


def aggregate(candles: Iterable[Candle], period: str) -> list[Candle]:
    """Daily candles (newest first) folded into weeks, months or years ("W", "M", "Y"); "D" unchanged.
    A folded candle carries its period's last trading day."""
    result: list[Candle] = []
    key: tuple[int, ...] | None = None
    group: list[Candle] = []
    for candle in [*candles, None]:
        candle_key = None if candle is None else _period_key(candle.day, period)
        if group and candle_key != key:
            newest, oldest = group[0], group[-1]
            result.append(
                Candle(
                    newest.day,
                    oldest.open,
                    max(c.high for c in group),
                    min(c.low for c in group),
                    newest.close,
                    sum(c.volume for c in group),
                    sum((c.amount for c in group), Decimal(0)),
                )
            )
            group = []
        if candle is not None:
            key = candle_key
            group.append(candle)
    return result


def extremes(candles: list[Candle], since: date) -> tuple[Candle, Candle]:
    """(candle with the highest high, candle with the lowest low) from ``since`` on."""
    window = [c for c in candles if c.day >= since] or candles[:1]
    return max(window, key=lambda c: c.high), min(window, key=lambda c: c.low)


@dataclass(frozen=True)
class MinuteBar:
    at: datetime  # start of the minute, KST
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    amount: Decimal
    total_amount: Decimal  # the day's turnover up to and including this minute


def minute_bars(quote: Quote, family: Family, today: date, span: int = 1) -> list[MinuteBar]:
    """Today's bars (exchange date), newest first, folded into ``span``-minute bars."""
    rows = sorted(
        (m, bar) for m, bar in quote.bars.items() if local_date(family, datetime.fromtimestamp(m * 60, KST)) == today
    )
    folded: list[tuple[int, list[Decimal]]] = []
    for minute, bar in rows:
        start = minute - minute % span
        if folded and folded[-1][0] == start:
            last = folded[-1][1]
            last[1], last[2], last[3] = max(last[1], bar[1]), min(last[2], bar[2]), bar[3]
            last[4] += bar[4]
            last[5] += bar[5]
        else:
            folded.append((start, list(bar)))
    result: list[MinuteBar] = []
    running = Decimal(0)
    for start, bar in folded:
        running += bar[5]
        at = datetime.fromtimestamp(start * 60, KST)
        result.append(MinuteBar(at, bar[0], bar[1], bar[2], bar[3], int(bar[4]), bar[5], running))
    result.reverse()
    return result


@dataclass(frozen=True)
class Book:
    asks: list[tuple[Decimal, int]]  # best first
    bids: list[tuple[Decimal, int]]


def order_book(quote: Quote, depth: int = BOOK_DEPTH) -> Book:
    """Levels around the current price; beyond a KRX price limit a level is (0, 0) as KIS shows it."""
    rng = random.Random(f"book:{quote.family}:{quote.ticker}:{quote.walked}:{quote.volume}")
    low_qty, high_qty = (100, 20_000) if quote.family == "KRX" else (1, 800)
    asks: list[tuple[Decimal, int]] = []
    price = quote.price
    for _ in range(depth):
        if quote.family == "KRX" and price > quote.upper:
            asks.append((Decimal(0), 0))
            continue
        asks.append((price, rng.randint(low_qty, high_qty)))
        price = price + tick_for(quote.family, price)
    bids: list[tuple[Decimal, int]] = []
    price = quote.price - tick_for(quote.family, quote.price)
    for _ in range(depth):
        if price <= 0 or (quote.family == "KRX" and price < quote.lower):
            bids.append((Decimal(0), 0))
            continue
        bids.append((price, rng.randint(low_qty, high_qty)))
        below = price - tick_for(quote.family, price)
        price = round_to_tick(quote.family, below, ROUND_FLOOR) if below > 0 else Decimal(0)
    return Book(asks, bids)
