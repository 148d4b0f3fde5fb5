"""One account as the gateway sees it: its KIS client, its notice feed and what it tracks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal

from brokergateway.kis.client import KisClient
from brokergateway.kis.notices import NoticeFeed
from yquant.messages import Market, Position


@dataclass
class PollState:
    """The fill poll's state of one account: changed by polling.py alone (``FillPoller``), read
    by the background tick (service.py) to tell when a poll is due and by a revision
    (orders.py), which holds ``lock`` so that no poll reads KIS's list half-way through it."""

    scheduled: bool = False
    last: float = 0.0  # monotonic time the last poll started (or the start-up check)
    floor_s: float = 0.0  # slow accounts (virtual: 1 request/s) poll less often than the setting
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def due(self, now: float, interval_s: float) -> bool:
        """No poll waits to run and the last began ``interval_s`` or more ago."""
        return not self.scheduled and now - self.last >= interval_s


@dataclass
class SyncState:
    """The account sync's state of one account: changed by accounts.py alone (``AccountSync``)."""

    pending_segments: set[str] = field(default_factory=set)  # waiting for the debounced sync
    last: float = 0.0  # monotonic time the last sync started
    positions: dict[str, list[Position]] = field(default_factory=dict)  # per segment, as last read
    cash: dict[str, Decimal] = field(default_factory=dict)  # per currency, as last read
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class AccountWorker:
    """An account's KIS client and notice feed, the orders it follows (``tracking``: fills.py and
    orders.py add and drop them, polling.py reads them) and the poll's and the sync's own state."""

    alias: str
    kis: KisClient
    markets: list[Market]
    notices: NoticeFeed | None = None
    # client order id -> monotonic time of the last news (acceptance, fill) about the order
    tracking: dict[str, float] = field(default_factory=dict)
    poll: PollState = field(default_factory=PollState)
    sync: SyncState = field(default_factory=SyncState)

    @property
    def notices_live(self) -> bool:
        return self.notices is not None and self.notices.connected

    @property
    def trades_us(self) -> bool:
        return any(market.is_us for market in self.markets)

    def serves(self, market: Market) -> bool:
        return market in self.markets

    def track(self, client_order_id: str) -> None:
        self.tracking[client_order_id] = time.monotonic()

    def note_news(self, client_order_id: str) -> None:
        if client_order_id in self.tracking:
            self.tracking[client_order_id] = time.monotonic()

    def stale_orders(self, grace_s: float) -> list[str]:
        """Tracked orders without news for ``grace_s`` seconds."""
        horizon = time.monotonic() - grace_s
        return [coid for coid, seen in self.tracking.items() if seen <= horizon]
