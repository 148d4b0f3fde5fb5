"""``python -m kissim``: parse the command line, build the app, serve it with uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import uvicorn
import uvloop

from kissim.app import create_app
from kissim.config import SimConfig
from kissim.persist import StateFileError, reset_file
from kissim.protocol import KST

EXIT_CONFIGURATION = 78  # sysexits' EX_CONFIG: a restart will not help (the supervisor does not retry)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kissim", description="KIS Open API simulator")
    parser.add_argument("--port", type=int, help="0 picks a free port (required unless --reset)")
    parser.add_argument("--mode", choices=["virtual", "real"], help="required unless --reset")
    parser.add_argument(
        "--state-file",
        type=Path,
        help="keep accounts, orders, tokens and prices in this sqlite file across restarts (default: memory only)",
    )
    parser.add_argument(
        "--http",
        choices=["h11", "httptools"],
        default="h11",
        help="h11 (default) spells header names as KIS does; httptools is faster but lowercases them",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the --state-file (every account, order and token) and exit"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--always-open", action="store_true", help="ignore market hours and holidays")
    parser.add_argument("--no-rate-limit", action="store_true")
    parser.add_argument("--token-throttle-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--krw", type=Decimal, default=Decimal("100000000"), help="starting KRW cash")
    parser.add_argument("--usd", type=Decimal, default=Decimal("100000"), help="starting USD cash")
    parser.add_argument("--partial-fills", action="store_true")
    parser.add_argument("--ws-notice-delay-ms", type=int, default=0)
    parser.add_argument("--ws-ping-seconds", type=float, default=30.0)
    parser.add_argument("--price-step-seconds", type=float, default=1.0, help="0 freezes prices")
    parser.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="APPKEY:APPSECRET",
        help="accept only these appkey/appsecret pairs (repeatable); default accepts any",
    )
    parser.add_argument("--krx-holiday", action="append", default=[], metavar="YYYYMMDD", help="extra KRX closed day")
    parser.add_argument("--us-holiday", action="append", default=[], metavar="YYYYMMDD", help="extra US closed day")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> SimConfig:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.port is None or args.mode is None:
        parser.error("--port and --mode are required")
    credentials = dict(item.split(":", 1) for item in args.credential)
    return SimConfig(
        mode=args.mode,
        host=args.host,
        port=args.port,
        always_open=args.always_open,
        rate_limit=not args.no_rate_limit,
        token_throttle_seconds=args.token_throttle_seconds,
        seed=args.seed,
        krw=args.krw,
        usd=args.usd,
        partial_fills=args.partial_fills,
        ws_notice_delay_ms=args.ws_notice_delay_ms,
        ws_ping_interval_seconds=args.ws_ping_seconds,
        price_step_seconds=args.price_step_seconds,
        credentials=credentials,
        krx_holidays=frozenset(_day(text) for text in args.krx_holiday),
        us_holidays=frozenset(_day(text) for text in args.us_holiday),
        state_file=args.state_file,
    )


def _day(text: str) -> date:
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=KST).date()


class _Server(uvicorn.Server):
    """uvicorn's server without its signal capture: ``serve`` installs loop handlers so a SIGTERM
    ends in a graceful shutdown and exit status 0 (uvicorn would re-raise the signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(config: SimConfig, http: str = "h11") -> int:
    server = _Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            loop="uvloop",
            # h11 writes header names as given: KIS's Content-Type (see kissim.headers).
            http=http,
            ws="websockets-sansio",
            date_header=False,
            server_header=False,
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    loop = asyncio.get_running_loop()

    def request_exit() -> None:
        server.force_exit = server.should_exit
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_exit)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            return 1
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else config.port
    print(f"kissim listening on http://{config.host}:{port} mode={config.mode}", flush=True)
    await task
    return 0


def reset(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.state_file is None:
        parser.error("--reset needs --state-file PATH")
    if reset_file(args.state_file):
        print(f"kissim: deleted {args.state_file}; the next start opens fresh accounts", flush=True)
    else:
        print(f"kissim: no state at {args.state_file}; nothing to delete", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--reset" in args:
        return reset(args)
    config = parse_args(args)
    http = _parser().parse_args(args).http
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve(config, http))
    except StateFileError as error:
        print(
            f"kissim: {error}; start with another --state-file, or delete it: --state-file PATH --reset",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_CONFIGURATION


if __name__ == "__main__":
    sys.exit(main())
