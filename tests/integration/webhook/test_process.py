"""``python -m webhook`` as deployed: starts, answers over real HTTP, stays small, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis import Redis

from tests.integration.webhook.conftest import strategy_alert
from yquant import keys
from yquant.embedded import free_port

SECRET = "process-secret-0123456789"
MEMORY_BUDGET_KIB = 60 * 1024


@dataclass
class WebhookProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def memory_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"{field} missing")


def environment(valkey_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("YQ_")}
    env.update(
        {
            "YQ_VALKEY__URL": valkey_url,
            "YQ_STATE_DIR": str(tmp_path / "state"),
            "YQ_INSTANCE": "webhook-test",
            "YQ_LOG_JSON": "true",
            "YQ_LOG_LEVEL": "INFO",
            **extra,
        }
    )
    return env


def start_webhook(valkey_url: str, tmp_path: Path, **settings: str) -> Iterator[WebhookProcess]:
    """``python -m webhook`` on a free port with ``settings`` (YQ_ names), once /healthz answers;
    killed after, if still running."""
    port = free_port()
    log_path = tmp_path / "webhook.log"
    env = environment(valkey_url, tmp_path, YQ_WEBHOOK__SECRET=SECRET, YQ_WEBHOOK__PORT=str(port), **settings)
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "webhook"], env=env, stdout=log, stderr=log)
    running = WebhookProcess(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{running.base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "webhook did not start"
            time.sleep(0.05)
    yield running
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture
def webhook_process(valkey_url: str, tmp_path: Path) -> Iterator[WebhookProcess]:
    yield from start_webhook(valkey_url, tmp_path, YQ_WEBHOOK__RATE_LIMIT_PER_MIN="0")


def test_alerts_over_http_stay_within_the_memory_budget_and_out_of_the_logs(
    webhook_process: WebhookProcess, valkey_url: str
) -> None:
    with httpx.Client(base_url=webhook_process.base_url, timeout=5) as http:
        bodies = [strategy_alert(secret=SECRET, **{"strategy.order.id": f"order-{n}"}) for n in range(100)]
        for body, headers in bodies:
            assert http.post("/webhook", content=body, headers=headers).json()["status"] == "accepted"
        body, headers = bodies[0]  # TradingView's resend: the same bytes
        assert http.post("/webhook", content=body, headers=headers).json()["status"] == "duplicate"
        wrong, _ = strategy_alert(secret="guessed-secret-42")
        assert http.post("/webhook", content=wrong, headers=headers).status_code == 401
        assert http.post(f"/webhook/{SECRET}", content=b"{", headers=headers).status_code == 422
        assert http.get("/metrics").status_code == 200
    with Redis.from_url(valkey_url, driver_info=None) as client:
        assert client.xlen(keys.SIGNALS_WEBHOOK) == 100
    assert webhook_process.memory_kib("VmHWM") < MEMORY_BUDGET_KIB
    webhook_process.process.send_signal(signal.SIGTERM)
    assert webhook_process.process.wait(timeout=10) == 0
    log = webhook_process.log_path.read_text()
    assert "alert accepted" in log
    assert SECRET not in log
    assert "guessed-secret-42" not in log


def test_without_a_secret_the_webhook_refuses_to_start(valkey_url: str, tmp_path: Path) -> None:
    env = environment(valkey_url, tmp_path, YQ_WEBHOOK__PORT=str(free_port()))
    result = subprocess.run([sys.executable, "-m", "webhook"], env=env, capture_output=True, timeout=30, check=False)
    assert result.returncode != 0
    assert b"no webhook secret" in result.stderr
