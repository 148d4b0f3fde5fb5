"""``make bench``: start the system as ``yquant up`` does and measure it.

* paced: alerts at 100/s; end-to-end = POST sent -> order received by the simulator
  (the simulator stamps its receive time), and the webhook's own response time;
* max rate: alerts as fast as the webhook answers; throughput = alerts whose order
  reached the simulator per second;
* memory: each process's VmRSS and peak VmHWM from /proc;
* a stalled notifier: both paced phases again on a second system whose notifier's only
  destination never answers (benchmarks/stalled.py; ``BENCH_STALLED=0`` skips it);
* the dashboard's RSS with 10 concurrent live (SSE) clients, when that probe exists;
* containers: the all-in-one compose file on the local Docker engine, each container's peak
  memory against its limit and its CPU per alert during a burst (benchmarks/containers.py;
  ``BENCH_CONTAINERS=0`` skips it).

Writes benchmarks/results/latest.json and prints a table.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from benchmarks.containers import run_containers, table_rows
from benchmarks.floor import start_floor, wait_count
from benchmarks.loadgen import Result, flood, paced
from benchmarks.stalled import with_stalled_notifier
from tests.harness.devsystem import DevSystem
from yquant import keys

RESULTS = Path(__file__).parent / "results"
TICKERS = [
    "005930", "000660", "035420", "005380", "051910", "006400", "035720", "068270", "207940", "005490",
    "028260", "105560", "055550", "012330", "066570", "003550", "017670", "034730", "015760", "032830",
]  # fmt: skip
PACED_RATE = 100.0
PACED_COUNT = int(os.environ.get("BENCH_PACED_COUNT", "1000"))
GENTLE_RATE = 20.0  # about KIS's real-account limit (18 requests/s): the rate a trader can reach
GENTLE_COUNT = int(os.environ.get("BENCH_GENTLE_COUNT", "200"))
FLOOD_COUNT = int(os.environ.get("BENCH_FLOOD_COUNT", "1500"))
FLOOD_CONCURRENCY = 32


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def alert_bodies(secret: str, count: int, run: str) -> tuple[list[bytes], list[tuple[str, int]]]:
    """Each alert's (ticker, quantity) is unique within a phase so its order can be found."""
    bodies, keys = [], []
    for index in range(count):
        ticker = TICKERS[index % len(TICKERS)]
        quantity = 1 + index // len(TICKERS)
        keys.append((ticker, quantity))
        bodies.append(
            orjson.dumps(
                {
                    "secret": secret,
                    "strategy": "demo",
                    "ticker": ticker,
                    "exchange": "KRX",
                    "action": "buy",
                    "quantity": quantity,
                    "id": f"{run}-{index}",
                }
            )
        )
    return bodies, keys


def proc_memory(pid: int) -> tuple[float, float]:
    rss = hwm = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU time of each process, from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / tick
    return used


def command_stats(valkey_url: str) -> dict[str, tuple[int, int]]:
    """(calls, microseconds) per command from Valkey's INFO commandstats. Commands run inside
    server functions count under their own name too, and their time is also in the FCALL's."""
    client = redis.Redis.from_url(valkey_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"])) for name, value in stats.items()}


def command_calls(valkey_url: str) -> dict[str, int]:
    """Calls per command from Valkey's INFO commandstats (commands run inside functions included)."""
    return {name: calls for name, (calls, _) in command_stats(valkey_url).items()}


class UnsettledSampler:
    """What a signal's account read carries, sampled every quarter second while it runs: the orders
    in the account's ``keys.unsettled_orders`` (every order the last sync does not reflect yet, read
    whole by each signal) and their bytes. Its reads cost Valkey a few microseconds per alert."""

    def __init__(self, valkey_url: str, account: str = "main") -> None:
        self.client = redis.Redis.from_url(valkey_url)
        self.key = keys.unsettled_orders(account)
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            values = self.client.hvals(self.key)
            self.samples.append((len(values), sum(len(v) for v in values)))

    def __enter__(self) -> UnsettledSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()

    def summary(self) -> dict[str, Any]:
        counts = [count for count, _ in self.samples]
        sizes = [size for _, size in self.samples]
        return {
            "samples": len(self.samples),
            "orders_median": statistics.median(counts) if counts else None,
            "orders_max": max(counts, default=None),
            "kib_median": round(statistics.median(sizes) / 1024, 1) if sizes else None,
            "kib_max": round(max(sizes) / 1024, 1) if sizes else None,
        }


def wait_for_orders(system: DevSystem, since_ns: int, expected: int, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    orders: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = httpx.get(f"{system.kissim_url}/admin/orders", params={"since_ns": since_ns}, timeout=30)
        data = response.json()
        orders = data["orders"] if isinstance(data, dict) else data
        if len(orders) >= expected:
            break
        time.sleep(0.25)
    return orders


def e2e_latencies(results: list[Result], keys: list[tuple[str, int]], orders: list[dict[str, Any]]) -> list[float]:
    received = {(o["ticker"], int(o["quantity"])): int(o["received_at_ns"]) for o in orders}
    latencies = []
    for result in results:
        stamp = received.get(keys[result.index])
        if stamp is not None:
            latencies.append((stamp - result.sent_ns) / 1e6)
    return latencies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_floor(system: DevSystem, state: Path) -> dict[str, Any]:
    """The floor pipeline at 100/s on the same Valkey: CPU per alert of each of its stages."""
    ingress_port, sink_port = free_port(), free_port()
    counter = str(state / "floor-count")
    procs = start_floor(system.valkey_url, ingress_port, sink_port, counter)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", ingress_port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        warm, _ = alert_bodies(system.secret, 50, "floor-warm")
        asyncio.run(flood("127.0.0.1", ingress_port, "/webhook", warm, 4))
        wait_count(counter, len(warm), 20)
        bodies, _ = alert_bodies(system.secret, PACED_COUNT, "floor")
        pids = {name: proc.pid for name, proc in procs.items()} | {"valkey": system.pids()["valkey"]}
        before = cpu_seconds(pids)
        asyncio.run(paced("127.0.0.1", ingress_port, "/webhook", bodies, PACED_RATE))
        delivered = wait_count(counter, len(warm) + len(bodies), 30) - len(warm)
        time.sleep(1.0)
        after = cpu_seconds(pids)
        return {
            "delivered": delivered,
            "cpu_ms_per_alert": {
                name: round((after[name] - before[name]) * 1000 / len(bodies), 3) for name in before if name in after
            },
        }
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(10)


def paced_phase(
    system: DevSystem, count: int, rate: float, run: str
) -> tuple[list[Result], list[dict[str, Any]], list[float]]:
    """``count`` alerts at ``rate``/s: the webhook's answers, the orders they became, e2e in ms."""
    bodies, keys = alert_bodies(system.secret, count, run)
    since = time.time_ns()
    results = asyncio.run(paced("127.0.0.1", system.webhook_port, "/webhook", bodies, rate))
    orders = wait_for_orders(system, since, len(bodies), 30)
    return results, orders, e2e_latencies(results, keys, orders)


def latency(e2e: list[float], sent: int, rate: float) -> dict[str, Any]:
    return {
        "rate_per_s": rate,
        "count": len(e2e),
        "sent": sent,
        "p50": round(percentile(e2e, 50), 2),
        "p99": round(percentile(e2e, 99), 2),
        "max": round(max(e2e, default=float("nan")), 2),
    }


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "YQ_KISSIM_ARGS": "--no-rate-limit --krw 1000000000000",
        "YQ_KIS__RATE_LIMIT_PER_S": "0",
        "YQ_WEBHOOK__RATE_LIMIT_PER_MIN": "0",
        "YQ_LOG_LEVEL": "WARNING",
        # The load is many small buys of the same tickers: open the limits that exist to stop that.
        "YQ_RISK__MAX_ORDERS_PER_MINUTE": "0",
        "YQ_RISK__DUPLICATE_WINDOW_S": "0",
        "YQ_RISK__MAX_ORDER_VALUE__KRW": "1000000000000",
        # Durable acknowledgements (WAITAOF) are on by default; `YQ_WEBHOOK__DURABLE_ACK=false
        # make bench` measures what they cost.
        "YQ_WEBHOOK__DURABLE_ACK": os.environ.get("YQ_WEBHOOK__DURABLE_ACK", "true"),
    }
    return env | (extra or {})


def started_system(extra_env: dict[str, str] | None = None) -> tuple[DevSystem, Path]:
    state = Path(tempfile.mkdtemp(prefix="yquant-bench-"))
    system = DevSystem(state, bench_env(extra_env), secret="bench-secret")
    system.start()
    warm, _ = alert_bodies(system.secret, 50, "warm")
    asyncio.run(flood("127.0.0.1", system.webhook_port, "/webhook", warm, 4))
    time.sleep(1.0)
    return system, state


def run_latencies(extra_env: dict[str, str]) -> dict[str, Any]:
    """The 20/s and 100/s phases alone, on a fresh system started with ``extra_env``."""
    system, _ = started_system(extra_env)
    try:
        gentle_results, _, gentle_e2e = paced_phase(system, GENTLE_COUNT, GENTLE_RATE, "gentle")
        time.sleep(1.0)
        paced_results, _, paced_e2e = paced_phase(system, PACED_COUNT, PACED_RATE, "paced")
        processes = sorted(system.pids())
    finally:
        system.stop()
    return {
        "e2e_ms_at_20_per_s": latency(gentle_e2e, len(gentle_results), GENTLE_RATE),
        "e2e_ms": latency(paced_e2e, len(paced_results), PACED_RATE),
        "processes": processes,
    }


def run() -> dict[str, Any]:
    started = time.monotonic()
    system, state = started_system()
    try:
        host, port = "127.0.0.1", system.webhook_port
        gentle_results, _, gentle_e2e = paced_phase(system, GENTLE_COUNT, GENTLE_RATE, "gentle")
        time.sleep(1.0)

        cpu_before = cpu_seconds(system.pids())
        stats_before = command_stats(system.valkey_url)
        with UnsettledSampler(system.valkey_url) as unsettled:
            paced_results, _, paced_e2e = paced_phase(system, PACED_COUNT, PACED_RATE, "paced")
        time.sleep(1.0)  # fills and syncs of the last orders
        cpu_after = cpu_seconds(system.pids())
        stats_after = command_stats(system.valkey_url)
        before = {name: stats_before.get(name, (0, 0)) for name in stats_after}
        deltas = {name: calls - before[name][0] for name, (calls, _) in stats_after.items()}
        # Valkey's own time in each command (an FCALL's includes the commands it runs), per alert:
        # where its CPU goes, beside the reading and writing of sockets that no command counts.
        usec = {name: spent - before[name][1] for name, (_, spent) in stats_after.items()}
        usec_per_alert = {
            name: round(spent / len(paced_results), 1)
            for name, spent in sorted(usec.items(), key=lambda item: -item[1])
            if spent > 0
        }
        calls_per_alert = {
            name: round(delta / len(paced_results), 2)
            for name, delta in sorted(deltas.items(), key=lambda item: -item[1])
            if delta > 0
        }
        cpu_ms_per_alert = {
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / len(paced_results), 2)
            for name in cpu_before
            if name in cpu_after
        }

        time.sleep(1.0)
        flood_bodies, _ = alert_bodies(system.secret, FLOOD_COUNT, "flood")
        flood_since = time.time_ns()
        flood_results = asyncio.run(flood(host, port, "/webhook", flood_bodies, FLOOD_CONCURRENCY))
        flood_orders = wait_for_orders(system, flood_since, len(flood_bodies), 60)
        last_ns = max((int(o["received_at_ns"]) for o in flood_orders), default=flood_since)
        flood_span_s = (last_ns - flood_since) / 1e9
        webhook_span_s = (max(r.sent_ns for r in flood_results) - flood_since) / 1e9

        floor = run_floor(system, state)

        dashboard: dict[str, Any] | None = None
        try:
            from benchmarks.dashboard_sse import measure_sse_rss  # type: ignore[import-not-found,unused-ignore]

            password_file = state / "admin-password"
            password = password_file.read_text().strip() if password_file.exists() else ""
            dashboard = measure_sse_rss(
                system.dashboard_url, "admin", password, system.pid_of("dashboard"), valkey_url=system.valkey_url
            )
        except ImportError:
            dashboard = None

        memory = {}
        for name, pid in system.pids().items():
            rss, hwm = proc_memory(pid)
            memory[name] = {"rss_mib": round(rss, 1), "hwm_mib": round(hwm, 1)}
    finally:
        system.stop()

    webhook_ms = [r.elapsed_s * 1000 for r in paced_results + gentle_results]
    statuses = {str(r.status) for r in paced_results + flood_results}
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "command": "make bench",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "e2e_ms": latency(paced_e2e, len(paced_results), PACED_RATE),
        "e2e_ms_at_20_per_s": latency(gentle_e2e, len(gentle_results), GENTLE_RATE),
        "webhook_ms": {
            "p50": round(percentile(webhook_ms, 50), 3),
            "p99": round(percentile(webhook_ms, 99), 3),
            "mean": round(statistics.fmean(webhook_ms), 3) if webhook_ms else None,
        },
        "max_alerts_per_s": round(len(flood_orders) / flood_span_s, 1) if flood_span_s > 0 else None,
        "max_rate_detail": {
            "alerts": len(flood_results),
            "orders_at_simulator": len(flood_orders),
            "seconds_to_last_order": round(flood_span_s, 2),
            "webhook_accept_per_s": round(len(flood_results) / webhook_span_s, 1) if webhook_span_s > 0 else None,
            "concurrency": FLOOD_CONCURRENCY,
        },
        "http_statuses": sorted(statuses),
        "cpu_ms_per_alert_at_100_per_s": cpu_ms_per_alert,
        "valkey_calls_per_alert_at_100_per_s": calls_per_alert,
        "valkey_calls_per_alert_total": round(sum(calls_per_alert.values()), 1),
        "valkey_usec_per_alert_at_100_per_s": usec_per_alert,
        "unsettled_orders_at_100_per_s": unsettled.summary(),
        "floor": floor,
        "cpu_ratio_to_floor": {
            name: round(cpu / floor["cpu_ms_per_alert"][name], 2)
            for name, cpu in cpu_ms_per_alert.items()
            if floor["cpu_ms_per_alert"].get(name)
        },
        "rss_mib": {name: m["hwm_mib"] for name, m in memory.items()},
        "memory_detail": memory,
        "dashboard_sse": dashboard,
        "duration_s": round(time.monotonic() - started, 1),
    }


def table(result: dict[str, Any]) -> str:
    rows = [
        ("e2e p50 / p99 at 100/s (ms)", f"{result['e2e_ms']['p50']} / {result['e2e_ms']['p99']}"),
        (
            "e2e p50 / p99 at 20/s (ms)",
            f"{result['e2e_ms_at_20_per_s']['p50']} / {result['e2e_ms_at_20_per_s']['p99']}",
        ),
        ("webhook p50 / p99 (ms)", f"{result['webhook_ms']['p50']} / {result['webhook_ms']['p99']}"),
        ("max alerts/s end to end", str(result["max_alerts_per_s"])),
    ]
    for name, hwm in sorted(result["rss_mib"].items()):
        rows.append((f"peak RSS {name} (MiB)", str(hwm)))
    for name, cpu in sorted(result["cpu_ms_per_alert_at_100_per_s"].items()):
        rows.append((f"CPU per alert {name} (ms)", str(cpu)))
    for name, cpu in sorted(result["floor"]["cpu_ms_per_alert"].items()):
        rows.append((f"floor CPU per alert {name} (ms)", str(cpu)))
    for name, ratio in sorted(result["cpu_ratio_to_floor"].items()):
        rows.append((f"CPU ratio to floor {name}", f"{ratio}x"))
    rows.append(("Valkey commands per alert", str(result["valkey_calls_per_alert_total"])))
    for name, calls in result["valkey_calls_per_alert_at_100_per_s"].items():
        rows.append((f"  Valkey {name} per alert", str(calls)))
    for name, usec in list(result.get("valkey_usec_per_alert_at_100_per_s", {}).items())[:8]:
        rows.append((f"  Valkey time in {name} per alert (us)", str(usec)))
    unsettled = result.get("unsettled_orders_at_100_per_s")
    if unsettled:
        rows.append(
            (
                "unsettled orders each signal reads, median / max",
                f"{unsettled['orders_median']} / {unsettled['orders_max']} "
                f"({unsettled['kib_median']} / {unsettled['kib_max']} KiB)",
            )
        )
    if result.get("dashboard_sse"):
        rows.append(("dashboard RSS, 10 SSE clients (MiB)", str(result["dashboard_sse"].get("hwm_mib"))))
    stalled = result.get("stalled_notifier")
    if stalled:
        for label, key in (("20/s", "e2e_ms_at_20_per_s"), ("100/s", "e2e_ms")):
            rows.append(
                (
                    f"e2e p50 / p99 at {label}, notifier stalled (ms)",
                    f"{stalled[key]['p50']} / {stalled[key]['p99']}",
                )
            )
        rows.append(("  connections the stalled destination took", str(stalled["destination_connections"])))
    if result.get("containers"):
        rows += table_rows(result["containers"])
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def main() -> int:
    result = run()
    if os.environ.get("BENCH_STALLED", "1") != "0":
        result["stalled_notifier"] = with_stalled_notifier(run_latencies)
    result["containers"] = run_containers()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.write(table(result) + "\n")
    sys.stdout.write(f"written to {RESULTS / 'latest.json'} in {result['duration_s']}s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
