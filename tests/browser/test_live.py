"""Live pages: what happens elsewhere shows up without a reload."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import WEBHOOK_SECRET, RunningSystem, run


def mark_loaded(page: Page) -> None:
    page.evaluate("window.__notReloaded = true")
    page.wait_for_function("document.getElementById('live-status').classList.contains('on')")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


def test_manual_order_reaches_the_simulator_and_appears_on_orders_live(
    context: BrowserContext, system: RunningSystem
) -> None:
    if not system.has_pipeline:
        pytest.skip("the KIS simulator (kissim.app) is not available: no pipeline to reach")
    assert system.kissim_url is not None
    httpx.post(
        f"{system.kissim_url}/admin/price", json={"ticker": "005930", "market": "KRX", "price": "70000"}, timeout=5
    )
    orders = context.new_page()
    orders.goto("/orders")
    mark_loaded(orders)

    trade = context.new_page()
    trade.goto("/order")
    trade.select_option("select[name=account]", "main")
    trade.select_option("#market", "KRX")
    trade.fill("#ticker", "005930")
    trade.check("input[name=side][value=buy]")
    trade.select_option("#sizing", "quantity")
    trade.fill("#value", "3")
    trade.select_option("#order-type", "limit")
    trade.fill("#limit-price", "70000")
    trade.click("text=Review order")
    expect(trade.locator("#order-summary")).to_contain_text("BUY 3 × 005930")
    trade.click("#confirm-order")
    trade.wait_for_url("**/orders?sent=dash-*")

    deadline = time.monotonic() + 15
    placed: list[dict[str, object]] = []
    while time.monotonic() < deadline and not placed:
        placed = [o for o in system.sim_orders() if o.get("ticker") == "005930" and o.get("quantity") == 3]
        time.sleep(0.2)
    assert placed, f"the order never reached the simulator: {system.sim_orders()}"
    expect(orders.locator("tr.order", has_text="005930").first).to_be_visible(timeout=10_000)
    assert_not_reloaded(orders)
    expect(trade.locator("#sent-notice")).to_contain_text("accepted", timeout=10_000)


def test_new_signal_appears_on_the_signals_page_live(page: Page, system: RunningSystem) -> None:
    page.goto("/signals")
    mark_loaded(page)
    if system.webhook_url:
        alert = {
            "secret": WEBHOOK_SECRET,
            "strategy": "demo",
            "ticker": "000660",
            "exchange": "KRX",
            "action": "buy",
            "quantity": 1,
            "id": f"browser-{uuid.uuid4().hex}",
        }
        response = httpx.post(system.webhook_url, json=alert, timeout=5)
        assert response.status_code == 200, response.text
        signal_id = response.json()["signal_id"]
    else:
        signal_id = f"browser-{uuid.uuid4().hex[:12]}"
        run(_decide(system.valkey_url, signal_id))
    row = page.locator(f'tr[data-signal-id="{signal_id}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("000660")
    assert_not_reloaded(page)


async def _decide(valkey_url: str, signal_id: str) -> None:
    from tests.integration.dashboard.seed import seed_signal
    from yquant import valkey
    from yquant.settings import ValkeySettings

    client = valkey.connect(ValkeySettings(url=valkey_url))
    try:
        await seed_signal(client, signal_id, "000660", denied=True)
    finally:
        await client.aclose()
