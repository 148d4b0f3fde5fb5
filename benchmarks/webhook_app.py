"""The webhook process alone: CPU per alert and RSS, for one or more source trees side by side.

    .venv/bin/python -m benchmarks.webhook_app TREE [TREE ...] [--alerts N] [--rounds R]

Each round starts, for each tree in turn, a real Valkey and ``python -m webhook`` from that tree,
warms it with 300 alerts, then sends N more (4 connections, as fast as it answers) and reads the
process's CPU time and memory from /proc. Rounds alternate the trees so a machine that speeds up
or slows down mid-run does not favour one. Used to weigh framework choices (ADR 0011).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.loadgen import flood
from yquant.embedded import EmbeddedValkey

SECRET = "bench-secret-0123456789"


def bodies(count: int, run: str) -> list[bytes]:
    alert = {"secret": SECRET, "strategy": "demo", "ticker": "005930", "exchange": "KRX", "action": "buy"}
    return [orjson.dumps(alert | {"quantity": 1, "id": f"{run}-{index}"}) for index in range(count)]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def measure(tree: Path, alerts: int) -> tuple[float, float]:
    """(ms of CPU per alert, peak RSS in MiB) of one webhook process from ``tree``."""
    state = Path(tempfile.mkdtemp(prefix="yquant-webhook-bench-"))
    valkey = EmbeddedValkey(state / "valkey")
    valkey.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = os.environ | {
        "PYTHONPATH": str(tree),
        "YQ_VALKEY__URL": valkey.url,
        "YQ_WEBHOOK__SECRET": SECRET,
        "YQ_WEBHOOK__PORT": str(port),
        "YQ_WEBHOOK__RATE_LIMIT_PER_MIN": "0",
        "YQ_LOG_LEVEL": "WARNING",
        "YQ_STATE_DIR": str(state),
    }
    process = subprocess.Popen([sys.executable, "-m", "webhook"], env=env, cwd=tree)
    try:
        wait_listening(port)
        asyncio.run(flood("127.0.0.1", port, "/webhook", bodies(300, "warm"), 4))
        before = cpu_s(process.pid)
        results = asyncio.run(flood("127.0.0.1", port, "/webhook", bodies(alerts, "run"), 4))
        used = cpu_s(process.pid) - before
        if {result.status for result in results} != {200}:
            raise SystemExit(f"{tree}: answers {sorted({r.status for r in results})}, expected only 200")
        return used * 1000 / alerts, rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(10)
        valkey.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--alerts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            runs[tree].append(measure(tree.resolve(), args.alerts))
    for tree, values in runs.items():
        cpu = [value[0] for value in values]
        rss = [value[1] for value in values]
        sys.stdout.write(
            f"{tree}: CPU per alert median {statistics.median(cpu):.3f} ms [{min(cpu):.3f}-{max(cpu):.3f}], "
            f"peak RSS median {statistics.median(rss):.1f} MiB [{min(rss):.1f}-{max(rss):.1f}]\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
