"""Stands in for ``valkey-cli`` (not installed here) when the test runs valkey/load-functions.sh.

Understands what the scripts use: ``--no-auth-warning -h HOST -p PORT --user USER [-x] COMMAND...``
with the password in VALKEYCLI_AUTH (as valkey-cli reads it), ``-x`` appending standard input as
the last argument. Prints the reply the way valkey-cli does when not on a terminal (an error as
``ERR ...`` on stdout, exit status 0: why the scripts check the reply and not the status).
"""

from __future__ import annotations

import os
import sys

from redis import Redis
from redis.exceptions import RedisError


def main(argv: list[str]) -> int:
    host, port, user, from_stdin = "127.0.0.1", 6379, None, False
    args = list(argv)
    command: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "-h":
            host = args.pop(0)
        elif arg == "-p":
            port = int(args.pop(0))
        elif arg == "--user":
            user = args.pop(0)
        elif arg == "-x":
            from_stdin = True
        elif arg == "--no-auth-warning":
            continue
        else:
            command = [arg, *args]
            break
    if from_stdin:
        command.append(sys.stdin.read())
    password = os.environ.get("VALKEYCLI_AUTH") or os.environ.get("REDISCLI_AUTH")
    client = Redis(host=host, port=port, username=user, password=password, decode_responses=True, driver_info=None)
    try:
        reply = client.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    except RedisError as exc:
        sys.stdout.write(f"ERR {exc}\n")
        return 0
    finally:
        client.close()
    sys.stdout.write(("PONG" if reply is True and command[0].upper() == "PING" else str(reply)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
