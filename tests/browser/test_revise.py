"""Revising a resting order from the orders page: the new price shows on the row, and the order
fills at it at the simulator."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import WEBHOOK_SECRET, RunningSystem

TICKER = "207940"


def set_price(system: RunningSystem, price: str) -> None:
    assert system.kissim_url is not None
    response = httpx.post(
        f"{system.kissim_url}/admin/price", json={"ticker": TICKER, "market": "KRX", "price": price}, timeout=5
    )
    response.raise_for_status()


def test_a_resting_buy_revised_on_the_orders_page_shows_the_new_price_and_fills_at_it(
    context: BrowserContext, system: RunningSystem
) -> None:
    if not system.has_pipeline or system.webhook_url is None:
        pytest.skip("the KIS simulator (kissim.app) is not available: no order to revise")
    set_price(system, "800000")
    alert = {
        "secret": WEBHOOK_SECRET,
        "strategy": "demo",
        "ticker": TICKER,
        "exchange": "KRX",
        "action": "buy",
        "quantity": 2,
        "order_type": "limit",
        "price": 780000,
        "id": f"browser-revise-{uuid.uuid4().hex}",
    }
    assert httpx.post(system.webhook_url, json=alert, timeout=5).status_code == 200

    page = context.new_page()
    page.goto("/orders")
    row = page.locator("tr.order", has_text=TICKER)
    expect(row).to_have_attribute("data-state", "ACCEPTED", timeout=30_000)  # resting at KIS
    expect(row).to_contain_text("780,000")
    row.locator("details.revise summary").click()
    row.locator("input[name=limit_price]").fill("790,000")
    row.locator("button", has_text="Send revision").click()
    page.wait_for_url("**/orders")

    row = page.locator("tr.order", has_text=TICKER)
    expect(row).to_contain_text("limit @ 790,000", timeout=30_000)  # live: no reload needed
    deadline = time.monotonic() + 30
    revised: list[dict[str, object]] = []
    while time.monotonic() < deadline and not revised:
        revised = [o for o in system.sim_orders() if o.get("ticker") == TICKER and o.get("kind") == "revise"]
        time.sleep(0.2)
    assert [(o["quantity"], o["price"]) for o in revised] == [(2, "790000")]

    set_price(system, "790000")  # the revised buy fills at KIS, at its new price
    expect(row).to_have_attribute("data-state", "FILLED", timeout=30_000)
    expect(row.locator("td").nth(6)).to_have_text("790,000")  # the average fill price
