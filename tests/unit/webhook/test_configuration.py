"""Contradictory webhook settings stop the service at start."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.intake import check_settings
from yquant.errors import ConfigurationError
from yquant.settings import Settings, WebhookSettings


def settings_with(**webhook: Any) -> Settings:
    return Settings(webhook_secret="a-secret", webhook=WebhookSettings(**webhook))


def test_defaults_are_consistent() -> None:
    check_settings(settings_with())


@pytest.mark.parametrize(
    ("webhook", "message"),
    [
        ({"max_age_s": 86_400}, "dedupe_ttl_s"),
        ({"require_client_cert": True}, "trusted_proxies"),
        ({"max_body_bytes": 100}, "max_body_bytes"),
    ],
)
def test_contradictions_are_refused(webhook: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_settings(settings_with(**webhook))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_WEBHOOK__TRUSTED_PROXIES", '["127.0.0.1"]')
    monkeypatch.setenv("YQ_WEBHOOK__CLIENT_CERT_SUBJECT", '{"CN": "TradingView Webhooks"}')
    monkeypatch.setenv("YQ_WEBHOOK__REJECTIONS_PER_MIN", "5")
    monkeypatch.setenv("YQ_WEBHOOK__REQUIRE_FIRED_AT", "true")
    webhook = Settings().webhook
    assert webhook.trusted_proxies == ["127.0.0.1"]
    assert webhook.client_cert_subject == {"CN": "TradingView Webhooks"}
    assert (webhook.rejections_per_min, webhook.require_fired_at) == (5, True)
