#!/bin/sh
# Render users.acl.template into an ACL file on stdout: drop comment and blank lines, join
# indented lines to the line above, replace each {{sha256:VAR}} with `#` + the SHA-256 of the
# environment variable VAR. A password is read with printenv, never put on a command line.
# Refuses a password that is unset, shorter than 16 characters, has white space, or still holds
# the example placeholder (CHANGE_ME). POSIX sh + awk + coreutils: runs in the Valkey image.
#   usage: render-acl.sh users.acl.template > users.acl
set -eu
template=${1:?usage: render-acl.sh TEMPLATE > ACLFILE}
[ -r "$template" ] || { echo "render-acl: cannot read $template" >&2; exit 1; }

awk '
function fail(message) {
    print "render-acl: " message > "/dev/stderr"
    failed = 1
    exit 1
}
function password_hash(name,    value, command, line, fields) {
    if (name !~ /^[A-Z][A-Z0-9_]*$/) fail("bad variable name " name)
    value = ENVIRON[name]
    if (value == "") fail(name " is not set")
    if (length(value) < 16) fail(name " is shorter than 16 characters")
    if (value ~ /[ \t\r\n]/) fail(name " contains white space")
    if (toupper(value) ~ /CHANGE_?ME/) fail(name " still holds the example placeholder")
    command = "printenv " name " | tr -d \"\\n\" | sha256sum"
    line = ""
    command | getline line
    close(command)
    split(line, fields, " ")
    if (fields[1] !~ /^[0-9a-f]+$/ || length(fields[1]) != 64) fail("sha256sum failed for " name)
    return "#" fields[1]
}
function emit(text,    name) {
    while (match(text, /[{][{]sha256:[A-Za-z0-9_]+[}][}]/)) {
        name = substr(text, RSTART + 9, RLENGTH - 11)
        text = substr(text, 1, RSTART - 1) password_hash(name) substr(text, RSTART + RLENGTH)
    }
    if (text ~ /[{][{]/) fail("unknown placeholder in: " text)
    print text
}
{ sub(/[ \t\r]+$/, "") }
/^[ \t]*#/ || /^[ \t]*$/ { next }
/^[ \t]/ {
    if (current == "") fail("line " NR " continues nothing")
    sub(/^[ \t]+/, "")
    current = current " " $0
    next
}
{
    if (current != "") emit(current)
    current = $0
}
END {
    if (failed) exit 1
    if (current != "") emit(current)
}
' "$template"
