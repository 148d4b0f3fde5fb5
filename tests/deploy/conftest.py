"""A copy of the deployment files in a temporary folder, and a way to run deploy_check on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CHECK = REPO / "scripts" / "deploy_check.py"
DEPLOYMENT_FILES = (
    "docker-compose.vm1.yml",
    "docker-compose.vm2.yml",
    "docker-compose.vm3.yml",
    "docker-compose.allinone.yml",
    "Dockerfile",
    ".dockerignore",
    "requirements.lock",
    "pyproject.toml",
    "deploy",
    "valkey",
    "monitoring",
    "yquant/functions.lua",
    "docs/operations.md",
    "docs/acl-rules.md",
)

RunCheck = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """The deployment files, copied so a test can break one."""
    root = tmp_path / "repo"
    for name in DEPLOYMENT_FILES:
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return root


@pytest.fixture
def run_check() -> RunCheck:
    def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(DEPLOY_CHECK), "--root", str(root), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path.name}"
    path.write_text(text.replace(old, new))
