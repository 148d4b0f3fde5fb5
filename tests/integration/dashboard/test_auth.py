"""Authentication: argon2 passwords, lockout, TOTP, sessions, CSRF, headers."""

from __future__ import annotations

import asyncio

import httpx
import pyotp
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from dashboard.app import create_app, http_routes
from tests.integration.dashboard.conftest import BASE_URL, PASSWORD, csrf_of, form_token, login
from tests.replies import xrange
from yquant import keys
from yquant.settings import Settings
from yquant.users import ARGON2_MEMORY_KIB, add_user, end_sessions, load_users

PUBLIC = {"/login", "/healthz", "/metrics"}


async def test_login_with_the_right_password_then_a_strict_httponly_session(http: httpx.AsyncClient) -> None:
    response = await login(http)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("yq_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert (await http.get("/")).status_code == 200


async def test_password_hash_is_argon2id_with_a_bounded_memory_cost(
    users_file: object, dashboard_settings: Settings
) -> None:
    assert dashboard_settings.dashboard.users_file is not None
    user = load_users(dashboard_settings.dashboard.users_file)["alice"]
    assert user.password_hash.startswith(f"$argon2id$v=19$m={ARGON2_MEMORY_KIB},")
    assert oct(dashboard_settings.dashboard.users_file.stat().st_mode & 0o777) == "0o600"


async def test_wrong_password_and_unknown_user_get_the_same_refusal(http: httpx.AsyncClient) -> None:
    wrong = await login(http, password="not the password at all")
    unknown = await login(http, username="mallory", password="whatever password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name, password or code." in wrong.text
    assert "Wrong user name, password or code." in unknown.text
    assert (await http.get("/api/state")).status_code == 401


async def test_user_locked_after_repeated_failures_even_with_the_right_password(http: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await login(http, password="wrong password!!")).status_code == 401
    locked = await login(http)
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.text


async def test_forty_simultaneous_wrong_passwords_get_only_the_user_limit_checked(http: httpx.AsyncClient) -> None:
    """The attempt is counted before the password is checked: concurrency does not widen the limit."""
    page = await http.get("/login")
    token = form_token(page.text, "csrf_token")
    cookie = {"cookie": f"yq_login={http.cookies['yq_login']}"}
    data = {"username": "alice", "password": "wrong password!!", "code": "", "csrf_token": token, "next": "/"}

    answers = await asyncio.gather(*(http.post("/login", data=data, headers=cookie) for _ in range(40)))

    statuses = [a.status_code for a in answers]
    # The fixture's limit is 3 per user; the rest are refused without a check (lockout or busy).
    assert statuses.count(401) == 3
    assert statuses.count(429) == 40 - statuses.count(401)
    http.cookies.clear()
    assert (await login(http)).status_code == 429  # the right password is locked out too


async def test_a_success_gives_its_attempt_back_to_the_address(http: httpx.AsyncClient) -> None:
    for _ in range(10):  # more good logins than the address limit (6)
        assert (await login(http)).status_code == 303
    assert (await login(http, password="wrong password!!")).status_code == 401


async def test_address_locked_after_failures_across_user_names(http: httpx.AsyncClient) -> None:
    for index in range(6):
        await login(http, username=f"guess{index}", password="wrong password!!")
    assert (await login(http)).status_code == 429


async def test_login_form_without_its_token_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert (await http.get("/api/state")).status_code == 401


async def test_totp_required_once_enrolled_and_a_code_works_only_once(
    http: httpx.AsyncClient, dashboard_settings: Settings
) -> None:
    assert dashboard_settings.dashboard.users_file is not None
    user, uri = add_user(dashboard_settings.dashboard.users_file, "bob", PASSWORD, totp=True)
    assert uri is not None
    assert uri.startswith("otpauth://totp/")
    assert user.totp_secret
    assert (await login(http, username="bob")).status_code == 401  # no code
    assert (await login(http, username="bob", code="000000")).status_code == 401
    code = pyotp.TOTP(user.totp_secret).now()
    assert (await login(http, username="bob", code=code)).status_code == 303
    http.cookies.clear()
    assert (await login(http, username="bob", code=code)).status_code == 401  # replayed


async def test_post_without_csrf_token_refused_with_token_accepted(http: httpx.AsyncClient) -> None:
    await login(http)
    token = await csrf_of(http)
    data = {"scope": "*", "state": "REDUCING", "back": "/risk"}
    assert (await http.post("/risk/state", data=data)).status_code == 403
    assert (await http.post("/risk/state", data={**data, "csrf_token": "forged"})).status_code == 403
    header = await http.post("/risk/state", data=data, headers={"X-CSRF-Token": token})
    assert header.status_code == 303
    form = await http.post("/risk/state", data={**data, "csrf_token": token})
    assert form.status_code == 303


async def test_cross_origin_post_refused_even_with_the_token(http: httpx.AsyncClient) -> None:
    await login(http)
    token = await csrf_of(http)
    response = await http.post(
        "/risk/state",
        data={"scope": "*", "state": "HALTED", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_every_route_refused_without_a_session(http: httpx.AsyncClient) -> None:
    checked = 0
    for method, route in http_routes():
        if route in PUBLIC:
            continue
        path = route.replace("{client_order_id}", "yq-x").replace("{schedule_id}", "sch-0000000000000000")
        response = await http.request(method, path, headers={"Accept": "text/html"})
        assert response.status_code in (303, 401), f"{method} {path} answered {response.status_code}"
        if response.status_code == 303:
            assert response.headers["location"].startswith("/login?next=")
        checked += 1
    assert checked >= 25


async def test_tampered_session_cookie_refused(http: httpx.AsyncClient) -> None:
    await login(http)
    value = http.cookies["yq_session"]
    http.cookies.clear()
    http.cookies.set("yq_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await http.get("/api/state")).status_code == 401


async def test_logout_ends_the_session_server_side(http: httpx.AsyncClient, redis_client: aioredis.Redis) -> None:
    await login(http)
    stolen = http.cookies["yq_session"]
    token = await csrf_of(http)
    assert (await http.post("/logout", data={"csrf_token": token})).status_code == 303
    assert not [k async for k in redis_client.scan_iter(match=keys.dashboard_session("*"))]
    http.cookies.set("yq_session", stolen)
    assert (await http.get("/api/state")).status_code == 401


async def test_security_headers_on_every_response(http: httpx.AsyncClient) -> None:
    for path in ("/login", "/healthz", "/", "/static/app.css"):
        response = await http.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_login_audited_and_failures_counted_in_metrics(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await login(http, password="wrong password!!")
    await login(http)
    entries = await xrange(redis_client, keys.AUDIT_LOG)
    assert any(b'"action":"login"' in fields[b"data"] for _, fields in entries)
    metrics = (await http.get("/metrics")).text
    assert 'yquant_dashboard_logins_failed_total{reason="credentials"} 1.0' in metrics
    assert "yquant_dashboard_sse_clients 0.0" in metrics
    assert "yquant_dashboard_requests_total" in metrics


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
async def test_login_never_redirects_off_site(http: httpx.AsyncClient, target: str) -> None:
    page = await http.get("/login")
    data = {
        "username": "alice",
        "password": PASSWORD,
        "csrf_token": form_token(page.text, "csrf_token"),
        "next": target,
    }
    response = await http.post("/login", data=data)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_a_new_password_ends_the_sessions_made_with_the_old_one(
    http: httpx.AsyncClient, dashboard_settings: Settings
) -> None:
    assert (await login(http)).status_code == 303
    assert (await http.get("/api/state")).status_code == 200
    assert dashboard_settings.dashboard.users_file is not None
    add_user(dashboard_settings.dashboard.users_file, "alice", "a different long password")
    assert (await http.get("/api/state")).status_code == 401
    assert (await login(http, password="a different long password")).status_code == 303
    assert (await http.get("/api/state")).status_code == 200


async def test_logout_all_ends_every_session_of_the_user(
    http: httpx.AsyncClient, dashboard_settings: Settings, redis_client: aioredis.Redis, users_file: object
) -> None:
    assert (await login(http)).status_code == 303
    cookie = http.cookies["yq_session"]

    async def status_elsewhere() -> int:
        """The cookie at another dashboard process (no cached copy of the session)."""
        fresh = create_app(dashboard_settings, redis_client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fresh), base_url=BASE_URL) as other:
            other.cookies.set("yq_session", cookie)
            return (await other.get("/api/state")).status_code

    assert await status_elsewhere() == 200
    assert await end_sessions(dashboard_settings, "Alice") == 1
    assert await redis_client.keys(keys.dashboard_session("*")) == []
    assert await status_elsewhere() == 401


def from_address(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A browser at another address (the ASGI scope's client, as uvicorn would set it)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=BASE_URL)


async def test_guesses_from_one_address_do_not_lock_the_owner_out_elsewhere(app: FastAPI) -> None:
    async with from_address(app, "203.0.113.7") as attacker, from_address(app, "198.51.100.20") as owner:
        for _ in range(3):  # the fixture's per-user-and-address limit
            assert (await login(attacker, password="wrong password!!")).status_code == 401
        assert (await login(attacker)).status_code == 429  # that address is locked for alice ...
        assert (await login(owner)).status_code == 303  # ... the owner's is not


async def test_guesses_spread_over_addresses_are_slowed_but_not_for_the_owners_known_address(app: FastAPI) -> None:
    async with from_address(app, "198.51.100.20") as owner:
        assert (await login(owner)).status_code == 303  # the owner signs in once: a known address
    for index in range(5):  # the fixture's slow-down threshold, one guess per address
        async with from_address(app, f"203.0.113.{index + 1}") as attacker:
            assert (await login(attacker, password="wrong password!!")).status_code == 401
    async with from_address(app, "203.0.113.50") as fresh:
        first = await login(fresh, password="wrong password!!")
        slowed = await login(fresh)  # even the right password waits for the next check
    async with from_address(app, "198.51.100.20") as owner:
        signed_in = await login(owner)
    assert first.status_code == 401  # the one check of this slow-down interval
    assert slowed.status_code == 429
    assert "Try again in" in slowed.text
    assert signed_in.status_code == 303


async def test_a_viewer_sees_the_pages_and_every_write_is_refused(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, dashboard_settings: Settings
) -> None:
    assert dashboard_settings.dashboard.users_file is not None
    add_user(dashboard_settings.dashboard.users_file, "viv", PASSWORD, role="viewer")
    assert (await login(http, username="viv")).status_code == 303
    overview = await http.get("/")
    assert overview.status_code == 200
    assert 'class="read-only"' in overview.text  # the write controls are hidden
    token = await csrf_of(http)  # a valid token: what refuses is the role, not CSRF
    before = {stream: await redis_client.xlen(stream) for stream in keys.ALL_STREAMS}
    refused = 0
    for method, route in http_routes():
        if method in ("GET", "HEAD") or route in PUBLIC or route == "/logout":
            continue
        path = route.replace("{client_order_id}", "yq-x").replace("{schedule_id}", "sch-0000000000000000")
        response = await http.request(method, path, data={"csrf_token": token}, headers={"Accept": "text/html"})
        assert response.status_code == 403, f"{method} {path} answered {response.status_code}"
        assert "viewer" in response.text
        refused += 1
    assert refused >= 10
    assert {stream: await redis_client.xlen(stream) for stream in keys.ALL_STREAMS} == before
    assert await redis_client.hget(keys.TRADING_STATE, "*") is None
    assert (await http.post("/logout", data={"csrf_token": token})).status_code in (200, 303)
