"""``make bench``, the containers part: the production images under their memory limits.

docker-compose.allinone.yml on the local Docker engine (the image built from the real Dockerfile,
the stand-in base images of tests/containers, the KIS simulator as the broker), set up as the
runbook says; then a burst of alerts within the webhook's per-address admission (120 a minute).
Per container: the highest ``docker stats`` reading during the burst (page cache excluded), the
cgroup's peak (page cache included, reclaimed at the limit), the limit, OOM kills, and CPU per
alert from the cgroup's CPU accounting, less what the container uses idle (over the burst until
every order is final; the gateway keeps KIS's pace, so this is not a throughput figure: ``make
bench``'s other phases are).
``BENCH_CONTAINERS=0`` skips it; without an engine that can run here it is skipped and says why.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.containers import helpers, standins
from tests.containers.conftest import Compose, cgroup_memory, docker, env_file
from tests.containers.engine import EngineUnavailable, docker_engine
from yquant import keys

BURST = int(os.environ.get("BENCH_CONTAINER_ALERTS", "100"))
SERVICES = ["valkey", "kissim", "ordermanager", "brokergateway", "webhook", "dashboard"]
WEBHOOK = "http://127.0.0.1:8080"
MIB = 1024 * 1024
IDLE_S = 5.0
TICKERS = ["005930", "000660", "035420", "005380", "051910", "006400", "035720", "068270", "207940", "005490"]
# The burst is many small buys of the same tickers: open the limits that exist to stop that, and
# give the simulator's account the cash, so every alert becomes an order that fills.
OVERRIDE = """services:
  ordermanager:
    environment:
      YQ_RISK__DUPLICATE_WINDOW_S: "0"
      YQ_RISK__MAX_ORDERS_PER_MINUTE: "0"
      YQ_RISK__MAX_ORDER_VALUE__KRW: "1000000000000"
  kissim:
    command: ["python", "-m", "kissim", "--host", "0.0.0.0", "--port", "8900", "--mode", "real", "--always-open",
              "--krw", "1000000000000"]
"""


def cgroup_cpu_ns(container_id: str) -> int:
    """CPU time the container's processes used so far, in ns (cgroup v1 or v2)."""
    v1 = Path("/sys/fs/cgroup/cpuacct/docker") / container_id / "cpuacct.usage"
    if v1.exists():
        return int(v1.read_text())
    v2 = next(Path("/sys/fs/cgroup").glob(f"**/*{container_id}*/cpu.stat"), None)
    if v2 is None:
        raise RuntimeError(f"no CPU cgroup found for {container_id}")
    stat = dict(line.split() for line in v2.read_text().splitlines())
    return int(stat["usage_usec"]) * 1000


def _containers(stack: Compose) -> dict[str, str]:
    """Compose service name -> container id, for the running containers."""
    found = {}
    for container_id in stack("ps", "-q").split():
        info = json.loads(docker("inspect", container_id))[0]
        found[info["Config"]["Labels"]["com.docker.compose.service"]] = info["Id"]
    return found


def _valkey_admin(container_id: str, password: str) -> redis.Redis:
    """Valkey's admin user over the compose network's bridge (no port is published; a
    ``docker exec`` per poll would charge the valkey container CPU that is the benchmark's)."""
    networks = json.loads(docker("inspect", container_id))[0]["NetworkSettings"]["Networks"]
    address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
    return redis.Redis(host=address, port=6379, username="admin", password=password, decode_responses=True)


def _burst(values: dict[str, str], admin: redis.Redis) -> dict[str, Any]:
    """The alerts, then until every order they made is final; what became of them."""
    secret = values["YQ_WEBHOOK_SECRET"]
    with httpx.Client(timeout=30) as client:

        def post(n: int) -> int:
            ticker = TICKERS[n % len(TICKERS)]
            body = helpers.alert(secret, strategy="demo", ticker=ticker, quantity=1 + n // len(TICKERS))
            return client.post(f"{WEBHOOK}/webhook", json=body).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(post, range(BURST)))
        if codes.count(200) != BURST:
            raise RuntimeError(f"the webhook refused alerts: { ({c: codes.count(c) for c in set(codes)}) }")
        deadline = time.monotonic() + 180
        while admin.zcard(keys.ORDERS_INDEX) < BURST or admin.scard(keys.ORDERS_OPEN) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{admin.zcard(keys.ORDERS_INDEX)} orders of {BURST} alerts,"
                    f" {admin.scard(keys.ORDERS_OPEN)} still open after 180 s"
                )
            time.sleep(0.2)
        orders = int(admin.zcard(keys.ORDERS_INDEX))
        return {"alerts": BURST, "orders": orders, "seconds": time.monotonic() - started}


def measure(folder: Path) -> dict[str, Any]:
    images = standins.build_all()
    values = helpers.example_env("allinone.env.example", {"YQ_IMAGE": images.yquant, "VALKEY_IMAGE": images.valkey})
    override = folder / "bench.override.yml"
    override.write_text(OVERRIDE)
    env = env_file(folder / "allinone.env", values)
    stack = Compose("docker-compose.allinone.yml", env, ("simulator",), overrides=(override,))
    try:
        helpers.add_admin(stack, secrets.token_urlsafe(16))
        stack("up", "-d", timeout=300)
        stack.wait_healthy(SERVICES)

        containers = _containers(stack)
        admin = _valkey_admin(containers["valkey"], values["YQ_VALKEY_ADMIN_PASSWORD"])
        # What each container uses idle (heartbeats, health checks), taken off the burst's figure.
        idle_start, idle_before = time.monotonic(), {name: cgroup_cpu_ns(cid) for name, cid in containers.items()}
        time.sleep(IDLE_S)
        idle_s = time.monotonic() - idle_start
        before = {name: cgroup_cpu_ns(cid) for name, cid in containers.items()}
        idle_ns_per_s = {name: (before[name] - idle_before[name]) / idle_s for name in containers}
        with helpers.StatsSampler() as sampler:
            outcome = _burst(values, admin)
        after = {name: cgroup_cpu_ns(cid) for name, cid in containers.items()}
        admin.close()
        names = {json.loads(docker("inspect", cid))[0]["Name"].lstrip("/"): name for name, cid in containers.items()}
        sampled = {names[n]: used for n, used in sampler.highest.items() if n in names}
        figures = {}
        for name, cid in sorted(containers.items()):
            peak, limit, hits, oom_kills = cgroup_memory(cid)
            figures[name] = {
                "docker_stats_mib": round(sampled.get(name, 0) / MIB, 1),
                "cgroup_peak_mib": round(peak / MIB, 1),
                "limit_mib": round(limit / MIB),
                "limit_hits": hits,
                "oom_kills": oom_kills,
                "cpu_ms_per_alert": round(
                    max(0.0, after[name] - before[name] - idle_ns_per_s[name] * outcome["seconds"]) / 1e6 / BURST, 2
                ),
                "idle_cpu_ms_per_s": round(idle_ns_per_s[name] / 1e6, 2),
            }
        return {**outcome, "seconds": round(outcome["seconds"], 1), "containers": figures}
    finally:
        stack.down()


def run_containers() -> dict[str, Any]:
    if os.environ.get("BENCH_CONTAINERS", "1") == "0":
        return {"skipped": "BENCH_CONTAINERS=0"}
    with tempfile.TemporaryDirectory(prefix="yquant-bench-containers-") as folder:
        try:
            with docker_engine(Path(folder) / "dockerd"):
                return measure(Path(folder))
        except EngineUnavailable as exc:
            return {"skipped": f"the containers part {exc}"}


def table_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    if "skipped" in result:
        return [("containers", f"skipped: {result['skipped']}")]
    rows = [
        (
            "containers: alerts -> orders, until all final",
            f"{result['alerts']} -> {result['orders']} in {result['seconds']} s",
        )
    ]
    for name, c in result["containers"].items():
        rows.append(
            (
                f"  {name}: docker stats / cgroup peak / limit (MiB)",
                f"{c['docker_stats_mib']} / {c['cgroup_peak_mib']} / {c['limit_mib']}"
                f", OOM kills {c['oom_kills']}, CPU {c['cpu_ms_per_alert']} ms/alert",
            )
        )
    return rows


if __name__ == "__main__":  # the containers part alone: python -m benchmarks.containers
    import sys

    outcome = run_containers()
    width = max(len(label) for label, _ in table_rows(outcome))
    for label, value in table_rows(outcome):
        sys.stdout.write(f"{label.ljust(width)}  {value}\n")
