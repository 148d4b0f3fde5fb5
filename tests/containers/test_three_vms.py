"""The three-VM layout on a real engine: docker-compose.vm1.yml, vm2 and vm3, each its own project.

The VMs' private network (the VCN) is one Docker network the three projects share
(``PRIVATE_NETWORK``). Each VM's env file is its deploy/vmN.env.example with every CHANGE_ME
replaced, the service passwords the same on every VM, as the runbook says. Where a VM *publishes*
a port (on its own private address, never 0.0.0.0) the host's address on that network stands in
for the VM's address; where another VM *connects* to it, it uses the fixed address the service's
container has on that network (VM1's Valkey ``.11``, VM2's dashboard ``.12``, VM3's Caddy ``.13``,
so that the dashboard sees Caddy come from VM3's address). Override files written by the test
attach those services to the network; the shipped files are used as they are. The KIS simulator
plays the broker from VM1's backend network (where KIS is reached from), and VM2's and VM3's edge
networks get subnets of their own (one engine cannot hold two networks with the same one).

From outside (this host, to Caddy's 443, TLS from Caddy's internal CA for hook.yquant.test and
dash.yquant.test): an alert ends FILLED at the simulator, a wrong secret gets 401, the first admin
signs in to the dashboard, /metrics answers on the private network only, and a burst of alerts
keeps every container under its memory limit (figures printed with `-s`). This host talks to Caddy
at its address on the private network, so that Caddy sees this host's own address there, as an
internet client keeps its own through VM3's DNAT; the webhook's source allowlist is on and names
TradingView's addresses and this host's. A post straight to the webhook's published port with a
forged X-Forwarded-For naming a TradingView address is refused: that connection arrives from the
edge network's gateway, and only Caddy's fixed address is believed.
"""

from __future__ import annotations

import json
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers import helpers
from tests.containers.conftest import Cleanup, Compose, docker, env_file
from tests.containers.standins import Images
from yquant import keys
from yquant.settings import WebhookSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# Docker's DNS answers a name from the container's networks in the order of their names: this one
# sorts after the projects' edge networks (yquant-vm2_edge, yquant-vm3_edge), so that Caddy reaches
# `webhook` over VM3's edge network, as on a VM3 that has no other network, and the webhook
# believes X-Forwarded-For from there.
PRIVATE_NETWORK = "yquant-vpc"
PRIVATE_SUBNET = "10.250.0.0/24"
HOST_ADDRESS = "10.250.0.1"  # the bridge's gateway: this host on the private network
ADDRESS = {"vm1": "10.250.0.11", "vm2": "10.250.0.12", "vm3": "10.250.0.13"}
DYNAMIC_RANGE = "10.250.0.128/25"  # other containers on the network: never one of the fixed addresses
EDGE_SUBNET = {"vm2": "172.30.2.0/24", "vm3": "172.30.3.0/24"}
EDGE_RANGE = {"vm2": "172.30.2.128/25", "vm3": "172.30.3.128/25"}
HOOK = "hook.yquant.test"
DASH = "dash.yquant.test"
EDGE = f"https://{ADDRESS['vm3']}:443"  # Caddy, where it sees this host's own address
TRADINGVIEW = WebhookSettings().allowed_ips
CADDY_IP = {"vm2": "172.30.2.2", "vm3": "172.30.3.2"}
STRATEGIES = {"trend": {"accounts": ["main"], "sizing": "alert", "order_type": "market"}}
ACCOUNTS = {
    "main": {
        "cano": "50000001",
        "product_code": "01",
        "app_key": "PSthreevms" + "0" * 24 + "yq",  # 36 characters like a KIS app key
        "app_secret": "threevms-" + "0" * 171,
        "env": "real",
        "hts_id": "yquantvms",
    }
}
SERVICES = {
    "vm1": ["valkey", "kissim", "ordermanager", "brokergateway"],
    "vm2": ["dashboard", "notifier"],
    "vm3": ["webhook", "caddy"],
}
# The webhook admits 120 alerts a minute per source address, and every alert here comes from this host.
BURST = 50
CADDY_ROOT = "/data/caddy/pki/authorities/local/root.crt"


def private(address: str | None = None) -> dict[str, Any]:
    return {"private": {"ipv4_address": address} if address else {}}


def external() -> dict[str, Any]:
    return {"private": {"external": True, "name": PRIVATE_NETWORK}}


def kissim_service() -> dict[str, Any]:
    """The simulator as docker-compose.allinone.yml runs it, on VM1's backend network."""
    return {
        "image": "${YQ_IMAGE:?}",
        "init": True,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "tmpfs": ["/tmp:size=16m,mode=1777"],
        "command": ["python", "-m", "kissim", "--host", "0.0.0.0", "--port", "8900", "--mode", "real", "--always-open"],
        "environment": {"YQ_LOG_LEVEL": "${YQ_LOG_LEVEL:-INFO}"},
        "networks": ["backend"],
        "healthcheck": {
            "test": [
                "CMD", "python", "-c",
                "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8900/healthz', timeout=2)",
            ],
            "interval": "15s",
            "timeout": "3s",
            "retries": 3,
            "start_period": "15s",
        },
        "deploy": {"resources": {"limits": {"memory": "80M", "cpus": "0.50"}}},
    }  # fmt: skip


OVERRIDES: dict[str, dict[str, Any]] = {
    "vm1": {
        "services": {"valkey": {"networks": private(ADDRESS["vm1"])}, "kissim": kissim_service()},
        "networks": external(),
    },
    "vm2": {
        "services": {"dashboard": {"networks": private(ADDRESS["vm2"])}, "notifier": {"networks": private()}},
        "networks": external(),
    },
    "vm3": {
        "services": {
            "caddy": {"networks": private(ADDRESS["vm3"])},
            "webhook": {
                "networks": private(),
                # TradingView's addresses and this host, which plays TradingView through Caddy.
                "environment": {"YQ_WEBHOOK__ALLOWED_IPS": json.dumps([*TRADINGVIEW, HOST_ADDRESS])},
            },
        },
        "networks": external(),
    },
}


@dataclass
class ThreeVMs:
    vm1: Compose
    vm2: Compose
    vm3: Compose
    env: dict[str, dict[str, str]]
    admin_password: str
    caddy_root: Path

    @property
    def stacks(self) -> list[Compose]:
        return [self.vm1, self.vm2, self.vm3]

    def hget(self, key: str, field: str) -> str | None:
        value = helpers.valkey_admin(self.vm1, self.env["vm1"]["YQ_VALKEY_ADMIN_PASSWORD"], "HGET", key, field)
        return value or None

    def xlen(self, stream: str) -> int:
        return int(helpers.valkey_admin(self.vm1, self.env["vm1"]["YQ_VALKEY_ADMIN_PASSWORD"], "XLEN", stream))

    def edge(self, domain: str) -> httpx.Client:
        """A client of VM3's Caddy as the internet sees it: TLS for `domain` (SNI, Host, the
        certificate checked against Caddy's internal CA)."""
        return helpers.edge_client(EDGE, domain, self.caddy_root)


def env_values(images: Images) -> dict[str, dict[str, str]]:
    vm1 = helpers.example_env(
        "vm1.env.example",
        {
            "YQ_IMAGE": images.yquant,
            "VALKEY_IMAGE": images.valkey,
            "VM1_PRIVATE_IP": HOST_ADDRESS,
            "YQ_ACCOUNTS": json.dumps(ACCOUNTS),
            "YQ_STRATEGIES": json.dumps(STRATEGIES),
            "YQ_KIS__REST_URL": "http://kissim:8900",
            "YQ_KIS__WS_URL": "ws://kissim:8900/tryitout",
            "YQ_ORDERMANAGER__ALWAYS_OPEN": "true",
        },
    )
    shared = {name: vm1[name] for name in vm1 if name.startswith("YQ_VALKEY_") and name.endswith("_PASSWORD")}
    vm2 = helpers.example_env(
        "vm2.env.example",
        {
            "YQ_IMAGE": images.yquant,
            "CADDY_IMAGE": images.caddy,
            "COMPOSE_PROFILES": "",  # no Prometheus or Grafana image here
            "VM1_PRIVATE_IP": ADDRESS["vm1"],
            "VM2_PRIVATE_IP": HOST_ADDRESS,
            "YQ_DASHBOARD_PROXY": ADDRESS["vm3"],
            "YQ_WEBHOOK_HOST_IP": ADDRESS["vm3"],
            "YQ_EDGE_SUBNET": EDGE_SUBNET["vm2"],
            "YQ_EDGE_IP_RANGE": EDGE_RANGE["vm2"],
            "YQ_CADDY_IP": CADDY_IP["vm2"],
            "YQ_STRATEGIES": json.dumps(STRATEGIES),
            "YQ_DASHBOARD_ACCOUNTS": json.dumps(
                {
                    alias: {k: v for k, v in a.items() if k not in ("app_key", "app_secret")}
                    for alias, a in ACCOUNTS.items()
                }
            ),
        },
    )
    vm3 = helpers.example_env(
        "vm3.env.example",
        {
            "YQ_IMAGE": images.yquant,
            "CADDY_IMAGE": images.caddy,
            "VM1_PRIVATE_IP": ADDRESS["vm1"],
            "VM2_PRIVATE_IP": ADDRESS["vm2"],
            "VM3_PRIVATE_IP": HOST_ADDRESS,
            "YQ_EDGE_SUBNET": EDGE_SUBNET["vm3"],
            "YQ_EDGE_IP_RANGE": EDGE_RANGE["vm3"],
            "YQ_CADDY_IP": CADDY_IP["vm3"],
            "YQ_WEBHOOK_DOMAIN": HOOK,
            "YQ_DASHBOARD_DOMAIN": DASH,
            "YQ_ACME_EMAIL": "ops@yquant.test",
            "YQ_CADDY_GLOBAL_EXTRA": "local_certs",  # Caddy's internal CA: no ACME without the internet
            "YQ_WEBHOOK_ALLOWLIST_ENABLED": "true",  # with this host added to the addresses (OVERRIDES)
            "YQ_STRATEGIES": json.dumps(STRATEGIES),
        },
    )
    return {"vm1": vm1, "vm2": {**vm2, **_only(shared, vm2)}, "vm3": {**vm3, **_only(shared, vm3)}}


def _only(shared: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """The shared passwords this VM's example lists (each VM holds only those it uses)."""
    return {name: value for name, value in shared.items() if name in values}


@pytest.fixture(scope="module")
def vms(images: Images, cleanup: Cleanup, tmp_path_factory: pytest.TempPathFactory) -> ThreeVMs:
    folder = tmp_path_factory.mktemp("vms")
    values = env_values(images)
    stacks = {}
    for vm in ("vm1", "vm2", "vm3"):
        override = folder / f"{vm}.override.json"  # JSON is YAML
        override.write_text(json.dumps(OVERRIDES[vm], indent=2))
        stacks[vm] = Compose(
            f"docker-compose.{vm}.yml", env_file(folder / f"{vm}.env", values[vm]), overrides=(override,)
        )
    if PRIVATE_NETWORK in docker("network", "ls", "--format", "{{.Name}}").split():
        docker("network", "rm", PRIVATE_NETWORK)  # a run killed before its teardown
    docker(
        "network", "create", "--driver", "bridge", "--subnet", PRIVATE_SUBNET, "--gateway", HOST_ADDRESS,
        "--ip-range", DYNAMIC_RANGE, PRIVATE_NETWORK,
    )  # fmt: skip
    cleanup.add(lambda: docker("network", "rm", PRIVATE_NETWORK))  # last: after every project is down
    for vm in ("vm1", "vm2", "vm3"):
        cleanup.add(stacks[vm].down)
    password = secrets.token_urlsafe(16)
    with ThreadPoolExecutor(2) as pool:
        # The runbook's order: VM1, then VM3 and VM2; the dashboard's first admin before its `up`.
        admin = pool.submit(helpers.add_admin, stacks["vm2"], password)
        stacks["vm1"]("up", "-d", timeout=300)
        stacks["vm1"].wait_healthy(SERVICES["vm1"])
        assert "user admin (admin) saved" in admin.result()
        ups = [pool.submit(stacks[vm], "up", "-d", timeout=300) for vm in ("vm3", "vm2")]
        for up in ups:
            up.result()
    for vm in ("vm3", "vm2"):
        stacks[vm].wait_healthy(SERVICES[vm])
    caddy_root = folder / "caddy-root.crt"
    caddy = stacks["vm3"].container("caddy")
    caddy_root.write_text(helpers.wait_for("Caddy's internal CA", lambda: docker("exec", caddy, "cat", CADDY_ROOT)))
    three = ThreeVMs(stacks["vm1"], stacks["vm2"], stacks["vm3"], values, password, caddy_root)
    with three.edge(HOOK) as client:
        helpers.wait_for(
            "https://hook.yquant.test/healthz through Caddy", lambda: client.get("/healthz").status_code == 200
        )
    # The gateway holds a KIS token (its first call to the simulator) before alerts come in.
    admin_password = three.env["vm1"]["YQ_VALKEY_ADMIN_PASSWORD"]
    helpers.wait_for(
        "the gateway's KIS token", lambda: helpers.valkey_admin(three.vm1, admin_password, "KEYS", "yq:token:*")
    )
    return three  # the module's `cleanup` takes it all down


def test_alert_when_posted_to_vm3_over_https_then_the_order_fills_at_the_simulator(vms: ThreeVMs) -> None:
    with vms.edge(HOOK) as client:
        answer = client.post("/webhook", json=helpers.alert(vms.env["vm3"]["YQ_WEBHOOK_SECRET"]))

    assert answer.status_code == 200, answer.text
    signal_id = answer.json()["signal_id"]
    helpers.wait_filled(vms.hget, signal_id)
    # Caddy reached the webhook over VM3's edge network from its fixed address, and the webhook
    # believed the X-Forwarded-For Caddy wrote: the source is this host's own address.
    caddy = json.loads(docker("inspect", vms.vm3.container("caddy")))[0]["NetworkSettings"]["Networks"]
    assert caddy["yquant-vm3_edge"]["IPAddress"] == CADDY_IP["vm3"]
    assert accepted_sources(vms, signal_id) == {HOST_ADDRESS}


def accepted_sources(vms: ThreeVMs, signal_id: str) -> set[str]:
    logs = vms.vm3("logs", "--no-color", "webhook")
    entries = [json.loads(line.split("|", 1)[1]) for line in logs.splitlines() if signal_id in line]
    return {str(entry.get("source")) for entry in entries if entry.get("msg") == "alert accepted"}


def test_alert_when_posted_to_the_published_port_with_a_forged_forwarded_for_then_refused(vms: ThreeVMs) -> None:
    # Anything on VM3, or on the private network, that reaches the webhook's metrics port: it
    # names a TradingView address in X-Forwarded-For and brings the right secret.
    stream_before = vms.xlen(keys.SIGNALS_WEBHOOK)
    answer = httpx.post(
        f"http://{HOST_ADDRESS}:8080/webhook",
        json=helpers.alert(vms.env["vm3"]["YQ_WEBHOOK_SECRET"]),
        headers={"X-Forwarded-For": TRADINGVIEW[0]},
        timeout=10,
        trust_env=False,
    )

    assert answer.status_code == 403, answer.text
    assert vms.xlen(keys.SIGNALS_WEBHOOK) == stream_before


def test_alert_when_the_secret_is_wrong_then_401(vms: ThreeVMs) -> None:
    with vms.edge(HOOK) as client:
        answer = client.post("/webhook", json=helpers.alert("not-the-secret-" + "x" * 20))

    assert answer.status_code == 401, answer.text


def test_dashboard_when_the_first_admin_signs_in_over_https_then_the_overview_opens(vms: ThreeVMs) -> None:
    with vms.edge(DASH) as client:
        refused = helpers.login(client, EDGE, "admin", "wrong-password")
        assert refused.status_code == 401
        answer = helpers.login(client, EDGE, "admin", vms.admin_password)
        assert answer.status_code == 303, answer.text[:500]
        overview = client.get("/")
    assert overview.status_code == 200
    assert "login" not in str(overview.url)


def test_metrics_when_asked_from_outside_then_caddy_refuses_and_only_the_private_network_answers(
    vms: ThreeVMs,
) -> None:
    # The webhook's /metrics and /readyz; the dashboard's /metrics (its other pages need a login).
    paths = {HOOK: ("/metrics", "/metrics/", "/readyz"), DASH: ("/metrics", "/metrics/")}
    outside = {}
    for domain in (HOOK, DASH):
        with vms.edge(domain) as client:
            outside[domain] = {path: client.get(path).status_code for path in paths[domain]}
    inside = {
        port: httpx.get(f"http://{HOST_ADDRESS}:{port}/metrics", timeout=10, trust_env=False).status_code
        for port in (8080, 9101)
    }
    loopback = {}
    for port in (6379, 8000, 8080, 9101, 9102):
        with socket.socket() as probe:
            probe.settimeout(2)
            loopback[port] = probe.connect_ex(("127.0.0.1", port)) == 0

    assert outside == {d: dict.fromkeys(paths[d], 404) for d in (HOOK, DASH)}, outside
    assert inside == {8080: 200, 9101: 200}, inside  # what Prometheus on VM2 scrapes
    assert not any(loopback.values()), f"published beyond the private address: {loopback}"


def test_burst_when_50_alerts_arrive_over_https_then_every_container_stays_under_its_limit(
    vms: ThreeVMs, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = vms.env["vm3"]["YQ_WEBHOOK_SECRET"]
    with helpers.StatsSampler() as sampler, vms.edge(HOOK) as client:

        def post(n: int) -> int:
            return client.post("/webhook", json=helpers.alert(secret, quantity=1 + n % 3)).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(post, range(BURST)))
        assert codes.count(200) == BURST, {code: codes.count(code) for code in set(codes)}
        last = client.post("/webhook", json=helpers.alert(secret))
        assert last.status_code == 200, last.text
        # Decided (the same buy within 3 s is denied as a duplicate): the burst has drained by then.
        helpers.wait_decided(vms.hget, last.json()["signal_id"], timeout=180)

    figures = helpers.peaks(vms.stacks, sampler)
    with capsys.disabled():
        print(f"\nthree VMs, {BURST} alerts through Caddy: peak memory per container (cgroup max usage, docker stats)")
        for peak in figures:
            print("  " + peak.line())
    assert {p.container.split("-")[-2] for p in figures} >= {s for services in SERVICES.values() for s in services}
    for peak in figures:
        assert peak.limit_bytes > 0, f"{peak.container} has no memory limit"
        assert peak.oom_kills == 0, peak.line()
        assert 0 < peak.sampled_bytes < peak.limit_bytes, peak.line()
    restarts = {p.container: json.loads(docker("inspect", p.container))[0]["RestartCount"] for p in figures}
    assert set(restarts.values()) == {0}, restarts
