"""The whole system as processes: an alert becomes a filled order, a position, a dashboard row."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from tests.e2e.helpers import eventually
from tests.harness.devsystem import DevSystem
from yquant import keys

SECRET = "e2e-secret"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSystem]:
    with DevSystem(tmp_path_factory.mktemp("system"), secret=SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def valkey(system: DevSystem) -> Iterator[Redis]:
    client = Redis.from_url(system.valkey_url, driver_info=None)
    yield client
    client.close()


def alert(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "secret": SECRET,
        "strategy": "demo",
        "ticker": "005930",
        "exchange": "KRX",
        "action": "buy",
        "quantity": 1,
    }
    body.update(overrides)
    return body


def orders_json(system: DevSystem) -> list[dict[str, Any]]:
    result = system.yquant("orders", "--json")
    assert result.returncode == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def dashboard_html(system: DevSystem) -> str:
    with httpx.Client(base_url=system.dashboard_url, timeout=5, follow_redirects=True) as client:
        page = client.get("/")
        if "/login" in str(page.url):
            password = (Path(system.state_dir) / "admin-password").read_text().strip()
            form = client.get("/login")
            token = _csrf(form.text)
            page = client.post("/login", data={"username": "admin", "password": password, "csrf_token": token})
            page = client.get("/")
        assert page.status_code == 200
        return page.text


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    return html[start : html.index('"', start)]


def test_alert_becomes_filled_order_position_and_dashboard_row(system: DevSystem, valkey: Redis) -> None:
    started = time.monotonic()
    response = httpx.post(system.webhook_url, json=alert(id="first-alert"), timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"

    filled = eventually(
        lambda: [o for o in orders_json(system) if o["ticker"] == "005930" and o["state"] == "FILLED"], 10
    )
    assert filled[0]["filled_quantity"] == 1
    assert filled[0]["broker_order_id"]
    sim = [o for o in system.sim_orders() if o["ticker"] == "005930"]
    assert len(sim) == 1
    assert sim[0]["odno"].lstrip("0") == filled[0]["broker_order_id"].lstrip("0")

    def position() -> dict[str, Any] | None:
        raw = valkey.hget(keys.positions("main"), "KRX:005930")
        return json.loads(raw) if raw else None

    held = eventually(position, 60)
    assert held["quantity"] == 1
    assert held["strategy"] == "demo"
    assert time.monotonic() - started < 10

    html = eventually(lambda: (lambda h: h if "005930" in h else None)(dashboard_html(system)), 60)
    assert "005930" in html


def test_us_market_alert_goes_to_kis_as_a_limit_one_percent_through_the_quote(system: DevSystem) -> None:
    """KIS has no US market order: the order manager prices it from a fresh quote (ADR 0007)."""
    price = httpx.post(
        f"{system.kissim_url}/admin/price", json={"ticker": "MSFT", "price": "410.00", "market": "US"}, timeout=5
    )
    price.raise_for_status()
    response = httpx.post(system.webhook_url, json=alert(id="us-market", ticker="MSFT", exchange="NASDAQ"), timeout=5)
    assert (response.status_code, response.json()["status"]) == (200, "accepted")

    filled = eventually(
        lambda: [o for o in orders_json(system) if o["ticker"] == "MSFT" and o["state"] == "FILLED"], 20
    )
    assert Decimal(str(filled[0]["limit_price"])) == Decimal("414.10")  # JSON numbers: 414.1
    [sent] = [o for o in system.sim_orders() if o["ticker"] == "MSFT"]
    assert (Decimal(sent["price"]), sent["ord_dvsn"]) == (Decimal("414.10"), "00")


def test_a_resting_order_is_cancelled_from_the_console_with_who_cancelled_it(system: DevSystem) -> None:
    price = httpx.post(f"{system.kissim_url}/admin/price", json={"ticker": "035420", "price": "200000"}, timeout=5)
    price.raise_for_status()
    response = httpx.post(
        system.webhook_url,
        json=alert(id="rests", ticker="035420", order_type="limit", price=160000),  # below the market: it rests
        timeout=5,
    )
    assert response.json()["status"] == "accepted"
    [resting] = eventually(
        lambda: [o for o in orders_json(system) if o["ticker"] == "035420" and o["state"] == "ACCEPTED"], 20
    )
    assert resting["client_order_id"] in system.yquant("orders").stdout  # the table shows the id to cancel

    done = system.yquant("cancel", resting["client_order_id"], "--wait", "30")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CANCELLED" in done.stdout
    [cancelled] = [o for o in orders_json(system) if o["client_order_id"] == resting["client_order_id"]]
    assert cancelled["state"] == "CANCELLED"
    assert cancelled["reason"].startswith("cancelled from the console by ")
    again = system.yquant("cancel", resting["client_order_id"])
    assert (again.returncode, "already CANCELLED" in again.stderr) == (1, True)


def test_same_alert_again_is_acknowledged_without_a_second_order(system: DevSystem) -> None:
    body = alert(id="resent-alert", ticker="000660")
    first = httpx.post(system.webhook_url, json=body, timeout=5)
    assert first.json()["status"] == "accepted"
    eventually(lambda: [o for o in orders_json(system) if o["ticker"] == "000660" and o["state"] == "FILLED"], 60)

    again = httpx.post(system.webhook_url, json=body, timeout=5)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    time.sleep(1.0)
    assert len([o for o in system.sim_orders() if o["ticker"] == "000660"]) == 1
    assert len([o for o in orders_json(system) if o["ticker"] == "000660"]) == 1


def test_wrong_secret_is_refused_and_nothing_is_appended(system: DevSystem, valkey: Redis) -> None:
    before = valkey.xlen(keys.SIGNALS_WEBHOOK)
    response = httpx.post(system.webhook_url, json=alert(secret="guess-9f3a7c", id="intruder"), timeout=5)
    assert response.status_code == 401
    assert "guess-9f3a7c" not in response.text
    assert valkey.xlen(keys.SIGNALS_WEBHOOK) == before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b'{"secret": "e2e-secret", "strategy": ', "application/json"), (b"buy 005930 now", "text/plain")],
)
def test_malformed_alert_gets_a_4xx_and_nothing_is_appended(
    system: DevSystem, valkey: Redis, content: bytes, content_type: str
) -> None:
    before = valkey.xlen(keys.SIGNALS_WEBHOOK)
    response = httpx.post(system.webhook_url, content=content, headers={"content-type": content_type}, timeout=5)
    assert 400 <= response.status_code < 500
    assert valkey.xlen(keys.SIGNALS_WEBHOOK) == before


def test_status_shows_every_service_alive(system: DevSystem) -> None:
    def services() -> set[str] | None:
        result = system.yquant("status", "--json")
        names = {s["service"] for s in json.loads(result.stdout)["services"]}
        return names if {"webhook", "ordermanager", "brokergateway", "dashboard"} <= names else None

    assert eventually(services, 60)
    status = json.loads(system.yquant("status", "--json").stdout)
    assert status["valkey"]["reachable"] is True
    assert status["simulator"]["up"] is True
    assert status["trading"]["*"] in {"ACTIVE", "REDUCING", "HALTED"}
    signals = [s for s in status["streams"] if s["stream"] == keys.SIGNALS_WEBHOOK and s["group"]]
    assert signals
    assert all(isinstance(s["lag"], int) and isinstance(s["pending"], int) for s in signals)
    table = system.yquant("status").stdout
    assert "KIS simulator at" in table
    assert "trading: global" in table


def test_nothing_in_the_state_folder_is_readable_by_others(system: DevSystem, valkey: Redis) -> None:
    """The AOF holds KIS access tokens in clear; logs, pid files and the broker's state beside it."""
    assert valkey.ping()
    created = [
        path
        for path in system.state_dir.rglob("*")
        if path.name != system.output_path.name  # the test's own file
    ]
    assert any(path.suffix == ".aof" for path in created)
    exposed = {
        str(path.relative_to(system.state_dir)): oct(path.stat().st_mode & 0o777)
        for path in created
        if path.stat().st_mode & 0o077
    }
    assert exposed == {}
    assert system.state_dir.stat().st_mode & 0o777 == 0o700


def test_a_second_yquant_up_on_the_same_folder_says_one_is_running(system: DevSystem, tmp_path: Path) -> None:
    again = subprocess.run(
        [sys.executable, "-m", "yquant", "up"], env=system.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 1
    assert "already running" in again.stderr
    assert system.dashboard_url in again.stderr  # where the running one is

    elsewhere = subprocess.run(
        [sys.executable, "-m", "yquant", "up"],
        env={**system.env, "YQ_STATE_DIR": str(tmp_path)},  # another folder, the same ports
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert elsewhere.returncode == 1
    assert "in use by another program" in elsewhere.stderr
    assert f"dashboard port {system.dashboard_port}" in elsewhere.stderr
    assert httpx.get(f"{system.dashboard_url}/healthz", timeout=5).status_code == 200  # the first one is untouched
