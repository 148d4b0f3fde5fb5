"""Prometheus metrics of the broker gateway (names ``yquant_gateway_*``, served by ``__main__``).

The names match monitoring/alerts.yml and the Grafana overview: ``orders_total{result}``,
``kis_errors_total{code}``, ``token_expires_at_seconds{app}``, ``token_issue_failures_total``.
``app`` is the account aliases that share an app key (never the key itself).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ORDERS = Counter(
    "yquant_gateway_orders",
    "Order outcomes: submitted, accepted, rejected, unknown (reconciling), adopted, failed, filled, cancelled",
    ["result"],
)
KIS_ERRORS = Counter("yquant_gateway_kis_errors", "KIS errors by msg_cd (or transport failure kind)", ["code"])
KIS_REQUEST_SECONDS = Histogram(
    "yquant_gateway_kis_request_seconds",
    "KIS REST request latency by endpoint",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TOKEN_EXPIRES_AT = Gauge("yquant_gateway_token_expires_at_seconds", "Expiry (Unix time) of the token in use", ["app"])
TOKENS_ISSUED = Counter("yquant_gateway_tokens_issued", "Access tokens issued by this process", ["app"])
TOKEN_ISSUE_FAILURES = Counter("yquant_gateway_token_issue_failures", "Access token issuances that failed", ["app"])
WS_CONNECTED = Gauge("yquant_gateway_ws_connected", "1 while the execution-notice WebSocket is subscribed", ["app"])
CALENDAR_DISAGREEMENTS = Gauge(
    "yquant_gateway_calendar_disagreements",
    "Days of the next 30 on which KIS's calendar (chk-holiday) and yQuant's differ, at the last check",
    ["market"],
)
CALENDAR_CHECKED = Gauge(
    "yquant_gateway_calendar_checked_timestamp_seconds", "Unix time of the last calendar check", ["market"]
)
FILLS = Counter("yquant_gateway_fills", "Fills applied, by source (websocket, poll)", ["source"])
QUOTES = Counter(
    "yquant_gateway_quotes",
    "Quote requests answered, by result (ok, error, stale, budget: a dashboard request past its budget)",
    ["result"],
)
RESUBMISSIONS = Counter(
    "yquant_gateway_resubmissions", "Orders sent again after KIS's order list proved it did not have them"
)
UNOWNED_OPEN_ORDERS = Gauge(
    "yquant_gateway_unowned_open_orders",
    "Orders open at KIS that yQuant did not place (e.g. placed in KIS's app), at the last look",
    ["account", "market"],
)
