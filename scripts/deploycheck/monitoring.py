"""``monitoring``: Prometheus' config, the alert rules and their unit tests through promtool, and
the Grafana dashboard.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from deploycheck.common import Report

if TYPE_CHECKING:
    pass


# --- monitoring ----------------------------------------------------------------------------------


def check_with_promtool(root: Path, report: Report) -> None:
    """The real Prometheus parser on the config and the rules, and the rules' unit tests
    (monitoring/alerts.test.yml: each paging alert fires on its failure, not while healthy)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        print("skip  monitoring: no promtool here to check the rules (scripts/ensure-prometheus.sh)", flush=True)
        return
    monitoring = root / "monitoring"
    with tempfile.TemporaryDirectory() as scratch:
        # The config names the rules where the container mounts them; check it against the repo's.
        config = yaml.safe_load((monitoring / "prometheus.yml").read_text())
        config["rule_files"] = [str(monitoring / "alerts.yml")]
        local = Path(scratch) / "prometheus.yml"
        local.write_text(yaml.safe_dump(config))
        steps = (
            ("prometheus.yml", [promtool, "check", "config", str(local)], root),
            ("alerts.yml", [promtool, "check", "rules", str(monitoring / "alerts.yml")], root),
            ("alerts.test.yml", [promtool, "test", "rules", "alerts.test.yml"], monitoring),
        )
        for name, command, cwd in steps:
            result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()
                report.fail(f"monitoring/{name}: promtool {command[1]} {command[2]} failed: {output[-1500:]}")
                return
    report.ok("monitoring: promtool accepts the config and the rules, and the rules' unit tests pass")


def check_monitoring(root: Path, report: Report) -> None:
    problems = []
    try:
        prometheus = yaml.safe_load((root / "monitoring" / "prometheus.yml").read_text())
        jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
        for job in ("yquant-webhook", "yquant-ordermanager", "yquant-brokergateway", "yquant-dashboard"):
            if job not in jobs:
                problems.append(f"prometheus.yml: no scrape job {job}")
        rules = yaml.safe_load((root / "monitoring" / "alerts.yml").read_text())
        metrics: set[str] = set()
        count = 0
        for group in rules["groups"]:
            for rule in group["rules"]:
                count += 1
                name = rule.get("alert", "?")
                if not rule.get("expr") or not (rule.get("labels") or {}).get("severity"):
                    problems.append(f"alerts.yml: {name} needs expr and labels.severity")
                if not (rule.get("annotations") or {}).get("summary"):
                    problems.append(f"alerts.yml: {name} needs annotations.summary")
                metrics.update(re.findall(r"\byquant_[a-z0-9_]+", str(rule.get("expr", ""))))
        json.loads((root / "monitoring" / "grafana" / "dashboards" / "yquant-overview.json").read_text())
    except (OSError, KeyError, TypeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        problems.append(f"cannot read the monitoring files: {exc!r}")
        metrics, count = set(), 0
    for problem in problems:
        report.fail(f"monitoring: {problem}")
    if not problems:
        report.ok(f"monitoring: {count} alert rules; they expect {', '.join(sorted(metrics))}")
    check_with_promtool(root, report)
    caddy = shutil.which("caddy")
    if caddy and (root / "deploy" / "Caddyfile").exists():
        environment = dict(
            os.environ,
            YQ_WEBHOOK_DOMAIN="hook.example.com",
            YQ_DASHBOARD_DOMAIN="dash.example.com",
            YQ_ACME_EMAIL="ops@example.com",
            YQ_WEBHOOK_UPSTREAM="webhook:8080",
            YQ_DASHBOARD_UPSTREAM="10.0.0.12:8000",
        )
        result = subprocess.run(
            [caddy, "adapt", "--config", str(root / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        if result.returncode != 0:
            report.fail(f"deploy/Caddyfile: caddy adapt failed: {result.stderr.strip()[-400:]}")
        else:
            report.ok("deploy/Caddyfile: caddy adapt accepts it")
    else:
        print("skip  deploy/Caddyfile: no caddy binary here to validate it (apt-get install caddy)", flush=True)
