"""Valkey unreachable for 30 s during a steady stream of alerts: none lost, none duplicated.

Valkey is frozen (SIGSTOP) rather than killed, so every client's connection hangs the way a
cut private link does. The webhook keeps answering: alerts go to its journal (202 spooled) and
are forwarded in order once Valkey answers again (SIGCONT). Every acknowledged alert must end as
exactly one order at the simulator.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest

from tests.e2e.helpers import eventually
from tests.e2e.test_chaos import FINAL, LOAD_ENV, Sender, buy_alerts
from tests.harness.devsystem import DevSystem

ALERTS = 40
PAUSE_S = 30.0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_valkey_frozen_for_30_s_loses_and_doubles_no_alert(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = dict(LOAD_ENV)
    alerts = buy_alerts("pause-secret", "pause", ALERTS)
    with DevSystem(tmp_path_factory.mktemp("pause"), env, secret="pause-secret") as system:
        # One alert per second: the pause spans about thirty of them.
        sender = Sender(system.webhook_url, alerts, rate_per_s=1.0)
        thread = threading.Thread(target=sender.run, name="sender")
        thread.start()
        valkey = system.pid_of("valkey")
        try:
            eventually(lambda: sender.sent >= 5 or not thread.is_alive(), 120, 0.02)
            os.kill(valkey, signal.SIGSTOP)
            time.sleep(PAUSE_S)  # the outage itself; nothing below depends on how long things take
        finally:
            os.kill(valkey, signal.SIGCONT)
            thread.join(timeout=ALERTS / 1.0 + 120)
        assert not thread.is_alive()
        answers = Counter(a.answer for a in alerts)
        assert answers["spooled"] > 0, answers  # the journal took alerts while Valkey was away
        acknowledged = {(a.ticker, a.quantity) for a in alerts if a.answer in {"accepted", "duplicate", "spooled"}}

        def settled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            records: list[dict[str, Any]] = json.loads(
                system.yquant("orders", "--json", "--limit", str(ALERTS * 4)).stdout
            )
            return records, [o for o in system.sim_orders() if o["kind"] == "new"]

        deadline = time.monotonic() + 120
        while True:
            records, ledger = settled()
            booked = Counter((o["ticker"], int(o["quantity"])) for o in ledger)
            if (acknowledged <= set(booked) and all(r["state"] in FINAL for r in records)) or (
                time.monotonic() > deadline
            ):
                break
            time.sleep(0.5)
        figures = {
            "answers": dict(answers),
            "send_errors": dict(sender.errors),
            "orders_at_broker": len(ledger),
            "lost": sorted(acknowledged - set(booked)),
            "duplicated": sorted(k for k, n in booked.items() if n > 1),
            "states": dict(Counter(r["state"] for r in records)),
        }
        print("pause figures:", json.dumps(figures))
        assert figures["lost"] == [], figures
        assert figures["duplicated"] == [], figures
        assert set(booked) <= {(a.ticker, a.quantity) for a in alerts}, figures
        assert all(r["state"] == "FILLED" for r in records), figures
