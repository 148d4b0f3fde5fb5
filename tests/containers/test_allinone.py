"""docker-compose.allinone.yml on a real engine, set up as the runbook says, with the `edge` profile.

The env file is deploy/allinone.env.example with every CHANGE_ME replaced, the local images, and
the runbook's settings for "A real TradingView alert on one VM": profiles `simulator` and `edge`
(Caddy on 80/443, its internal CA standing in for Let's Encrypt), the source allowlist on, secure
cookies. The dashboard's first admin is created with the documented one-shot before `up`; the KIS
simulator plays the broker. One stack start for every check.

This host plays TradingView and the browser: it talks to Caddy at Caddy's address on a network of
the test's own (``INTERNET``, an override file), where Caddy sees this host's own address as an
internet client keeps its own through the VM's DNAT; the allowlist names TradingView's addresses
and that one. Over HTTPS an alert ends FILLED, a wrong secret gets 401, /metrics is not reachable
from outside, the admin signs in and the session cookie is Secure, a burst of alerts keeps every
container under its memory limit (the figures are printed: `pytest -s tests/containers`), and a
post straight to the published 127.0.0.1:8080 with a forged X-Forwarded-For naming a TradingView
address is refused (it arrives from the compose network's gateway; only Caddy's address is believed),
and guesses at the dashboard's password there count against that gateway however they fill in the
header, so the per-address login lockout holds.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers import helpers
from tests.containers.conftest import Cleanup, Compose, docker, env_file
from tests.containers.standins import Images
from yquant import keys
from yquant.settings import WebhookSettings

# Building the images on a fresh machine and starting the stack take minutes (cached afterwards).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
# Without YQ_STRATEGIES the example runs the embedded strategy `demo` on the simulator's account.
STRATEGY = "demo"
SERVICES = ["valkey", "kissim", "ordermanager", "brokergateway", "webhook", "dashboard", "caddy"]
# The webhook admits 120 alerts a minute per source address (429 beyond): a burst within that,
# with the other alerts from this host.
BURST = 100
WEBHOOK = "http://127.0.0.1:8080"  # the published ports, for an SSH tunnel
DASHBOARD = "http://127.0.0.1:8000"
HOOK = "hook.yquant.test"
DASH = "dash.yquant.test"
INTERNET_SUBNET = "10.250.1.0/24"
HOST_ADDRESS = "10.250.1.1"  # this host on INTERNET: the client address Caddy sees
CADDY_INTERNET = "10.250.1.13"
EDGE = f"https://{CADDY_INTERNET}:443"
CADDY_IP = "172.30.3.2"  # YQ_CADDY_IP of the example
TRADINGVIEW = WebhookSettings().allowed_ips
CADDY_ROOT = "/data/caddy/pki/authorities/local/root.crt"
OVERRIDE: dict[str, Any] = {
    "services": {
        "caddy": {"networks": {"internet": {"ipv4_address": CADDY_INTERNET}}},
        # TradingView's addresses and this host, which plays TradingView through Caddy.
        "webhook": {"environment": {"YQ_WEBHOOK__ALLOWED_IPS": json.dumps([*TRADINGVIEW, HOST_ADDRESS])}},
    },
    "networks": {
        "internet": {
            "driver": "bridge",
            "ipam": {"config": [{"subnet": INTERNET_SUBNET, "gateway": HOST_ADDRESS, "ip_range": "10.250.1.128/25"}]},
        }
    },
}


@dataclass
class AllInOne:
    stack: Compose
    env: dict[str, str]
    admin_password: str
    caddy_root: Path

    def hget(self, key: str, field: str) -> str | None:
        value = helpers.valkey_admin(self.stack, self.env["YQ_VALKEY_ADMIN_PASSWORD"], "HGET", key, field)
        return value or None

    def xlen(self, stream: str) -> int:
        return int(helpers.valkey_admin(self.stack, self.env["YQ_VALKEY_ADMIN_PASSWORD"], "XLEN", stream))

    def edge(self, domain: str) -> httpx.Client:
        """A client of Caddy as the internet sees it: TLS for `domain` (SNI, Host, the certificate
        checked against Caddy's internal CA)."""
        return helpers.edge_client(EDGE, domain, self.caddy_root)


@pytest.fixture(scope="module")
def allinone(images: Images, cleanup: Cleanup, tmp_path_factory: pytest.TempPathFactory) -> AllInOne:
    values = helpers.example_env(
        "allinone.env.example",
        {
            "YQ_IMAGE": images.yquant,
            "VALKEY_IMAGE": images.valkey,
            "CADDY_IMAGE": images.caddy,
            "COMPOSE_PROFILES": "simulator,edge",
            "YQ_WEBHOOK_DOMAIN": HOOK,
            "YQ_DASHBOARD_DOMAIN": DASH,
            "YQ_ACME_EMAIL": "ops@yquant.test",
            "YQ_CADDY_GLOBAL_EXTRA": "local_certs",  # Caddy's internal CA: no ACME without the internet
            "YQ_WEBHOOK_ALLOWLIST_ENABLED": "true",
            "YQ_DASHBOARD_SECURE_COOKIES": "true",
        },
    )
    folder = tmp_path_factory.mktemp("allinone")
    override = folder / "allinone.override.json"  # JSON is YAML
    override.write_text(json.dumps(OVERRIDE, indent=2))
    stack = Compose(
        "docker-compose.allinone.yml",
        env_file(folder / "allinone.env", values),
        ("simulator", "edge"),
        overrides=(override,),
    )
    cleanup.add(stack.down)
    password = secrets.token_urlsafe(16)
    assert "user admin (admin) saved" in helpers.add_admin(stack, password)
    stack("up", "-d", timeout=300)
    stack.wait_healthy(SERVICES)
    caddy_root = folder / "caddy-root.crt"
    caddy = stack.container("caddy")
    caddy_root.write_text(helpers.wait_for("Caddy's internal CA", lambda: docker("exec", caddy, "cat", CADDY_ROOT)))
    one = AllInOne(stack, values, password, caddy_root)
    with one.edge(HOOK) as client:
        helpers.wait_for(f"https://{HOOK}/healthz through Caddy", lambda: client.get("/healthz").status_code == 200)
    return one  # the module's `cleanup` takes it down


def test_functions_loader_when_the_stack_is_up_then_it_exited_cleanly(allinone: AllInOne) -> None:
    loader = allinone.stack("ps", "-a", "-q", "valkey-functions").split()
    state = json.loads(docker("inspect", loader[0]))[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)


def test_alert_when_posted_over_https_through_caddy_then_the_order_fills(allinone: AllInOne) -> None:
    with allinone.edge(HOOK) as client:
        answer = client.post("/webhook", json=helpers.alert(allinone.env["YQ_WEBHOOK_SECRET"], strategy=STRATEGY))

    assert answer.status_code == 200, answer.text
    signal_id = answer.json()["signal_id"]
    helpers.wait_filled(allinone.hget, signal_id)
    # Caddy has its fixed address, and the webhook believed the X-Forwarded-For Caddy wrote.
    caddy = json.loads(docker("inspect", allinone.stack.container("caddy")))[0]["NetworkSettings"]["Networks"]
    assert caddy["yquant-allinone_yquant"]["IPAddress"] == CADDY_IP
    logs = allinone.stack("logs", "--no-color", "webhook")
    entries = [json.loads(line.split("|", 1)[1]) for line in logs.splitlines() if signal_id in line]
    assert {str(e.get("source")) for e in entries if e.get("msg") == "alert accepted"} == {HOST_ADDRESS}, entries


def test_alert_when_the_secret_is_wrong_then_401_and_nothing_is_queued(allinone: AllInOne) -> None:
    stream_before = allinone.xlen(keys.SIGNALS_WEBHOOK)
    with allinone.edge(HOOK) as client:
        answer = client.post("/webhook", json=helpers.alert("not-the-secret-" + "x" * 20, strategy=STRATEGY))

    assert answer.status_code == 401, answer.text
    assert allinone.xlen(keys.SIGNALS_WEBHOOK) == stream_before


def test_alert_when_posted_to_the_published_port_with_a_forged_forwarded_for_then_refused(
    allinone: AllInOne,
) -> None:
    # Any process on the VM (the published port is on 127.0.0.1): it names a TradingView address
    # in X-Forwarded-For and brings the right secret.
    stream_before = allinone.xlen(keys.SIGNALS_WEBHOOK)
    answer = httpx.post(
        f"{WEBHOOK}/webhook",
        json=helpers.alert(allinone.env["YQ_WEBHOOK_SECRET"], strategy=STRATEGY),
        headers={"X-Forwarded-For": TRADINGVIEW[0]},
        timeout=10,
        trust_env=False,
    )

    assert answer.status_code == 403, answer.text
    assert allinone.xlen(keys.SIGNALS_WEBHOOK) == stream_before


def test_metrics_when_asked_from_outside_then_caddy_refuses_and_no_port_answers(allinone: AllInOne) -> None:
    paths = {HOOK: ("/metrics", "/metrics/", "/readyz"), DASH: ("/metrics", "/metrics/")}
    outside = {}
    for domain in (HOOK, DASH):
        with allinone.edge(domain) as client:
            outside[domain] = {path: client.get(path).status_code for path in paths[domain]}
    reachable = {}
    for port in (6379, 8000, 8080, 9101, 9102):
        with socket.socket() as probe:
            probe.settimeout(2)
            reachable[port] = probe.connect_ex((HOST_ADDRESS, port)) == 0

    assert outside == {d: dict.fromkeys(paths[d], 404) for d in (HOOK, DASH)}, outside
    assert not any(reachable.values()), f"published beyond 127.0.0.1: {reachable}"


def test_dashboard_when_the_first_admin_signs_in_over_https_then_the_cookie_is_secure(allinone: AllInOne) -> None:
    with allinone.edge(DASH) as client:
        refused = helpers.login(client, EDGE, "admin", "wrong-password")
        assert refused.status_code == 401
        answer = helpers.login(client, EDGE, "admin", allinone.admin_password)
        assert answer.status_code == 303, answer.text[:500]
        overview = client.get("/")
    assert overview.status_code == 200
    assert "login" not in str(overview.url)
    cookies = [c for c in answer.headers.get_list("set-cookie") if c.startswith("__Host-yq_session=")]
    assert cookies, answer.headers.get_list("set-cookie")
    assert all("secure" in [part.strip().lower() for part in c.split(";")] for c in cookies), cookies


def test_dashboard_when_guesses_on_the_published_port_forge_their_addresses_then_one_lockout_counts_them(
    allinone: AllInOne,
) -> None:
    # A process on the VM guesses on the published 127.0.0.1:8000 (the SSH tunnel's port), each
    # guess naming another address in X-Forwarded-For to stay under the per-address lockout.
    def attempt(password: str, forged: str) -> int:
        with httpx.Client(base_url=DASHBOARD, timeout=30, trust_env=False) as client:
            form = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token, form.text[:500]
            # The login cookie is Secure: over plain HTTP the client sends it back by hand.
            cookie = next(c for c in form.headers.get_list("set-cookie") if c.startswith("yq_login="))
            answer = client.post(
                "/login",
                data={"username": "admin", "password": password, "csrf_token": token.group(1), "next": "/"},
                headers={"Cookie": cookie.split(";")[0], "X-Forwarded-For": forged},
            )
            return answer.status_code

    guesses = [attempt("wrong-password", f"203.0.113.{n}") for n in range(1, 6)]
    right_password = attempt(allinone.admin_password, "203.0.113.99")

    assert guesses == [401] * 5
    assert right_password == 429  # locked from where the guesses really came from, whatever they said


def test_burst_when_100_alerts_arrive_then_every_container_stays_under_its_limit(
    allinone: AllInOne, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = allinone.env["YQ_WEBHOOK_SECRET"]
    with helpers.StatsSampler() as sampler, allinone.edge(HOOK) as client:

        def post(n: int) -> int:
            body = helpers.alert(secret, strategy=STRATEGY, quantity=1 + n % 3)
            return client.post("/webhook", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(post, range(BURST)))
        assert codes.count(200) == BURST, {code: codes.count(code) for code in set(codes)}
        last = client.post("/webhook", json=helpers.alert(secret, strategy=STRATEGY))
        assert last.status_code == 200, last.text
        # Decided (the same buy within 3 s is denied as a duplicate): the burst has drained by then.
        helpers.wait_decided(allinone.hget, last.json()["signal_id"], timeout=180)

    figures = helpers.peaks([allinone.stack], sampler)
    with capsys.disabled():
        print(f"\nall-in-one, {BURST} alerts through Caddy: peak memory per container (cgroup max usage, docker stats)")
        for peak in figures:
            print("  " + peak.line())
    for peak in figures:
        assert peak.limit_bytes > 0, f"{peak.container} has no memory limit"
        assert peak.oom_kills == 0, peak.line()
        assert 0 < peak.sampled_bytes < peak.limit_bytes, peak.line()
    restarts = {p.container: json.loads(docker("inspect", p.container))[0]["RestartCount"] for p in figures}
    assert set(restarts.values()) == {0}, restarts
