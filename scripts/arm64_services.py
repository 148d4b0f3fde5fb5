"""Inside the arm64 root filesystem of ``make arm64-check``: start every service, check it answers.

Run by scripts/arm64-check.sh with the rootfs's aarch64 CPython 3.13 (under qemu-user on an
x86_64 machine), the aarch64 wheels of requirements.lock and the project's packages under /app,
as the image lays them out. The processes are the ones ``yquant up`` starts, with the environment
it gives them (``yquant.supervisor.build_children``), plus the notifier (a webhook destination
that is never called). Unlike ``yquant up`` it starts them one at a time and waits as long as
emulation needs (``yquant up`` gives each ``YQ_START_TIMEOUT_S``, 30 s by default, which an
emulated import does not always meet), so each start time is the service's own.

A service is healthy when it answers what production monitors: ``/healthz`` (webhook, dashboard,
simulator), ``/readyz`` (webhook: Valkey answers), Prometheus ``/metrics`` (order manager and
gateway), and for every Python service its heartbeat in Valkey. Exit status 0 when all are.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from yquant import embedded, keys, supervisor, valkey
from yquant.settings import get_settings
from yquant.users import ensure_admin_user

EM_AARCH64 = 183  # ELF e_machine
SERVICES = frozenset({"valkey", "kissim", "webhook", "dashboard", "ordermanager", "brokergateway", "notifier"})
START_TIMEOUT_S = float(os.environ.get("ARM64_START_TIMEOUT_S", "180"))
# Each service's own check: (path on its port, what the answer must contain).
HTTP_CHECKS: dict[str, list[tuple[str, str]]] = {
    "kissim": [("/healthz", '"status":"ok"')],
    "webhook": [("/healthz", '"status":"ok"'), ("/readyz", "")],
    "dashboard": [("/healthz", '"status":"ok"')],
    "ordermanager": [("/metrics", "python_info")],
    "brokergateway": [("/metrics", "python_info")],
}


def say(text: str) -> None:
    sys.stdout.write(f"[arm64] {text}\n")
    sys.stdout.flush()


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    return int.from_bytes(header[18:20], "little")


def ports(layout: supervisor.Layout) -> dict[str, int]:
    settings = get_settings()
    return {
        "kissim": layout.kissim_port,
        "webhook": layout.webhook_port,
        "dashboard": layout.dashboard_port,
        "ordermanager": settings.ordermanager.metrics_port,
        "brokergateway": settings.gateway.metrics_port,
    }


def http_answers(name: str, port: int) -> list[str] | None:
    """The answers of the service's checks, or None while one is not yet right."""
    answers = []
    for path, expected in HTTP_CHECKS.get(name, []):
        try:
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2.0)
        except httpx.HTTPError:
            return None
        if response.status_code != 200 or expected not in response.text:
            return None
        body = response.text.strip() if path != "/metrics" else f"{len(response.text.splitlines())} lines"
        answers.append(f"GET {path} {response.status_code} {body[:60]}")
    return answers


def heartbeat(client: Any, name: str, instance: str) -> dict[str, str] | None:
    raw = client.hgetall(keys.heartbeat(name, instance))
    return {k.decode(): v.decode() for k, v in raw.items()} or None


def wait_healthy(sup: supervisor.Supervisor, child: supervisor.Child, client: Any) -> list[str]:
    deadline = time.monotonic() + START_TIMEOUT_S
    port = ports(sup.layout).get(child.name)
    answers: list[str] | None = None
    beat: dict[str, str] | None = None
    while time.monotonic() < deadline:
        if child.process is not None and child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.process.returncode} during start")
        if answers is None and port is not None:
            answers = http_answers(child.name, port)
        if port is None:
            answers = answers or []
        needs_beat = child.name != "kissim"  # the simulator stands in for KIS: no heartbeat
        if needs_beat and beat is None:
            beat = heartbeat(client, child.name, child.env["YQ_INSTANCE"])
        if answers is not None and (beat is not None or not needs_beat):
            if beat is not None:
                rss = int(beat.get("rss_kib", "0") or 0) // 1024
                answers.append(f"heartbeat pid {beat.get('pid')} rss {rss} MiB")
            return answers
        time.sleep(0.25)
    raise RuntimeError(f"{child.name} not healthy after {START_TIMEOUT_S:.0f}s")


def main() -> int:
    settings = get_settings()
    machine = platform.machine()
    python_elf = elf_machine(Path(os.path.realpath(sys.executable)))
    valkey_elf = elf_machine(embedded.valkey_binary())
    say(f"machine {machine}, Python {platform.python_version()}, libc {' '.join(platform.libc_ver())}")
    say(f"ELF e_machine: python {python_elf}, valkey-server {valkey_elf} (aarch64 is {EM_AARCH64})")
    if machine != "aarch64" or python_elf != EM_AARCH64 or valkey_elf != EM_AARCH64:
        say("FAIL: not running aarch64 binaries")
        return 1
    layout = supervisor.layout_from_env(settings)
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    children = supervisor.build_children(layout)
    sup = supervisor.Supervisor(layout, children)
    ensure_admin_user(settings, layout.state_dir)
    results: list[tuple[str, float, list[str]]] = []
    failed = ""
    client = None
    try:
        for child in children:
            started = time.monotonic()
            sup.start_child(child)
            try:
                if child.name == "valkey":
                    sup.wait_ready(child, timeout_s=START_TIMEOUT_S)
                    client = valkey.connect_sync_url(layout.valkey_url)
                    valkey.load_functions_sync(client)
                    answers = [f"PING {client.ping()}", f"valkey {client.info('server')['valkey_version']}"]
                else:
                    answers = wait_healthy(sup, child, client)
            except RuntimeError as exc:
                failed = f"{child.name}: {exc}"
                break
            elapsed = time.monotonic() - started
            results.append((child.name, elapsed, answers))
            say(f"{child.name:<13} healthy after {elapsed:5.1f}s: {'; '.join(answers)}")
    finally:
        if client is not None:
            client.close()
        for child in children:  # stop_all's order does not name the notifier: stop it first
            if child.name not in supervisor.STOP_ORDER and child.process is not None:
                child.process.terminate()
                child.process.wait(timeout=10)
                child.process = None
        sup.stop_all()
    names = [child.name for child in children]
    missing = sorted(SERVICES - set(names))
    if missing:
        failed = failed or f"not started: {', '.join(missing)}"
    if failed:
        say(f"FAIL {failed}")
        for child in children:
            if child.log_path.exists():
                tail = child.log_path.read_text(errors="replace").splitlines()[-15:]
                say(f"--- {child.log_path} (last lines)")
                sys.stdout.write("".join(f"    {line}\n" for line in tail))
        return 1
    say(f"OK: {len(results)} processes started and answered, {sum(r[1] for r in results):.1f}s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
