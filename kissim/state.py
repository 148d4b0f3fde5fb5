"""The simulator's composition: config, runtime switches, faults, counters, rate limiter, engine, tokens.

``Simulator`` is what every route handler works with (``request.app.state.sim``). Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kissim.auth import TokenStore
from kissim.config import SimConfig
from kissim.engine import Engine
from kissim.hours import krx_is_open, now_kst, us_is_open
from kissim.market import Family, PriceBook


@dataclass
class Switches:
    """Runtime toggles the admin API flips."""

    always_open: bool
    rate_limit: bool
    drop_notices: bool = False


@dataclass
class Faults:
    """Injected failures; each burst counts down over the next matching requests."""

    latency_ms: int = 0
    http500_burst: int = 0
    egw00201_burst: int = 0
    drop_order_response: int = 0
    # The next N new orders are received but never booked, and their answer is withheld: a client
    # that times out must find nothing at the broker (not a KIS behaviour; a test fault).
    drop_before_booking: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "latency_ms": self.latency_ms,
            "http500_burst": self.http500_burst,
            "egw00201_burst": self.egw00201_burst,
            "drop_order_response": self.drop_order_response,
            "drop_before_booking": self.drop_before_booking,
        }

    def take(self, name: str) -> bool:
        """Consume one unit of burst ``name``; True when this request is hit."""
        left: int = getattr(self, name)
        if left <= 0:
            return False
        setattr(self, name, left - 1)
        return True


@dataclass
class RateLimiter:
    """Sliding one-second window per key (the account, or the appkey for calls without one)."""

    clock: Callable[[], float] = time.monotonic
    windows: dict[str, deque[float]] = field(default_factory=dict)

    def admit(self, key: str, limit: int) -> bool:
        now = self.clock()
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = deque()
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True

    def reset(self) -> None:
        self.windows.clear()


@dataclass
class Simulator:
    config: SimConfig
    clock: Callable[[], float] = time.time
    switches: Switches = field(init=False)
    faults: Faults = field(default_factory=Faults)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    counters: Counter[str] = field(default_factory=Counter)
    prices: PriceBook = field(init=False)
    engine: Engine = field(init=False)
    tokens: TokenStore = field(init=False)
    # appkey -> accounts it has been used with (who receives which execution notices)
    accounts_by_appkey: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.switches = Switches(always_open=self.config.always_open, rate_limit=self.config.rate_limit)
        self.prices = PriceBook(self.config.seed, self.config.price_step_seconds)
        self.engine = Engine(self.config, self.prices, self.market_open, self.clock)
        self.tokens = TokenStore(self.config, self.clock)

    def market_open(self, family: Family) -> bool:
        if self.switches.always_open:
            return True
        now = now_kst(self.clock)
        if family == "KRX":
            return krx_is_open(now, self.config.krx_holidays)
        return us_is_open(now, self.config.us_holidays)

    def note_account(self, appkey: str, account: str) -> None:
        known = self.accounts_by_appkey.get(appkey)
        if known is None:
            self.accounts_by_appkey[appkey] = {account}
        elif account not in known:
            known.add(account)

    def reset(self) -> None:
        self.engine.reset()
        self.tokens.reset()
        self.limiter.reset()
        self.faults = Faults()
        self.counters.clear()
        self.accounts_by_appkey.clear()
        self.prices.quotes.clear()

    def stats(self) -> dict[str, Any]:
        states = Counter(order.state.value for order in self.engine.orders)
        return {
            "mode": self.config.mode,
            "orders": len(self.engine.orders),
            "orders_by_state": dict(states),
            "accounts": len(self.engine.accounts),
            "tokens_issued": dict(self.tokens.issued),
            "token_throttled": self.tokens.throttled,
            "approval_keys": len(self.tokens.approval_keys),
            "counters": dict(self.counters),
            "switches": {
                "always_open": self.switches.always_open,
                "rate_limit": self.switches.rate_limit,
                "drop_notices": self.switches.drop_notices,
            },
            "faults": self.faults.as_dict(),
        }
