"""Prices: KRX tick sizes and price limits, instrument names, and a seeded random walk per ticker."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Literal

Family = Literal["KRX", "US"]
US_EXCHANGES = ("NASD", "NYSE", "AMEX")
QUOTE_TO_ORDER_EXCHANGE = {"NAS": "NASD", "NYS": "NYSE", "AMS": "AMEX", "BAQ": "NASD", "BAY": "NYSE", "BAA": "AMEX"}
ORDER_TO_QUOTE_EXCHANGE = {"NASD": "NAS", "NYSE": "NYS", "AMEX": "AMS"}

# KRX tick table since 2023-01-25 (docs/kis-protocol.md §9): (upper bound exclusive, tick).
_KRX_TICKS: tuple[tuple[int, int], ...] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)
KRX_LIMIT_RATE = Decimal("0.30")
CENT = Decimal("0.01")
_US_SMALL_TICK = Decimal("0.0001")
# Walk bounds for US tickers, which have no daily price limit.
US_BAND = Decimal("0.5")
BAR_LIMIT = 2 * 24 * 60  # minute bars kept per ticker

KRX_NAMES: dict[str, tuple[str, int]] = {
    "005930": ("삼성전자", 70_000),
    "000660": ("SK하이닉스", 180_000),
    "373220": ("LG에너지솔루션", 350_000),
    "207940": ("삼성바이오로직스", 800_000),
    "005380": ("현대차", 200_000),
    "035420": ("NAVER", 190_000),
    "035720": ("카카오", 45_000),
    "051910": ("LG화학", 300_000),
    "068270": ("셀트리온", 180_000),
    "105560": ("KB금융", 80_000),
}
US_NAMES: dict[str, tuple[str, str]] = {
    "AAPL": ("APPLE INC", "190.00"),
    "MSFT": ("MICROSOFT CORP", "410.00"),
    "NVDA": ("NVIDIA CORP", "120.00"),
    "TSLA": ("TESLA INC", "250.00"),
    "AMZN": ("AMAZON.COM INC", "180.00"),
    "GOOGL": ("ALPHABET INC CLASS A", "170.00"),
    "META": ("META PLATFORMS INC", "500.00"),
    "QQQ": ("INVESCO QQQ TRUST", "480.00"),
    "SPY": ("SPDR S&P 500 ETF TRUST", "550.00"),
    "IBM": ("INTL BUSINESS MACHINES", "220.00"),
}


def krx_tick(price: Decimal) -> Decimal:
    for bound, tick in _KRX_TICKS:
        if price < bound:
            return Decimal(tick)
    return Decimal(1_000)


def us_tick(price: Decimal) -> Decimal:
    return CENT if price >= 1 else _US_SMALL_TICK


def tick_for(family: Family, price: Decimal) -> Decimal:
    return krx_tick(price) if family == "KRX" else us_tick(price)


def is_on_tick(family: Family, price: Decimal) -> bool:
    return price > 0 and price % tick_for(family, price) == 0


def round_to_tick(family: Family, price: Decimal, rounding: str = ROUND_FLOOR) -> Decimal:
    tick = tick_for(family, price)
    return (price / tick).quantize(Decimal(1), rounding=rounding) * tick


@lru_cache(maxsize=4096)
def krx_limits(base: Decimal) -> tuple[Decimal, Decimal]:
    """(upper, lower) daily price limits: ±30 % of the base price, rounded inwards to the tick."""
    upper = round_to_tick("KRX", base * (1 + KRX_LIMIT_RATE), ROUND_FLOOR)
    lower = round_to_tick("KRX", base * (1 - KRX_LIMIT_RATE), ROUND_CEILING)
    return upper, max(lower, Decimal(1))


def family_of(ticker: str) -> Family:
    """KRX codes are 6 digits (or Q + 6 for an ETN); anything else is a US symbol."""
    code = ticker[1:] if len(ticker) == 7 and ticker[0] in "Qq" else ticker
    return "KRX" if len(code) == 6 and code[0].isdigit() else "US"


def instrument_name(family: Family, ticker: str) -> str:
    if family == "KRX":
        return KRX_NAMES.get(ticker, (f"모의종목{ticker}", 0))[0]
    return US_NAMES.get(ticker, (ticker, ""))[0]


def _hash_fraction(text: str) -> float:
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def base_price(family: Family, ticker: str) -> Decimal:
    """A deterministic previous close for any ticker: a known figure or one derived from its hash."""
    if family == "KRX":
        known = KRX_NAMES.get(ticker)
        if known:
            return Decimal(known[1])
        raw = Decimal(int(5_000 * 40 ** _hash_fraction("krx:" + ticker)))  # 5,000 .. 200,000 log-uniform
        return round_to_tick("KRX", raw)
    us_known = US_NAMES.get(ticker)
    if us_known:
        return Decimal(us_known[1])
    return (Decimal(100) + Decimal(int(20_000 * _hash_fraction("us:" + ticker))) / 100).quantize(CENT)


@dataclass
class Quote:
    """One ticker's simulated day: previous close, current price, range and volume."""

    family: Family
    ticker: str
    base: Decimal
    price: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    rng: random.Random
    step: int = 0
    volume: int = 0
    turnover: Decimal = Decimal(0)
    pinned: bool = False
    walked: int = 0  # steps walked since the ticker was first quoted (survives a restart)
    # Minute bars seen today: epoch minute -> [open, high, low, close, volume, amount] (not persisted).
    bars: dict[int, list[Decimal]] = field(default_factory=dict)
    marked_volume: int = 0
    marked_turnover: Decimal = Decimal(0)

    def mark(self, now: float) -> None:
        """Fold the current price and the volume since the last mark into the bar of minute ``now``."""
        minute = int(now // 60)
        volume = Decimal(self.volume - self.marked_volume)
        amount = self.turnover - self.marked_turnover
        self.marked_volume, self.marked_turnover = self.volume, self.turnover
        bar = self.bars.get(minute)
        if bar is None:
            self.bars[minute] = [self.price, self.price, self.price, self.price, volume, amount]
            if len(self.bars) > BAR_LIMIT:
                for old in sorted(self.bars)[: len(self.bars) - BAR_LIMIT]:
                    del self.bars[old]
            return
        bar[1] = max(bar[1], self.price)
        bar[2] = min(bar[2], self.price)
        bar[3] = self.price
        bar[4] += volume
        bar[5] += amount

    @property
    def upper(self) -> Decimal:
        return krx_limits(self.base)[0] if self.family == "KRX" else (self.base * (1 + US_BAND)).quantize(CENT)

    @property
    def lower(self) -> Decimal:
        return krx_limits(self.base)[1] if self.family == "KRX" else (self.base * (1 - US_BAND)).quantize(CENT)

    def move_to(self, price: Decimal) -> None:
        self.price = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)

    def walk_once(self) -> None:
        self.walked += 1
        draw = self.rng.random()
        ticks = -1 if draw < 0.35 else (1 if draw >= 0.65 else 0)
        if ticks == 0:
            return
        if self.family == "US":
            ticks *= self.rng.randint(1, 5)
        target = self.price + ticks * tick_for(self.family, self.price)
        target = round_to_tick(self.family, target)
        if self.lower <= target <= self.upper:
            self.move_to(target)
            self.volume += self.rng.randint(1, 500)
            self.turnover += target * 10


@dataclass
class PriceBook:
    """Current prices. Each ticker walks one step per ``step_seconds`` (0 freezes all walks)."""

    seed: int
    step_seconds: float
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # timestamps of minute bars
    quotes: dict[tuple[Family, str], Quote] = field(default_factory=dict)
    started: float = field(default=0.0)
    max_catch_up_steps: int = 2_000
    # Called with a quote whose price just moved (a walk step or an admin price): the live feeds.
    listeners: list[Callable[[Quote], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def due_step(self) -> int:
        if self.step_seconds <= 0:
            return 0
        return int((self.clock() - self.started) / self.step_seconds)

    def quote(self, family: Family, ticker: str) -> Quote:
        key = (family, ticker)
        quote = self.quotes.get(key)
        if quote is None:
            base = base_price(family, ticker)
            quote = Quote(family, ticker, base, base, base, base, base, random.Random(f"{self.seed}:{family}:{ticker}"))
            quote.step = self.due_step()
            self.quotes[key] = quote
            quote.mark(self.wall())
            return quote
        if self._advance(quote, self.due_step()):
            quote.mark(self.wall())
            self._moved(quote)
        return quote

    def _advance(self, quote: Quote, due: int) -> bool:
        if due <= quote.step:
            return False
        before = quote.price
        if quote.pinned:
            quote.step = due
            return False
        if due - quote.step > self.max_catch_up_steps:
            quote.step = due - self.max_catch_up_steps
        while quote.step < due:
            quote.step += 1
            quote.walk_once()
        return quote.price != before

    def advance_all(self) -> list[Quote]:
        """Walk every known ticker up to now; returns those whose price changed."""
        due = self.due_step()
        moved = [quote for quote in self.quotes.values() if self._advance(quote, due)]
        now = self.wall()
        for quote in moved:
            quote.mark(now)
            self._moved(quote)
        return moved

    def _moved(self, quote: Quote) -> None:
        for listener in self.listeners:
            listener(quote)

    def set_price(self, family: Family, ticker: str, price: Decimal, *, pin: bool = True) -> Quote:
        """Admin override. A price outside the day's limits starts a new day based on it."""
        quote = self.quote(family, ticker)
        before = quote.price
        if not quote.lower <= price <= quote.upper:
            quote.base = price
            quote.open = quote.high = quote.low = price
        quote.move_to(price)
        quote.pinned = pin
        quote.mark(self.wall())
        if price != before:
            self._moved(quote)
        return quote

    def record_trade(self, family: Family, ticker: str, quantity: int, price: Decimal) -> None:
        quote = self.quote(family, ticker)
        quote.volume += quantity
        quote.turnover += price * quantity
        quote.mark(self.wall())
