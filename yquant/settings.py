"""Settings for every yQuant process, from environment variables (prefix ``YQ_``).

Nested keys use ``__``: ``YQ_VALKEY__URL``, ``YQ_KIS__REST_URL``,
``YQ_ACCOUNTS='{"main": {...}}'`` or ``YQ_ACCOUNTS__MAIN__CANO=...``. An optional TOML
file named by ``YQ_CONFIG_FILE`` supplies the same keys; environment variables win.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from yquant.errors import ConfigurationError

KIS_REAL_URL = "https://openapi.koreainvestment.com:9443"
KIS_VIRTUAL_URL = "https://openapivts.koreainvestment.com:29443"
KIS_WS_REAL_URL = "ws://ops.koreainvestment.com:21000"
KIS_WS_VIRTUAL_URL = "ws://ops.koreainvestment.com:31000"

# Placeholder credentials of the embedded demo account (the simulator accepts any key).
DEMO_APP_KEY = "PSdemo0000000000000000000000000000yq"  # 36 characters, like a KIS app key
DEMO_APP_SECRET = "demo-secret-" + "0" * 168  # 180 characters, like a KIS app secret


class ValkeySettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password: SecretStr | None = None
    max_connections: int = 64
    socket_timeout_s: float = 5.0
    load_functions: bool = True  # services load the server functions at start (dev default)


class BusSettings(BaseModel):
    stream_maxlen: int = 100_000  # far above any backlog we accept: trimming ignores pending
    block_ms: int = 500
    batch: int = 128
    claim_idle_ms: int = 15_000  # take over a dead consumer's entries after this idle time
    max_deliveries: int = 5  # then the entry goes to the dead-letter stream


class KisSettings(BaseModel):
    rest_url: str | None = None  # overrides the official domain (the simulator in dev)
    ws_url: str | None = None
    timeout_s: float = 5.0
    order_timeout_s: float = 5.0
    rate_limit_per_s: float | None = None  # overrides every account's default (0 = no pacing)
    use_websocket: bool = True
    poll_interval_s: float = 1.0  # REST fill polling, the fallback for missed notices
    sync_interval_s: float = 60.0  # periodic account sync


class AccountSettings(BaseModel):
    cano: str = Field(pattern=r"^\d{8}$")
    product_code: str = Field(default="01", pattern=r"^\d{2}$")
    app_key: SecretStr
    app_secret: SecretStr
    env: Literal["real", "virtual"] = "virtual"
    hts_id: str = ""
    rate_limit_per_s: float | None = None  # default: 18/s real, 1/s virtual (KIS limits)
    markets: list[str] = Field(default_factory=lambda: ["KRX", "NASD", "NYSE", "AMEX"])

    @property
    def effective_rate_limit(self) -> float:
        if self.rate_limit_per_s is not None:
            return self.rate_limit_per_s
        return 18.0 if self.env == "real" else 1.0


class StrategySettings(BaseModel):
    accounts: list[str]
    secret: SecretStr | None = None  # per-strategy webhook secret (else the global one)
    sizing: str = "alert"  # see ordermanager.sizing
    quantity: int | None = None
    amount: Decimal | None = None
    percent: Decimal | None = None
    order_type: Literal["market", "limit"] = "market"


class WebhookSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    secret: SecretStr | None = None
    max_body_bytes: int = 4096
    max_age_s: float = 60.0  # alerts older than this (by fired_at) are rejected as stale
    clock_skew_s: float = 5.0
    dedupe_ttl_s: int = 86_400
    rate_limit_per_min: int = 120  # per source address
    allowlist_enabled: bool = False
    trusted_proxies: list[str] = Field(default_factory=list)
    allowed_ips: list[str] = Field(
        default_factory=lambda: ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"]
    )
    require_client_cert: bool = False


class OrderManagerSettings(BaseModel):
    metrics_port: int = 9101
    always_open: bool = False  # markets open at any hour; only honoured with the simulator
    max_signal_age_s: float = 120.0
    # Fault injection for crash tests: exit abruptly at this point, once per marker file.
    crash_at: Literal["after_read", "after_order_append"] | None = None
    crash_marker: Path | None = None


class GatewaySettings(BaseModel):
    metrics_port: int = 9102
    fill_check_delay_s: float = 0.15  # first fill check after an order is accepted
    sync_debounce_s: float = 0.3  # coalesce account syncs after fills


class DashboardSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    session_secret: SecretStr | None = None
    users_file: Path | None = None
    secure_cookies: bool = False
    timezone: str = "Asia/Seoul"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="YQ_",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Literal["development", "production"] = "development"
    instance: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    log_level: str = "INFO"
    log_json: bool = True
    state_dir: Path = Path(".yquant")

    webhook_secret: SecretStr | None = None  # YQ_WEBHOOK_SECRET, same as YQ_WEBHOOK__SECRET
    valkey: ValkeySettings = ValkeySettings()
    bus: BusSettings = BusSettings()
    kis: KisSettings = KisSettings()
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    strategies: dict[str, StrategySettings] = Field(default_factory=dict)
    webhook: WebhookSettings = WebhookSettings()
    ordermanager: OrderManagerSettings = OrderManagerSettings()
    gateway: GatewaySettings = GatewaySettings()
    dashboard: DashboardSettings = DashboardSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("YQ_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator("accounts", "strategies", mode="before")
    @classmethod
    def _lower_keys(cls, value: object) -> object:
        # Environment variable names are case-insensitive; aliases are lower case.
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.webhook.secret is None and self.webhook_secret is not None:
            self.webhook.secret = self.webhook_secret
        for name, strategy in self.strategies.items():
            unknown = [a for a in strategy.accounts if self.accounts and a not in self.accounts]
            if unknown:
                raise ValueError(f"strategy {name!r} maps to unknown accounts {unknown}")
        if self.environment == "production":
            for alias, acct in self.accounts.items():
                if acct.app_key.get_secret_value() == DEMO_APP_KEY:
                    raise ValueError(f"account {alias!r} uses the demo app key in production")
        return self


def demo_accounts() -> dict[str, AccountSettings]:
    """The embedded default: one simulated account, used when none is configured."""
    return {
        "main": AccountSettings(
            cano="50000001",
            product_code="01",
            app_key=SecretStr(DEMO_APP_KEY),
            app_secret=SecretStr(DEMO_APP_SECRET),
            env="real",
            hts_id="yquantdemo",
        )
    }


def effective_accounts(settings: Settings) -> dict[str, AccountSettings]:
    if settings.accounts:
        return settings.accounts
    if settings.kis.rest_url is None:
        raise ConfigurationError("no KIS account configured: set YQ_ACCOUNTS (or YQ_KIS__REST_URL for the simulator)")
    return demo_accounts()


def effective_strategies(settings: Settings) -> dict[str, StrategySettings]:
    if settings.strategies:
        return settings.strategies
    accounts = list(effective_accounts(settings))
    return {"demo": StrategySettings(accounts=accounts[:1])}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
