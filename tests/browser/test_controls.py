"""The kill switch as a trader uses it: confirm, see it everywhere, resume."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Dialog, Page, expect
from redis import Redis

from tests.browser.conftest import RunningSystem
from yquant import keys


@pytest.fixture
def valkey(system: RunningSystem) -> Iterator[Redis]:
    client = Redis.from_url(system.valkey_url, driver_info=None)
    yield client
    client.delete(keys.TRADING_STATE)  # whatever happened, the next test starts ACTIVE
    client.close()


def test_halt_asks_first_then_every_page_says_halted_and_resume_brings_it_back(page: Page, valkey: Redis) -> None:
    page.goto("/risk")
    asked: list[str] = []

    def decline(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.click("header button:has-text('Halt')")
    assert asked, "halting did not ask for a confirmation"
    assert valkey.hget(keys.TRADING_STATE, "*") in (None, b"ACTIVE")  # declined: nothing changed

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("header button:has-text('Halt')")
    page.wait_for_url("**/risk")
    expect(page.locator("#halted-banner")).to_contain_text("HALTED")
    assert valkey.hget(keys.TRADING_STATE, "*") == b"HALTED"
    # An account with no state of its own is shown as what the order manager applies to it.
    expect(page.locator("#trading-state tr[data-scope=main] .badge")).to_have_text("HALTED")
    expect(page.locator("#trading-state tr[data-scope=main]")).to_contain_text("global")

    page.goto("/orders")
    expect(page.locator("#halted-banner")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#resume")
    page.wait_for_url("**/risk")
    expect(page.locator("#halted-banner")).to_have_count(0)
    assert valkey.hget(keys.TRADING_STATE, "*") == b"ACTIVE"
    expect(page.locator("header button:has-text('Halt')")).to_be_visible()
