"""A service started with wrong settings says what is wrong in one line and exits 78, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from yquant.runtime import EXIT_CONFIGURATION


def _start(module: str, valkey_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
    clean.update({"YQ_VALKEY__URL": valkey_url, "YQ_KIS__REST_URL": "http://127.0.0.1:9", **env})
    return subprocess.run(
        [sys.executable, "-m", module], env=clean, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("module", "env", "says"),
    [
        # An amount-sized strategy without an amount cannot size anything.
        ("ordermanager", {"YQ_STRATEGIES": '{"swing": {"accounts": ["main"], "sizing": "amount"}}'}, "amount"),
        # A value of the wrong type is caught by the settings' validation.
        ("ordermanager", {"YQ_ORDERMANAGER__QUOTE_TIMEOUT_S": "soon"}, "quote_timeout_s"),
        # The gateway cannot run an account without its KIS key pair.
        ("brokergateway", {"YQ_ACCOUNTS": '{"main": {"cano": "50000001"}}'}, "app key"),
        # The webhook without any secret would let anyone trade.
        ("webhook", {"YQ_WEBHOOK__PORT": "0"}, "no webhook secret"),
        # A webhook setting that contradicts another.
        ("webhook", {"YQ_WEBHOOK__SECRET": "dev-secret", "YQ_WEBHOOK__REQUIRE_CLIENT_CERT": "true"}, "trusted_proxies"),
        # The dashboard with a session secret anyone could guess.
        ("dashboard", {"YQ_DASHBOARD__SESSION_SECRET": "short"}, "SESSION_SECRET"),
    ],
)
def test_wrong_settings_end_the_service_with_one_clear_line(
    valkey_url: str, module: str, env: dict[str, str], says: str
) -> None:
    done = _start(module, valkey_url, **env)
    assert done.returncode == EXIT_CONFIGURATION, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{module}: configuration error:" in done.stderr
    assert says in done.stderr
