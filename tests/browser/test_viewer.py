"""A viewer in a real browser: every page, no control that would change anything."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import RunningSystem
from yquant.users import add_user

VIEWER_PASSWORD = "a viewer's long password"


def test_a_viewer_sees_every_page_without_a_single_write_control(
    anonymous: BrowserContext, system: RunningSystem
) -> None:
    add_user(system.state_dir / "users.json", "watcher", VIEWER_PASSWORD, role="viewer")
    page = anonymous.new_page()
    page.goto("/login?next=/")
    page.fill("input[name=username]", "watcher")
    page.fill("input[name=password]", VIEWER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{system.dashboard_url}/")

    expect(page.locator("header .who")).to_contain_text("viewer")
    for path in ("/", "/positions", "/orders", "/signals", "/risk", "/schedules", "/order", "/system"):
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        expect(page.locator("header button:has-text('Halt')")).to_be_hidden()
        visible_writes = page.locator("form[method=post]:not([action='/logout']) button:visible")
        assert visible_writes.count() == 0, f"{path} shows a write control to a viewer"
    expect(page.locator("header button:has-text('Sign out')")).to_be_visible()
