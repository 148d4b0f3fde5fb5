"""A Valkey that runs the production ACL: valkey/users.acl.template rendered and started by
valkey/start.sh, as ``make deploy-check`` starts it (scripts/deploy_check.py does the work), for
tests of what each service's ACL user may and may not do."""

from __future__ import annotations

import functools
import importlib.util
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def deploy_check() -> ModuleType:
    """scripts/deploy_check.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_check", REPO / "scripts" / "deploy_check.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def production_acl_valkey() -> Iterator[tuple[int, dict[str, str]]]:
    """(port, password by ACL user: "admin", "notifier", ...), fresh passwords each time."""
    check = deploy_check()
    passwords = {name: secrets.token_urlsafe(24) for name in check.ACL_PASSWORDS}
    with check.running_valkey(REPO, passwords) as (port, _log):
        yield (
            port,
            {name.removeprefix("YQ_VALKEY_").removesuffix("_PASSWORD").lower(): v for name, v in passwords.items()},
        )
