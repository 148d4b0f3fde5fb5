"""Our exchange calendar for a run of days, answered by a short-lived child process.

``python -m yquant.market_days KRX 2026-12-07 30`` prints one JSON object: each day's ISO date
→ ``[open, holiday name or null]`` by ``yquant.markets``. The gateway checks KIS's calendar
against ours once a day and asks through this child (``ask``), so it never loads the ``holidays``
package: that package builds XKRX by importing every country module it has (about 13 MiB of the
gateway's resident memory for an answer it needs once a day). The order manager, which decides
market hours, keeps its calendar in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import date, timedelta

from yquant.markets import holiday_name, is_trading_day
from yquant.messages import Market

ASK_TIMEOUT_S = 60.0


def answer(market: Market, start: date, days: int) -> dict[date, tuple[bool, str | None]]:
    """Each of ``days`` days from ``start``: open, and the holiday's name when there is one."""
    run = (start + timedelta(days=n) for n in range(days))
    return {day: (is_trading_day(market, day), holiday_name(market, day)) for day in run}


async def ask(market: Market, start: date, days: int) -> dict[date, tuple[bool, str | None]]:
    """``answer`` computed in a child interpreter (this process never imports ``holidays``)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, market.value, start.isoformat(), str(days),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(child.communicate(), ASK_TIMEOUT_S)
    except BaseException as exc:  # timed out, or the caller is stopping: no child outlives its ask
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await child.communicate()  # reaps it and closes its pipes
        if isinstance(exc, TimeoutError):
            raise OSError(f"the calendar child gave no answer within {ASK_TIMEOUT_S:.0f} s") from None
        raise
    if child.returncode != 0:
        raise OSError(f"the calendar child failed ({child.returncode}): {err.decode(errors='replace')[-500:]}")
    rows = json.loads(out)
    return {date.fromisoformat(day): (bool(row[0]), row[1]) for day, row in rows.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: python -m yquant.market_days MARKET START_DATE DAYS\n")
        return 2
    try:
        market = Market(argv[0])
        start = date.fromisoformat(argv[1])
        days = int(argv[2])
        if not 0 < days <= 366:
            raise ValueError(f"DAYS must be 1-366, not {days}")
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    rows = {day.isoformat(): [is_open, name] for day, (is_open, name) in answer(market, start, days).items()}
    sys.stdout.write(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
