"""Users file, the ``yquant user`` command, first-start admin, production guards."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from dashboard.app import create_app
from dashboard.security import load_session_secret
from yquant.cli import build_parser
from yquant.errors import ConfigurationError
from yquant.settings import DashboardSettings, Settings
from yquant.users import ensure_admin_user, load_users, run_user_command, verify_password


def test_user_add_reads_the_password_from_stdin_and_enrols_totp(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    args = build_parser().parse_args(["user", "add", "Carol", "--password-stdin", "--totp"])
    assert run_user_command(args, settings) == 0
    out = capsys.readouterr().out
    assert "otpauth://totp/yQuant:carol" in out
    user = load_users(settings.state_dir / "users.json")["carol"]
    assert verify_password(user.password_hash, "a long enough password")
    assert user.totp_secret
    assert not verify_password(user.password_hash, "a long enough passworD")


def test_user_add_refuses_a_short_password(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    args = build_parser().parse_args(["user", "add", "dave", "--password-stdin"])
    assert run_user_command(args, settings) == 2
    assert not (settings.state_dir / "users.json").exists()


def test_yquant_user_add_as_a_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
    env["YQ_STATE_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "yquant", "user", "add", "erin", "--password-stdin"],
        input="erin's password is long\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "erin" in load_users(tmp_path / "users.json")
    assert oct((tmp_path / "users.json").stat().st_mode & 0o777) == "0o600"


def test_a_viewer_is_added_listed_as_json_and_keeps_its_role_on_a_new_password(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    commands = (
        ["user", "add", "vera", "--password-stdin", "--role", "viewer"],
        ["user", "add", "vera", "--password-stdin"],  # a new password: still a viewer
        ["user", "add", "adam", "--password-stdin"],  # a new user: an admin
    )
    for argv in commands:
        monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
        assert run_user_command(parser.parse_args(argv), settings) == 0
    capsys.readouterr()
    assert run_user_command(parser.parse_args(["user", "list", "--json"]), settings) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [(u["name"], u["role"], u["totp"]) for u in listed] == [("adam", "admin", False), ("vera", "viewer", False)]


def test_first_start_creates_admin_once_with_a_private_password_file(settings: Settings, tmp_path: Path) -> None:
    state = tmp_path / "state"
    password = ensure_admin_user(settings, state)
    assert password
    assert len(password) >= 20
    assert (state / "admin-password").read_text().strip() == password
    assert oct((state / "admin-password").stat().st_mode & 0o777) == "0o600"
    assert verify_password(load_users(state / "users.json")["admin"].password_hash, password)
    assert ensure_admin_user(settings, state) is None  # the users file exists: nothing printed again


def test_production_never_creates_a_default_admin(settings: Settings, tmp_path: Path) -> None:
    production = settings.model_copy(update={"environment": "production"})
    assert ensure_admin_user(production, tmp_path / "prod") is None
    assert not (tmp_path / "prod" / "users.json").exists()


def test_session_secret_generated_once_and_private(settings: Settings) -> None:
    first = load_session_secret(settings)
    assert first == load_session_secret(settings)
    assert len(first) >= 32
    assert oct((settings.state_dir / "session-secret").stat().st_mode & 0o777) == "0o600"


async def test_production_refuses_to_start_without_users_file_or_secret(
    settings: Settings, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    users = tmp_path / "users.json"
    production = settings.model_copy(
        update={"environment": "production", "dashboard": DashboardSettings(users_file=users)}
    )
    with pytest.raises(ConfigurationError, match="users file"):
        create_app(production, redis_client)
    users.write_text('{"users": {}}')
    with pytest.raises(ConfigurationError, match="SESSION_SECRET"):
        create_app(production, redis_client)
    weak = production.model_copy(
        update={"dashboard": DashboardSettings(users_file=users, session_secret=SecretStr("x"))}
    )
    with pytest.raises(ConfigurationError, match="at least 32"):
        create_app(weak, redis_client)
    good = production.model_copy(
        update={"dashboard": DashboardSettings(users_file=users, session_secret=SecretStr("k" * 40))}
    )
    assert create_app(good, redis_client) is not None
