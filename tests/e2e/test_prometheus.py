"""The real Prometheus (Debian's) scraping the running system with the repository's config and rules.

monitoring/prometheus.yml names its targets by VM host names; here each job keeps its name and
labels and points at the process on loopback, scraped and evaluated every second. The rules are
monitoring/alerts.yml unchanged, so a firing rule proves its metric names and labels are the ones
the services export. A stopped webhook (SIGSTOP: the supervisor would restart a killed one) must go
down in Prometheus and put YQuantCriticalServiceDown into pending (its `for: 1m` is left as is).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.helpers import eventually
from tests.harness.devsystem import DevSystem
from yquant.embedded import free_port

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
JOBS = ("yquant-webhook", "yquant-ordermanager", "yquant-brokergateway", "yquant-dashboard")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSystem]:
    ports = {"YQ_ORDERMANAGER__METRICS_PORT": str(free_port()), "YQ_GATEWAY__METRICS_PORT": str(free_port())}
    with DevSystem(tmp_path_factory.mktemp("system"), ports) as running:
        yield running


def local_config(system: DevSystem) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(MONITORING / "alerts.yml")]
    targets = {
        "yquant-webhook": f"127.0.0.1:{system.webhook_port}",
        "yquant-dashboard": f"127.0.0.1:{system.dashboard_port}",
        "yquant-ordermanager": f"127.0.0.1:{system.env['YQ_ORDERMANAGER__METRICS_PORT']}",
        "yquant-brokergateway": f"127.0.0.1:{system.env['YQ_GATEWAY__METRICS_PORT']}",
    }
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    assert {job["job_name"] for job in jobs} == set(JOBS), "a yquant job is missing from prometheus.yml"
    for job in jobs:
        job["static_configs"][0]["targets"] = [targets[job["job_name"]]]
    config["scrape_configs"] = jobs
    return config


@pytest.fixture(scope="module")
def prometheus(system: DevSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: scripts/ensure-prometheus.sh installs Debian's"
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(yaml.safe_dump(local_config(system)))
    port = free_port()
    log = (work / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env={k: v for k, v in os.environ.items() if not k.startswith("YQ_")},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _ready(url, process, work), 60, 0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _ready(url: str, process: subprocess.Popen[bytes], work: Path) -> bool:
    assert process.poll() is None, (work / "prometheus.log").read_text()[-3000:]
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def query(url: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def health(url: str) -> dict[str, str]:
    targets = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return {t["labels"]["job"]: t["health"] for t in targets}


def test_every_yquant_target_is_up_and_exports_what_the_alerts_read(prometheus: str) -> None:
    assert eventually(lambda: (h := health(prometheus)) and all(h.get(j) == "up" for j in JOBS) and h, 60, 0.5)
    for job in JOBS:
        assert eventually(partial(query, prometheus, f'count({{job="{job}", __name__=~"yquant_.+"}})'), 30)
    # The rules' inputs are there under the names the rules use.
    assert eventually(lambda: query(prometheus, "yquant_valkey_used_memory_bytes / yquant_valkey_maxmemory_bytes"), 30)
    assert eventually(lambda: query(prometheus, "yquant_stream_lag"), 30)
    # The gateway's start-up read of KIS's open orders sets the gauge per account and market; the
    # simulator's accounts start with none that yQuant did not place, so its alert stays quiet.
    unowned = 'max by (account, market) (yquant_gateway_unowned_open_orders{account!="", market!=""})'
    assert eventually(lambda: query(prometheus, unowned), 60, 0.5)
    assert not query(prometheus, 'ALERTS{alertname="YQuantUnownedOpenOrders"}')
    # Healthy: no service-down alert (a first scrape before a service was up may leave one for an
    # evaluation or two).
    assert eventually(lambda: not query(prometheus, 'ALERTS{alertname="YQuantCriticalServiceDown"}'), 60, 0.5)


def test_a_stopped_webhook_goes_down_and_its_alert_becomes_pending(system: DevSystem, prometheus: str) -> None:
    eventually(lambda: health(prometheus).get("yquant-webhook") == "up", 60, 0.5)
    pid = system.pid_of("webhook")
    os.kill(pid, signal.SIGSTOP)
    try:
        assert eventually(lambda: health(prometheus).get("yquant-webhook") == "down", 60, 0.5)
        [alert] = eventually(
            lambda: query(prometheus, 'ALERTS{alertname="YQuantCriticalServiceDown", alertstate="pending"}'), 60, 0.5
        )
        assert (alert["metric"]["job"], alert["metric"]["service"], alert["metric"]["severity"]) == (
            "yquant-webhook",
            "webhook",
            "critical",
        )
        assert health(prometheus)["yquant-ordermanager"] == "up"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert eventually(lambda: health(prometheus).get("yquant-webhook") == "up", 60, 0.5)
