#!/usr/bin/env bash
# deploy-check runs promtool on monitoring/ (config, rules, rule unit tests) and a test scrapes the
# running system with the real Prometheus: Debian's package, never its service.
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's prometheus for deploy-check and the monitoring test" >&2
    # No service start during the install (it would take port 9090 on this machine).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
else
    echo "promtool not found: deploy-check skips the Prometheus checks and the monitoring test fails" >&2
fi
