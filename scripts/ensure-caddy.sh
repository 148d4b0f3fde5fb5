#!/usr/bin/env bash
# deploy-check validates deploy/Caddyfile with `caddy adapt`, and a test runs Caddy in front of the
# webhook to prove the secret in the path stays out of its logs: Debian's caddy, never its service.
set -euo pipefail
if command -v caddy >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's caddy for deploy-check and the proxy tests" >&2
    # No service start during the install (it would take ports 80/443 on this machine).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy >/dev/null
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now caddy >/dev/null 2>&1 || true; fi
else
    echo "caddy not found: deploy-check skips the Caddyfile and the proxy tests fail" >&2
fi
