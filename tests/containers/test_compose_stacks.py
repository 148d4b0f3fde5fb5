"""Each VM's compose stack in real containers (testcontainers + a Docker engine).

Builds the image, starts the KIS simulator, then VM1 (Valkey, functions, order manager, gateway),
VM2 (dashboard) and VM3 (webhook; Caddy is left out: no public DNS name for ACME) from their own
compose files on one Docker host, the "private addresses" being the host's docker0 address. An
alert posted to the webhook must end as a filled order. Where no Docker engine runs (this
development machine and its CI) the module is skipped and says why; it was not run there.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = "yquant:containers-test"
pytestmark = pytest.mark.slow


def docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command"
    try:
        probe = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer in 15 s"
    if probe.returncode != 0:
        return f"no Docker engine reachable ({probe.stderr.strip()[:160]})"
    return None


REASON = docker_unavailable()
if REASON:
    pytest.skip(f"container tests need a Docker engine: {REASON}", allow_module_level=True)


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


@dataclass
class Stacks:
    host_ip: str
    webhook_secret: str
    admin_password: str


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    from testcontainers.core.container import DockerContainer

    docker("build", "-t", IMAGE, ".")
    host_ip = json.loads(docker("network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    workdir = tmp_path_factory.mktemp("containers")
    passwords = {
        f"YQ_VALKEY_{n}_PASSWORD": secrets.token_urlsafe(24)
        for n in ("HEALTHCHECK", "ADMIN", "WEBHOOK", "ORDERMANAGER", "BROKERGATEWAY", "DASHBOARD")
    }
    webhook_secret = secrets.token_urlsafe(24)
    account = {"cano": "50000001", "app_key": "PScontainers" + "0" * 22 + "yq", "app_secret": "c" * 180, "env": "real"}
    common = {
        "YQ_IMAGE": IMAGE,
        "VM1_PRIVATE_IP": host_ip,
        "VM2_PRIVATE_IP": host_ip,
        "VM3_PRIVATE_IP": host_ip,
        "YQ_ACCOUNTS": json.dumps({"main": account}),
        "YQ_STRATEGIES": json.dumps({"trend": {"accounts": ["main"]}}),
        "YQ_KIS__REST_URL": "http://kissim:8900",
        "YQ_KIS__WS_URL": "ws://kissim:8900/tryitout",
        "YQ_ORDERMANAGER__ALWAYS_OPEN": "true",
        "YQ_WEBHOOK_SECRET": webhook_secret,
        "YQ_WEBHOOK_ALLOWLIST_ENABLED": "false",
        "YQ_DASHBOARD_SESSION_SECRET": secrets.token_urlsafe(32),
        "YQ_DASHBOARD_PROXY": host_ip,
        "YQ_WEBHOOK_HOST_IP": host_ip,
        "YQ_GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "YQ_WEBHOOK_DOMAIN": "hook.example.com",
        "YQ_DASHBOARD_DOMAIN": "dash.example.com",
        "YQ_ACME_EMAIL": "ops@example.com",
        "COMPOSE_PROFILES": "",
        **passwords,
    }
    env_files = {}
    for vm, subnet in (("vm1", "172.30.11.0/24"), ("vm2", "172.30.12.0/24"), ("vm3", "172.30.13.0/24")):
        env_files[vm] = workdir / f"{vm}.env"
        env_files[vm].write_text("".join(f"{k}={v}\n" for k, v in {**common, "YQ_EDGE_SUBNET": subnet}.items()))

    def compose(vm: str, *args: str) -> str:
        return docker("compose", "-f", f"docker-compose.{vm}.yml", "--env-file", str(env_files[vm]), *args)

    simulator = DockerContainer(IMAGE).with_command(
        "python -m kissim --host 0.0.0.0 --port 8900 --mode real --always-open"
    )
    started: list[str] = []
    with simulator:
        try:
            compose("vm1", "up", "-d", "--wait", "valkey", "valkey-functions")
            started.append("vm1")
            # KIS stands on VM1's network under the name the gateway is given.
            docker(
                "network", "connect", "--alias", "kissim", "yquant-vm1_backend", simulator.get_wrapped_container().id
            )
            compose("vm1", "up", "-d", "--wait")
            compose("vm2", "up", "-d", "--wait", "dashboard")
            started.append("vm2")
            compose("vm3", "up", "-d", "--wait", "webhook")
            started.append("vm3")
            yield Stacks(host_ip, webhook_secret, passwords["YQ_VALKEY_ADMIN_PASSWORD"])
        finally:
            for vm in reversed(started):
                compose(vm, "down", "-v")


def test_alert_when_posted_to_the_webhook_stack_then_the_order_fills(stacks: Stacks) -> None:
    import httpx
    from redis import Redis

    body = {"secret": stacks.webhook_secret, "strategy": "trend", "ticker": "005930", "exchange": "KRX"}
    answer = httpx.post(
        f"http://{stacks.host_ip}:8080/webhook", json={**body, "action": "buy", "quantity": 1, "id": uuid.uuid4().hex}
    )
    assert answer.status_code == 200, answer.text
    signal_id = answer.json()["signal_id"]
    admin = Redis(host=stacks.host_ip, port=6379, username="admin", password=stacks.admin_password, driver_info=None)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            orders = admin.hget(f"yq:signal:{signal_id}", "orders")
            if orders:
                state = admin.hget(f"yq:order:{json.loads(orders)[0]}", "state")
                if state == b"FILLED":
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"signal {signal_id} not filled in 60 s: {admin.hgetall(f'yq:signal:{signal_id}')}")
    finally:
        admin.close()
    assert httpx.get(f"http://{stacks.host_ip}:8000/healthz").status_code == 200
