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
class AccountWorker:
    alias: str
    kis: KisClient
    markets: list[Market]
    notices: NoticeFeed | None = None
    # client order id -> monotonic time of the last news (acceptance, fill) about the order
    tracking: dict[str, float] = field(default_factory=dict)
    poll_scheduled: bool = False
    last_poll: float = 0.0
    poll_floor_s: float = 0.0  # slow accounts (virtual: 1 request/s) poll less often than the setting
    # account sync: segments ("KRX", "US") waiting for the debounced sync, and the last parts
    pending_segments: set[str] = field(default_factory=set)
    last_sync: float = 0.0  # monotonic time the last sync started
    positions: dict[str, list[Position]] = field(default_factory=dict)
    cash: dict[str, Decimal] = field(default_factory=dict)
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    poll_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

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
