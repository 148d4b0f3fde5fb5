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
    # Broker gateway details (docs/kis.md lists every variable).
    token_min_interval_s: float = 61.0  # never ask tokenP more often per app key (KIS: 1 per minute)
    rate_limit_margin_s: float = 0.1  # widens the 1 s pacing window so network jitter cannot exceed KIS's count
    safety_poll_interval_s: float = 5.0  # REST fill polling while WebSocket notices flow
    notice_grace_s: float = 3.0  # an order without news for this long is polled even while notices flow
    ws_reconnect_max_s: float = 30.0  # longest wait between WebSocket reconnection attempts


class AccountSettings(BaseModel):
    cano: str = Field(pattern=r"^\d{8}$")
    product_code: str = Field(default="01", pattern=r"^\d{2}$")
    # Only the broker gateway needs the key pair; other processes may be given the account
    # without it (aliases for the dashboard's manual orders and schedules, mapping checks).
    app_key: SecretStr | None = None
    app_secret: SecretStr | None = None
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
    # Sizing details (ordermanager/sizing.py). Percentages are plain numbers: 5 means 5 %.
    sell_sizing: str | None = None  # policy for sells; None = ``sizing``, always capped at the holding
    currency: Literal["KRW", "USD"] | None = None  # currency of amount/risk/allocation; None = the market's
    risk_amount: Decimal | None = None  # sizing "risk": money lost if the stop is hit ...
    risk_percent: Decimal | None = None  # ... or that loss as a percent of equity
    allocation: Decimal | None = None  # sizing "risk": cap of one entry's value ...
    allocation_percent: Decimal | None = None  # ... or that cap as a percent of equity
    # Exits attached to the positions the strategy opens (an alert's stopLoss/takeProfit prices win).
    stop_loss_percent: Decimal | None = None  # also the stop distance of sizing "risk"
    take_profit_percent: Decimal | None = None
    trailing_stop_percent: Decimal | None = None
    eod_liquidation: bool = False  # sell the strategy's positions before the market closes
    eod_minutes_before_close: int = 10


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
    # A secret as the URL's last path segment (/webhook/<secret>) for alerts whose message cannot
    # carry it. Off refuses that form with 401: a URL is copied into more places than a body is
    # (proxy logs, browser history, screenshots of TradingView's alert dialog).
    path_secret: bool = True
    # Webhook hardening (docs/webhook.md). Rejections before authentication are limited per
    # source on their own, so strangers sending from TradingView's addresses cannot use up
    # the owner's alert budget; 0 turns a limit off.
    rejections_per_min: int = 30
    require_fired_at: bool = False  # refuse alerts without fired_at / {{timenow}}
    valkey_timeout_s: float = 2.0  # answer 503 before TradingView gives up (3 s)
    # Answer only once Valkey has the alert on disk (WAITAOF; needs appendonly yes). About 10 ms
    # with Valkey's hz 100 (docs/decisions/0008-durable-acknowledgements.md).
    durable_ack: bool = True
    # Store and forward (webhook/spool.py): alerts that arrive while Valkey is unreachable are
    # journalled here (fsynced) and forwarded in order later; 0 turns the journal off (503).
    spool_dir: Path | None = None  # default: <state_dir>/webhook-spool
    spool_max_alerts: int = 10_000
    # The client certificate as the TLS terminator forwards it (believed from trusted_proxies only).
    client_cert_header: str = "X-SSL-Client-S-DN"
    client_cert_subject: dict[str, str] = Field(
        default_factory=lambda: {"O": "TradingView, Inc.", "CN": "TradingView Webhooks"}
    )
    client_cert_verify_header: str | None = None  # e.g. X-SSL-Client-Verify, set from $ssl_client_verify
    client_cert_verify_value: str = "SUCCESS"
    # Slow clients (docs/webhook.md): a request head not complete in time closes the connection, a
    # body not complete in time gets 408, connections above the cap get 503 at once, an idle
    # keep-alive connection is closed. TradingView sends a small body at once and waits 3 s.
    header_timeout_s: float = Field(default=5.0, gt=0)
    body_timeout_s: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=64, ge=1)
    keep_alive_timeout_s: float = Field(default=5.0, gt=0)


class OrderManagerSettings(BaseModel):
    metrics_port: int = 9101
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, so Prometheus can scrape it
    always_open: bool = False  # markets open at any hour; only honoured with the simulator
    max_signal_age_s: float = 120.0
    quote_timeout_s: float = 2.0  # wait for the gateway's answer to a quote request
    # A gateway that does not answer (restarting) is asked again until this has passed; only then
    # is a signal that needs a price denied NO_PRICE. Below bus.claim_idle_ms, so no other
    # instance takes the signal over meanwhile.
    quote_wait_s: float = 10.0
    quote_max_age_s: float = 15.0  # a cached quote older than this is asked for again
    # KIS has no US market order: one is sent as a limit this far through a quote at most
    # us_quote_max_age_s old (ADR 0007). The order manager prices it; the gateway only sends it.
    us_market_slippage_percent: Decimal = Field(default=Decimal(1), ge=0, le=10)
    us_quote_max_age_s: float = Field(default=5.0, gt=0)
    scheduler_interval_s: float = 1.0
    misfire_grace_s: float = 300.0  # a schedule later than this (after downtime) is skipped, not fired
    exit_check_interval_s: float = 2.0  # stop-loss / take-profit / trailing / end-of-day evaluation
    reverse_entry_timeout_s: float = 300.0  # a reverse's entry is dropped if its exit has not filled by then


class RiskSettings(BaseModel):
    """Pre-trade limits (defaults); the dashboard overrides them at runtime in Valkey.

    Money limits are per currency (``YQ_RISK__MAX_ORDER_VALUE__KRW=5000000``); a currency
    without an entry has no limit. Symbols are ``005930`` or ``KRX:005930``.
    """

    allowed_symbols: list[str] = Field(default_factory=list)  # empty: every symbol may be bought
    denied_symbols: list[str] = Field(default_factory=list)  # never bought (selling stays possible)
    max_order_value: dict[str, Decimal] = Field(
        default_factory=lambda: {"KRW": Decimal(10_000_000), "USD": Decimal(10_000)}
    )
    max_position_value: dict[str, Decimal] = Field(default_factory=dict)  # per symbol and account
    max_total_exposure: dict[str, Decimal] = Field(default_factory=dict)  # all positions of an account
    max_orders_per_minute: int = 30  # per account; 0 = no limit
    max_daily_loss: dict[str, Decimal] = Field(default_factory=dict)  # per account; reached: REDUCING
    duplicate_window_s: float = 3.0  # same account, ticker, side and strategy again: denied; 0 = off
    check_cash: bool = True  # buys need cash net of pending buys

    @field_validator("max_order_value", "max_position_value", "max_total_exposure", "max_daily_loss")
    @classmethod
    def _upper_currencies(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        # Environment variable names are case-insensitive: YQ_RISK__MAX_ORDER_VALUE__KRW arrives as "krw".
        return {k.upper(): v for k, v in value.items()}


class GatewaySettings(BaseModel):
    metrics_port: int = 9102
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, so Prometheus can scrape it
    fill_check_delay_s: float = 0.15  # first fill check after an order is accepted
    sync_debounce_s: float = 0.3  # coalesce account syncs after fills
    sync_min_interval_s: float = 1.0  # and at most one such sync per account this often
    quote_cache_ttl_s: int = 10  # quotes cached under keys.quote(market, ticker)
    quote_reply_ttl_s: int = 30  # answer lists keys.reply(request_id) expire after this
    quote_request_max_age_s: float = 10.0  # older quote requests are dropped: the asker has given up
    # The dashboard's quote requests past the cache: at most one KIS call this often (all gateways),
    # and only while the account's pacing window is at most half full (ADR 0010).
    dashboard_quote_interval_s: float = Field(default=1.0, gt=0)
    fee_rate_krx: Decimal = Decimal("0.00015")  # estimated commission recorded with KRX fills
    fee_rate_us: Decimal = Decimal("0.0025")  # estimated commission recorded with US fills
    reconcile_attempts: int = 3  # daily order list look-ups before an unknown outcome is FAILED
    reconcile_delay_s: float = 0.5  # wait before the first look-up (grows with each attempt)
    resubmit_max: int = Field(default=2, ge=0)  # an order KIS proved not to have is sent again at most this often
    resubmit_settle_s: float = Field(default=10.0, ge=0)  # KIS's list is asked again this long after the POST

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict) and "us_market_slippage_percent" in data:
            raise ValueError(
                "gateway.us_market_slippage_percent moved: the order manager prices US market orders now; "
                "set YQ_ORDERMANAGER__US_MARKET_SLIPPAGE_PERCENT instead"
            )
        return data


class DashboardSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    session_secret: SecretStr | None = None
    users_file: Path | None = None
    secure_cookies: bool = False
    timezone: str = "Asia/Seoul"
    session_idle_s: int = 43_200  # signed out after this long without a request
    session_max_s: int = 604_800  # signed out after this long whatever the activity
    login_max_failures_user: int = 5  # then the user is locked *from that address* for login_lockout_s
    login_max_failures_address: int = 20  # then the address is locked for login_lockout_s
    login_lockout_s: int = 900
    # Across all addresses: past this many attempts for one user (within login_lockout_s), an
    # address the user has not signed in from gets one password check per login_user_slowdown_s.
    login_user_slowdown_after: int = 10
    login_user_slowdown_s: int = 30
    login_known_address_days: int = 30  # an address a user signed in from is known this long
    trusted_proxies: list[str] = Field(default_factory=list)  # X-Forwarded-For believed only from these
    fx_usdkrw: Decimal | None = None  # a fixed USD/KRW rate; else the cached rate key, else the default
    fx_default_usdkrw: Decimal = Decimal(1400)
    manual_strategy: str = "manual"  # the strategy name manual orders carry into the order manager
    # A manual order is reported sent once Valkey has it on disk (WAITAOF, as the webhook's
    # durable_ack); otherwise the Orders page says it is not yet confirmed.
    durable_ack_timeout_ms: int = Field(default=1000, ge=0)  # 0: do not wait
    quote_timeout_s: float = 2.0
    snapshot_time: str = "15:45"  # daily equity snapshot, HH:MM in ``timezone`` on KRX trading days
    watchlist: list[str] = Field(default_factory=list)  # ticker suggestions: "KRX:005930", "NASD:AAPL"


# The kinds of event a destination can ask for (``events``); a test notification from the dashboard
# goes to every destination whatever it asked for.
NOTIFY_KINDS = (
    "filled",
    "rejected",
    "failed",
    "cancelled",
    "denied",
    "trading_state",
    "deadletter",
    "exit",
    "schedule",
    "heartbeat",
    "token",
    "summary",
    "trimmed",
)


class NotifyDestination(BaseModel):
    """One place notifications go: a Telegram chat, a Discord channel's webhook or any JSON webhook."""

    kind: Literal["telegram", "discord", "webhook"]
    url: SecretStr | None = None  # Discord / generic webhook URL (a secret: it is the credential)
    bot_token: SecretStr | None = None  # Telegram
    chat_id: str = ""  # Telegram
    api_base: str = "https://api.telegram.org"  # Telegram Bot API base (a test server in tests)
    events: list[str] = Field(default_factory=lambda: list(NOTIFY_KINDS))  # what it is sent
    deny_reasons: list[str] = Field(default_factory=list)  # empty: every reason code; else only these

    @model_validator(mode="after")
    def _check(self) -> NotifyDestination:
        if self.kind == "telegram" and (self.bot_token is None or not self.chat_id):
            raise ValueError("a telegram destination needs bot_token and chat_id")
        if self.kind != "telegram" and self.url is None:
            raise ValueError(f"a {self.kind} destination needs url")
        unknown = [kind for kind in self.events if kind not in NOTIFY_KINDS]
        if unknown:  # a misspelt kind would otherwise stay silent for ever
            raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(NOTIFY_KINDS)}")
        return self


class NotifierSettings(BaseModel):
    destinations: dict[str, NotifyDestination] = Field(default_factory=dict)
    language: Literal["en", "ko"] = "en"
    max_events_per_message: int = Field(default=20, ge=1)  # a burst becomes messages of at most this many
    timeout_s: float = 10.0
    retry_max_s: float = 60.0  # longest wait between delivery attempts
    max_attempts: int = 0  # 0: retry transient failures until delivered
    # A service whose heartbeat is this old (yquant.runtime beats every 5 s, expiring after 15 s) is
    # reported missing: 12 s is two beats missed in a row, so one slow beat is no outage. A clean
    # stop deletes it, so a stop is never reported.
    heartbeat_missing_after_s: float = Field(default=12.0, gt=0)
    heartbeat_poll_s: float = Field(default=2.0, gt=0)
    # The daily summary (notifier/summary.py): due this long after each market's close, so the last
    # fills and the account sync after the close are in; marked late when sent this long after it
    # fell due (the notifier was down); the orders this many days before the day give the holdings'
    # average cost its realised P/L is taken from.
    summary_after_close_s: float = Field(default=600.0, ge=0)
    summary_late_after_s: float = Field(default=900.0, ge=0)
    summary_cost_days: int = Field(default=90, ge=0)
    summary_poll_s: float = Field(default=30.0, gt=0)

    @field_validator("destinations", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty YQ_NOTIFIER__DESTINATIONS (an env file's "nowhere") means no destination.
        return {} if value == "" else value


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
    risk: RiskSettings = RiskSettings()
    gateway: GatewaySettings = GatewaySettings()
    dashboard: DashboardSettings = DashboardSettings()
    notifier: NotifierSettings = NotifierSettings()

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

    @property
    def markets_always_open(self) -> bool:
        """Markets open at any hour and every day: honoured only with the simulator as the broker."""
        return self.ordermanager.always_open and bool(self.kis.rest_url)

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
                if acct.app_key is not None and acct.app_key.get_secret_value() == DEMO_APP_KEY:
                    raise ValueError(f"account {alias!r} uses the demo app key in production")
            problems = self._production_secret_problems()
            if problems:
                raise ValueError("production refuses: " + "; ".join(problems))
        return self

    def _production_secret_problems(self) -> list[str]:
        """Placeholders from the example env files and secrets too short to be random; the
        problem names the setting, never the value."""
        secrets: dict[str, SecretStr | None] = {
            "YQ_VALKEY__PASSWORD": self.valkey.password,
            "YQ_WEBHOOK__SECRET": self.webhook.secret,
            "YQ_DASHBOARD__SESSION_SECRET": self.dashboard.session_secret,
        }
        for name, strategy in self.strategies.items():
            secrets[f"strategy {name!r} secret"] = strategy.secret
        for alias, acct in self.accounts.items():
            secrets[f"account {alias!r} app_key"] = acct.app_key
            secrets[f"account {alias!r} app_secret"] = acct.app_secret
        problems = []
        for name, secret in secrets.items():
            value = secret.get_secret_value() if secret is not None else ""
            if PLACEHOLDER_MARK in value.upper():
                problems.append(f"{name} is still the example's placeholder")
        session = self.dashboard.session_secret
        if session is not None and 0 < len(session.get_secret_value()) < MIN_SESSION_SECRET_LENGTH:
            problems.append(f"YQ_DASHBOARD__SESSION_SECRET needs at least {MIN_SESSION_SECRET_LENGTH} characters")
        return problems


PLACEHOLDER_MARK = "CHANGE_ME"  # how deploy/*.env.example mark what must be replaced
MIN_SESSION_SECRET_LENGTH = 32


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
    if not settings.kis.rest_url:  # compose passes an empty URL for "the official domain"
        raise ConfigurationError("no KIS account configured: set YQ_ACCOUNTS (or YQ_KIS__REST_URL for the simulator)")
    return demo_accounts()


DEFAULT_STRATEGY = "demo"  # the one strategy traded when none is configured (the webhook knows it too)


def effective_strategies(settings: Settings) -> dict[str, StrategySettings]:
    if settings.strategies:
        return settings.strategies
    accounts = list(effective_accounts(settings))
    return {DEFAULT_STRATEGY: StrategySettings(accounts=accounts[:1])}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
