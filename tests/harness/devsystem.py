"""The whole system as child processes in a folder of its own, exactly as ``yquant up``.

Used by the end-to-end tests, the browser tests and the benchmark: it runs the real
``yquant up`` command in a subprocess with free ports and a private state folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson

from yquant.embedded import free_port


class DevSystem:
    def __init__(self, state_dir: Path, env: dict[str, str] | None = None, *, secret: str = "e2e-secret") -> None:  # noqa: S107
        self.state_dir = state_dir
        self.secret = secret
        self.valkey_port = free_port()
        self.kissim_port = free_port()
        self.webhook_port = free_port()
        self.dashboard_port = free_port()
        self.extra_env = env or {}
        self.process: subprocess.Popen[str] | None = None
        self.output_path = state_dir / "yquant-up.out"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
        env.update(
            {
                "YQ_STATE_DIR": str(self.state_dir),
                "YQ_VALKEY_PORT": str(self.valkey_port),
                "YQ_KISSIM_PORT": str(self.kissim_port),
                "YQ_WEBHOOK__PORT": str(self.webhook_port),
                "YQ_DASHBOARD__PORT": str(self.dashboard_port),
                "YQ_WEBHOOK_SECRET": self.secret,
                "YQ_ORDERMANAGER__METRICS_PORT": "0",
                "YQ_GATEWAY__METRICS_PORT": "0",
                "YQ_VALKEY__URL": self.valkey_url,
            }
        )
        env.update(self.extra_env)
        return env

    @property
    def valkey_url(self) -> str:
        return f"redis://127.0.0.1:{self.valkey_port}/0"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/webhook"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def kissim_url(self) -> str:
        return f"http://127.0.0.1:{self.kissim_port}"

    def start(self, timeout_s: float = 60.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        out = self.output_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "yquant", "up"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"yquant up exited: {self.output()}")
            if "yQuant is up" in self.output():
                return
            time.sleep(0.1)
        raise RuntimeError(f"yquant up did not start in {timeout_s:.0f}s: {self.output()}")

    def output(self) -> str:
        return self.output_path.read_text() if self.output_path.exists() else ""

    def pids(self) -> dict[str, int]:
        runtime: dict[str, Any] = orjson.loads((self.state_dir / "runtime.json").read_bytes())
        return {k: int(v) for k, v in runtime["pids"].items()}

    def pid_of(self, service: str) -> int:
        return int((self.state_dir / "run" / f"{service}.pid").read_text())

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def sim_orders(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.kissim_url}/admin/orders", timeout=5)
        response.raise_for_status()
        data = response.json()
        orders: list[dict[str, Any]] = data["orders"] if isinstance(data, dict) else data
        return orders

    def yquant(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "yquant", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def __enter__(self) -> DevSystem:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
