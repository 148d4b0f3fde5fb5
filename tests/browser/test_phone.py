"""Every page on a phone, with a full day's data: nothing is wider than the screen.

A trader checks the system from a phone more than from a laptop. A page that scrolls sideways
hides a column (often the action or the P/L) and zooms out on every visit, so this walks every
page at 390 CSS pixels with long reasons, many order ids and every kind of row present, and
fails on anything that sticks out, naming it. Only the page tabs and a table's own ``.scroll``
box may scroll sideways; the tables a trader acts from on a phone (positions, orders, signals,
schedules) stack their rows as cards instead and must not need to. The header keeps every part
(title, trading state, live badge, Halt or Resume, zone, user, Sign out) whole, on the screen and
clear of the others, halted or not.

The dashboard here runs on a Valkey of its own, so the seeded orders never reach a broker
gateway and the other browser tests see none of this data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import PHONE, RunningSystem, dashboard_alone, run, sign_in

WIDTH = PHONE["viewport"]["width"]
# The tables a trader reads and acts from on a phone: their rows stack, nothing scrolls sideways.
STACKED = ("#positions", "#positions-main", "#positions-isa", "#orders", "#signals", "#schedules", "#trades")
LONG_REASON = (
    "order value ₩48,120,000 is above the account's limit ₩10,000,000 for one order, and the "
    "strategy's daily loss of ₩1,250,000 already passed its cap ₩1,000,000; see "
    "https://example.com/strategies/momentum-breakout-kospi200-weekly-rebalance-v3/limits"
)

# Everything wider than the screen, except what sits inside a box that scrolls on purpose.
# With is_mobile the browser zooms out to fit a too-wide page, so window.innerWidth grows with
# the page; the screen's width is the fixed measure.
MEASURE = """(width) => {
  const scrollers = ".tabs, .scroll";
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.classList.length ? "." + Array.from(el.classList).join(".") : "");
  const path = (el) => {
    const parts = [];
    for (let node = el; node && node !== document.body && parts.length < 4; node = node.parentElement) {
      parts.unshift(describe(node));
    }
    return parts.join(" > ");
  };
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) { continue; }
    if (box.right <= width + 0.5 && box.left >= -0.5) { continue; }
    if (el.parentElement && el.parentElement.closest(scrollers)) { continue; }
    wide.push(path(el) + " [" + Math.round(box.left) + ".." + Math.round(box.right) + "]");
  }
  const sideways = {};
  document.querySelectorAll(".scroll").forEach((box) => {
    const table = box.querySelector("table[id]");
    if (table && box.scrollWidth > box.clientWidth + 1) { sideways["#" + table.id] = box.scrollWidth; }
  });
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    wide: wide.slice(0, 12),
    sideways: sideways,
  };
}"""


# The header a trader reads first on every page: what it is, the trading state, whether it is
# live, the kill switch, the time zone and who is signed in. Each must show whole, inside the
# screen, and touch no other (a button under a label is a mis-tap on the kill switch).
HEADER_PARTS = {
    "title": ".top .brand",
    "state": ".top a.badge",
    "live": "#live-status",
    "halt/resume": ".top form[action='/risk/state'] button",
    "zone": "#time-zone",
    "user": ".top .who",
    "sign out": ".top form[action='/logout'] button",
}
HEADER = """([width, parts]) => {
  const found = {};
  const problems = [];
  for (const [name, selector] of Object.entries(parts)) {
    const el = document.querySelector(selector);
    const box = el ? el.getBoundingClientRect() : null;
    if (!box || box.width === 0 || box.height === 0 || getComputedStyle(el).visibility === "hidden") {
      problems.push(name + " is not shown");
      continue;
    }
    if (box.left < -0.5 || box.right > width + 0.5) {
      problems.push(name + " sticks out [" + Math.round(box.left) + ".." + Math.round(box.right) + "]");
    }
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== "inline") {
      problems.push(name + " is cut (" + el.scrollWidth + " > " + el.clientWidth + ")");
    }
    found[name] = box;
  }
  const names = Object.keys(found);
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const a = found[names[i]], b = found[names[j]];
      const overlap = Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5
        && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
      if (overlap) { problems.push(names[i] + " overlaps " + names[j]); }
    }
  }
  const header = document.querySelector("header.top");
  if (header.scrollWidth > header.clientWidth + 1) {
    problems.push("the header scrolls sideways (" + header.scrollWidth + " > " + header.clientWidth + ")");
  }
  return problems;
}"""


CANCEL_REASON = "cancelled at the broker: KRX session closed before the order filled"


async def _seed_cancelled(client: Any) -> None:
    """An order the broker cancelled, stored as the gateway stores it: its reason on the record."""
    from tests.integration.dashboard import seed
    from tests.order_paths import walk_to
    from yquant import orders
    from yquant.messages import Market, OrderCancelled, OrderState, OrderType, Side, SubmitOrder

    coid = "yq-phonecancelled000000"
    command = SubmitOrder(
        client_order_id=coid,
        account="main",
        market=Market.KRX,
        ticker="035720",
        side=Side.BUY,
        quantity=7,
        order_type=OrderType.LIMIT,
        limit_price=Decimal(48000),
        strategy="mean-reversion",
        origin="signal",
    )
    await orders.create_order(client, command, seed.MAXLEN)
    await walk_to(client, coid, OrderState.ACCEPTED, fields={"broker_order_id": "0000009999"})
    event = OrderCancelled(client_order_id=coid, account="main", cancelled_quantity=7, reason=CANCEL_REASON)
    await walk_to(client, coid, OrderState.CANCELLED, fields={"reason": CANCEL_REASON}, event=event)


async def _seed(valkey_url: str) -> None:
    from tests.integration.dashboard import seed
    from yquant import decisions, valkey
    from yquant.messages import Market, OrderType, Signal, SignalAccepted, SignalAction, SignalDenied, SignalSource
    from yquant.settings import ValkeySettings

    client = valkey.connect(ValkeySettings(url=valkey_url))
    try:
        await seed.seed_all(client)
        denied = Signal(
            signal_id="phone-denied-long",
            strategy="momentum-breakout-kospi200-weekly",
            ticker="005930",
            market=Market.KRX,
            action=SignalAction.BUY,
            quantity=Decimal(650),
            order_type=OrderType.LIMIT,
            price=Decimal("74300"),
            fired_at=datetime.now(UTC),
            account="main",
        )
        await decisions.record_received(client, denied)
        refusal = SignalDenied(
            signal_id=denied.signal_id,
            strategy=denied.strategy,
            ticker=denied.ticker,
            account="main",
            reason_code="MAX_ORDER_VALUE_AND_DAILY_LOSS",
            reason=LONG_REASON,
        )
        await decisions.record_decision(client, denied, refusal, seed.MAXLEN)
        split = Signal(
            signal_id="phone-accepted-split",
            strategy="us-tech-rebalance",
            ticker="AAPL",
            market=Market.NASD,
            action=SignalAction.SELL,
            quantity=Decimal(15),
            fired_at=datetime.now(UTC),
            source=SignalSource.SCHEDULE,
        )
        await decisions.record_received(client, split)
        accepted = SignalAccepted(
            signal_id=split.signal_id,
            strategy=split.strategy,
            ticker=split.ticker,
            client_order_ids=[f"yq-phone{index:017d}" for index in range(3)],
            note="split across 3 accounts by weight",
        )
        await decisions.record_decision(client, split, accepted, seed.MAXLEN)
        await _seed_cancelled(client)
    finally:
        await client.aclose()


async def _set_global_state(valkey_url: str, state: str) -> None:
    from yquant import valkey
    from yquant.settings import ValkeySettings
    from yquant.trading_state import set_trading_state

    client = valkey.connect(ValkeySettings(url=valkey_url))
    try:
        await set_trading_state(client, state)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def phone_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    # A simulator address that nothing answers on: its demo account "main" exists, no order leaves.
    extra = {"YQ_KIS__REST_URL": "http://127.0.0.1:9"}
    with dashboard_alone(tmp_path_factory.mktemp("phone-system"), extra) as running:
        run(_seed(running.valkey_url))
        yield running


@pytest.fixture
def phone(browser: Browser, phone_system: RunningSystem) -> Iterator[BrowserContext]:
    created = browser.new_context(base_url=phone_system.dashboard_url, **PHONE)
    yield created
    created.close()


def _create_schedule(page: Page) -> str:
    page.goto("/schedules/new")
    page.fill("input[name=name]", "Monthly KODEX 200 top-up on the first trading day of each month")
    page.select_option("select[name=account]", "main")
    page.fill("input[name=ticker]", "069500")
    page.select_option("select[name=size_by]", "amount")
    page.fill("input[name=size]", "500000")
    page.click("text=Save")
    page.wait_for_url("**/schedules")
    row = page.locator("#schedules tr[data-schedule-id]").first
    expect(row).to_contain_text("Monthly KODEX 200")
    return str(row.get_attribute("data-schedule-id"))


def _review_order(page: Page) -> None:
    page.goto("/order?account=main&market=KRX&ticker=005930&side=sell&quantity=5")
    page.click("text=Review order")
    expect(page.locator("#order-summary")).to_be_visible()


def _check(page: Page, name: str, shots: Path, problems: dict[str, Any]) -> dict[str, Any]:
    expect(page.locator("main")).to_be_visible()
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    measured: dict[str, Any] = page.evaluate(MEASURE, WIDTH)
    stacked = {table: px for table, px in measured["sideways"].items() if table in STACKED}
    header: list[str] = page.evaluate(HEADER, [WIDTH, HEADER_PARTS]) if name != "login" else []
    if measured["scrollWidth"] > WIDTH or measured["wide"] or stacked or header:
        problems[name] = {
            "scrollWidth": measured["scrollWidth"],
            "wide": measured["wide"],
            "sideways": stacked,
            "header": header,
        }
    return measured


def test_every_page_fits_a_phone_screen(phone: BrowserContext, phone_system: RunningSystem, shots: Path) -> None:
    problems: dict[str, Any] = {}
    page = phone.new_page()
    page.goto("/login")
    _check(page, "login", shots, problems)
    sign_in(page, phone_system)
    schedule_id = _create_schedule(page)
    pages = (
        ("overview", "/"),
        ("positions", "/positions"),
        ("orders", "/orders"),
        ("signals", "/signals"),
        ("order", "/order?market=KRX&ticker=005930"),
        ("schedules", "/schedules"),
        ("schedule-new", "/schedules/new"),
        ("schedule-edit", f"/schedules/{schedule_id}/edit"),
        ("risk", "/risk"),
        ("flatten", "/risk/flatten"),
        ("performance", "/performance"),
        ("system", "/system"),
    )
    for name, path in pages:
        page.goto(path)
        if name == "signals":
            expect(page.locator('tr[data-signal-id="phone-denied-long"]')).to_contain_text("MAX_ORDER_VALUE")
        if name == "orders":
            expect(page.locator("tr.order").first).to_be_visible()
            # A phone's card keeps what the desktop's columns say: why it was cancelled, the
            # strategy and the fee.
            cancelled = page.locator('tr.order[data-client-order-id="yq-phonecancelled000000"]')
            expect(cancelled.locator("td.reason")).to_be_visible()
            expect(cancelled.locator("td.reason")).to_have_text(CANCEL_REASON)
            expect(cancelled.locator('td[data-label="Strategy"]')).to_contain_text("mean-reversion")
            filled = page.locator('tr.order[data-client-order-id="yq-seed00000000000000000"]')
            expect(filled.locator('td[data-label="Fee"]')).to_be_visible()
            expect(filled.locator('td[data-label="Fee"]')).to_have_text("107")
        if name == "order":
            expect(page.locator("#quote")).not_to_have_text("Fetching a quote…")
        _check(page, name, shots, problems)
    _review_order(page)
    _check(page, "order-review", shots, problems)
    # Halted: the header carries Resume where Halt was, and the banner sits below it.
    run(_set_global_state(phone_system.valkey_url, "HALTED"))
    try:
        page.goto("/")
        expect(page.locator("#resume")).to_be_visible()
        _check(page, "overview-halted", shots, problems)
    finally:
        run(_set_global_state(phone_system.valkey_url, "ACTIVE"))
    assert not problems, problems
    # The measure itself: a block wider than the screen is seen, and named.
    page.evaluate("""() => { const wide = document.createElement("div"); wide.id = "too-wide";
      wide.style.width = "600px"; wide.style.height = "4px"; document.querySelector("main").append(wide); }""")
    probe = page.evaluate(MEASURE, WIDTH)
    assert probe["scrollWidth"] > WIDTH, probe
    assert any("div#too-wide" in found for found in probe["wide"]), probe
