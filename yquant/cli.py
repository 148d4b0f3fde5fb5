"""The ``yquant`` command: run the system and look into it from a console."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from yquant import keys
from yquant.settings import Settings, get_settings

CONSOLE = "console"  # the address of a console action in the audit log


def _runtime(settings: Settings) -> dict[str, Any]:
    path = settings.state_dir / "runtime.json"
    if path.exists():
        data: dict[str, Any] = orjson.loads(path.read_bytes())
        return data
    return {}


def _valkey_url(settings: Settings) -> str:
    if os.environ.get("YQ_VALKEY__URL"):
        return settings.valkey.url
    return str(_runtime(settings).get("valkey_url") or settings.valkey.url)


def _client(settings: Settings) -> Any:
    from yquant import valkey

    return valkey.connect(settings.valkey.model_copy(update={"url": _valkey_url(settings)}))


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _print_json(data: Any) -> None:
    """JSON for scripts: amounts and quantities as numbers, times as ISO 8601."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=_json_default).decode() + "\n")


def _width(text: str) -> int:
    """Display width: East Asian wide characters (Korean stock names) take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _amount(value: Any, currency: str) -> str:
    """KRW without decimals, USD with two, thousands separated (empty when unknown)."""
    from decimal import Decimal, InvalidOperation

    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not amount.is_finite():
        return str(value)
    return f"{amount:,.0f}" if currency == "KRW" else f"{amount:,.2f}"


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(_width(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True))
    sys.stdout.write(line.rstrip() + "\n" + "  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        sys.stdout.write("  ".join(_pad(str(c), w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


async def _status(settings: Settings, as_json: bool) -> int:
    from yquant import trading_state

    client = _client(settings)
    try:
        try:
            info = await client.info("server")
            memory = await client.info("memory")
            hub: dict[str, Any] = {
                "reachable": True,
                "version": info.get("valkey_version") or info.get("redis_version"),
                "used_memory_mib": round(int(memory.get("used_memory", 0)) / 2**20, 1),
                "maxmemory_mib": round(int(memory.get("maxmemory", 0)) / 2**20, 1),
            }
        except Exception as exc:
            sys.stderr.write(f"valkey at {_valkey_url(settings)} is not reachable: {exc}\n")
            return 1
        beats = []
        async for key in client.scan_iter(match=keys.HEARTBEAT_PATTERN, count=200):
            data: dict[str, Any] = {k.decode(): v.decode() for k, v in (await client.hgetall(key)).items()}
            if data:
                data["age_s"] = round(time.time() - float(data.get("seen_at", 0)), 1)
                data["rss_mib"] = int(data.pop("rss_kib", 0) or 0) // 1024
                beats.append(data)
        streams = []
        for stream in keys.ALL_STREAMS:
            length = await client.xlen(stream)
            groups = await client.xinfo_groups(stream) if length or await client.exists(stream) else []
            for group in groups:
                lag = group.get("lag")
                streams.append(
                    {
                        "stream": stream,
                        "group": group["name"].decode(),
                        "length": length,
                        "pending": int(group["pending"]),
                        "lag": int(lag) if lag is not None else None,  # None: Valkey cannot tell (trimmed)
                    }
                )
            if not groups:
                streams.append({"stream": stream, "group": "", "length": length, "pending": 0, "lag": None})
        states = {scope: value.value for scope, value in (await trading_state.get_trading_states(client)).items()}
    finally:
        await client.aclose()
    simulator = _simulator_status(settings)
    if as_json:
        _print_json({"valkey": hub, "simulator": simulator, "trading": states, "services": beats, "streams": streams})
        return 0
    sys.stdout.write(
        f"valkey {hub['version']} at {_valkey_url(settings)}: {hub['used_memory_mib']} MiB used"
        f" of {hub['maxmemory_mib'] or 'unlimited'} MiB\n"
    )
    if simulator is not None:
        sys.stdout.write(f"KIS simulator at {simulator['url']}: {'up' if simulator['up'] else 'NOT ANSWERING'}\n")
    trading = ", ".join(f"{'global' if k == trading_state.GLOBAL else k} {v}" for k, v in states.items())
    sys.stdout.write(f"trading: {trading}\n\n")
    _table(
        [
            [
                b.get("service", ""),
                b.get("instance", ""),
                b.get("pid", ""),
                f"{b['age_s']:.1f}",
                f"{b['rss_mib']} MiB",
            ]
            for b in sorted(beats, key=lambda b: b.get("service", ""))
        ],
        ["service", "instance", "pid", "seen (s ago)", "rss"],
    )
    sys.stdout.write("\n")
    _table(
        [
            [
                s["stream"],
                s["group"],
                f"{s['length']:,}",
                f"{s['pending']:,}",
                "?" if s["lag"] is None else f"{s['lag']:,}",
            ]
            for s in streams
        ],
        ["stream", "group", "length", "pending", "lag"],
    )
    return 0


def _simulator_status(settings: Settings) -> dict[str, Any] | None:
    """The embedded simulator's health, when ``yquant up`` started one (None otherwise)."""
    import httpx

    url = _runtime(settings).get("kissim_url")
    if not url:
        return None
    try:
        up = httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        up = False
    return {"url": url, "up": up}


async def _orders(settings: Settings, as_json: bool, limit: int) -> int:
    from yquant import orders

    client = _client(settings)
    try:
        records = await orders.recent_orders(client, limit)
    finally:
        await client.aclose()
    if as_json:
        _print_json([r.model_dump() for r in records])
        return 0
    _table(
        [
            [
                r.created_at.strftime("%m-%d %H:%M:%S"),
                r.client_order_id,
                r.account,
                r.market.value,
                r.ticker,
                r.side.value,
                f"{r.quantity:,}",
                f"{r.filled_quantity:,}",
                _amount(r.average_price, r.market.currency),
                r.state.value,
                _clip(r.reason, 40),
            ]
            for r in records
        ],
        ["created (UTC)", "id", "account", "market", "ticker", "side", "qty", "filled", "avg", "state", "reason"],
    )
    return 0


async def _known_accounts(settings: Settings, client: Any) -> list[str]:
    """Accounts the system knows: configured here, or synced by the gateway into Valkey."""
    from yquant import portfolio

    return sorted(set(settings.accounts) | set(await portfolio.account_aliases(client)))


def _unknown_account(alias: str, known: list[str]) -> int:
    listed = ", ".join(known) if known else "none yet (the gateway records each account at its first sync)"
    sys.stderr.write(f"unknown account {alias!r}; known accounts: {listed}\n")
    return 2


async def _positions(settings: Settings, as_json: bool, account: str | None) -> int:
    from yquant import portfolio

    client = _client(settings)
    try:
        if account is not None and account not in (known := await _known_accounts(settings, client)):
            return _unknown_account(account, known)
        aliases = [account] if account else await portfolio.account_aliases(client)
        snapshots = [a for a in [await portfolio.get_account(client, x) for x in aliases] if a]
    finally:
        await client.aclose()
    if as_json:
        _print_json([s.model_dump() for s in snapshots])
        return 0
    rows = [
        [
            s.account,
            p.market.value,
            p.ticker,
            p.name,
            f"{p.quantity:,}",
            _amount(p.average_price, p.currency),
            _amount(p.current_price, p.currency),
            _amount(p.unrealized_pnl, p.currency),
            p.strategy or "",
        ]
        for s in snapshots
        for p in s.positions
    ]
    _table(rows, ["account", "market", "ticker", "name", "qty", "avg", "price", "p/l", "strategy"])
    for s in snapshots:
        cash = ", ".join(f"{k} {_amount(v, k)}" for k, v in s.cash.items())
        sys.stdout.write(f"{s.account}: cash {cash} (synced {s.synced_at})\n")
        for o in s.unowned_open_orders:
            sys.stdout.write(
                f"{s.account}: open at KIS, not placed by yQuant: {o.market} {o.ticker} {o.side} "
                f"{o.remaining_quantity:,} @ {o.price} (KIS order {o.broker_order_id})\n"
            )
    return 0


async def _signals(settings: Settings, as_json: bool, limit: int) -> int:
    from yquant import decisions

    client = _client(settings)
    try:
        rows = await decisions.recent_signals(client, limit)
    finally:
        await client.aclose()
    if as_json:
        _print_json(rows)
        return 0
    table = []
    for row in rows:
        signal = row.get("signal") or {}
        assert isinstance(signal, dict)
        table.append(
            [
                str(signal.get("received_at", ""))[:19],
                str(signal.get("strategy", "")),
                str(signal.get("ticker", "")),
                str(signal.get("action", "")),
                str(row.get("status", "")),
                _clip(str(row.get("reason", row.get("note", ""))), 60),
            ]
        )
    _table(table, ["received (UTC)", "strategy", "ticker", "action", "status", "reason"])
    return 0


def _signal(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    runtime = _runtime(settings)
    url = args.url or runtime.get("webhook_url") or f"http://127.0.0.1:{settings.webhook.port}/webhook"
    secret = args.secret or os.environ.get("YQ_WEBHOOK_SECRET") or os.environ.get("YQ_WEBHOOK__SECRET")
    if not secret:
        path = settings.state_dir / "webhook-secret"
        secret = path.read_text().strip() if path.exists() else ""
    body: dict[str, Any] = {
        "secret": secret,
        "strategy": args.strategy,
        "ticker": args.ticker,
        "exchange": args.exchange,
        "action": args.action,
    }
    if args.quantity is not None:
        body["quantity"] = args.quantity
    if args.price is not None:
        body["price"] = args.price
        body["order_type"] = "limit"
    if args.id:
        body["id"] = args.id
    response = httpx.post(url, json=body, timeout=5)
    sys.stdout.write(f"HTTP {response.status_code} {response.text}\n")
    return 0 if response.status_code == 200 else 1


def _console_user() -> str:
    import getpass

    return getpass.getuser()


async def _trading_state(settings: Settings, state: str | None, account: str | None, as_json: bool) -> int:
    from yquant import audit, trading_state

    client = _client(settings)
    try:
        if state is not None:
            try:
                chosen = trading_state.parse_state(state)
            except ValueError as exc:
                sys.stderr.write(f"{exc}\n")
                return 2
            if account is not None and account not in (known := await _known_accounts(settings, client)):
                return _unknown_account(account, known)
            await trading_state.set_trading_state(client, chosen, account)
            scope = account or trading_state.GLOBAL
            detail = {"scope": scope, "state": chosen.value}
            await audit.record(client, _console_user(), "trading_state", detail, CONSOLE)
        states = await trading_state.get_trading_states(client)
    finally:
        await client.aclose()
    if as_json:
        _print_json({scope: value.value for scope, value in states.items()})
        return 0
    rows = [["global" if scope == trading_state.GLOBAL else scope, value.value] for scope, value in states.items()]
    _table(rows, ["scope", "state"])
    return 0


async def _cancel(settings: Settings, order_ids: list[str], wait_s: float) -> int:
    """Ask the gateway to cancel each order (a CancelOrder on the cancel stream, as the dashboard's
    button does)."""
    from yquant import audit, keys, orders
    from yquant.bus import publish
    from yquant.messages import CancelOrder

    who = f"cancelled from the console by {_console_user()}"
    client = _client(settings)
    status = 0
    asked: list[str] = []
    try:
        for coid in order_ids:
            record = await orders.get_order(client, coid)
            if record is None:
                sys.stderr.write(f"{coid}: no such order (`yquant orders` lists them)\n")
                status = 1
                continue
            if record.is_final:
                sys.stderr.write(f"{coid}: already {record.state.value}, nothing to cancel\n")
                status = 1
                continue
            command = CancelOrder(
                correlation_id=record.correlation_id or coid, client_order_id=coid, account=record.account, reason=who
            )
            await publish(client, keys.CANCELS, command, settings.bus.stream_maxlen)
            detail = {"client_order_id": coid, "account": record.account, "ticker": record.ticker}
            await audit.record(client, _console_user(), "cancel_order", detail, CONSOLE)
            asked.append(coid)
        deadline = time.monotonic() + wait_s
        pending = list(asked)
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            pending = [c for c in pending if not ((r := await orders.get_order(client, c)) and r.is_final)]
        for coid in asked:
            record = await orders.get_order(client, coid)
            state = record.state.value if record else "?"
            if wait_s and coid in pending:
                sys.stdout.write(f"{coid}: cancel requested, still {state} after {wait_s:g} s\n")
                status = 1
            elif wait_s:
                sys.stdout.write(f"{coid}: {state}{f' ({record.reason})' if record and record.reason else ''}\n")
            else:
                sys.stdout.write(f"{coid}: cancel requested ({state}); `yquant orders` shows the outcome\n")
    finally:
        await client.aclose()
    return status


MAX_LIST_ROWS = 1000
MAX_WAIT_S = 300.0
MAX_SIGNAL_QUANTITY = 1_000_000


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (a clear usage error otherwise,
    never an unbounded read: ``--limit 0`` once listed every order ever made)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low:,} to {high:,}")
        return value

    return parse


def _seconds(high: float) -> Callable[[str], float]:
    """An argparse type: seconds from 0 to ``high`` (no ``inf``, ``nan`` or ``1e999``)."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not 0.0 <= value <= high:  # also false for nan
            raise argparse.ArgumentTypeError(f"{text.strip()} is not from 0 to {high:.0f} seconds")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yquant", description="TradingView alerts to KIS orders")
    sub = parser.add_subparsers(dest="command", required=True)
    json_help = "print JSON (numbers as numbers) instead of a table"
    rows = _whole_number(1, MAX_LIST_ROWS)
    rows_help = f"how many, newest first (default 50, at most {MAX_LIST_ROWS})"
    sub.add_parser("up", help="run the whole system on this machine (embedded Valkey, KIS simulator)")
    status = sub.add_parser("status", help="service heartbeats and stream lag")
    status.add_argument("--json", action="store_true", help=json_help)
    orders_cmd = sub.add_parser("orders", help="recent orders")
    orders_cmd.add_argument("--json", action="store_true", help=json_help)
    orders_cmd.add_argument("--limit", type=rows, default=50, help=rows_help)
    positions = sub.add_parser("positions", help="positions per account")
    positions.add_argument("--json", action="store_true", help=json_help)
    positions.add_argument("--account", help="only this account alias (an unknown alias is an error)")
    signals = sub.add_parser("signals", help="the decision log: every signal and why it did or did not trade")
    signals.add_argument("--json", action="store_true", help=json_help)
    signals.add_argument("--limit", type=rows, default=50, help=rows_help)
    signal_cmd = sub.add_parser("signal", help="post a test alert to the local webhook")
    signal_cmd.add_argument("--ticker", default="005930", help="symbol (default 005930)")
    signal_cmd.add_argument("--exchange", default="KRX", help="KRX, NASDAQ, NYSE or AMEX (default KRX)")
    signal_cmd.add_argument("--action", default="buy", help="buy, sell, exit, reverse or cancel (default buy)")
    signal_cmd.add_argument(
        "--quantity", type=_whole_number(1, MAX_SIGNAL_QUANTITY), default=1, help="shares (default 1)"
    )
    signal_cmd.add_argument("--price", help="a limit price (default: a market order)")
    signal_cmd.add_argument("--strategy", default="demo", help="a configured strategy (default demo)")
    signal_cmd.add_argument("--id", help="the alert's idempotency id (default: derived from its fields)")
    signal_cmd.add_argument("--url", help="the webhook URL (default: the one `yquant up` started)")
    signal_cmd.add_argument("--secret", help="the webhook secret (default: YQ_WEBHOOK_SECRET or the state folder's)")
    state_cmd = sub.add_parser(
        "trading-state", help="show the trading states, or set one: ACTIVE, REDUCING (only reducing orders), HALTED"
    )
    state_cmd.add_argument("state", nargs="?", help="ACTIVE | REDUCING | HALTED (omit to show the current states)")
    state_cmd.add_argument("--account", help="an account alias (default: the global state; unknown is an error)")
    state_cmd.add_argument("--json", action="store_true", help=json_help)
    cancel_cmd = sub.add_parser("cancel", help="cancel open orders by client order id (as the dashboard's Cancel)")
    cancel_cmd.add_argument("order_ids", nargs="+", metavar="CLIENT_ORDER_ID", help="from `yquant orders`")
    cancel_cmd.add_argument(
        "--wait",
        type=_seconds(MAX_WAIT_S),
        default=0.0,
        metavar="SECONDS",
        help="wait this long (at most 300 s) for each to end, print its state",
    )
    from yquant.users import add_user_command

    add_user_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # piped into `head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if args.command == "up":
        from yquant.supervisor import up

        return up(settings)
    if args.command == "status":
        return asyncio.run(_status(settings, args.json))
    if args.command == "orders":
        return asyncio.run(_orders(settings, args.json, args.limit))
    if args.command == "positions":
        return asyncio.run(_positions(settings, args.json, args.account))
    if args.command == "signals":
        return asyncio.run(_signals(settings, args.json, args.limit))
    if args.command == "signal":
        return _signal(settings, args)
    if args.command == "trading-state":
        return asyncio.run(_trading_state(settings, args.state, args.account, args.json))
    if args.command == "cancel":
        return asyncio.run(_cancel(settings, args.order_ids, args.wait))
    if args.command == "user":
        from yquant.users import run_user_command

        return run_user_command(args, settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
