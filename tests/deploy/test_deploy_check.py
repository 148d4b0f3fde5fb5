"""deploy_check passes on the real files and fails, saying why, on each kind of seeded fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import RunCheck, replace_once

STATIC = "compose,memory,image,monitoring"
PLACE_SHOWN = "FCALL yq_order_place 11 yq:risk:dup:main:KRX:005930:BUY:s yq:risk:r..."


def test_deployment_files_when_unchanged_then_every_check_but_wheels_passes(
    deployment: Path, run_check: RunCheck
) -> None:
    result = run_check(deployment, "--only", STATIC + ",acl")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


@pytest.mark.parametrize(
    ("compose_file", "old", "new", "expected"),
    [
        pytest.param(
            "docker-compose.vm1.yml",
            "  read_only: true\n",
            "  read_onyl: true\n",
            "docker-compose.vm1.yml: `docker compose config -q` failed",
            id="typo-in-a-key",
        ),
        pytest.param(
            "docker-compose.vm1.yml",
            '"${VM1_PRIVATE_IP:?VM1\'s private address}:6379:6379"',
            '"6379:6379"',
            "Valkey's port 0.0.0.0:6379->6379 must be bound to VM1's private address only",
            id="valkey-on-every-address",
        ),
        pytest.param(
            "docker-compose.allinone.yml",
            "    # No ports: only the services on this compose network reach Valkey.\n",
            '    ports: ["0.0.0.0:6379:6379"]\n',
            "port 0.0.0.0:6379->6379 is published on every address",
            id="valkey-on-0.0.0.0",
        ),
        pytest.param(
            "docker-compose.vm3.yml",
            "YQ_VALKEY__PASSWORD: ${YQ_VALKEY_WEBHOOK_PASSWORD:?}",
            "YQ_VALKEY__PASSWORD: ${YQ_VALKEY_WEBHOOK_PASSWORD:-}",
            "secret ${YQ_VALKEY_WEBHOOK_PASSWORD} must be required",
            id="optional-secret",
        ),
        pytest.param(
            "docker-compose.vm3.yml",
            "    cap_add: [NET_BIND_SERVICE]\n",
            "    cap_add: [NET_BIND_SERVICE, SYS_ADMIN]\n",
            "only Caddy may add NET_BIND_SERVICE",
            id="extra-capability",
        ),
        pytest.param(
            "docker-compose.vm2.yml",
            "  dashboard:\n    <<: *yquant\n",
            "  dashboard:\n    <<: *yquant\n    read_only: false\n",
            "service dashboard: read_only must be true",
            id="writable-root",
        ),
        pytest.param(
            "docker-compose.vm1.yml",
            "          memory: 176M\n",
            "          memory: 276M\n",
            "docker-compose.vm1.yml: memory limits add up to 724 MiB of 700",
            id="over-the-memory-budget",
        ),
        pytest.param(
            "docker-compose.vm3.yml",
            "      YQ_LOG_LEVEL: ${YQ_LOG_LEVEL:-INFO}\n",
            "      YQ_LOG_LEVEL: ${YQ_LOG_LEVEL:-INFO}\n      YQ_UNDOCUMENTED: ${YQ_UNDOCUMENTED:-x}\n",
            "${YQ_UNDOCUMENTED} is not documented in vm3.env.example",
            id="undocumented-variable",
        ),
        pytest.param(
            "docker-compose.vm3.yml",
            '["${YQ_CADDY_IP:-172.30.3.2}"]',
            '["${YQ_EDGE_SUBNET:-172.30.3.0/24}"]',
            "YQ_WEBHOOK__TRUSTED_PROXIES trusts 172.30.3.0/24, wider than one address",
            id="webhook-trusts-the-edge-subnet",
        ),
        pytest.param(
            "docker-compose.vm2.yml",
            '"${YQ_DASHBOARD_PROXY:?the address Caddy connects from}", "${YQ_CADDY_IP:-172.30.3.2}"',
            '"${YQ_DASHBOARD_PROXY:?the address Caddy connects from}", "${YQ_EDGE_SUBNET:-172.30.3.0/24}"',
            "YQ_DASHBOARD__TRUSTED_PROXIES trusts 172.30.3.0/24, wider than one address",
            id="dashboard-trusts-the-edge-subnet",
        ),
        pytest.param(
            "docker-compose.vm3.yml",
            '["${YQ_CADDY_IP:-172.30.3.2}"]',
            '["172.30.3.1"]',
            "trusts 172.30.3.1 on network edge, which is no Caddy's fixed address",
            id="webhook-trusts-the-gateway",
        ),
        pytest.param(
            "docker-compose.vm3.yml",
            "          ip_range: ${YQ_EDGE_IP_RANGE:-172.30.3.128/25}\n",
            "",
            "network edge has no ip_range: another container may take 172.30.3.2",
            id="caddy-address-up-for-grabs",
        ),
    ],
)
def test_compose_file_when_faulty_then_check_fails_with_reason(
    deployment: Path, run_check: RunCheck, compose_file: str, old: str, new: str, expected: str
) -> None:
    replace_once(deployment / compose_file, old, new)

    result = run_check(deployment, "--only", "compose,memory", "--compose", compose_file)

    assert result.returncode == 1, result.stdout
    assert expected in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "    (+xadd %W~yq:stream:signals:webhook)\n",
            "    (+xadd %W~yq:stream:*)\n",
            "user webhook may run `XADD yq:stream:orders * type T data {}` but must not",
            id="webhook-may-append-orders",
        ),
        pytest.param(
            "resetkeys resetchannels -@all +ping +waitaof\n",
            "resetkeys resetchannels -@all +ping +waitaof\n    (+@read %R~yq:*)\n",
            "user webhook may run `HGETALL yq:account:main` but must not",
            id="webhook-may-read-accounts",
        ),
        pytest.param(
            "    (+@read +scan -@dangerous %R~yq:[^tl]* %R~yq:trading:*)\n",
            "    (+@read +scan -@dangerous %R~yq:*)\n",
            "user dashboard may run `GET yq:token:abc` but must not",
            id="dashboard-may-read-tokens",
        ),
        pytest.param(
            "resetkeys resetchannels -@all +ping\n\n# Operators",
            "resetkeys resetchannels +@all\n\n# Operators",
            "user healthcheck may run `FLUSHALL` but must not",
            id="healthcheck-may-flush",
        ),
        pytest.param(
            "user default off resetpass resetkeys resetchannels -@all\n",
            "user default on nopass resetkeys resetchannels -@all +ping\n",
            "an unauthenticated client may PING",
            id="default-user-on",
        ),
        pytest.param(
            "~yq:equity:* ~yq:reply:dash-*\n",
            "~yq:equity:* ~yq:reply:dash-* ~yq:order:*\n",
            "user dashboard may run `HSET yq:order:o1 state FILLED` but must not",
            id="dashboard-may-write-orders",
        ),
        pytest.param(
            "~yq:equity:* ~yq:reply:dash-*\n",
            "~yq:equity:* ~yq:reply:*\n",
            "user dashboard may run `RPUSH yq:reply:om-r1 {}` but must not",
            id="dashboard-may-answer-the-order-managers-quotes",
        ),
        pytest.param(
            "    (+xadd %W~yq:stream:signals:dashboard %W~yq:stream:cancels",
            "    (+xadd %W~yq:stream:signals:dashboard %W~yq:stream:orders %W~yq:stream:cancels",
            "user dashboard may run `XADD yq:stream:orders * type SubmitOrder data {}` but must not",
            id="dashboard-may-command-the-gateway",
        ),
        pytest.param(
            "%W~yq:stream:queries:dashboard\n        %W~yq:stream:audit)",
            "%W~yq:stream:queries:dashboard\n        %W~yq:stream:audit %W~yq:stream:queries)",
            "user dashboard may run `XADD yq:stream:queries * type T data {}` but must not",
            id="dashboard-may-queue-the-order-managers-queries",
        ),
        pytest.param(
            "    (+fcall ~yq:dedupe:signal:* ~yq:stream:signals:webhook)\n",
            "    (+fcall ~yq:*)\n",
            f"user webhook may run `{PLACE_SHOWN}` but must not",
            id="webhook-may-place-orders",
        ),
        pytest.param(
            "    (+fcall ~yq:dedupe:signal:* ~yq:stream:signals:dashboard)\n",
            "    (+fcall ~yq:*)\n",
            f"user dashboard may run `{PLACE_SHOWN}` but must not",
            id="dashboard-may-place-orders",
        ),
        pytest.param(
            "    (+fcall ~yq:order:* ~yq:orders:* ~yq:stream:orders ~yq:stream:executions ~yq:stream:progress)\n",
            "    (+fcall ~yq:order:* ~yq:orders:* ~yq:stream:orders ~yq:stream:executions ~yq:stream:progress\n"
            "        ~yq:risk:* ~yq:signal:* ~yq:signals:* ~yq:stream:decisions)\n",
            f"user brokergateway may run `{PLACE_SHOWN}` but must not",
            id="gateway-may-place-orders",
        ),
    ],
)
def test_acl_template_when_too_permissive_then_check_fails_with_reason(
    deployment: Path, run_check: RunCheck, old: str, new: str, expected: str
) -> None:
    replace_once(deployment / "valkey" / "users.acl.template", old, new)

    result = run_check(deployment, "--only", "acl", "--compose", "docker-compose.vm1.yml")

    assert result.returncode == 1, result.stdout
    assert expected in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "    (+set %W~yq:dedupe:signal:*)\n    (+xadd %W~yq:stream:signals:webhook)\n",
            "    (+xadd %W~yq:stream:signals:webhook)\n",
            ["user webhook may not run `SET yq:dedupe:signal:s1 1 NX EX 60` but must"],
            id="webhook-dedupe",
        ),
        pytest.param(
            "        ~yq:risk:* ~yq:signal:* ~yq:signals:* ~yq:stream:decisions)\n",
            "        ~yq:risk:* ~yq:signal:* ~yq:signals:*)\n",
            [
                f"user ordermanager may not run `{PLACE_SHOWN}` but must",
                "a permitted call failed: No permissions to access a key",
            ],
            id="ordermanager-placed-decision",
        ),
        pytest.param(
            "%W~yq:stream:signals:dashboard %W~yq:stream:cancels ",
            "%W~yq:stream:signals:dashboard ",
            ["user dashboard may not run `XADD yq:stream:cancels MAXLEN ~ 100000 * type CancelOrder data {}` but must"],
            id="dashboard-cancels",
        ),
    ],
)
def test_acl_template_when_a_permitted_command_is_lost_then_check_fails(
    deployment: Path, run_check: RunCheck, old: str, new: str, expected: list[str]
) -> None:
    replace_once(deployment / "valkey" / "users.acl.template", old, new)

    result = run_check(deployment, "--only", "acl", "--compose", "docker-compose.vm1.yml")

    assert result.returncode == 1, result.stdout
    for line in expected:
        assert line in result.stdout, result.stdout


def test_valkey_conf_when_unsafe_then_check_fails_naming_each_setting(deployment: Path, run_check: RunCheck) -> None:
    conf = deployment / "valkey" / "valkey.conf"
    replace_once(conf, "maxmemory-policy noeviction", "maxmemory-policy allkeys-lru")
    replace_once(conf, "appendfsync everysec", "appendfsync always")
    replace_once(conf, "maxmemory 200mb", "maxmemory 280mb")

    result = run_check(deployment, "--only", "acl", "--compose", "docker-compose.vm1.yml")

    assert result.returncode == 1, result.stdout
    assert "maxmemory-policy is 'allkeys-lru', want 'noeviction'" in result.stdout
    assert "appendfsync is 'always', want 'everysec'" in result.stdout
    assert "maxmemory 280 MiB is not well below the container limit 288 MiB" in result.stdout


def test_dockerfile_when_final_stage_runs_as_root_then_check_fails(deployment: Path, run_check: RunCheck) -> None:
    replace_once(deployment / "Dockerfile", "USER 10001:10001", "USER root")

    result = run_check(deployment, "--only", "image")

    assert result.returncode == 1
    assert "Dockerfile: the final stage must run as a non-root USER" in result.stdout


def test_dockerfile_when_installing_without_hashes_then_check_fails(deployment: Path, run_check: RunCheck) -> None:
    replace_once(deployment / "Dockerfile", "--require-hashes ", "")

    result = run_check(deployment, "--only", "image")

    assert result.returncode == 1
    assert "with --require-hashes" in result.stdout


def test_dockerfile_when_copying_a_package_dockerignore_excludes_then_check_fails(
    deployment: Path, run_check: RunCheck
) -> None:
    replace_once(deployment / ".dockerignore", "!notifier\n", "")

    result = run_check(deployment, "--only", "image")

    assert result.returncode == 1
    assert "COPY notifier: .dockerignore keeps it out of the build context (add !notifier)" in result.stdout


def test_alert_rule_when_it_no_longer_fires_on_its_failure_then_the_rules_unit_test_fails(
    deployment: Path, run_check: RunCheck
) -> None:
    """A service down for ten minutes before anyone hears of it: promtool's rule tests catch it."""
    replace_once(
        deployment / "monitoring" / "alerts.yml",
        'expr: up{job=~"yquant-(webhook|ordermanager|brokergateway)"} == 0\n        for: 1m',
        'expr: up{job=~"yquant-(webhook|ordermanager|brokergateway)"} == 0\n        for: 10m',
    )

    result = run_check(deployment, "--only", "monitoring")

    assert result.returncode == 1
    assert "monitoring/alerts.test.yml: promtool test rules" in result.stdout
    assert "YQuantCriticalServiceDown" in result.stdout


def test_alert_rule_when_its_expression_does_not_parse_then_check_fails(deployment: Path, run_check: RunCheck) -> None:
    replace_once(deployment / "monitoring" / "alerts.yml", "> 0.95", "> > 0.95")

    result = run_check(deployment, "--only", "monitoring")

    assert result.returncode == 1
    assert ": promtool check " in result.stdout  # the config check loads the rules too: it fails first
    assert "parse error" in result.stdout


def test_runbook_acl_table_when_a_user_is_missing_then_check_fails(deployment: Path, run_check: RunCheck) -> None:
    runbook = deployment / "docs" / "operations.md"
    text = runbook.read_text()
    row = next(line for line in text.splitlines() if line.strip().startswith("| `notifier` |"))
    runbook.write_text(text.replace(row + "\n", ""))

    result = run_check(deployment, "--only", "acl", "--compose", "docker-compose.vm1.yml")

    assert result.returncode == 1, result.stdout
    assert "user notifier is in valkey/users.acl.template but not in the runbook's ACL table" in result.stdout


def test_acl_rules_doc_when_a_rule_is_not_listed_then_check_fails(deployment: Path, run_check: RunCheck) -> None:
    doc = deployment / "docs" / "acl-rules.md"
    doc.write_text(doc.read_text().replace("- `PING`\n", "", 1))

    result = run_check(deployment, "--only", "acl", "--compose", "docker-compose.vm1.yml")

    assert result.returncode == 1, result.stdout
    assert "docs/acl-rules.md is not the list of rules the check proves" in result.stdout
    assert "--write-acl-rules" in result.stdout
