"""The simulator's state on disk: accounts, cash, holdings, orders (open and past), tokens and prices.

One sqlite3 file (standard library), written in transactions (journal mode WAL, synchronous FULL:
a commit is on disk before the answer that caused it goes out). ``Simulator.save`` writes what
changed since the last save: new orders, orders that were still open, accounts, tokens, quotes.
``load`` restores it at start; a file written by a different layout is refused with a clear message
and left as it is (``python -m kissim --state-file PATH --reset`` clears it).
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from kissim.accounts import Account, CashLedger, Currency
from kissim.auth import AccessToken, TokenStore
from kissim.engine import Engine
from kissim.market import Family, PriceBook, Quote
from kissim.orders import Order, OrderKind, Side

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS orders (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (number TEXT PRIMARY KEY, body BLOB NOT NULL);
"""


class StateFileError(Exception):
    """The state file cannot be used (another layout, corrupt); nothing was changed in it."""


# --------------------------------------------------------------------------- encoding


def _order(order: Order) -> dict[str, Any]:
    return {
        "odno": order.odno,
        "org_no": order.org_no,
        "cano": order.cano,
        "product_code": order.product_code,
        "tr_id": order.tr_id,
        "family": order.family,
        "exchange": order.exchange,
        "ticker": order.ticker,
        "name": order.name,
        "side": order.side.value,
        "ord_dvsn": order.ord_dvsn,
        "quantity": order.quantity,
        "price": str(order.price),
        "received_at_ns": order.received_at_ns,
        "ord_dt": order.ord_dt.isoformat(),
        "ord_tmd": order.ord_tmd,
        "session_date": order.session_date.isoformat(),
        "kind": order.kind.value,
        "original_odno": order.original_odno,
        "filled_quantity": order.filled_quantity,
        "filled_amount": str(order.filled_amount),
        "cancelled_quantity": order.cancelled_quantity,
        "revised_quantity": order.revised_quantity,
        "fees": str(order.fees),
        "released_cost": str(order.released_cost),
        "reserve_unit": str(order.reserve_unit),
        "reserved_left": str(order.reserved_left),
        "rejected": order.rejected,
        "reject_reason": order.reject_reason,
        "response_dropped": order.response_dropped,
    }


def _decode_order(data: dict[str, Any]) -> Order:
    family: Family = "KRX" if data["family"] == "KRX" else "US"
    return Order(
        odno=data["odno"],
        org_no=data["org_no"],
        cano=data["cano"],
        product_code=data["product_code"],
        tr_id=data["tr_id"],
        family=family,
        exchange=data["exchange"],
        ticker=data["ticker"],
        name=data["name"],
        side=Side(data["side"]),
        ord_dvsn=data["ord_dvsn"],
        quantity=int(data["quantity"]),
        price=Decimal(data["price"]),
        received_at_ns=int(data["received_at_ns"]),
        ord_dt=date.fromisoformat(data["ord_dt"]),
        ord_tmd=data["ord_tmd"],
        session_date=date.fromisoformat(data["session_date"]),
        kind=OrderKind(data["kind"]),
        original_odno=data["original_odno"],
        filled_quantity=int(data["filled_quantity"]),
        filled_amount=Decimal(data["filled_amount"]),
        cancelled_quantity=int(data["cancelled_quantity"]),
        revised_quantity=int(data["revised_quantity"]),
        fees=Decimal(data["fees"]),
        released_cost=Decimal(data.get("released_cost", "0")),  # absent in files written before it was kept
        reserve_unit=Decimal(data["reserve_unit"]),
        reserved_left=Decimal(data["reserved_left"]),
        rejected=bool(data["rejected"]),
        reject_reason=data["reject_reason"],
        response_dropped=bool(data["response_dropped"]),
    )


_LEDGER_AMOUNTS = (
    "cash",
    "deposit",
    "reserved",
    "buy_today",
    "sell_today",
    "fees_today",
    "buy_yesterday",
    "sell_yesterday",
    "fees_yesterday",
    "realized_today",
)
_HOLDING_COUNTS = ("quantity", "reserved_for_sale", "bought_today", "sold_today", "bought_yesterday", "sold_yesterday")


def _ledger(ledger: CashLedger) -> dict[str, str]:
    return {name: str(getattr(ledger, name)) for name in _LEDGER_AMOUNTS}


def _decode_ledger(currency: Currency, data: dict[str, str]) -> CashLedger:
    ledger = CashLedger(currency, Decimal(data["cash"]), Decimal(data["deposit"]))
    for name in _LEDGER_AMOUNTS:
        setattr(ledger, name, Decimal(data[name]))
    return ledger


def _account(account: Account) -> dict[str, Any]:
    return {
        "cano": account.cano,
        "product_code": account.product_code,
        "day": account.day.isoformat(),
        "krw": _ledger(account.krw),
        "usd": _ledger(account.usd),
        "holdings": [
            {
                "family": h.family,
                "ticker": h.ticker,
                "name": h.name,
                "exchange": h.exchange,
                "cost": str(h.cost),
                **{name: getattr(h, name) for name in _HOLDING_COUNTS},
            }
            for h in account.holdings.values()
        ],
    }


def _decode_account(data: dict[str, Any]) -> Account:
    account = Account(
        data["cano"],
        data["product_code"],
        _decode_ledger("KRW", data["krw"]),
        _decode_ledger("USD", data["usd"]),
        date.fromisoformat(data["day"]),
    )
    for row in data["holdings"]:
        family: Family = "KRX" if row["family"] == "KRX" else "US"
        holding = account.holding(family, row["ticker"], row["name"], row["exchange"])
        holding.cost = Decimal(row["cost"])
        for name in _HOLDING_COUNTS:
            setattr(holding, name, int(row[name]))
    return account


def _quotes(prices: PriceBook) -> list[dict[str, Any]]:
    return [
        {
            "family": q.family,
            "ticker": q.ticker,
            "base": str(q.base),
            "price": str(q.price),
            "open": str(q.open),
            "high": str(q.high),
            "low": str(q.low),
            "volume": q.volume,
            "turnover": str(q.turnover),
            "pinned": q.pinned,
            "steps": q.walked,
        }
        for q in prices.quotes.values()
    ]


def _restore_quotes(prices: PriceBook, rows: list[dict[str, Any]]) -> None:
    due = prices.due_step()
    for row in rows:
        family: Family = "KRX" if row["family"] == "KRX" else "US"
        ticker = row["ticker"]
        walked = int(row["steps"])
        # The walk goes on from where it stopped, with a generator seeded by how far it had gone.
        rng = random.Random(f"{prices.seed}:{family}:{ticker}:{walked}")
        quote = Quote(
            family,
            ticker,
            Decimal(row["base"]),
            Decimal(row["price"]),
            Decimal(row["open"]),
            Decimal(row["high"]),
            Decimal(row["low"]),
            rng,
            step=due,
            volume=int(row["volume"]),
            turnover=Decimal(row["turnover"]),
            pinned=bool(row["pinned"]),
            walked=walked,
        )
        quote.marked_volume, quote.marked_turnover = quote.volume, quote.turnover
        prices.quotes[(family, ticker)] = quote


def _tokens(store: TokenStore) -> dict[str, Any]:
    return {
        "tokens": [
            {
                "value": t.value,
                "appkey": t.appkey,
                "issued_at": t.issued_at,
                "expires_at": t.expires_at,
                "revoked": t.revoked,
            }
            for t in store.tokens.values()
        ],
        "latest": {appkey: token.value for appkey, token in store.latest.items()},
        "last_call": store.last_call,
        "approval_keys": store.approval_keys,
        "issued": store.issued,
        "throttled": store.throttled,
    }


def _restore_tokens(store: TokenStore, data: dict[str, Any]) -> None:
    store.reset()
    for row in data["tokens"]:
        token = AccessToken(row["value"], row["appkey"], row["issued_at"], row["expires_at"], row["revoked"])
        store.tokens[token.value] = token
    store.latest.update({appkey: store.tokens[value] for appkey, value in data["latest"].items()})
    store.last_call.update({k: float(v) for k, v in data["last_call"].items()})
    store.approval_keys.update(data["approval_keys"])
    store.issued.update({k: int(v) for k, v in data["issued"].items()})
    store.throttled = int(data["throttled"])


# --------------------------------------------------------------------------- the store


@dataclass
class StateStore:
    """Writes the simulator's state to ``path`` and reads it back."""

    path: Path
    connection: sqlite3.Connection = field(init=False)
    saved: dict[str, bytes] = field(default_factory=dict)  # meta key / "a:" + account -> bytes last written
    saved_orders: int = 0  # orders[:saved_orders] have a row

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=FULL")
            self.connection.executescript(_SCHEMA)
            version = self._meta("version")
        except sqlite3.DatabaseError as error:
            raise StateFileError(f"{self.path}: not a kissim state file ({error})") from error
        if version is None:
            self.connection.execute("INSERT INTO meta VALUES ('version', ?)", (orjson.dumps(SCHEMA_VERSION),))
        elif version != SCHEMA_VERSION:
            raise StateFileError(f"{self.path}: state layout {version!r}, this kissim writes {SCHEMA_VERSION!r}")

    def _meta(self, key: str) -> Any:
        row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def close(self) -> None:
        self.connection.close()

    # ------------------------------------------------------------------ load

    def load(self, engine: Engine, tokens: TokenStore, accounts_by_appkey: dict[str, set[str]]) -> bool:
        """Restore a saved state into ``engine`` and ``tokens``; False when the file was empty."""
        try:
            next_odno = self._meta("next_odno")
            if next_odno is None:
                return False
            engine.reset()
            for (body,) in self.connection.execute("SELECT body FROM accounts"):
                account = _decode_account(orjson.loads(body))
                engine.accounts[account.number] = account
                self.saved["a:" + account.number] = body
            for seq, body in self.connection.execute("SELECT seq, body FROM orders ORDER BY seq"):
                if seq != len(engine.orders):
                    raise StateFileError(f"{self.path}: order rows are not contiguous at {seq}")
                engine.restore_order(_decode_order(orjson.loads(body)))
            engine.next_odno = int(next_odno)
            _restore_quotes(engine.prices, self._meta("quotes") or [])
            _restore_tokens(tokens, self._meta("tokens"))
            accounts_by_appkey.clear()
            accounts_by_appkey.update({k: set(v) for k, v in (self._meta("accounts_by_appkey") or {}).items()})
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError, sqlite3.DatabaseError) as error:
            raise StateFileError(f"{self.path}: unreadable state ({error!r})") from error
        self.saved_orders = len(engine.orders)
        engine.touched.clear()
        return True

    # ------------------------------------------------------------------ save

    def save(
        self,
        engine: Engine,
        tokens: TokenStore,
        accounts_by_appkey: dict[str, set[str]],
        *,
        quotes: bool,
    ) -> int:
        """Write what changed since the last save in one transaction; returns the rows written."""
        writes: list[tuple[str, tuple[Any, ...]]] = []
        cache: dict[str, bytes] = {}
        orders = engine.orders
        touched = set(engine.touched)
        for seq in sorted(touched | set(range(self.saved_orders, len(orders)))):
            body = orjson.dumps(_order(orders[seq]))
            writes.append(("INSERT OR REPLACE INTO orders VALUES (?, ?)", (seq, body)))
        for number, account in engine.accounts.items():
            body = orjson.dumps(_account(account))
            if self.saved.get("a:" + number) != body:
                writes.append(("INSERT OR REPLACE INTO accounts VALUES (?, ?)", (number, body)))
                cache["a:" + number] = body
        meta: dict[str, Any] = {
            "next_odno": engine.next_odno,
            "tokens": _tokens(tokens),
            "accounts_by_appkey": {k: sorted(v) for k, v in accounts_by_appkey.items()},
        }
        if quotes or "quotes" not in self.saved:
            meta["quotes"] = _quotes(engine.prices)
        for key, value in meta.items():
            body = orjson.dumps(value)
            if self.saved.get(key) != body:
                writes.append(("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, body)))
                cache[key] = body
        if writes:
            with self._transaction() as connection:
                for statement, values in writes:
                    connection.execute(statement, values)
        # Only what is committed counts as saved: after a failed write the next save tries again.
        self.saved.update(cache)
        engine.touched -= touched
        self.saved_orders = len(orders)
        return len(writes)

    def clear(self) -> None:
        """Forget every saved row (the admin reset); the next save writes the fresh state."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM orders")
            connection.execute("DELETE FROM accounts")
            connection.execute("DELETE FROM meta WHERE key != 'version'")
        self.saved.clear()
        self.saved_orders = 0

    def _transaction(self) -> _Transaction:
        return _Transaction(self.connection)


class _Transaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")


def reset_file(path: Path) -> bool:
    """Delete the state file (and its WAL files); True when there was one."""
    found = False
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()
            found = True
    return found
