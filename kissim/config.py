"""Simulator settings: one dataclass, built by ``__main__`` from the command line or by tests directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

Mode = Literal["virtual", "real"]


@dataclass
class SimConfig:
    """Everything the simulator can be told at start-up. Runtime switches live in ``state.Switches``."""

    mode: Mode = "virtual"
    host: str = "127.0.0.1"
    port: int = 18000
    always_open: bool = False
    rate_limit: bool = True
    token_throttle_seconds: float = 60.0
    seed: int = 42
    krw: Decimal = Decimal("100000000")
    usd: Decimal = Decimal("100000")
    partial_fills: bool = False
    ws_notice_delay_ms: int = 0
    ws_ping_interval_seconds: float = 30.0
    # Random-walk step; 0 freezes every price (handy for deterministic tests).
    price_step_seconds: float = 1.0
    # appkey -> appsecret. Empty: any appkey/appsecret pair is accepted.
    credentials: dict[str, str] = field(default_factory=dict)
    domestic_fee_rate: Decimal = Decimal("0.00015")
    overseas_fee_rate: Decimal = Decimal("0.0025")
    # KRW per USD for the won figures of inquire-present-balance.
    usd_krw_rate: Decimal = Decimal("1350")
    token_lifetime_seconds: int = 86400
    token_reuse_seconds: int = 6 * 3600
    # How long a dropped order response is withheld when the client does not hang up first.
    drop_response_seconds: float = 60.0
    # Extra closed days on top of the built-in exchange calendars.
    krx_holidays: frozenset[date] = frozenset()
    us_holidays: frozenset[date] = frozenset()
    ws_max_registrations: int = 41
    # KIS allows one WebSocket session per appkey (OPSP8996 for a second one).
    ws_single_session: bool = True
    # None: KIS's figures, 18/s real and 1/s virtual per account.
    rate_limit_per_second: int | None = None
    # Where accounts, orders, tokens and prices persist across restarts; None keeps them in memory only.
    state_file: Path | None = None

    @property
    def is_virtual(self) -> bool:
        return self.mode == "virtual"

    @property
    def requests_per_second(self) -> int:
        if self.rate_limit_per_second is not None:
            return self.rate_limit_per_second
        return 1 if self.is_virtual else 18
