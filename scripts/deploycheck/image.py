"""``image``: the Dockerfile's stages, user, hashed installs and build context."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import wheeltags

from deploycheck.common import Report

if TYPE_CHECKING:
    pass


# --- image ---------------------------------------------------------------------------------------


def context_problems(dockerfile: str, dockerignore: str) -> list[str]:
    """Every COPY from the build context must name a path .dockerignore lets through.

    The .dockerignore here excludes everything and re-admits paths one by one, so a package added
    to the Dockerfile but not to .dockerignore fails only at ``docker build``; say so here instead.
    """
    admitted = {line[1:].strip().rstrip("/") for line in dockerignore.splitlines() if line.startswith("!")}
    problems = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        for source in sources:
            if source.rstrip("/") not in admitted:
                problems.append(f"COPY {source}: .dockerignore keeps it out of the build context (add !{source})")
    return problems


def check_image(root: Path, report: Report) -> None:
    dockerfile = root / "Dockerfile"
    if not report.check(dockerfile.exists(), "Dockerfile: missing"):
        return
    text = dockerfile.read_text()
    stages = re.split(r"(?im)^FROM\s", text)[1:]
    problems = []
    if len(stages) < 2:
        problems.append("not multi-stage (build, then a runtime stage)")
    final = stages[-1] if stages else ""
    base = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)", text)
    slim = f"python:{wheeltags.PYTHON_VERSION}-slim"
    if not base or not base.group(1).startswith(slim):
        problems.append(f"the base image must be {slim} (scripts/wheeltags.py)")
    users = re.findall(r"(?m)^USER\s+(\S+)", final)
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append("the final stage must run as a non-root USER")
    if "--require-hashes" not in text or "requirements.lock" not in text or "--only-binary=:all:" not in text:
        problems.append("dependencies must come from requirements.lock, wheels only, with --require-hashes")
    if re.search(r"(?i)\b(gcc|g\+\+|build-essential|clang|make)\b", final.split("\n", 1)[-1]):
        problems.append("a compiler or build tool is installed in the final stage")
    ignore = root / ".dockerignore"
    if not ignore.exists():
        problems.append(".dockerignore is missing")
    else:
        problems.extend(context_problems(text, ignore.read_text()))
    for problem in problems:
        report.fail(f"Dockerfile: {problem}")
    if not problems:
        report.ok(f"Dockerfile: multi-stage, {slim}, non-root, locked wheels with hashes, no compiler")
