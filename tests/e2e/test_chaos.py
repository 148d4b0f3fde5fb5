"""Chaos: alerts at a steady rate while every service is killed in turn and KIS misbehaves.

Each alert has its own identity (ticker and quantity) so its order can be found in the
simulator's ledger. The sender behaves like TradingView: it resends an alert that got no
answer, a connection error or a 5xx, and stops at the first 2xx or 4xx. Meanwhile the order
manager, the gateway, the webhook and Valkey are each SIGKILLed at least once (``yquant up``
restarts them), and the simulator answers some requests with HTTP 500, withholds the answers
to orders it booked, drops orders before booking them and slows down.

It passes when the ledger matches the acknowledged alerts exactly: every acknowledged alert is
one order at the broker, no alert is two, and every order record has reached a final state.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import eventually
from tests.harness.devsystem import DevSystem

TICKERS = [
    "005930", "000660", "035420", "005380", "051910", "006400", "035720", "068270", "207940", "005490",
    "028260", "105560", "055550", "012330", "066570", "003550", "017670", "034730", "015760", "032830",
]  # fmt: skip
ALERTS = 240
RATE_PER_S = 8.0
RESEND_FOR_S = 30.0  # how long the sender keeps resending one alert
FINAL = {"FILLED", "CANCELLED", "REJECTED", "FAILED", "EXPIRED"}


@dataclass
class Alert:
    index: int
    ticker: str
    quantity: int
    body: dict[str, Any]
    attempts: int = 0
    answer: str = ""  # the status of the first 2xx/4xx answer, "" when none came


# Many small buys of the same tickers, each to become one order: the limits that exist to stop
# that are opened, and the simulator's account has the cash.
LOAD_ENV = {
    "YQ_KISSIM_ARGS": "--no-rate-limit --krw 1000000000000",
    "YQ_WEBHOOK__RATE_LIMIT_PER_MIN": "0",
    "YQ_LOG_LEVEL": "WARNING",
    "YQ_RISK__MAX_ORDERS_PER_MINUTE": "0",
    "YQ_RISK__DUPLICATE_WINDOW_S": "0",
    "YQ_RISK__MAX_ORDER_VALUE__KRW": "1000000000000",
}


def buy_alerts(secret: str, prefix: str, count: int) -> list[Alert]:
    """``count`` buys for the strategy ``demo``, each (ticker, quantity) unique so its order can be found."""
    alerts = []
    for i in range(count):
        ticker, quantity = TICKERS[i % len(TICKERS)], 1 + i // len(TICKERS)
        body = {"secret": secret, "strategy": "demo", "ticker": ticker, "exchange": "KRX", "action": "buy"}
        alerts.append(Alert(i, ticker, quantity, {**body, "quantity": quantity, "id": f"{prefix}-{i}"}))
    return alerts


@dataclass
class Sender:
    url: str
    alerts: list[Alert]
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    rate_per_s: float = RATE_PER_S

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            start = time.monotonic()
            for alert in self.alerts:
                pause = start + alert.index / self.rate_per_s - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                self._deliver(client, alert)
                self.sent += 1

    def _deliver(self, client: httpx.Client, alert: Alert) -> None:
        deadline = time.monotonic() + RESEND_FOR_S
        while time.monotonic() < deadline:
            alert.attempts += 1
            try:
                response = client.post(self.url, json=alert.body)
            except httpx.HTTPError as exc:
                self.errors[type(exc).__name__] += 1
            else:
                if response.status_code < 500:
                    alert.answer = str(response.json().get("status", response.status_code))
                    return
                self.errors[f"HTTP {response.status_code}"] += 1
            time.sleep(0.2)


def kill(system: DevSystem, service: str) -> int:
    pid = system.pid_of(service)
    os.kill(pid, signal.SIGKILL)
    return pid


def restarted(system: DevSystem, service: str, old: int) -> bool:
    try:
        return system.pid_of(service) != old
    except (OSError, ValueError):  # the pid file is being rewritten
        return False


def sim_faults(system: DevSystem, **faults: int) -> None:
    httpx.post(f"{system.kissim_url}/admin/faults", json=faults, timeout=5).raise_for_status()


@pytest.mark.timeout(420)
def test_no_acknowledged_alert_is_lost_or_duplicated_while_services_die(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    state = tmp_path_factory.mktemp("chaos")
    env = dict(LOAD_ENV)
    alerts = buy_alerts("chaos-secret", "chaos", ALERTS)
    faults: Counter[str] = Counter()
    with DevSystem(state, env, secret="chaos-secret") as system:
        sender = Sender(system.webhook_url, alerts)
        thread = threading.Thread(target=sender.run, name="sender")
        thread.start()
        # Faults are placed by how far the sender has got, not by the clock.
        plan: list[tuple[int, str, dict[str, int]]] = [
            (20, "ordermanager", {}),
            (40, "sim", {"http500_burst": 3}),
            (60, "brokergateway", {}),
            (80, "sim", {"drop_order_response": 2}),
            (100, "webhook", {}),
            (120, "valkey", {}),
            (140, "sim", {"drop_before_booking": 2}),
            (160, "sim", {"latency_ms": 300}),
            (180, "sim", {"latency_ms": 0}),
            (190, "ordermanager", {}),
            (210, "brokergateway", {}),
        ]

        def sent_or_stopped(count: int) -> bool:
            return sender.sent >= count or not thread.is_alive()

        try:
            for at, target, settings in plan:
                eventually(partial(sent_or_stopped, at), 120, 0.02)
                if target == "sim":
                    sim_faults(system, **settings)
                    faults.update({name: value for name, value in settings.items() if value})
                else:
                    old = kill(system, target)
                    faults[f"SIGKILL {target}"] += 1
                    # The supervisor restarts it; the next fault waits for the new process.
                    eventually(partial(restarted, system, target, old), 60, 0.05)
        finally:
            thread.join(timeout=ALERTS / RATE_PER_S + 4 * RESEND_FOR_S)
        assert not thread.is_alive()
        httpx.post(f"{system.kissim_url}/admin/faults/clear", timeout=5).raise_for_status()

        acknowledged = [a for a in alerts if a.answer in {"accepted", "duplicate", "spooled"}]
        wanted = {(a.ticker, a.quantity) for a in acknowledged}

        def records_and_ledger() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            result = system.yquant("orders", "--json", "--limit", str(ALERTS * 4))
            records: list[dict[str, Any]] = json.loads(result.stdout)
            return records, [o for o in system.sim_orders() if o["kind"] == "new"]

        # Settled: every order record final and every acknowledged alert at the broker (or, if
        # that never happens, the figures below say which alerts are missing).
        deadline = time.monotonic() + 120
        while True:
            records, ledger = records_and_ledger()
            booked = {(o["ticker"], int(o["quantity"])) for o in ledger}
            done = bool(records) and all(r["state"] in FINAL for r in records)
            if (done and wanted <= booked) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        per_alert = Counter((o["ticker"], int(o["quantity"])) for o in ledger)
        states = Counter(r["state"] for r in records)
        resubmitted = sum(int(r.get("resubmissions", 0) or 0) for r in records)
        lost = sorted(wanted - set(per_alert))
        figures: dict[str, Any] = {
            "alerts": ALERTS,
            "acknowledged": len(acknowledged),
            "unanswered": [a.index for a in alerts if not a.answer],
            "answers": dict(Counter(a.answer for a in alerts)),
            "resends": sum(a.attempts - 1 for a in alerts),
            "send_errors": dict(sender.errors),
            "faults": dict(faults),
            "orders_at_broker": len(ledger),
            "order_states": dict(states),
            "not_final": [r["client_order_id"] for r in records if r["state"] not in FINAL],
            "failed_reasons": [r.get("reason", "") for r in records if r["state"] == "FAILED"],
            "resubmitted": resubmitted,
            "lost": lost,
            "duplicated": sorted(k for k, n in per_alert.items() if n > 1),
        }
        if lost:
            # What the decision log says about each lost alert (nothing at all: it never arrived).
            log: list[dict[str, Any]] = json.loads(
                system.yquant("signals", "--json", "--limit", str(ALERTS * 4)).stdout
            )

            def signal_of(row: dict[str, Any]) -> dict[str, Any]:
                sent: dict[str, Any] = row.get("signal") or {}
                return sent

            missing = set(lost)
            figures["lost_decisions"] = [
                row
                for row in log
                if (signal_of(row).get("ticker"), int(signal_of(row).get("quantity") or 0)) in missing
            ]
        (Path(state) / "chaos.json").write_text(json.dumps(figures, indent=2, default=str))
        print("chaos figures:", json.dumps(figures, default=str))
        assert figures["lost"] == [], figures
        assert figures["duplicated"] == [], figures
        assert figures["not_final"] == [], figures
        assert states.get("FAILED", 0) == 0, figures
        # An alert nobody acknowledged may or may not have traded, but never twice (checked above);
        # nothing trades that no alert asked for.
        asked = {(a.ticker, a.quantity) for a in alerts}
        assert set(per_alert) <= asked, figures
