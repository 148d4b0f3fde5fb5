"""Our exchange calendar as the gateway reads it: from a child process (yquant/market_days.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import date, timedelta

import pytest

from yquant import market_days
from yquant.markets import holiday_name, is_trading_day
from yquant.messages import Market

START = date(2026, 12, 21)  # a Monday; the 25th is Christmas, a KRX holiday in the package


async def test_the_child_answers_what_the_calendar_says_in_process() -> None:
    answered = await market_days.ask(Market.KRX, START, 14)
    assert list(answered) == [START + timedelta(days=n) for n in range(14)]
    assert answered == {day: (is_trading_day(Market.KRX, day), holiday_name(Market.KRX, day)) for day in answered}
    assert answered[date(2026, 12, 25)][0] is False
    assert answered[date(2026, 12, 25)][1]
    assert answered[date(2026, 12, 26)] == (False, None)  # a Saturday
    assert answered[START] == (True, None)


def test_the_gateways_check_never_loads_the_holidays_package() -> None:
    # A fresh interpreter: the gateway's calendar check, compared through the child, with our
    # calendar's answers; the package is loaded in the child only.
    script = (
        "import asyncio, sys\n"
        "from datetime import date\n"
        "from brokergateway import calendar_check\n"
        "kis = {date(2026, 12, 24): True, date(2026, 12, 25): True}\n"
        "ours = asyncio.run(calendar_check.our_calendar(kis))\n"
        "found = calendar_check.disagreements(kis, ours)\n"
        "print([d.describe() for d in found])\n"
        "print('holidays' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    described, loaded = out.stdout.splitlines()
    assert described.startswith("[\"2026-12-25: KIS says open, yQuant's calendar says closed (")
    assert loaded == "False"


def test_a_bad_request_gets_a_usage_error_and_no_answer() -> None:
    bad = (["KRX", "2026-12-21"], ["XETRA", "2026-12-21", "3"], ["KRX", "21/12/2026", "3"], ["KRX", "2026-12-21", "0"])
    for args in bad:
        out = subprocess.run(
            [sys.executable, "-m", "yquant.market_days", *args], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 2, args
        assert out.stdout == ""
        assert out.stderr.strip()


def calendar_children() -> list[int]:
    """This process's children running ``yquant.market_days`` (zombies included: not reaped)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                cmdline = cmd.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if ppid == os.getpid() and b"yquant.market_days" in cmdline:
            found.append(int(entry))
    return found


async def test_a_caller_that_stops_mid_ask_leaves_no_child_behind() -> None:
    # The gateway stopping while the child computes: the child is killed and reaped, its pipes
    # closed (pytest turns a leaked transport into a failure). The child is stopped with SIGSTOP
    # as soon as it is seen, so it cannot answer before the cancel lands.
    asking = asyncio.create_task(market_days.ask(Market.KRX, START, 14))
    while not (children := calendar_children()) and not asking.done():
        await asyncio.sleep(0.005)
    assert children, f"the child ended before it was seen: {asking.result()!r}"
    os.kill(children[0], signal.SIGSTOP)
    asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking
    assert calendar_children() == []
