"""deploy/Caddyfile as shipped: the webhook secret in the URL never reaches Caddy's logs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from yquant.embedded import free_port

CADDYFILE = Path(__file__).resolve().parents[3] / "deploy" / "Caddyfile"
SECRET = "caddy-path-secret-0123456789"


def test_secret_in_the_path_stays_out_of_the_access_and_error_logs(tmp_path: Path) -> None:
    assert shutil.which("caddy"), "caddy is missing: scripts/ensure-caddy.sh installs Debian's"
    port, dead_upstream = free_port(), free_port()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "YQ_ACME_EMAIL": "ops@example.org",
        "YQ_CADDY_GLOBAL_EXTRA": "auto_https off\nadmin off",
        "YQ_WEBHOOK_DOMAIN": f"http://127.0.0.1:{port}",
        "YQ_WEBHOOK_UPSTREAM": f"127.0.0.1:{dead_upstream}",  # nothing listens: every alert is a 502
        "YQ_DASHBOARD_DOMAIN": f"http://127.0.0.1:{free_port()}",
        "YQ_DASHBOARD_UPSTREAM": f"127.0.0.1:{free_port()}",
    }
    log_path = tmp_path / "caddy.log"
    with log_path.open("wb") as log_file:
        caddy = subprocess.Popen(
            ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert caddy.poll() is None, log_path.read_text()
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/webhook/{SECRET}", content=b"{}", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "caddy did not start"
                time.sleep(0.1)
        assert response.status_code == 502
        slash = httpx.post(f"http://127.0.0.1:{port}/webhook/{SECRET}/", content=b"{}", timeout=5)
        assert slash.status_code == 502
        assert SECRET not in slash.headers.get("location", "")
    finally:
        caddy.terminate()
        caddy.wait(timeout=30)
    log = log_path.read_text()
    assert "502" in log or "dial" in log  # the failure was logged ...
    assert SECRET not in log  # ... without the URL
