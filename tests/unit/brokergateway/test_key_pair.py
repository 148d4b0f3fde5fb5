"""The gateway refuses to start an account it has no KIS key pair for, naming what to set."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from brokergateway.bootstrap import key_pair
from yquant.errors import ConfigurationError
from yquant.settings import AccountSettings


def test_missing_key_pair_is_a_configuration_error_naming_the_variables() -> None:
    with pytest.raises(ConfigurationError, match="YQ_ACCOUNTS__ISA__APP_KEY"):
        key_pair("isa", AccountSettings(cano="12345678"))


def test_key_pair_is_returned_in_clear_for_the_gateway_only() -> None:
    account = AccountSettings(cano="12345678", app_key=SecretStr("k" * 36), app_secret=SecretStr("s" * 180))
    assert key_pair("main", account) == ("k" * 36, "s" * 180)
