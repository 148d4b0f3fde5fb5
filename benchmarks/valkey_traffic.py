"""``python -m benchmarks.valkey_traffic [N] [KEY=VALUE...] [out.json]``: what each process sends to Valkey per alert.

Starts the whole system as ``yquant up`` does (the simulator as the broker, as ``make bench``),
with benchmarks/traffic_probe on PYTHONPATH so that every Python process counts its own requests
(round trips: one per command sent alone, one per pipeline) and commands by name. It then sends N
buy alerts of one share at 5/s, waits until every order is final, and divides what each process
sent meanwhile by N, less what the same process sends in as long a time with no alert (heartbeats,
account syncs, the dashboard's refreshes). Valkey's own INFO commandstats over the run, commands
run inside server functions included, is divided the same way.

It counts commands, not time, so a busy machine does not change its figures. Settings given as
KEY=VALUE after N change make bench's: ``YQ_KIS__RATE_LIMIT_PER_S=18`` paces KIS requests through
Valkey as a real account's limit does (make bench turns pacing off).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.__main__ import alert_bodies, bench_env, command_calls
from benchmarks.loadgen import paced
from tests.harness.devsystem import DevSystem
from yquant import keys

PROBE = Path(__file__).parent / "traffic_probe"
ROOT = Path(__file__).parent.parent
RATE = 5.0

Counts = dict[str, dict[str, Any]]


def snapshot(folder: Path) -> Counts:
    """Each instance's counts so far, summed over its processes (a service's short-lived children,
    such as the gateway's calendar check, inherit its instance name and write their own file)."""
    counts: Counts = {}
    for path in sorted(folder.glob("*.json")):
        label = path.name.split(".")[0]
        data = json.loads(path.read_text())
        total = counts.setdefault(label, {"requests": 0, "commands": {}, "where": {}})
        total["requests"] += data["requests"]
        for part in ("commands", "where"):
            for name, calls in data.get(part, {}).items():
                total[part][name] = total[part].get(name, 0) + calls
    return counts


def delta(before: Counts, after: Counts, part: str = "commands") -> dict[str, collections.Counter[str]]:
    out: dict[str, collections.Counter[str]] = {}
    for label, data in after.items():
        base = before.get(label, {"requests": 0, "commands": {}, "where": {}})
        counter: collections.Counter[str] = collections.Counter()
        if part == "commands":
            counter["(round trips)"] = data["requests"] - base["requests"]
        for name, calls in data.get(part, {}).items():
            counter[name] = calls - base.get(part, {}).get(name, 0)
        out[label] = counter
    return out


def settled(client: redis.Redis, system: DevSystem, since_ns: int, expected: int, timeout_s: float = 120) -> None:
    """Every one of ``expected`` orders reached the simulator and is final in Valkey."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        at_broker = [o for o in system.sim_orders() if int(o.get("received_at_ns", 0)) >= since_ns]
        if len(at_broker) >= expected and client.scard(keys.ORDERS_OPEN) == 0:
            time.sleep(2.0)  # the notices and syncs that follow the last fill
            return
        time.sleep(0.25)
    raise RuntimeError(f"{expected} orders did not settle in {timeout_s:.0f}s")


def per_alert(run: collections.Counter[str], idle: collections.Counter[str], scale: float, n: int) -> dict[str, float]:
    values = {name: (run[name] - idle.get(name, 0) * scale) / n for name in run}
    return {name: round(v, 2) for name, v in sorted(values.items(), key=lambda kv: -kv[1]) if abs(v) >= 0.005}


def measure(n: int, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="yquant-traffic-"))
    traffic = state / "traffic"
    path = os.pathsep.join([str(PROBE), str(ROOT), os.environ.get("PYTHONPATH", "")])
    probe = {
        "YQ_TRAFFIC_DIR": str(traffic),
        "YQ_TRAFFIC_WHERE": os.environ.get("YQ_TRAFFIC_WHERE", ""),
        "PYTHONPATH": path,
    }
    system = DevSystem(state, bench_env(probe | (extra_env or {})), secret="bench-secret")
    system.start()
    client = redis.Redis.from_url(system.valkey_url)
    try:
        warm, _ = alert_bodies(system.secret, 10, "traffic-warm")
        since = time.time_ns()
        asyncio.run(paced("127.0.0.1", system.webhook_port, "/webhook", warm, RATE))
        settled(client, system, since, len(warm))

        bodies, _ = alert_bodies(system.secret, n, "traffic")
        before, server_before, started = snapshot(traffic), command_calls(system.valkey_url), time.monotonic()
        since = time.time_ns()
        asyncio.run(paced("127.0.0.1", system.webhook_port, "/webhook", bodies, RATE))
        settled(client, system, since, len(bodies))
        after, server_after, run_s = snapshot(traffic), command_calls(system.valkey_url), time.monotonic() - started

        idle_before, idle_server_before, idle_started = (
            snapshot(traffic),
            command_calls(system.valkey_url),
            time.monotonic(),
        )
        time.sleep(run_s)
        idle_after, idle_server_after = snapshot(traffic), command_calls(system.valkey_url)
        idle_s = time.monotonic() - idle_started
    finally:
        client.close()
        system.stop()

    run, idle = delta(before, after), delta(idle_before, idle_after)
    scale = run_s / idle_s
    processes = {
        label: per_alert(run[label], idle.get(label, collections.Counter()), scale, n)
        for label in sorted(run)
        if sum(run[label].values())
    }
    run_where, idle_where = delta(before, after, "where"), delta(idle_before, idle_after, "where")
    where = {
        label: per_alert(run_where[label], idle_where.get(label, collections.Counter()), scale, n)
        for label in sorted(run_where)
        if sum(run_where[label].values())
    }
    server_run = collections.Counter({k: v - server_before.get(k, 0) for k, v in server_after.items()})
    server_idle = collections.Counter({k: v - idle_server_before.get(k, 0) for k, v in idle_server_after.items()})
    server_run.pop("info", None)
    server_idle.pop("info", None)
    server = per_alert(server_run, server_idle, scale, n)
    return {
        "command": " ".join(
            ["python -m benchmarks.valkey_traffic", str(n), *[f"{k}={v}" for k, v in (extra_env or {}).items()]]
        ),
        "alerts": n,
        "rate_per_s": RATE,
        "run_s": round(run_s, 1),
        "processes": processes,
        "where": where,
        "valkey_commandstats_per_alert": server,
        "valkey_commands_per_alert_total": round(sum(server.values()), 1),
    }


def report(result: dict[str, Any]) -> str:
    lines = [f"{result['command']}: per alert, less the same time idle ({result['run_s']}s of run)"]
    for label, counts in result["processes"].items():
        sent = sum(v for k, v in counts.items() if k != "(round trips)")
        lines.append(f"{label}: {counts.get('(round trips)', 0)} round trips, {round(sent, 2)} commands")
        lines += [f"    {name} {calls}" for name, calls in counts.items() if name != "(round trips)"]
    for label, counts in result["where"].items():
        lines.append(f"{label}, by caller (YQ_TRAFFIC_WHERE=1):")
        lines += [f"    {name} {calls}" for name, calls in counts.items()]
    lines.append(f"valkey commandstats: {result['valkey_commands_per_alert_total']} commands")
    lines += [f"    {name} {calls}" for name, calls in result["valkey_commandstats_per_alert"].items()]
    return "\n".join(lines)


def main() -> int:
    """Arguments: the number of alerts (50), then KEY=VALUE settings over make bench's (e.g.
    YQ_KIS__RATE_LIMIT_PER_S=18 for KIS's pacing, shared through Valkey), then a JSON file to write."""
    arguments = sys.argv[1:]
    n = int(arguments.pop(0)) if arguments and arguments[0].isdigit() else 50
    extra = dict(a.split("=", 1) for a in arguments if "=" in a)
    outputs = [a for a in arguments if "=" not in a]
    result = measure(n, extra)
    sys.stdout.write(report(result) + "\n")
    for output in outputs:
        Path(output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
