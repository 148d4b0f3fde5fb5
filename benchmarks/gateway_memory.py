"""The broker gateway's memory over a run: ``python -m benchmarks.gateway_memory``.

Starts the system as ``make bench`` does (``DevSystem`` with the benchmark's environment, its
own free ports and a temporary state folder) and reads the gateway's VmRSS and VmHWM from
/proc/PID/status: once it is up and idle, after 1,000 alerts, and after 10,000 more, both at
200/s with the benchmark's own load generator. Growth between the last two readings is what a
long run would keep; the peak (VmHWM) is what ``make bench`` reports as the gateway's RSS.

``GWMEM_FIRST`` and ``GWMEM_SECOND`` change the two counts, ``GWMEM_RATE`` the rate. Prints
one line per reading and the readings as JSON.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.__main__ import alert_bodies, bench_env, proc_memory, wait_for_orders
from benchmarks.loadgen import paced
from tests.harness.devsystem import DevSystem

FIRST = int(os.environ.get("GWMEM_FIRST", "1000"))
SECOND = int(os.environ.get("GWMEM_SECOND", "10000"))
RATE = float(os.environ.get("GWMEM_RATE", "200"))
SETTLE_S = 3.0  # fills, syncs and the notice feed's traffic of the last orders


def reading(system: DevSystem, label: str, alerts: int, orders: int) -> dict[str, Any]:
    rss, hwm = proc_memory(system.pid_of("brokergateway"))
    row = {"after": label, "alerts": alerts, "orders_at_simulator": orders, "rss_mib": round(rss, 1)}
    row["hwm_mib"] = round(hwm, 1)
    sys.stdout.write(f"{label:<28} alerts {alerts:>6}  orders {orders:>6}  VmRSS {rss:6.1f}  VmHWM {hwm:6.1f} MiB\n")
    sys.stdout.flush()
    return row


def phase(system: DevSystem, count: int, run: str) -> int:
    """``count`` alerts at ``RATE``/s; the number of their orders that reached the simulator."""
    bodies, _ = alert_bodies(system.secret, count, run)
    since = time.time_ns()
    asyncio.run(paced("127.0.0.1", system.webhook_port, "/webhook", bodies, RATE))
    orders = wait_for_orders(system, since, count, 60 + count / RATE)
    time.sleep(SETTLE_S)
    return len(orders)


def main() -> int:
    state = Path(tempfile.mkdtemp(prefix="yquant-gwmem-"))
    system = DevSystem(state, bench_env(), secret="bench-secret")
    system.start()
    try:
        time.sleep(SETTLE_S)
        rows = [reading(system, "start (idle)", 0, 0)]
        done = phase(system, FIRST, "first")
        rows.append(reading(system, f"{FIRST} alerts at {RATE:g}/s", FIRST, done))
        done += phase(system, SECOND, "second")
        rows.append(reading(system, f"{SECOND} more", FIRST + SECOND, done))
    finally:
        system.stop()
    growth = round(rows[-1]["rss_mib"] - rows[-2]["rss_mib"], 1)
    sys.stdout.write(f"VmRSS growth over the last {SECOND} alerts: {growth} MiB\n")
    result = {"command": "python -m benchmarks.gateway_memory", "rate_per_s": RATE, "readings": rows}
    sys.stdout.write(orjson.dumps(result | {"growth_mib": growth}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
