"""The hand-written exposition is what Prometheus reads."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from webhook.intake import OUTCOMES, REASONS
from webhook.metrics import WebhookMetrics


def families(metrics: WebhookMetrics) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    parsed: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        samples = parsed.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return parsed


def test_every_series_exists_at_zero_from_the_start() -> None:
    parsed = families(WebhookMetrics(REASONS, OUTCOMES))
    assert parsed["yquant_webhook_received"] == {("yquant_webhook_received_total", ()): 0.0}
    invalid = parsed["yquant_webhook_invalid"]
    assert {labels[0][1] for _, labels in invalid} == set(REASONS["invalid"])
    counts = {labels for name, labels in parsed["yquant_webhook_response_seconds"] if name.endswith("_count")}
    assert {labels[0][1] for labels in counts} == set(OUTCOMES)


def test_counters_and_histogram_are_exposed_as_counted() -> None:
    metrics = WebhookMetrics(REASONS, OUTCOMES)
    metrics.received.inc()
    metrics.received.inc()
    metrics.count_refusal("invalid", "not_json")
    metrics.count_refusal("unavailable", "valkey")
    metrics.response_seconds.observe("accepted", 0.0004)
    metrics.response_seconds.observe("accepted", 0.003)
    parsed = families(metrics)
    assert parsed["yquant_webhook_received"][("yquant_webhook_received_total", ())] == 2.0
    assert parsed["yquant_webhook_invalid"][("yquant_webhook_invalid_total", (("reason", "not_json"),))] == 1.0
    assert parsed["yquant_webhook_unavailable"][("yquant_webhook_unavailable_total", ())] == 1.0
    histogram = parsed["yquant_webhook_response_seconds"]
    accepted = (("outcome", "accepted"),)
    assert histogram[("yquant_webhook_response_seconds_count", accepted)] == 2.0
    assert histogram[("yquant_webhook_response_seconds_bucket", (("le", "0.0005"), *accepted))] == 1.0
    assert histogram[("yquant_webhook_response_seconds_bucket", (("le", "0.005"), *accepted))] == 2.0
    assert histogram[("yquant_webhook_response_seconds_bucket", (("le", "+Inf"), *accepted))] == 2.0
    assert abs(histogram[("yquant_webhook_response_seconds_sum", accepted)] - 0.0034) < 1e-9
