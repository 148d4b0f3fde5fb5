"""``wheels``: requirements.lock covers the dependencies, and every locked version has a hashed
wheel the production image accepts, for each machine.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import wheeltags
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploycheck.common import Report

if TYPE_CHECKING:
    pass


# --- wheels ------------------------------------------------------------------------------------


@dataclass
class LockEntry:
    name: str
    version: str
    hashes: set[str]


def parse_lock(path: Path) -> list[LockEntry]:
    entries = []
    logical = re.sub(r"\\\n", " ", path.read_text())
    for raw_line in logical.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        requirement_text = line.split("--hash", 1)[0].strip()
        hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        requirement = Requirement(requirement_text)
        pins = [s for s in requirement.specifier if s.operator == "=="]
        if len(pins) != 1:
            raise ValueError(f"{requirement_text}: not pinned with ==")
        entries.append(LockEntry(canonicalize_name(requirement.name), pins[0].version, hashes))
    return entries


def _pip_probe(requirements: list[str], arch: str, find_links: Path | None) -> tuple[dict[str, tuple[str, str]], str]:
    """name -> (file name, sha256) of the wheel pip picks for the image; stderr when pip failed."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--no-deps",
            "--ignore-installed",
            "--report",
            str(report),
            "--target",
            str(Path(tmp) / "target"),
            *wheeltags.pip_target_args(arch),
        ]
        if find_links is not None:
            command += ["--no-index", "--find-links", str(find_links)]
        result = subprocess.run([*command, *requirements], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return {}, result.stderr
        found: dict[str, tuple[str, str]] = {}
        for install in json.loads(report.read_text())["install"]:
            info = install["download_info"]
            digest = (info.get("archive_info") or {}).get("hashes", {}).get("sha256", "")
            found[canonicalize_name(install["metadata"]["name"])] = (info["url"].rsplit("/", 1)[-1], digest)
        return found, ""


def probe_wheels(
    entries: list[LockEntry], arch: str, find_links: Path | None
) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Found wheels, and the entries with none (pip's reason), asking pip as few times as it takes."""
    pending = [f"{e.name}=={e.version}" for e in entries]
    found: dict[str, tuple[str, str]] = {}
    missing: dict[str, str] = {}
    while pending:
        batch, stderr = _pip_probe(pending, arch, find_links)
        if not stderr:
            found.update(batch)
            break
        culprit = re.search(r"No matching distribution found for (\S+)", stderr) or re.search(
            r"satisfies the requirement (\S+)", stderr
        )
        if culprit is None or culprit.group(1) not in pending:
            for requirement in pending:  # one at a time when pip's message names nobody
                single, error = _pip_probe([requirement], arch, find_links)
                if error:
                    missing[requirement] = error.strip().splitlines()[-1]
                found.update(single)
            break
        missing[culprit.group(1)] = "no matching wheel"
        pending.remove(culprit.group(1))
    return found, missing


def check_wheels(
    root: Path, report: Report, find_links: Path | None, cache_dir: Path | None, arches: tuple[str, ...]
) -> None:
    lock = root / "requirements.lock"
    if not report.check(lock.exists(), "requirements.lock: missing"):
        return
    try:
        entries = parse_lock(lock)
    except ValueError as exc:
        report.fail(f"requirements.lock: {exc}")
        return
    by_name = {e.name: e for e in entries}
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        for spec in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
            requirement = Requirement(spec)
            locked = by_name.get(canonicalize_name(requirement.name))
            if locked is None:
                report.fail(
                    f"requirements.lock: {requirement.name} (pyproject.toml) is not locked; "
                    "run scripts/lock_requirements.py"
                )
            elif not requirement.specifier.contains(locked.version, prereleases=True):
                report.fail(f"requirements.lock: {locked.name}=={locked.version} does not satisfy pyproject's {spec}")
    cache_file = cache_dir / "wheels.json" if cache_dir is not None and find_links is None else None
    cache: dict[str, list[str]] = json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}
    tags_id = f"{wheeltags.ABI}-glibc2.{wheeltags.GLIBC_MINOR}"
    for arch in arches:

        def key(e: LockEntry, arch: str = arch) -> str:
            return f"{arch}|{tags_id}|{e.name}=={e.version}"

        unknown = [e for e in entries if key(e) not in cache]
        found, missing = probe_wheels(unknown, arch, find_links) if unknown else ({}, {})
        for entry in unknown:
            if entry.name in found:
                cache[key(entry)] = list(found[entry.name])
        problems = []
        for entry in entries:
            pinned = f"{entry.name}=={entry.version}"
            if pinned in missing or (key(entry) not in cache and entry in unknown):
                problems.append(
                    f"{pinned} has no wheel for CPython {wheeltags.PYTHON_VERSION} on Linux {arch} "
                    f"that {wheeltags.BASE_IMAGE} "
                    f"accepts (manylinux_2_17..2_{wheeltags.GLIBC_MINOR}, or py3-none-any): "
                    f"{missing.get(pinned, 'none found')}"
                )
                continue
            filename, digest = cache[key(entry)]
            if entry.hashes and digest not in entry.hashes:
                problems.append(f"{pinned}: the {arch} wheel {filename} has a sha256 the lock does not list")
        for problem in problems:
            report.fail(f"requirements.lock: {problem}")
        if not problems:
            source = f"local index {find_links}" if find_links else "PyPI"
            python = f"CPython {wheeltags.PYTHON_VERSION}"
            report.ok(f"requirements.lock: {len(entries)} packages have a linux/{arch} {python} wheel ({source})")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
