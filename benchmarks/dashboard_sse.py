"""The dashboard's memory with concurrent live (SSE) browsers while events flow.

``measure_sse_rss`` signs in, opens ``clients`` concurrent ``/events`` streams, makes events
flow for ``seconds`` and returns the dashboard process's VmRSS / VmHWM from ``/proc/PID/status``
(sampled throughout; the HWM includes the login's argon2 peak).

Events: with ``valkey_url``, synthetic ``SignalDenied`` decisions are appended to the decisions
stream (only the dashboard reads it; nothing trades). Without it, they are made through the
dashboard itself: manual *sells of a ticker nobody holds*, which the order manager denies
(``NO_POSITION``) before anything reaches a broker; they do appear in the decision log.

    .venv/bin/python -m benchmarks.dashboard_sse URL USER PASSWORD PID [VALKEY_URL]
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

BENCH_TICKER = "YQBENCH"


def proc_memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+)", text)
    hwm = re.search(r"VmHWM:\s+(\d+)", text)
    return (int(rss.group(1)) / 1024 if rss else 0.0, int(hwm.group(1)) / 1024 if hwm else 0.0)


def _field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    if not match:
        raise RuntimeError(f"no {name} field in the page")
    return match.group(1)


async def _login(client: httpx.AsyncClient, username: str, password: str) -> str:
    page = await client.get("/login")
    data = {"username": username, "password": password, "csrf_token": _field(page.text, "csrf_token"), "next": "/"}
    response = await client.post("/login", data=data)
    if response.status_code != 303:
        raise RuntimeError(f"login failed: HTTP {response.status_code}")
    order_page = await client.get("/order")
    return _field(order_page.text, "csrf_token")


async def _read(client: httpx.AsyncClient, counts: list[int], index: int, connected: asyncio.Event) -> None:
    async with client.stream("GET", "/events", headers={"Accept": "text/event-stream"}) as response:
        connected.set()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                counts[index] += 1


async def _produce_valkey(valkey_url: str, rate_per_s: float, stop: asyncio.Event) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(valkey_url, driver_info=None)
    sent = 0
    try:
        while not stop.is_set():
            denied = {
                "type": "SignalDenied",
                "signal_id": f"bench-{uuid.uuid4().hex}",
                "strategy": "bench",
                "ticker": BENCH_TICKER,
                "reason_code": "BENCHMARK",
                "reason": "synthetic event for the dashboard SSE benchmark",
            }
            await client.xadd(
                "yq:stream:decisions", {"type": "SignalDenied", "data": orjson.dumps(denied)}, maxlen=100_000
            )
            sent += 1
            await asyncio.sleep(1 / rate_per_s)
    finally:
        await client.aclose()
    return sent


async def _produce_dashboard(client: httpx.AsyncClient, csrf: str, rate_per_s: float, stop: asyncio.Event) -> int:
    accounts = re.findall(r'<option value="([^"]+)"', (await client.get("/order")).text)  # the first select
    form = {
        "csrf_token": csrf, "account": accounts[0] if accounts else "", "market": "KRX", "ticker": BENCH_TICKER,
        "side": "sell", "sizing": "quantity", "value": "1", "order_type": "limit", "limit_price": "1000",
    }  # fmt: skip
    names = ("nonce", "account", "market", "ticker", "side", "quantity", "order_type", "limit_price")
    sent = 0
    while not stop.is_set():
        preview = await client.post("/order/preview", data=form)
        if preview.status_code == 200 and 'name="nonce"' in preview.text:
            await client.post("/order/submit", data={**{n: _field(preview.text, n) for n in names}, "csrf_token": csrf})
            sent += 1
        await asyncio.sleep(1 / rate_per_s)
    return sent


async def _measure(
    base_url: str, username: str, password: str, pid: int, clients: int, seconds: float,
    valkey_url: str | None, rate_per_s: float,
) -> dict[str, Any]:  # fmt: skip
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        csrf = await _login(client, username, password)
        idle_rss, _ = proc_memory_mib(pid)
        counts = [0] * clients
        connected = [asyncio.Event() for _ in range(clients)]
        readers = [asyncio.create_task(_read(client, counts, i, connected[i])) for i in range(clients)]
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), timeout=10)
        stop = asyncio.Event()
        producer = asyncio.create_task(
            _produce_valkey(valkey_url, rate_per_s, stop)
            if valkey_url
            else _produce_dashboard(client, csrf, rate_per_s, stop)
        )
        peak_rss = idle_rss
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            peak_rss = max(peak_rss, proc_memory_mib(pid)[0])
        stop.set()
        sent = await producer
        await asyncio.sleep(0.5)  # let the last events arrive
        rss, hwm = proc_memory_mib(pid)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return {
        "clients": clients,
        "seconds": seconds,
        "events_sent": sent,
        "events_source": "valkey" if valkey_url else "dashboard",
        "events_received_min": min(counts),
        "events_received_max": max(counts),
        "rss_idle_mib": round(idle_rss, 1),
        "rss_peak_mib": round(max(peak_rss, rss), 1),
        "rss_mib": round(rss, 1),
        "hwm_mib": round(hwm, 1),
    }


def measure_sse_rss(
    base_url: str,
    username: str,
    password: str,
    pid: int,
    clients: int = 10,
    seconds: float = 5,
    *,
    valkey_url: str | None = None,
    rate_per_s: float = 20.0,
) -> dict[str, Any]:
    """Sign in, hold ``clients`` SSE streams for ``seconds`` while events flow, report the memory."""
    return asyncio.run(_measure(base_url, username, password, pid, clients, seconds, valkey_url, rate_per_s))


if __name__ == "__main__":
    url, user, secret, process = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    result = measure_sse_rss(url, user, secret, process, valkey_url=sys.argv[5] if len(sys.argv) > 5 else None)
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
