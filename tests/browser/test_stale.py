"""A page that stopped updating says so: the stale banner, and its going away on recovery.

A trader glancing at a phone must not take yesterday's fills for today's. The banner shows when
the live stream to the dashboard is lost and when the dashboard cannot read Valkey, and hides
again once updates flow. Each step waits for what the page shows, never for a fixed time.

The dashboard runs on a Valkey of its own (kept on disk, so sessions survive its restart):
stopping it must not disturb the other browser tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.conftest import PHONE, RunningSystem, dashboard_alone, sign_in

WAIT_MS = 30_000  # the live loop backs off up to 5 s between reads of a missing Valkey


@pytest.fixture(scope="module")
def lone_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with dashboard_alone(tmp_path_factory.mktemp("stale-system"), appendonly=True) as running:
        yield running


@pytest.fixture
def phone(browser: Browser, lone_system: RunningSystem) -> Iterator[BrowserContext]:
    created = browser.new_context(base_url=lone_system.dashboard_url, **PHONE)
    yield created
    created.close()


def _live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_class("live on", timeout=WAIT_MS)
    expect(page.locator("#stale-banner")).to_be_hidden()


# Pages with live fragments and pages without any (a form, the schedules, the performance
# figures): each is as old as its last load, and says so while Valkey is out of reach.
PAGES = ("/orders", "/order", "/schedules", "/performance")


def test_the_banner_shows_while_valkey_is_down_and_goes_once_it_is_back(
    phone: BrowserContext, lone_system: RunningSystem, shots: Path
) -> None:
    assert lone_system.valkey is not None
    sign_in(phone.new_page(), lone_system, "/orders")
    pages = []
    for path in PAGES:
        page = phone.new_page()
        page.goto(path)
        _live(page)
        pages.append(page)
    lone_system.valkey.stop()
    try:
        for path, page in zip(PAGES, pages, strict=True):
            banner = page.locator("#stale-banner")
            expect(banner, f"no stale banner on {path}").to_be_visible(timeout=WAIT_MS)
            expect(banner).to_contain_text("cannot reach Valkey")
            expect(page.locator("#live-status")).to_have_text("stale")
            page.screenshot(path=str(shots / f"stale-valkey-{path.strip('/')}.png"), full_page=True)
    finally:
        lone_system.valkey.start()
    for path, page in zip(PAGES, pages, strict=True):
        expect(page.locator("#stale-banner")).to_be_hidden(timeout=WAIT_MS)
        expect(page.locator("#live-status")).to_have_text("live")
        expect(page).to_have_url(f"{lone_system.dashboard_url}{path}")  # recovered in place, still signed in


@pytest.mark.parametrize("failure", ["unreachable", "refused"])
def test_the_banner_shows_while_the_live_stream_is_lost_and_goes_once_it_is_back(
    phone: BrowserContext, lone_system: RunningSystem, shots: Path, failure: str
) -> None:
    """Unreachable: the browser retries the stream by itself. Refused (a 5xx): the browser gives
    up on it, and the page opens it again."""
    page = phone.new_page()
    sign_in(page, lone_system, "/signals")
    _live(page)
    failed: list[str] = []

    def fail(route: Route) -> None:
        failed.append(route.request.url)
        if failure == "refused":
            route.fulfill(status=503, body="Valkey is unreachable")
        else:
            route.abort("connectionrefused")

    page.route("**/events*", fail)
    page.reload()  # the stream that was open is gone; every new one fails
    banner = page.locator("#stale-banner")
    expect(banner).to_be_visible(timeout=WAIT_MS)
    expect(banner).to_contain_text("live connection to the dashboard is lost")
    expect(page.locator("#live-status")).to_have_text("stale")
    page.screenshot(path=str(shots / f"stale-{failure}.png"), full_page=True)
    page.unroute("**/events*")
    expect(banner).to_be_hidden(timeout=WAIT_MS)
    expect(page.locator("#live-status")).to_have_class("live on")
    assert failed
