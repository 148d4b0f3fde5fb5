"""Every page on a laptop and on a phone, without a console error (a CSP violation is one)."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect

from tests.browser.conftest import RunningSystem, run

PAGES = (
    ("overview", "/"),
    ("positions", "/positions"),
    ("orders", "/orders"),
    ("signals", "/signals"),
    ("order", "/order?market=KRX&ticker=069500"),
    ("schedules", "/schedules"),
    ("schedule-form", "/schedules/new"),
    ("risk", "/risk"),
    ("flatten", "/risk/flatten"),
    ("performance", "/performance"),
    ("system", "/system"),
)
WIDTHS: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


async def _seed(valkey_url: str) -> None:
    from tests.integration.dashboard import seed
    from yquant import portfolio, valkey
    from yquant.portfolio import UnownedOrder
    from yquant.settings import ValkeySettings

    client = valkey.connect(ValkeySettings(url=valkey_url))
    try:
        await seed.seed_accounts(client)
        # "isa" is not an account of the running gateway, so no read of KIS's list rewrites this.
        unowned = UnownedOrder(
            market="KRX", ticker="069500", side="sell", remaining_quantity=50, price=Decimal(37000), broker_order_id="7"
        )
        await portfolio.store_open_order_check(client, "isa", [unowned])
        await seed.seed_signal(client, "seed-accepted", "005930")
        await seed.seed_signal(client, "seed-denied", "000660", denied=True)
        await seed.seed_snapshots(client)
    finally:
        await client.aclose()


def _until_listed(page: Page, path: str, selector: str, timeout_s: float = 60.0) -> None:
    """Load ``path`` again until ``selector`` is on it."""
    deadline = time.monotonic() + timeout_s
    while not page.locator(selector).count():
        assert time.monotonic() < deadline, f"{selector} not on {path} within {timeout_s:.0f}s"
        page.wait_for_timeout(250)
        page.goto(path, wait_until="domcontentloaded")


def _create_schedule(page: Page) -> None:
    page.goto("/schedules/new")
    page.fill("input[name=name]", "Monthly KODEX 200")
    page.select_option("select[name=account]", "main")
    page.fill("input[name=ticker]", "069500")
    page.select_option("select[name=size_by]", "amount")
    page.fill("input[name=size]", "500000")
    page.click("text=Save")
    page.wait_for_url("**/schedules")
    expect(page.locator("#schedules")).to_contain_text("Monthly KODEX 200")


def test_every_page_renders_on_desktop_and_phone(
    browser: Browser, system: RunningSystem, signed_in: Any, screenshots: Path
) -> None:
    run(_seed(system.valkey_url))
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} ({message.location.get('url', '')})")

    for label, viewport in WIDTHS.items():
        context = browser.new_context(base_url=system.dashboard_url, viewport=viewport, storage_state=signed_in)
        try:
            page = context.new_page()
            page.on("console", on_console)
            page.goto("/login")
            page.screenshot(path=str(screenshots / f"login-{label}.png"), full_page=True)
            if label == "desktop":
                _create_schedule(page)
            for name, path in PAGES:
                page.goto(path, wait_until="domcontentloaded")
                expect(page.locator("main")).to_be_visible()
                if name == "order":
                    expect(page.locator("#quote")).not_to_have_text("Fetching a quote…")
                if name in ("overview", "positions"):
                    _until_listed(page, path, "#unowned-count-isa")  # the dashboard caches the accounts 10 s
                    expect(page.locator("#unowned-count-isa")).to_have_text(
                        "isa: 1 order open at KIS not placed by yQuant"
                    )
                page.screenshot(path=str(screenshots / f"{name}-{label}.png"), full_page=True)
        finally:
            context.close()
    assert not errors, errors
    assert len(list(screenshots.glob("*.png"))) == 2 * (len(PAGES) + 1)
