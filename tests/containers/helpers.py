"""What the container tests do as a user would: env files from the examples, the first admin,
alerts, a dashboard login, order states read from Valkey."""

from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.containers.conftest import Compose, Peak, cgroup_memory, docker, stats_sample

REPO = Path(__file__).resolve().parents[2]


def example_env(example: str, overrides: dict[str, str]) -> dict[str, str]:
    """deploy/<example>.env.example with every CHANGE_ME value replaced by a fresh secret, as the
    runbook says, then the test's overrides (images, addresses)."""
    values: dict[str, str] = {}
    for line in (REPO / "deploy" / example).read_text().splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            name, value = match.groups()
            values[name] = secrets.token_urlsafe(24) if "CHANGE_ME" in value else value
    values.update(overrides)
    return values


def add_admin(stack: Compose, password: str) -> str:
    """The runbook's first start: the dashboard's first user, before `up`."""
    return stack(
        "run", "--rm", "--no-deps", "-T", "dashboard", "python", "-m", "yquant", "user", "add", "admin",
        "--password-stdin",
        input=password + "\n",
        timeout=120,
    )  # fmt: skip


def alert(secret: str, **fields: Any) -> dict[str, Any]:
    body = {"secret": secret, "strategy": "trend", "ticker": "005930", "exchange": "KRX", "action": "buy"}
    return {**body, "quantity": 1, "id": uuid.uuid4().hex, **fields}


def valkey_admin(stack: Compose, password: str, *command: str) -> str:
    """A command as Valkey's admin user, run inside the Valkey container (the password through the
    environment, never the command line)."""
    reply = docker(
        "exec", "-e", f"VALKEYCLI_AUTH={password}", "-e", f"REDISCLI_AUTH={password}", stack.container("valkey"),
        "valkey-cli", "--no-auth-warning", "--user", "admin", *command,
    ).strip()  # fmt: skip
    if reply.startswith(("NOAUTH", "WRONGPASS", "NOPERM", "ERR")):
        raise AssertionError(f"valkey-cli {command[0]}: {reply}")  # valkey-cli exits 0 on an error reply
    return reply


def wait_filled(read_hash: Any, signal_id: str, timeout: float = 90) -> str:
    """Poll the signal's record until its first order is FILLED; returns the order id."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        orders = read_hash(f"yq:signal:{signal_id}", "orders")
        if orders:
            order_id = json.loads(orders)[0]
            last = read_hash(f"yq:order:{order_id}", "state")
            if last == "FILLED":
                return str(order_id)
        time.sleep(0.5)
    raise AssertionError(f"signal {signal_id} not filled in {timeout:.0f} s (last order state {last!r})")


def wait_decided(read_hash: Any, signal_id: str, timeout: float = 90) -> str:
    """Poll the signal's record until the order manager has decided it; returns the status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_hash(f"yq:signal:{signal_id}", "status")
        if status and status != "received":
            return str(status)
        time.sleep(0.5)
    raise AssertionError(f"signal {signal_id} not decided in {timeout:.0f} s")


def login(client: httpx.Client, base: str, name: str, password: str) -> httpx.Response:
    """The login form as a browser sends it: its CSRF token, then the credentials."""
    form = client.get(f"{base}/login")
    form.raise_for_status()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    return client.post(
        f"{base}/login", data={"username": name, "password": password, "csrf_token": token.group(1), "next": "/"}
    )


class StatsSampler:
    """`docker stats` in the background while a burst runs: the highest reading per container."""

    def __init__(self) -> None:
        self.highest: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()

    def sample(self) -> None:
        try:
            for name, used in stats_sample().items():
                self.highest[name] = max(used, self.highest.get(name, 0))
        except Exception:  # noqa: S110 - a sample lost while containers change
            pass

    def __enter__(self) -> StatsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample()  # one reading after the burst, however fast it was


def peaks(stacks: list[Compose], sampler: StatsSampler) -> list[Peak]:
    found = []
    for stack in stacks:
        for container_id in stack("ps", "-q").split():
            info = json.loads(docker("inspect", container_id))[0]
            name = info["Name"].lstrip("/")
            peak, limit, hits, oom_kills = cgroup_memory(info["Id"])
            found.append(Peak(name, peak, limit, hits, oom_kills, sampler.highest.get(name, 0)))
    return found


def wait_for(what: str, check: Callable[[], object], timeout: float = 120) -> Any:
    """``check()``'s first truthy answer within ``timeout`` s (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # not there yet
            last = exc
        time.sleep(1)
    raise AssertionError(f"{what}: not in {timeout:.0f} s (last: {last!r})")


def edge_client(base_url: str, domain: str, caddy_root: Path) -> httpx.Client:
    """A client of Caddy as the internet sees it: TLS for ``domain`` (SNI, Host, the certificate
    checked against Caddy's internal CA, ``caddy_root``)."""
    context = ssl.create_default_context(cafile=str(caddy_root))

    def sni(request: httpx.Request) -> None:
        request.extensions["sni_hostname"] = domain

    return httpx.Client(
        base_url=base_url,
        verify=context,
        headers={"Host": domain},
        event_hooks={"request": [sni]},
        timeout=30,
        trust_env=False,  # straight to Caddy, never through a proxy of this machine
    )
