"""The dashboard's "Send a test notification" through the real notifier loop to a real HTTP
stand-in for Telegram, and the result on the system page: working, then failing."""

from __future__ import annotations

import asyncio

import httpx
import redis.asyncio as aioredis

from tests.integration.dashboard.conftest import csrf_of, login
from tests.integration.notifier.loopback import FakeTelegram
from tests.integration.notifier.test_notifier import Running, settings_for, until


async def _press_test(http: httpx.AsyncClient) -> httpx.Response:
    token = await csrf_of(http)
    return await http.post("/system/notify-test", data={"csrf_token": token})


async def test_the_test_button_reaches_the_phone_and_the_system_page_says_ok(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    await login(http)
    async with Running(redis_client, settings_for(telegram)):
        pressed = await _press_test(http)
        assert (pressed.status_code, pressed.headers["location"]) == (303, "/system?tested=1")
        await until(lambda: any("Test notification" in str(m.get("text")) for m in telegram.received))
        await until(lambda: redis_client.hget("yq:notify:status:phone", "ok"))
    page = await http.get("/system?tested=1")
    assert 'id="notify-test-sent"' in page.text
    row = page.text.split('data-destination="phone"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="state">ok</td>' in row
    assert 'id="notify-failing"' not in page.text
    [sent] = [m for m in telegram.received if "Test notification" in str(m.get("text"))]
    assert "by alice" in str(sent["text"])


async def test_a_refusing_destination_shows_failing_with_its_error_and_a_notice(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    await login(http)
    telegram.script = [(401, b'{"ok": false, "description": "Unauthorized"}')]  # a wrong bot token
    async with Running(redis_client, settings_for(telegram)):
        assert (await _press_test(http)).status_code == 303
        await until(lambda: _is(redis_client, "0"))
    page = await http.get("/system")
    assert 'id="notify-failing"' in page.text
    assert "Notifications are failing" in page.text
    row = page.text.split('data-destination="phone"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="state">failing</td>' in row
    assert "401" in row
    assert "secret-bot-token" not in page.text  # the error never shows the token
    assert 'id="notify-failing-banner"' not in page.text  # the system page says it in full instead


async def test_every_other_page_carries_a_banner_while_a_destination_fails(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    await login(http)
    assert 'id="notify-failing-banner"' not in (await http.get("/orders")).text
    telegram.script = [(401, b'{"ok": false, "description": "Unauthorized"}')]
    async with Running(redis_client, settings_for(telegram)):
        assert (await _press_test(http)).status_code == 303
        await until(lambda: _is(redis_client, "0"))

    async def banner_on(path: str) -> bool:  # the banner's view of the status is cached a few seconds
        page = await http.get(path)
        await asyncio.sleep(0.1)
        return 'id="notify-failing-banner"' in page.text

    await until(lambda: banner_on("/orders"))
    page = await http.get("/positions")
    banner = page.text.split('id="notify-failing-banner"', 1)[1].split("</p>", 1)[0]
    assert "phone" in banner
    assert 'href="/system"' in banner


async def _is(client: aioredis.Redis, ok: str) -> bool:
    return await client.hget("yq:notify:status:phone", "ok") == ok.encode()
