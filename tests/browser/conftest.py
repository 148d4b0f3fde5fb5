"""The dashboard in headless Chromium (Debian's, never a Playwright download).

The whole system runs as processes the way ``yquant up`` starts it (``tests.harness.devsystem``), so a
manual order placed in the browser travels to the KIS simulator. Without the simulator the
dashboard runs alone against a real Valkey and the pipeline test is skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from yquant.embedded import EmbeddedValkey, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PHONE: dict[str, Any] = {  # a phone-sized screen as a phone's browser lays it out
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
WEBHOOK_SECRET = "browser-test-secret"

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make browser-deps)", allow_module_level=True)
try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def simulator_available() -> bool:
    try:
        import kissim.app  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class RunningSystem:
    dashboard_url: str
    valkey_url: str
    state_dir: Path
    password: str
    webhook_url: str | None = None
    kissim_url: str | None = None
    dashboard_pid: int = 0
    valkey: EmbeddedValkey | None = None  # only when the dashboard runs alone on its own Valkey

    @property
    def has_pipeline(self) -> bool:
        return self.kissim_url is not None

    def sim_orders(self) -> list[dict[str, Any]]:
        assert self.kissim_url is not None
        data = httpx.get(f"{self.kissim_url}/admin/orders", timeout=5).json()
        orders: list[dict[str, Any]] = data["orders"] if isinstance(data, dict) else data
        return orders


def _wait_http(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout_s:.0f}s")


@pytest.fixture(scope="package")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    state = tmp_path_factory.mktemp("browser-system")
    env = {"YQ_DASHBOARD__QUOTE_TIMEOUT_S": "0.5", "YQ_LOG_LEVEL": "WARNING"}
    if simulator_available():
        from tests.harness.devsystem import DevSystem

        with DevSystem(state, env, secret=WEBHOOK_SECRET) as running:
            yield RunningSystem(
                dashboard_url=running.dashboard_url,
                valkey_url=running.valkey_url,
                state_dir=state,
                password=(state / "admin-password").read_text().strip(),
                webhook_url=running.webhook_url,
                kissim_url=running.kissim_url,
                dashboard_pid=running.pid_of("dashboard"),
            )
        return
    yield from _dashboard_alone(state, env)


def _dashboard_alone(state: Path, extra: dict[str, str], *, appendonly: bool = False) -> Iterator[RunningSystem]:
    from yquant import valkey
    from yquant.settings import Settings
    from yquant.users import ensure_admin_user

    server = EmbeddedValkey(state / "valkey", appendonly=appendonly)
    server.start()
    client = valkey.connect_sync_url(server.url)
    valkey.load_functions_sync(client)
    client.close()
    password = ensure_admin_user(Settings(state_dir=state), state)
    assert password is not None
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
    env.update({"YQ_STATE_DIR": str(state), "YQ_VALKEY__URL": server.url, "YQ_DASHBOARD__PORT": str(port), **extra})
    log = (state / "dashboard.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        yield RunningSystem(
            f"http://127.0.0.1:{port}", server.url, state, password, dashboard_pid=process.pid, valkey=server
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        server.stop()


@contextmanager
def dashboard_alone(
    state: Path, extra: dict[str, str] | None = None, *, appendonly: bool = False
) -> Iterator[RunningSystem]:
    """A dashboard of its own on a Valkey of its own, for a test that seeds or breaks what it reads.
    With ``appendonly`` Valkey keeps its data (sessions too) across ``system.valkey`` restarts."""
    env = {"YQ_DASHBOARD__QUOTE_TIMEOUT_S": "0.5", "YQ_LOG_LEVEL": "WARNING", **(extra or {})}
    yield from _dashboard_alone(state, env, appendonly=appendonly)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def sign_in(page: Page, system: RunningSystem, path: str = "/") -> None:
    page.goto(f"{system.dashboard_url}/login?next={path}")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", system.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{system.dashboard_url}{path}")


@pytest.fixture(scope="package")
def signed_in(browser: Browser, system: RunningSystem) -> Any:
    """The cookies of one sign-in, reused by every test that is not about signing in."""
    context = browser.new_context(base_url=system.dashboard_url)
    try:
        sign_in(context.new_page(), system)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def anonymous(browser: Browser, system: RunningSystem) -> Iterator[BrowserContext]:
    created = browser.new_context(base_url=system.dashboard_url, viewport={"width": 1280, "height": 860})
    yield created
    created.close()


@pytest.fixture
def context(browser: Browser, system: RunningSystem, signed_in: Any) -> Iterator[BrowserContext]:
    created = browser.new_context(
        base_url=system.dashboard_url, viewport={"width": 1280, "height": 860}, storage_state=signed_in
    )
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    opened = context.new_page()
    opened.goto("/")
    return opened


def run(coroutine: Any) -> Any:
    """Run a coroutine from a synchronous test (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="package")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def shots(screenshots: Path) -> Path:
    """A folder of its own for the phone tests' screenshots: the screenshot test counts the shared one."""
    folder = screenshots / "phone"
    folder.mkdir(exist_ok=True)
    return folder
