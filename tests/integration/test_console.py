"""The ``yquant`` console as an operator uses it: a real process against a real Valkey."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from decimal import Decimal

import orjson
import redis.asyncio as aioredis

from tests.integration.ordermanager.factories import make_position, seed_account


def _env(valkey_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
    env["YQ_VALKEY__URL"] = valkey_url
    return env


async def _cli(valkey_url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "yquant", *args], env=_env(valkey_url), capture_output=True, timeout=30
    )


async def test_positions_show_amounts_in_their_currency_and_json_numbers_are_numbers(
    valkey_url: str, redis_client: aioredis.Redis
) -> None:
    await seed_account(redis_client, cash=12_345_678, positions=[make_position(quantity=1200, price=71_500)])
    table = await _cli(valkey_url, "positions")
    assert table.returncode == 0, table.stderr
    text = table.stdout.decode()
    assert "71,500" in text
    assert "1,200" in text
    assert "main: cash KRW 12,345,678" in text
    shown = await _cli(valkey_url, "positions", "--json")
    [account] = orjson.loads(shown.stdout)
    [position] = account["positions"]
    assert (position["quantity"], position["average_price"]) == (1200, 71500)
    assert account["cash"] == {"KRW": 12345678}
    assert Decimal(str(position["market_value"])) == Decimal(71_500 * 1200)


async def test_output_piped_into_a_reader_that_stops_early_is_not_a_traceback(
    valkey_url: str, redis_client: aioredis.Redis
) -> None:
    await seed_account(redis_client, positions=[make_position(ticker=f"{n:06d}") for n in range(2000)])

    def piped() -> tuple[int, bytes]:
        with subprocess.Popen(
            [sys.executable, "-m", "yquant", "positions"],
            env=_env(valkey_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as cli:
            assert cli.stdout is not None
            assert cli.stderr is not None
            cli.stdout.readline()  # like `| head -1`; the rest (far more than a pipe holds) is unread
            cli.stdout.close()
            err = cli.stderr.read()
            return cli.wait(timeout=30), err

    code, err = await asyncio.to_thread(piped)
    assert b"Traceback" not in err
    assert code == 0
