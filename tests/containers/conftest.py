"""A real Docker engine for the container tests, and the compose stacks they bring up.

The engine comes from tests/containers/engine.py (started for the session when none answers and
this is root with Debian's ``docker.io``, which scripts/ensure-docker.sh installs from
``make test``). Where no engine can run the tests skip and say why. Builds use the classic
builder (``DOCKER_BUILDKIT=0``: no buildx here, and BuildKit would pull the ``# syntax=`` frontend
from a registry).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.containers import standins
from tests.containers.engine import EngineUnavailable, compose_binary, docker_engine

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


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    try:
        with docker_engine(tmp_path_factory.mktemp("dockerd")):
            yield
    except EngineUnavailable as exc:
        pytest.skip(f"container tests {exc}")


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

        def read(name: str) -> int:
            return int((v1 / name).read_text())

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
