"""Signing in, and what is refused without a session or without the CSRF token."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page, expect

from dashboard.app import http_routes
from tests.browser.conftest import RunningSystem, sign_in

PUBLIC = {"/login", "/healthz", "/metrics"}


def test_wrong_password_refused_then_sign_in_lands_on_the_page_asked_for(
    anonymous: BrowserContext, system: RunningSystem
) -> None:
    page = anonymous.new_page()
    page.goto("/positions")
    assert "/login?next=%2Fpositions" in page.url or "/login?next=/positions" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("Wrong user name, password or code.")
    sign_in(page, system, "/positions")
    expect(page.locator("h1")).to_have_text("Positions")
    cookies = {c["name"]: c for c in anonymous.cookies()}
    assert cookies["yq_session"]["httpOnly"]
    assert cookies["yq_session"]["sameSite"] == "Strict"


def test_every_route_refused_without_a_session(browser: Browser, system: RunningSystem) -> None:
    anonymous = browser.new_context(base_url=system.dashboard_url)
    try:
        checked = 0
        for method, route in http_routes():
            if route in PUBLIC:
                continue
            path = route.replace("{client_order_id}", "yq-unknown").replace("{schedule_id}", "sch-0000000000000000")
            response = anonymous.request.fetch(path, method=method, max_redirects=0, headers={"Accept": "text/html"})
            assert response.status in (303, 401), f"{method} {path} answered {response.status}"
            if response.status == 303:
                assert response.headers["location"].startswith("/login?next=")
            checked += 1
        assert checked >= 25
        assert anonymous.request.get("/healthz").ok
        assert anonymous.request.get("/metrics").ok
    finally:
        anonymous.close()


def test_post_without_the_csrf_token_refused(page: Page) -> None:
    form: dict[str, str | float | bool] = {"scope": "*", "state": "REDUCING", "back": "/risk"}
    refused = page.request.post("/risk/state", form=form, max_redirects=0)
    assert refused.status == 403
    forged = page.request.post("/risk/state", form={**form, "csrf_token": "forged"}, max_redirects=0)
    assert forged.status == 403
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    assert token
    accepted = page.request.post("/risk/state", form={**form, "state": "ACTIVE", "csrf_token": token}, max_redirects=0)
    assert accepted.status == 303


def test_sign_out_ends_the_session(anonymous: BrowserContext, system: RunningSystem) -> None:
    page = anonymous.new_page()
    sign_in(page, system)
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.goto("/orders")
    assert "/login" in page.url
