"""The simulator's composition: config, runtime switches, faults, counters, rate limiter, engine, tokens.

``Simulator`` is what every route handler works with (``request.app.state.sim``). The only I/O is
``save`` (and the load at start) when ``config.state_file`` is set: see ``kissim.persist``.
"""

from __future__ import annotations

import logging
import sqlite3
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
from kissim.persist import StateStore

logger = logging.getLogger(__name__)


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
    # tr_id -> the next N requests with that tr_id answer HTTP 500 (one endpoint down, the rest up).
    http500_tr_ids: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "http500_burst": self.http500_burst,
            "egw00201_burst": self.egw00201_burst,
            "drop_order_response": self.drop_order_response,
            "drop_before_booking": self.drop_before_booking,
            "http500_tr_ids": dict(self.http500_tr_ids),
        }

    def take(self, name: str) -> bool:
        """Consume one unit of burst ``name``; True when this request is hit."""
        left: int = getattr(self, name)
        if left <= 0:
            return False
        setattr(self, name, left - 1)
        return True

    def take_tr_id(self, tr_id: str) -> bool:
        """Consume one failure of ``tr_id``'s burst; True when this request is hit."""
        left = self.http500_tr_ids.get(tr_id, 0)
        if left <= 0:
            return False
        self.http500_tr_ids[tr_id] = left - 1
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
    store: StateStore | None = field(init=False, default=None)
    restored: bool = field(init=False, default=False)
    _saved_marks: tuple[int, int, int] = field(init=False, default=(-1, -1, -1))
    _appkey_changes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.switches = Switches(always_open=self.config.always_open, rate_limit=self.config.rate_limit)
        self.prices = PriceBook(self.config.seed, self.config.price_step_seconds, wall=self.clock)
        self.engine = Engine(self.config, self.prices, self.market_open, self.clock)
        self.tokens = TokenStore(self.config, self.clock)
        if self.config.state_file is not None:
            self.store = StateStore(self.config.state_file)
            self.restored = self.store.load(self.engine, self.tokens, self.accounts_by_appkey)
            self._saved_marks = self._marks()

    def _marks(self) -> tuple[int, int, int]:
        return (self.engine.changes, self.tokens.changes, self._appkey_changes)

    def save(self, *, quotes: bool = False) -> None:
        """Persist what changed (no-op without a state file, or when nothing did and ``quotes`` is off).

        Called before an answer that changed something goes out, so a client never hears of an order
        the state file does not hold. A failed write is logged; the next save writes it again.
        """
        if self.store is None:
            return
        marks = self._marks()
        if marks == self._saved_marks and not quotes:
            return
        try:
            self.store.save(self.engine, self.tokens, self.accounts_by_appkey, quotes=quotes)
        except sqlite3.Error:
            logger.exception("saving the simulator state to %s failed", self.store.path)
            return
        self._saved_marks = marks

    def close(self) -> None:
        if self.store is not None:
            self.save(quotes=True)
            self.store.close()

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
            self._appkey_changes += 1
        elif account not in known:
            known.add(account)
            self._appkey_changes += 1

    def reset(self) -> None:
        self.engine.reset()
        self.tokens.reset()
        self.limiter.reset()
        self.faults = Faults()
        self.counters.clear()
        self.accounts_by_appkey.clear()
        self.prices.quotes.clear()
        if self.store is not None:
            self.store.clear()
            self._saved_marks = (-1, -1, -1)
            self.save(quotes=True)

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
