"""docker-compose.allinone.yml on a real engine, set up as the runbook says.

The env file is deploy/allinone.env.example with every CHANGE_ME replaced (and the local images);
the dashboard's first admin is created with the documented one-shot before `up`; the KIS
simulator plays the broker (profile `simulator`). An alert posted to the webhook ends FILLED,
a wrong secret gets 401, the admin can sign in, and a burst of alerts keeps every container under
its memory limit (the figures are printed: `pytest -s tests/containers`).
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.containers import helpers
from tests.containers.conftest import Cleanup, Compose, docker, env_file
from tests.containers.standins import Images

# Building the images on a fresh machine and starting the stack take minutes (cached afterwards).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
# Without YQ_STRATEGIES the example runs the embedded strategy `demo` on the simulator's account.
STRATEGY = "demo"
SERVICES = ["valkey", "kissim", "ordermanager", "brokergateway", "webhook", "dashboard"]
# The webhook admits 120 alerts a minute per source address (429 beyond): a burst within that.
BURST = 100
WEBHOOK = "http://127.0.0.1:8080"
DASHBOARD = "http://127.0.0.1:8000"


@dataclass
class AllInOne:
    stack: Compose
    env: dict[str, str]
    admin_password: str

    def hget(self, key: str, field: str) -> str | None:
        value = helpers.valkey_admin(self.stack, self.env["YQ_VALKEY_ADMIN_PASSWORD"], "HGET", key, field)
        return value or None


@pytest.fixture(scope="module")
def allinone(images: Images, cleanup: Cleanup, tmp_path_factory: pytest.TempPathFactory) -> AllInOne:
    values = helpers.example_env("allinone.env.example", {"YQ_IMAGE": images.yquant, "VALKEY_IMAGE": images.valkey})
    folder = tmp_path_factory.mktemp("allinone")
    stack = Compose("docker-compose.allinone.yml", env_file(folder / "allinone.env", values), ("simulator",))
    cleanup.add(stack.down)
    password = secrets.token_urlsafe(16)
    assert "user admin (admin) saved" in helpers.add_admin(stack, password)
    stack("up", "-d", timeout=300)
    stack.wait_healthy(SERVICES)
    return AllInOne(stack, values, password)  # the module's `cleanup` takes it down


def test_functions_loader_when_the_stack_is_up_then_it_exited_cleanly(allinone: AllInOne) -> None:
    loader = allinone.stack("ps", "-a", "-q", "valkey-functions").split()
    state = json.loads(docker("inspect", loader[0]))[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)


def test_alert_when_posted_to_the_webhook_then_the_order_fills(allinone: AllInOne) -> None:
    answer = httpx.post(
        f"{WEBHOOK}/webhook", json=helpers.alert(allinone.env["YQ_WEBHOOK_SECRET"], strategy=STRATEGY), timeout=10
    )

    assert answer.status_code == 200, answer.text
    helpers.wait_filled(allinone.hget, answer.json()["signal_id"])


def test_alert_when_the_secret_is_wrong_then_401_and_nothing_is_queued(allinone: AllInOne) -> None:
    answer = httpx.post(
        f"{WEBHOOK}/webhook", json=helpers.alert("not-the-secret-" + "x" * 20, strategy=STRATEGY), timeout=10
    )

    assert answer.status_code == 401, answer.text


def test_dashboard_when_the_first_admin_signs_in_then_the_overview_opens(allinone: AllInOne) -> None:
    with httpx.Client(timeout=30) as client:
        refused = helpers.login(client, DASHBOARD, "admin", "wrong-password")
        assert refused.status_code == 401
        answer = helpers.login(client, DASHBOARD, "admin", allinone.admin_password)
        assert answer.status_code == 303, answer.text[:500]
        overview = client.get(f"{DASHBOARD}/")
    assert overview.status_code == 200
    assert "login" not in str(overview.url)


def test_burst_when_100_alerts_arrive_then_every_container_stays_under_its_limit(
    allinone: AllInOne, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = allinone.env["YQ_WEBHOOK_SECRET"]
    with helpers.StatsSampler() as sampler, httpx.Client(timeout=30) as client:

        def post(n: int) -> int:
            body = helpers.alert(secret, strategy=STRATEGY, quantity=1 + n % 3)
            return client.post(f"{WEBHOOK}/webhook", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(post, range(BURST)))
        assert codes.count(200) == BURST, {code: codes.count(code) for code in set(codes)}
        last = client.post(f"{WEBHOOK}/webhook", json=helpers.alert(secret, strategy=STRATEGY))
        assert last.status_code == 200, last.text
        # Decided (the same buy within 3 s is denied as a duplicate): the burst has drained by then.
        helpers.wait_decided(allinone.hget, last.json()["signal_id"], timeout=180)

    figures = helpers.peaks([allinone.stack], sampler)
    with capsys.disabled():
        print(f"\nall-in-one, {BURST} alerts: peak memory per container (cgroup max usage, docker stats)")
        for peak in figures:
            print("  " + peak.line())
    for peak in figures:
        assert peak.limit_bytes > 0, f"{peak.container} has no memory limit"
        assert peak.oom_kills == 0, peak.line()
        assert 0 < peak.sampled_bytes < peak.limit_bytes, peak.line()
    restarts = {p.container: json.loads(docker("inspect", p.container))[0]["RestartCount"] for p in figures}
    assert set(restarts.values()) == {0}, restarts
