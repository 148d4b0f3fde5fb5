"""The performance page, in a browser, shows the P/L a trader checks after a day's trading.

The fills are stored as the broker gateway stores them (tests.integration.dashboard.seed): two
buys of 005930 at different prices and a sell at the average cost of the holding, and a US round
trip. Each figure is read as the page shows it, per account, per strategy and per currency, on a
laptop and on a phone (where the rows stack as cards). The dashboard runs on a Valkey of its own,
so the other browser tests see none of these orders.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import PHONE, RunningSystem, dashboard_alone, run, sign_in


async def _seed(valkey_url: str) -> None:
    from tests.integration.dashboard import seed
    from yquant import valkey
    from yquant.settings import ValkeySettings

    client = valkey.connect(ValkeySettings(url=valkey_url))
    try:
        await seed.seed_trading_day(client)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def pnl_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with dashboard_alone(tmp_path_factory.mktemp("pnl-system")) as running:
        run(_seed(running.valkey_url))
        yield running


def _cell(row: Locator, field: str) -> Locator:
    return row.locator(f'[data-field="{field}"]')


def _check_performance(page: Page) -> None:
    main_krw = page.locator('#account-pnl tr[data-account="main"][data-currency="KRW"]')
    expect(_cell(main_krw, "day")).to_have_text("+₩324,000")
    expect(_cell(main_krw, "realised")).to_have_text("+₩105,000")  # (80,000 - 73,000) x 15
    main_usd = page.locator('#account-pnl tr[data-account="main"][data-currency="USD"]')
    expect(_cell(main_usd, "day")).to_have_text("-$26.70")
    expect(_cell(main_usd, "realised")).to_have_text("+$19.40")
    momentum = page.locator('#strategies tr[data-strategy="momentum"][data-currency="KRW"]')
    expect(_cell(momentum, "realised")).to_have_text("+₩105,000")
    expect(_cell(momentum, "filled")).to_have_text("3")
    expect(_cell(momentum, "fees")).to_have_text("₩339")
    us_tech = page.locator('#strategies tr[data-strategy="us-tech"][data-currency="USD"]')
    expect(_cell(us_tech, "realised")).to_have_text("+$19.40")
    expect(_cell(us_tech, "fees")).to_have_text("$0.39")
    sell = page.locator('#trades tr[data-order="yq-pnl00000000000000003"]')
    expect(sell).to_be_visible()
    expect(sell.locator('[data-label="Avg cost"]')).to_have_text("73,000")


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_performance_page_shows_realised_pnl_per_account_strategy_and_currency(
    browser: Browser, pnl_system: RunningSystem, shots: Path, screen: str
) -> None:
    options = PHONE if screen == "phone" else {"viewport": {"width": 1280, "height": 860}}
    context = browser.new_context(base_url=pnl_system.dashboard_url, **options)
    try:
        page = context.new_page()
        sign_in(page, pnl_system, "/performance")
        _check_performance(page)
        page.screenshot(path=str(shots / f"performance-pnl-{screen}.png"), full_page=True)
        page.goto("/")
        expect(page.locator("#day-pnl-main-KRW")).to_have_text("+₩324,000")
        expect(page.locator("#realised-today-main-USD")).to_have_text("+$19.40")
    finally:
        context.close()
