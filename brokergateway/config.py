"""The gateway's tunables in one frozen object, built from ``Settings`` (tests build it directly)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from yquant.settings import Settings


@dataclass(frozen=True)
class GatewayConfig:
    maxlen: int = 100_000
    poll_interval_s: float = 1.0  # REST fill polling while no notices flow
    safety_poll_interval_s: float = 5.0  # REST fill polling while notices flow ...
    notice_grace_s: float = 3.0  # ... for orders without news for this long
    fill_check_delay_s: float = 0.15
    sync_debounce_s: float = 0.3
    sync_min_interval_s: float = 1.0
    sync_interval_s: float = 60.0
    quote_cache_ttl_s: int = 10
    quote_reply_ttl_s: int = 30
    quote_request_max_age_s: float = 10.0
    dashboard_quote_interval_s: float = 1.0  # the dashboard's KIS quotes: at most one this often
    fee_rate_krx: Decimal = Decimal("0.00015")
    fee_rate_us: Decimal = Decimal("0.0025")
    reconcile_attempts: int = 3
    reconcile_delay_s: float = 0.5
    reconcile_window_s: float = 30.0  # a found order may have been placed this long before our POST
    resubmit_max: int = 2  # sends again of an order KIS proved not to have
    resubmit_settle_s: float = 10.0  # KIS's order list is asked once more this long after the POST
    signal_max_age_s: float = 120.0  # the stale-alert limit: an older signal's order is not sent again

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        kis, gateway = settings.kis, settings.gateway
        return cls(
            maxlen=settings.bus.stream_maxlen,
            poll_interval_s=kis.poll_interval_s,
            safety_poll_interval_s=kis.safety_poll_interval_s,
            notice_grace_s=kis.notice_grace_s,
            fill_check_delay_s=gateway.fill_check_delay_s,
            sync_debounce_s=gateway.sync_debounce_s,
            sync_min_interval_s=gateway.sync_min_interval_s,
            sync_interval_s=kis.sync_interval_s,
            quote_cache_ttl_s=gateway.quote_cache_ttl_s,
            quote_reply_ttl_s=gateway.quote_reply_ttl_s,
            quote_request_max_age_s=gateway.quote_request_max_age_s,
            dashboard_quote_interval_s=gateway.dashboard_quote_interval_s,
            fee_rate_krx=gateway.fee_rate_krx,
            fee_rate_us=gateway.fee_rate_us,
            reconcile_attempts=gateway.reconcile_attempts,
            reconcile_delay_s=gateway.reconcile_delay_s,
            resubmit_max=gateway.resubmit_max,
            resubmit_settle_s=gateway.resubmit_settle_s,
            signal_max_age_s=settings.ordermanager.max_signal_age_s,
        )
