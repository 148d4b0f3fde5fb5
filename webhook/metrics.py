"""The webhook's Prometheus metrics (``yquant_webhook_*``) in the text exposition format.

A few counters and one histogram, written out by hand: ``prometheus_client`` would add
about 1.4 MiB to a process that must stay under 60 MiB, and its locks to every request.
Label values come from fixed sets of reason codes, never from request content, so a
sender cannot grow the number of series. Every series exists from the start, at zero.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RESPONSE_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value))


class Counter:
    """A monotonically increasing count, optionally split by one label."""

    def __init__(self, name: str, description: str, label: str | None = None, values: Iterable[str] = ()) -> None:
        self.name = name
        self.description = description
        self.label = label
        self.counts: dict[str, float] = {value: 0.0 for value in values} if label else {"": 0.0}

    def inc(self, label_value: str = "", amount: float = 1.0) -> None:
        self.counts[label_value] = self.counts.get(label_value, 0.0) + amount

    def value(self, label_value: str = "") -> float:
        return self.counts.get(label_value, 0.0)

    def exposition(self) -> Iterator[str]:
        yield f"# HELP {self.name}_total {self.description}"
        yield f"# TYPE {self.name}_total counter"
        for label_value, count in self.counts.items():
            labels = f'{{{self.label}="{_escape(label_value)}"}}' if self.label else ""
            yield f"{self.name}_total{labels} {_number(count)}"


class Histogram:
    """Observations in cumulative buckets, split by one label."""

    def __init__(self, name: str, description: str, label: str, values: Iterable[str], buckets: Iterable[float]):
        self.name = name
        self.description = description
        self.label = label
        self.bounds = tuple(sorted(buckets))
        self.series: dict[str, tuple[list[int], list[float]]] = {}
        for value in values:
            self._series(value)

    def _series(self, label_value: str) -> tuple[list[int], list[float]]:
        series = self.series.get(label_value)
        if series is None:
            series = self.series[label_value] = ([0] * (len(self.bounds) + 1), [0.0])
        return series

    def observe(self, label_value: str, amount: float) -> None:
        counts, total = self._series(label_value)
        counts[bisect_left(self.bounds, amount)] += 1
        total[0] += amount

    def count(self, label_value: str) -> int:
        return sum(self.series[label_value][0]) if label_value in self.series else 0

    def exposition(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.description}"
        yield f"# TYPE {self.name} histogram"
        for label_value, (counts, total) in self.series.items():
            label = f'{self.label}="{_escape(label_value)}"'
            cumulative = 0
            for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else _number(bound)
                yield f'{self.name}_bucket{{{label},le="{le}"}} {_number(cumulative)}'
            yield f"{self.name}_sum{{{label}}} {_number(total[0])}"
            yield f"{self.name}_count{{{label}}} {_number(cumulative)}"


class Gauge:
    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value

    def exposition(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.description}"
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {_number(self.value)}"


class WebhookMetrics:
    """``reasons``: error kind -> its reason codes; ``outcomes``: labels of the response histogram."""

    def __init__(self, reasons: Mapping[str, Iterable[str]], outcomes: Iterable[str]) -> None:
        self.received = Counter("yquant_webhook_received", "Requests to the webhook route")
        self.accepted = Counter("yquant_webhook_accepted", "Alerts appended to the signal stream")
        self.duplicate = Counter("yquant_webhook_duplicate", "Resends acknowledged without a second append")
        self.stale = Counter(
            "yquant_webhook_stale", "Alerts refused by their firing time", "reason", reasons.get("stale", ())
        )
        self.unauthorised = Counter(
            "yquant_webhook_unauthorised",
            "Requests refused as not from the owner (secret, source address, client certificate)",
            "reason",
            reasons.get("unauthorised", ()),
        )
        self.invalid = Counter(
            "yquant_webhook_invalid", "Requests refused as malformed", "reason", reasons.get("invalid", ())
        )
        self.rate_limited = Counter(
            "yquant_webhook_rate_limited",
            "Requests refused by a per-source rate limit",
            "limit",
            reasons.get("rate_limited", ()),
        )
        self.unavailable = Counter("yquant_webhook_unavailable", "Alerts answered 503 because Valkey failed")
        self.spooled = Counter("yquant_webhook_spooled", "Alerts written to the local journal while Valkey was away")
        self.forwarded = Counter("yquant_webhook_spool_forwarded", "Spooled alerts handed to Valkey")
        self.spool_depth = Gauge("yquant_webhook_spool_depth", "Spooled alerts not yet handed to Valkey")
        self.response_seconds = Histogram(
            "yquant_webhook_response_seconds",
            "Time from request to answer on the webhook route",
            "outcome",
            outcomes,
            RESPONSE_BUCKETS,
        )
        self.by_error: dict[str, Counter] = {
            "stale": self.stale,
            "unauthorised": self.unauthorised,
            "invalid": self.invalid,
            "rate_limited": self.rate_limited,
            "unavailable": self.unavailable,
        }

    def count_refusal(self, error: str, code: str) -> None:
        counter = self.by_error[error]
        counter.inc(code if counter.label else "")

    def exposition(self) -> bytes:
        collectors: tuple[Counter | Gauge | Histogram, ...] = (
            self.received,
            self.accepted,
            self.duplicate,
            self.stale,
            self.unauthorised,
            self.invalid,
            self.rate_limited,
            self.unavailable,
            self.spooled,
            self.forwarded,
            self.spool_depth,
            self.response_seconds,
        )
        lines = [line for collector in collectors for line in collector.exposition()]
        return ("\n".join(lines) + "\n").encode()
