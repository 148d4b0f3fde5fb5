#!/bin/sh
# One-shot after Valkey is healthy: load (or replace) the `yquant` server functions as the admin
# user. The password goes through the environment (VALKEYCLI_AUTH), never the command line, and
# the reply is checked: valkey-cli exits 0 even when the server answers with an error.
set -eu
: "${YQ_VALKEY_ADMIN_PASSWORD:?the admin password is needed to load the server functions}"
host=${VALKEY_HOST:-valkey}
port=${VALKEY_PORT:-6379}
functions=${FUNCTIONS_FILE:-/functions/functions.lua}
export VALKEYCLI_AUTH="$YQ_VALKEY_ADMIN_PASSWORD" REDISCLI_AUTH="$YQ_VALKEY_ADMIN_PASSWORD"
tries=0
until reply=$(${VALKEY_CLI:-valkey-cli} --no-auth-warning -h "$host" -p "$port" --user admin \
        -x FUNCTION LOAD REPLACE < "$functions" 2>&1) && [ "$reply" = "yquant" ]; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
        echo "load-functions: FUNCTION LOAD failed: $reply" >&2
        exit 1
    fi
    sleep 1
done
echo "load-functions: server functions loaded (library $reply)"
