"""Fixtures for the order manager on a real Valkey, with a clock set to a KRX trading hour."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from ordermanager import bootstrap
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from yquant.settings import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    AccountSettings,
    OrderManagerSettings,
    RiskSettings,
    Settings,
    StrategySettings,
)

KST = ZoneInfo("Asia/Seoul")
TRADING_HOUR = datetime(2025, 6, 10, 10, 0, tzinfo=KST)  # a Tuesday, KRX open


def account_settings(cano: str) -> AccountSettings:
    return AccountSettings(cano=cano, app_key=SecretStr(DEMO_APP_KEY), app_secret=SecretStr(DEMO_APP_SECRET))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TRADING_HOUR)


@pytest.fixture
def om_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "accounts": {"main": account_settings("50000001"), "isa": account_settings("50000002")},
            "strategies": {
                "swing": StrategySettings(accounts=["main"]),
                "both": StrategySettings(accounts=["main", "isa"]),
                "amount": StrategySettings(accounts=["main"], sizing="amount", amount=Decimal(1_000_000)),
                "guarded": StrategySettings(accounts=["main"], stop_loss_percent=Decimal(3)),
            },
            "ordermanager": OrderManagerSettings(
                quote_timeout_s=0.2, quote_wait_s=0.4, metrics_port=0, misfire_grace_s=300
            ),
            "risk": RiskSettings(duplicate_window_s=0),
        }
    )


@pytest.fixture
def parts(redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock) -> bootstrap.Parts:
    return bootstrap.build(redis_client, om_settings, clock)


@pytest.fixture
def manager(parts: bootstrap.Parts) -> OrderManager:
    return parts.manager
