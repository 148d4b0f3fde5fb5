#!/bin/sh
# Entry point of the Valkey container: render the ACL file from the template and the service
# passwords in the environment, then run valkey-server with valkey.conf and that ACL file.
# The server itself starts with an empty environment: the passwords stay with this script.
# Extra arguments are passed to valkey-server (the topology test binds the test address).
set -eu
conf_dir=${VALKEY_CONF_DIR:-/etc/valkey}
acl_file=${VALKEY_ACL_FILE:-/tmp/users.acl}
server=${VALKEY_SERVER:-valkey-server}
umask 077
sh "$conf_dir/render-acl.sh" "$conf_dir/users.acl.template" > "$acl_file.tmp"
mv "$acl_file.tmp" "$acl_file"
exec env -i PATH="${PATH:-/usr/local/bin:/usr/bin:/bin}" "$server" "$conf_dir/valkey.conf" --aclfile "$acl_file" "$@"
