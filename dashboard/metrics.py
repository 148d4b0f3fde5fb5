"""Prometheus metrics of the dashboard (``yquant_dashboard_*``), served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "yquant_dashboard_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "yquant_dashboard_sse_clients", "Browsers connected to the live event stream", registry=self.registry
        )
        self.sse_events = Counter(
            "yquant_dashboard_sse_events", "Stream entries fanned out to browsers", registry=self.registry
        )
        self.logins = Counter("yquant_dashboard_logins", "Successful logins", registry=self.registry)
        self.logins_failed = Counter(
            "yquant_dashboard_logins_failed",
            "Refused logins by reason (credentials, totp, locked, busy, csrf)",
            ["reason"],
            registry=self.registry,
        )
        self.actions = Counter("yquant_dashboard_actions", "Manual actions by kind", ["action"], registry=self.registry)
        self.csrf_refused = Counter(
            "yquant_dashboard_csrf_refused", "State-changing requests refused for CSRF", registry=self.registry
        )
