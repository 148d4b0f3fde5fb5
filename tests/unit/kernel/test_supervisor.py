"""``yquant up`` stops every process it starts, in order, Valkey last."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yquant.errors import ConfigurationError
from yquant.runtime import EXIT_CONFIGURATION
from yquant.supervisor import STOP_ORDER, Child, Layout, Supervisor, build_children, start_timeout_from_env


def test_every_process_yquant_up_can_start_is_stopped_before_valkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YQ_NOTIFIER__DESTINATIONS", '{"phone": {"kind": "telegram"}}')  # the notifier starts too
    layout = Layout(tmp_path, 1, 2, 3, 4, "secret-for-the-layout", use_simulator=True, kissim_args=[])
    names = [child.name for child in build_children(layout)]
    assert "notifier" in names
    assert sorted(names) == sorted(STOP_ORDER)
    assert STOP_ORDER[-1] == "valkey"


@pytest.mark.parametrize(("text", "expected"), [("", 30.0), ("180", 180.0), (" 2.5 ", 2.5)])
def test_the_start_timeout_comes_from_the_environment(
    text: str, expected: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YQ_START_TIMEOUT_S", text)
    assert start_timeout_from_env() == expected


@pytest.mark.parametrize("text", ["abc", "0", "-5", "nan", "inf", "7200"])
def test_a_start_timeout_that_is_not_a_sane_number_of_seconds_is_refused_by_name(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YQ_START_TIMEOUT_S", text)
    with pytest.raises(ConfigurationError, match="YQ_START_TIMEOUT_S"):
        start_timeout_from_env()


def test_a_process_that_never_answers_fails_the_start_after_the_configured_timeout(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 1, 2, 3, 4, "secret-for-the-layout", use_simulator=True, kissim_args=[])
    layout.start_timeout_s = 1.0
    # A process that runs but never answers its health check (nothing listens on port 9).
    child = Child("webhook", [sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path / "w.log")
    child.ready_url = "http://127.0.0.1:9/healthz"
    supervisor = Supervisor(layout, [child], out=io.StringIO())
    supervisor.start_child(child)
    try:
        with pytest.raises(RuntimeError, match=r"webhook did not become ready in 1s \(YQ_START_TIMEOUT_S\)"):
            supervisor.wait_ready(child)
    finally:
        assert child.process is not None
        child.process.kill()
        child.process.wait()
        assert child.log is not None
        child.log.close()


def test_yquant_up_refuses_a_bad_start_timeout_before_starting_anything(tmp_path: Path) -> None:
    env = {**os.environ, "YQ_START_TIMEOUT_S": "soon", "YQ_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "yquant", "up"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == EXIT_CONFIGURATION
    assert "YQ_START_TIMEOUT_S must be a number of seconds from 1 to 3600, not 'soon'" in result.stderr
    assert not (tmp_path / "state").exists()
