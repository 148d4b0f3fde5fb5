"""Settings come from YQ_ environment variables with nested keys."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from yquant.errors import ConfigurationError
from yquant.settings import DEMO_APP_KEY, Settings, effective_accounts, effective_strategies


def test_nested_environment_variables_configure_an_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_ACCOUNTS__ISA__CANO", "12345678")
    monkeypatch.setenv("YQ_ACCOUNTS__ISA__APP_KEY", "k" * 36)
    monkeypatch.setenv("YQ_ACCOUNTS__ISA__APP_SECRET", "s" * 180)
    monkeypatch.setenv("YQ_ACCOUNTS__ISA__ENV", "real")
    settings = Settings()
    account = settings.accounts["isa"]
    assert account.cano == "12345678"
    assert account.effective_rate_limit == 18.0
    assert "s" * 180 not in repr(settings)


def test_virtual_accounts_default_to_one_request_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_ACCOUNTS", '{"main": {"cano": "87654321", "app_key": "k", "app_secret": "s"}}')
    assert Settings().accounts["main"].effective_rate_limit == 1.0


def test_single_underscore_webhook_secret_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_WEBHOOK_SECRET", "abc")
    secret = Settings().webhook.secret
    assert secret is not None
    assert secret.get_secret_value() == "abc"


def test_malformed_account_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_ACCOUNTS", '{"main": {"cano": "123", "app_key": "k", "app_secret": "s"}}')
    with pytest.raises(ValidationError):
        Settings()


def test_strategy_mapped_to_unknown_account_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_ACCOUNTS", '{"main": {"cano": "12345678", "app_key": "k", "app_secret": "s"}}')
    monkeypatch.setenv("YQ_STRATEGIES", '{"swing": {"accounts": ["pension"]}}')
    with pytest.raises(ValidationError, match="unknown accounts"):
        Settings()


def test_demo_account_only_against_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YQ_KIS__REST_URL", raising=False)
    with pytest.raises(ConfigurationError):
        effective_accounts(Settings())
    monkeypatch.setenv("YQ_KIS__REST_URL", "http://127.0.0.1:8900")
    settings = Settings()
    accounts = effective_accounts(settings)
    app_key = accounts["main"].app_key
    assert app_key is not None
    assert app_key.get_secret_value() == DEMO_APP_KEY
    assert effective_strategies(settings)["demo"].accounts == ["main"]


def test_production_refuses_the_demo_app_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_ENVIRONMENT", "production")
    monkeypatch.setenv(
        "YQ_ACCOUNTS", f'{{"main": {{"cano": "12345678", "app_key": "{DEMO_APP_KEY}", "app_secret": "s"}}}}'
    )
    with pytest.raises(ValidationError, match="demo app key"):
        Settings()


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("YQ_WEBHOOK__SECRET", "CHANGE_ME_webhook_secret_0000000000000000", "YQ_WEBHOOK__SECRET"),
        ("YQ_VALKEY__PASSWORD", "CHANGE_ME_ordermanager_password_000000000", "YQ_VALKEY__PASSWORD"),
        ("YQ_DASHBOARD__SESSION_SECRET", "change_me_session_secret_0000000000000000", "YQ_DASHBOARD__SESSION_SECRET"),
        ("YQ_DASHBOARD__SESSION_SECRET", "short-but-not-a-placeholder", "at least 32 characters"),
    ],
)
def test_production_refuses_placeholders_and_short_session_secrets_naming_the_setting_not_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv("YQ_ENVIRONMENT", "production")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=named) as refused:
        Settings()
    assert value not in str(refused.value)


def test_production_accepts_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_ENVIRONMENT", "production")
    monkeypatch.setenv("YQ_WEBHOOK__SECRET", "w" * 24)
    monkeypatch.setenv("YQ_DASHBOARD__SESSION_SECRET", "s" * 40)
    assert Settings().environment == "production"


def test_an_account_without_its_key_pair_is_valid_outside_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_ACCOUNTS", '{"main": {"cano": "12345678", "env": "real"}}')
    monkeypatch.setenv("YQ_STRATEGIES", '{"swing": {"accounts": ["main"]}}')
    settings = Settings()
    assert settings.accounts["main"].app_key is None
    assert effective_accounts(settings)["main"].cano == "12345678"


def test_empty_kis_url_means_the_official_domain_not_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YQ_KIS__REST_URL", "")
    with pytest.raises(ConfigurationError):
        effective_accounts(Settings())


def test_the_gateway_slippage_setting_is_refused_with_its_new_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The order manager prices US market orders now; an old setting must not be dropped silently."""
    monkeypatch.setenv("YQ_GATEWAY__US_MARKET_SLIPPAGE_PERCENT", "2")
    with pytest.raises(ValidationError, match="YQ_ORDERMANAGER__US_MARKET_SLIPPAGE_PERCENT"):
        Settings()
    monkeypatch.delenv("YQ_GATEWAY__US_MARKET_SLIPPAGE_PERCENT")
    monkeypatch.setenv("YQ_ORDERMANAGER__US_MARKET_SLIPPAGE_PERCENT", "2")
    assert str(Settings().ordermanager.us_market_slippage_percent) == "2"


def test_an_empty_notifier_destinations_variable_means_no_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    """VM2's env file leaves it empty until the trader adds a chat; that must start, not fail."""
    monkeypatch.setenv("YQ_NOTIFIER__DESTINATIONS", "")
    assert Settings().notifier.destinations == {}


def test_a_destination_asking_for_a_misspelt_event_kind_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "fill" for "filled" would otherwise start and never send a fill, the one message a trader waits for."""
    destination = {"kind": "discord", "url": "https://discord.example/api/webhooks/1/x", "events": ["fill", "denied"]}
    monkeypatch.setenv("YQ_NOTIFIER__DESTINATIONS", json.dumps({"phone": destination}))
    with pytest.raises(ValidationError, match="unknown event kind\\(s\\) fill; known: filled, rejected"):
        Settings()
    destination["events"] = ["filled", "denied"]
    monkeypatch.setenv("YQ_NOTIFIER__DESTINATIONS", json.dumps({"phone": destination}))
    assert Settings().notifier.destinations["phone"].events == ["filled", "denied"]
    del destination["events"]
    monkeypatch.setenv("YQ_NOTIFIER__DESTINATIONS", json.dumps({"phone": destination}))
    assert "summary" in Settings().notifier.destinations["phone"].events
