"""The gateway asks KIS which days KRX opens (chk-holiday) and says where ``holidays`` disagrees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from tests.integration.kissim.helpers import SimServer, base_config
from yquant.markets import is_trading_day, local_date
from yquant.messages import Market

from .conftest import MakeHarness

TODAY = local_date(Market.KRX, datetime.now(UTC))  # as the gateway counts days


def next_trading_day(after: date) -> date:
    day = after + timedelta(days=1)
    while not is_trading_day(Market.KRX, day):
        day += timedelta(days=1)
    return day


# A day KRX closes that the holidays package does not know (an exchange's ad-hoc closure).
SURPRISE = next_trading_day(TODAY + timedelta(days=5))


@pytest.fixture(scope="module")
def closed_sim() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="real", krx_holidays=frozenset({SURPRISE}))).start()
    yield server
    server.stop()


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"market": "KRX"})


async def test_a_closure_kis_knows_and_the_holidays_package_does_not_is_reported(
    closed_sim: SimServer, make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(closed_sim, start=False)
    found = await harness.gateway.calendar.check(TODAY)
    assert found is not None
    assert [(d.day, d.kis_open, d.ours_open) for d in found] == [(SURPRISE, False, True)]
    assert gauge("yquant_gateway_calendar_disagreements") == 1
    assert f"{SURPRISE.isoformat()}: KIS says closed, yQuant's calendar says open" in caplog.text
    # 30 days do not fit KIS's first page: the check followed the continuation.
    assert harness.tr_ids("/chk-holiday") == ["CTCA0903R", "CTCA0903R"]


async def test_calendars_that_agree_report_nothing(sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(sim, start=False)
    found = await harness.gateway.calendar.check(TODAY)
    assert found == []
    assert gauge("yquant_gateway_calendar_disagreements") == 0
    assert len(harness.gateway.calendar.last or []) == 0


async def test_the_running_gateway_checks_by_itself(closed_sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(closed_sim)
    last = await harness.until(lambda: harness.gateway.calendar.last, "calendar checked")
    assert [d.day for d in last] == [SURPRISE]


async def test_a_virtual_account_does_not_ask(virtual_sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(virtual_sim, start=False)
    assert await harness.gateway.calendar.check(TODAY) is None
    assert harness.tr_ids("/chk-holiday") == []
