"""What every check shares: the repository's layout, the report, the ACL users' password variables."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


SCRIPTS = Path(__file__).resolve().parents[1]
REPO = SCRIPTS.parent
MEMORY_BUDGET_BYTES = 700 * 1024 * 1024
COMPOSE_FILES = {
    "docker-compose.vm1.yml": "deploy/vm1.env.example",
    "docker-compose.vm2.yml": "deploy/vm2.env.example",
    "docker-compose.vm3.yml": "deploy/vm3.env.example",
    "docker-compose.allinone.yml": "deploy/allinone.env.example",
}
PUBLIC_PORTS = {80, 443}  # only Caddy publishes these on every address
SECRET_NAME = re.compile(r"(PASSWORD|SECRET)$")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
ACL_PASSWORDS = (
    "YQ_VALKEY_HEALTHCHECK_PASSWORD",
    "YQ_VALKEY_ADMIN_PASSWORD",
    "YQ_VALKEY_WEBHOOK_PASSWORD",
    "YQ_VALKEY_ORDERMANAGER_PASSWORD",
    "YQ_VALKEY_BROKERGATEWAY_PASSWORD",
    "YQ_VALKEY_DASHBOARD_PASSWORD",
    "YQ_VALKEY_NOTIFIER_PASSWORD",
)


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def ok(self, message: str) -> None:
        self.passed.append(message)
        print(f"ok    {message}", flush=True)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"FAIL  {message}", flush=True)

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.fail(message)
        return condition
