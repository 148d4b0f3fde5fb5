"""Every Valkey stream, consumer group and key name used by yQuant, in one place.

All names live under one prefix so an ACL pattern (``~yq:...``) can grant exactly
what a service needs. Change a name here and nowhere else.
"""

from __future__ import annotations

import hashlib
from typing import Any

PREFIX = "yq:"

# --- streams -------------------------------------------------------------------------
# SignalReceived, one stream per producer. Each producer's Valkey user may append only to its own
# stream, and the order manager accepts from each stream only the sources that producer may claim
# (SIGNAL_STREAMS): a compromised webhook host cannot pose as the dashboard or a liquidation.
SIGNALS_WEBHOOK = PREFIX + "stream:signals:webhook"  # TradingView alerts (the webhook)
SIGNALS_DASHBOARD = PREFIX + "stream:signals:dashboard"  # manual orders, flatten, liquidation (dashboard, console)
SIGNALS_INTERNAL = PREFIX + "stream:signals:internal"  # schedules and exits (the order manager itself)
SIGNAL_STREAMS: dict[str, frozenset[str]] = {
    SIGNALS_WEBHOOK: frozenset({"webhook"}),
    SIGNALS_DASHBOARD: frozenset({"dashboard", "flatten", "liquidation"}),
    SIGNALS_INTERNAL: frozenset({"schedule", "exit", "eod"}),
}
# What the gateway is asked, one stream per producer as for signals: only the order manager may
# append to ORDERS and QUERIES. A person's cancels (dashboard, console) and the dashboard's quote
# requests have streams of their own, on which the gateway accepts that one type and nothing else
# (a SubmitOrder there is refused and dead-lettered), and the dashboard's ACL user may append to
# those and not to the order manager's: a compromised VM2 cannot send an order to KIS.
ORDERS = PREFIX + "stream:orders"  # SubmitOrder / CancelOrder / ReviseOrder commands of the order manager
CANCELS = PREFIX + "stream:cancels"  # CancelOrder asked by a person (dashboard, console)
# ReviseOrder asked by a person (the dashboard). The order manager reads it, not the gateway: a
# revision that adds risk passes the same limits as a new order, then goes on ORDERS (ADR 0014).
REVISIONS = PREFIX + "stream:revisions"
# What changes an order's fills, its finality or an account: fills, refusals, failures, cancels and
# AccountSynced. The order manager follows up on every entry (exits, released reserves, positions
# closed), so it carries nothing else: each entry is a read of its consumer group.
EXECUTIONS = PREFIX + "stream:executions"
# An order's progress that nothing trades on: submitted, accepted by KIS, revised, a revision
# refused. Live pages and tools watch it; the order manager does not read it (ADR 0004).
PROGRESS = PREFIX + "stream:progress"
PROGRESS_EVENTS = frozenset({"OrderSubmitted", "OrderAccepted", "OrderRevised", "OrderRevisionRefused"})
DECISIONS = PREFIX + "stream:decisions"  # one decision per signal: accepted or denied
QUERIES = PREFIX + "stream:queries"  # the order manager's quote requests
QUERIES_DASHBOARD = PREFIX + "stream:queries:dashboard"  # the dashboard's quote requests (a small budget)
# The stream a requester's quote requests go to (its reply keys are ``reply:<requester>-*``).
QUERY_STREAMS: dict[str, str] = {"om": QUERIES, "dash": QUERIES_DASHBOARD}
DEAD_LETTERS = PREFIX + "stream:deadletters"  # entries that failed too often, or were refused
AUDIT_LOG = PREFIX + "stream:audit"  # every manual action on the dashboard
# A service's reports on its own health, off the trading path: the gateway's KIS token issuance
# failing and recovering (TokenIssuance, one entry per change, not per attempt).
HEALTH = PREFIX + "stream:health"
# The notifier's own events, derived from what it watches (a service missing its heartbeat and
# back, a market's daily summary), delivered to each destination like the entries of any other
# stream it reads.
NOTICES = PREFIX + "stream:notices"

ALL_STREAMS = (
    *SIGNAL_STREAMS,
    ORDERS,
    CANCELS,
    REVISIONS,
    EXECUTIONS,
    PROGRESS,
    DECISIONS,
    QUERIES,
    QUERIES_DASHBOARD,
    DEAD_LETTERS,
    AUDIT_LOG,
    HEALTH,
    NOTICES,
)

# --- consumer groups -----------------------------------------------------------------
GROUP_ORDERMANAGER = "ordermanager"
GROUP_BROKERGATEWAY = "brokergateway"

# --- keys ----------------------------------------------------------------------------
FUNCTIONS_LIBRARY = "yquant"


def event_stream(event_type: str) -> str:
    """The stream an order event of ``event_type`` (its class name) goes to."""
    return PROGRESS if event_type in PROGRESS_EVENTS else EXECUTIONS


def signal_dedupe(signal_id: str) -> str:
    """Marks a signal id as seen (with a TTL) so resends are dropped."""
    return f"{PREFIX}dedupe:signal:{signal_id}"


def signal_record(signal_id: str) -> str:
    """Hash with the decision about one signal (state, reason, order ids)."""
    return f"{PREFIX}signal:{signal_id}"


SIGNALS_INDEX = PREFIX + "signals:index"  # sorted set: signal id by receive time


def order(client_order_id: str) -> str:
    """Hash holding one order record; ``client_order_id`` is deterministic."""
    return f"{PREFIX}order:{client_order_id}"


def order_history(client_order_id: str) -> str:
    """List of the order's state changes (JSON lines)."""
    return f"{PREFIX}order:{client_order_id}:history"


def order_lease(client_order_id: str) -> str:
    """SET NX PX marker: a gateway is submitting or reconciling the order (its owner's instance)."""
    return f"{PREFIX}order:{client_order_id}:lease"


ORDERS_INDEX = PREFIX + "orders:index"  # sorted set: client order id by creation time
ORDERS_OPEN = PREFIX + "orders:open"  # set of client order ids not yet final


def unsettled_orders(account_alias: str) -> str:
    """Hash: client order id -> the order's record as JSON, for each order of the account the last
    sync may not reflect (written by the order functions, pruned by the sync; ``functions.lua``)."""
    return f"{PREFIX}orders:unsettled:{account_alias}"


def broker_order(account_alias: str, broker_order_id: str) -> str:
    """Maps a broker order number back to our client order id."""
    return f"{PREFIX}brokerorder:{account_alias}:{broker_order_id}"


def account(account_alias: str) -> str:
    """Hash: the latest account snapshot (cash per currency, sync time)."""
    return f"{PREFIX}account:{account_alias}"


def positions(account_alias: str) -> str:
    """Hash: ticker -> JSON position snapshot for one account."""
    return f"{PREFIX}positions:{account_alias}"


def position_attribution(account_alias: str) -> str:
    """Hash: ticker -> the strategy (or manual / schedule) that opened the position."""
    return f"{PREFIX}attribution:{account_alias}"


ACCOUNTS_INDEX = PREFIX + "accounts"  # set of known account aliases


def text(value: Any) -> str:
    """A Valkey reply (bytes or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def token(app_key: str) -> str:
    """The KIS access token for one app key (the key itself is never part of a name)."""
    return f"{PREFIX}token:{_digest(app_key)}"


def token_lock(app_key: str) -> str:
    return f"{PREFIX}lock:token:{_digest(app_key)}"


def token_issued_at(app_key: str) -> str:
    """When a token was last issued for the app key (guards KIS's issuance limit)."""
    return f"{PREFIX}token:{_digest(app_key)}:issued"


def token_failing(app_key: str) -> str:
    """Set while KIS refuses to issue a token for the app key (SET NX on the first failure, DEL on
    the next success): one ``TokenIssuance`` each way on keys.HEALTH, whichever gateway process or
    life saw it."""
    return f"{PREFIX}token:{_digest(app_key)}:failing"


def rate_limit(account_alias: str) -> str:
    return f"{PREFIX}ratelimit:{account_alias}"


DASHBOARD_QUOTE_BUDGET = PREFIX + "ratelimit:dashboard-quotes"  # SET NX PX: the dashboard's next KIS quote


def quote(market: str, ticker: str) -> str:
    """Cached quote with a TTL."""
    return f"{PREFIX}quote:{market}:{ticker}"


def reply(request_id: str) -> str:
    """List the gateway pushes a query's answer to (with a TTL)."""
    return f"{PREFIX}reply:{request_id}"


TRADING_STATE = PREFIX + "trading:state"  # hash: "*" (global) or alias -> state
RISK_LIMITS = PREFIX + "risk:limits"  # hash: limit name -> value
SCHEDULES = PREFIX + "schedules"  # sorted set: schedule id by next due time


def schedule(schedule_id: str) -> str:
    return f"{PREFIX}schedule:{schedule_id}"


def schedule_fired(schedule_id: str, occurrence: str) -> str:
    """SET NX marker so each occurrence fires once, whatever the number of order managers."""
    return f"{PREFIX}schedule:{schedule_id}:fired:{occurrence}"


def heartbeat(service: str, instance: str) -> str:
    """Hash with a short TTL, refreshed by a running service."""
    return f"{PREFIX}hb:{service}:{instance}"


HEARTBEAT_PATTERN = PREFIX + "hb:*"


def rate_window(scope: str) -> str:
    """Per-account order-rate window for the pre-trade risk check."""
    return f"{PREFIX}risk:rate:{scope}"


EQUITY_SNAPSHOTS = PREFIX + "equity:snapshots"  # sorted set of daily equity snapshots

# --- dashboard (owned by dashboard/) ---------------------------------------------------
FX_USDKRW = PREFIX + "fx:USDKRW"  # cached USD/KRW rate: a decimal string or a Quote's JSON


def dashboard_session(session_digest: str) -> str:
    """Hash: one signed-in dashboard session, keyed by a digest of its id, with an idle TTL."""
    return f"{PREFIX}dash:session:{session_digest}"


def dashboard_confirmation(nonce: str) -> str:
    """JSON: what a confirmation page the dashboard served is for (user, session, purpose, the order)."""
    return f"{PREFIX}dash:confirm:{nonce}"


def login_failures(scope: str) -> str:
    """Counter (with a TTL) of failed dashboard logins for ``user:<digest>`` or ``addr:<ip>``."""
    return f"{PREFIX}dash:loginfail:{scope}"


def login_known_addresses(scope: str) -> str:
    """Set of addresses ``user:<digest>`` signed in from (exempt from the per-user slow-down)."""
    return f"{PREFIX}dash:loginknown:{scope}"


def totp_used(username: str, code: str) -> str:
    """SET NX marker so a TOTP code is accepted once (replay protection)."""
    return f"{PREFIX}dash:totp:{_digest(username + ':' + code)}"


def equity_snapshot_taken(day: str) -> str:
    """SET NX marker: the daily equity snapshot of ``day`` (YYYY-MM-DD) was taken."""
    return f"{PREFIX}equity:taken:{day}"


# --- order manager: risk, schedules, exits (owned by ordermanager/) -------------------
GROUP_ORDERMANAGER_EXECUTIONS = "ordermanager-exec"  # the order manager's group on EXECUTIONS
SCHEDULES_INDEX = PREFIX + "schedules:all"  # set of every schedule id (SCHEDULES holds only due ones)


def duplicate_guard(account_alias: str, market: str, ticker: str, side: str, strategy: str) -> str:
    """SET NX PX marker: the same order intent again within the duplicate window is denied."""
    return f"{PREFIX}risk:dup:{account_alias}:{market}:{ticker}:{side}:{strategy}"


def reservations(account_alias: str) -> str:
    """Hash: client order id -> JSON price a buy was sized with (values pending market buys for the cash check)."""
    return f"{PREFIX}risk:reserved:{account_alias}"


def daily_equity(account_alias: str, day: str) -> str:
    """Hash: currency -> equity at the first sync of the market day (the daily-loss baseline)."""
    return f"{PREFIX}risk:equity:{account_alias}:{day}"


def reverse_entry(exit_client_order_id: str) -> str:
    """The entry of a reverse signal, waiting for its exit order to fill (with a TTL)."""
    return f"{PREFIX}reverse:{exit_client_order_id}"


def exit_rules(account_alias: str) -> str:
    """Hash: MARKET:TICKER -> JSON stop-loss / take-profit / trailing stop of a position."""
    return f"{PREFIX}exits:{account_alias}"


def exit_triggered(account_alias: str, rule_id: str) -> str:
    """SET NX marker so an exit rule triggers once, whatever the number of order managers."""
    return f"{PREFIX}exits:{account_alias}:triggered:{rule_id}"


def end_of_day_done(strategy: str, market: str, day: str) -> str:
    """SET NX marker: the strategy's end-of-day liquidation ran for that market day."""
    return f"{PREFIX}eod:{strategy}:{market}:{day}"


# --- notifier (owned by notifier/) ----------------------------------------------------
GROUP_NOTIFIER = "notifier"  # before 2026-12: one group for every destination (read once, to migrate)


def notifier_group(destination: str) -> str:
    """The notifier's consumer group for one destination, on each of NOTIFIER_STREAMS: each
    destination reads and acknowledges on its own, so one that keeps failing delays no other."""
    return f"{GROUP_NOTIFIER}:{destination}"


# What the notifier reports. Its group is created before any service starts (yquant.supervisor), so
# what is appended right after a first start is reported too.
NOTIFIER_STREAMS = (DECISIONS, EXECUTIONS, AUDIT_LOG, DEAD_LETTERS, HEALTH, NOTICES)
NOTIFY_PREFIX = PREFIX + "notify:"
# Hash: service -> JSON (instance, since) of a service reported missing its heartbeat, until it is
# reported back: one message per outage, even across a restart of the notifier.
NOTIFY_DOWN = NOTIFY_PREFIX + "down"
# Hash: "service:instance" -> the life (yquant.runtime.LIFE) of its heartbeat the notifier last saw;
# a new life whose predecessor's end the notifier never saw is a restart it reports.
NOTIFY_LIVES = NOTIFY_PREFIX + "lives"


def notify_progress(destination: str) -> str:
    """Hash: stream -> the last entry id delivered to the destination (no resend after a crash)."""
    return f"{NOTIFY_PREFIX}progress:{destination}"


def notify_status(destination: str) -> str:
    """Hash: the destination's last delivery result (ok, at, error, last_ok_at, delivered, failures,
    consecutive_failures); no secrets. The dashboard's system page shows it."""
    return f"{NOTIFY_PREFIX}status:{destination}"


NOTIFY_STATUS_PATTERN = notify_status("*")


def notify_summary(market: str, day: str) -> str:
    """The claim of one daily summary (``KRX`` or ``US``, YYYY-MM-DD), set with its notice in one
    transaction: once per market and day across restarts (notifier/summary.py)."""
    return f"{NOTIFY_PREFIX}summary:{market}:{day}"


def notify_trimmed(destination: str) -> str:
    """Hash: stream -> the destination group's last delivered id when entries trimmed off the stream
    before it read them were last reported (a loss is reported once, even across a restart)."""
    return f"{NOTIFY_PREFIX}trimmed:{destination}"


# When the notifier first watched for closes (ISO time, SET NX): a close before it is owed no summary.
NOTIFY_SUMMARY_SINCE = NOTIFY_PREFIX + "summary:since"
