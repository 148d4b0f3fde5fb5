"""Prometheus metrics of the order manager (names ``yquant_ordermanager_*``)."""

from __future__ import annotations

from prometheus_client import Counter

DECISIONS = Counter(
    "yquant_ordermanager_decisions",
    "Signals decided, by outcome (accepted, denied) and reason code",
    ["outcome", "reason_code"],
)
ORDERS_CREATED = Counter("yquant_ordermanager_orders_created", "Orders recorded and appended", ["origin", "side"])
SCHEDULES_FIRED = Counter("yquant_ordermanager_schedules_fired", "Schedule occurrences, by result", ["result"])
EXITS_TRIGGERED = Counter("yquant_ordermanager_exits_triggered", "Exit rules triggered, by kind", ["kind"])
