"""The composition root refuses to run without a secret, or with a guessable one in production."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from webhook.__main__ import check_secrets
from yquant.errors import ConfigurationError
from yquant.settings import Settings, StrategySettings


def test_a_global_or_a_strategy_secret_is_enough() -> None:
    check_secrets(Settings(webhook_secret="dev"))
    check_secrets(Settings(strategies={"a": StrategySettings(accounts=[], secret=SecretStr("dev"))}))


def test_no_secret_at_all_stops_the_start() -> None:
    with pytest.raises(ConfigurationError, match="no webhook secret"):
        check_secrets(Settings(strategies={"a": StrategySettings(accounts=[], secret=SecretStr(""))}))


def test_short_secret_stops_the_start_in_production() -> None:
    strategies = {"a": StrategySettings(accounts=[], secret=SecretStr("short"))}
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        check_secrets(Settings(environment="production", webhook_secret="x" * 32, strategies=strategies))
    check_secrets(Settings(environment="development", webhook_secret="x" * 32, strategies=strategies))
