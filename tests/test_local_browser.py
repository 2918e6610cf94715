"""Local accounts on a real hub, in Debian's Chromium: a roster account's first login sets
its password (a too-short one refused with the minimum), a wrong password fails with the
hub's sentence, an admin's reset logs the student out everywhere and makes the old password
useless, the student sets a new one, too many failures lock the account, nobody can claim
`admin`, and the login page says how logging in works in local and demo mode."""

from __future__ import annotations

import pytest
import requests

from tests.helpers import ARTIFACTS, ServiceClient, goldenhub, user_token

pytestmark = [pytest.mark.integration, pytest.mark.browser]

DEMO_BANNER = "Demo mode: anyone with the class password can log in under any name"
HINT = "First time here? Enter your username and choose a password (at least 8 characters)"
INVALID = "Invalid username or password"


@pytest.fixture(scope="module")
def admin_api(local_hub):
    return ServiceClient(local_hub, user_token(local_hub, "admin"))


def new_page(browser):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(60_000)
    return page


def log_in(page, hub, name, password) -> str:
    """Submit the login form; returns the text the page then shows."""
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    return page.inner_text("body")


def logged_in(page, hub) -> bool:
    page.goto(f"{hub.url}/hub/home")
    return "/hub/login" not in page.url


def roster_account(hub, name, course="intro-python"):
    """An account as a roster import makes it: a hub user in the course's student group."""
    hub.enrol(name, course)


def test_local_login_page_shows_the_first_login_hint_and_no_demo_banner(local_hub, browser):
    page = new_page(browser)
    try:
        page.goto(f"{local_hub.url}/hub/login")
        assert HINT in page.inner_text("#goldenhub-first-login-hint")
        assert DEMO_BANNER not in page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "login-local.png"))
    finally:
        page.context.close()


def test_demo_login_page_shows_the_demo_banner(hub, browser):
    page = new_page(browser)
    try:
        page.goto(f"{hub.url}/hub/login")
        banner = page.locator("#goldenhub-demo-banner")
        assert banner.is_visible()
        text = banner.inner_text()
        assert DEMO_BANNER in text and "not for real classes" in text and "goldenhub.yaml" in text
        assert "First time here?" not in page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "login-demo.png"))
    finally:
        page.context.close()


def test_password_reset_is_refused_in_demo_mode_with_a_sentence(hub):
    r = ServiceClient(hub, user_token(hub, "admin")).call("POST", "/accounts/someone/password-reset")
    assert r.status_code == 409 and "nothing to reset" in r.json()["message"]


def test_a_students_password_from_first_login_to_an_admins_reset(local_hub, browser, admin_api):
    roster_account(local_hub, "ana")
    page = new_page(browser)
    earlier = new_page(browser)  # a second browser where ana stays logged in until the reset
    try:
        text = log_in(page, local_hub, "ana", "short")
        assert "Password too short" in text and "at least 8 characters" in text
        assert not logged_in(page, local_hub)

        log_in(page, local_hub, "ana", "ana-first-pass")
        assert logged_in(page, local_hub)
        page.goto(f"{local_hub.url}/hub/logout")
        assert INVALID in log_in(page, local_hub, "ana", "ana-wrong-pass")
        assert not logged_in(page, local_hub)
        log_in(earlier, local_hub, "ana", "ana-first-pass")
        assert logged_in(earlier, local_hub)

        r = admin_api.call("POST", "/accounts/ana/password-reset")
        assert r.status_code == 200, r.text
        assert "ana sets a new password at the next login" in r.json()["message"]
        assert not logged_in(earlier, local_hub)  # logged out everywhere

        text = log_in(page, local_hub, "ana", "ana-first-pass")
        assert "from before the administrator's reset" in text and not logged_in(page, local_hub)
        log_in(page, local_hub, "ana", "ana-second-pass")
        assert logged_in(page, local_hub)
        page.goto(f"{local_hub.url}/hub/logout")
        assert INVALID in log_in(page, local_hub, "ana", "ana-first-pass")
        log_in(page, local_hub, "ana", "ana-second-pass")
        assert logged_in(page, local_hub)
    finally:
        page.context.close()
        earlier.context.close()
    entries = admin_api.call("GET", "/audit").json()["entries"]
    assert any(e["action"] == "password-reset" and e["user"] == "ana" and e["actor"] == "admin"
               and e["result"] == "ok" for e in entries)


def test_a_student_changes_their_password_giving_the_current_one(local_hub, browser):
    roster_account(local_hub, "carl")
    page = new_page(browser)
    try:
        log_in(page, local_hub, "carl", "carl-first-pass")
        page.goto(f"{local_hub.url}/hub/auth/change-password")
        page.fill("input[name=current_password]", "not-my-password")
        page.fill("input[name=password]", "carl-second-pass")
        page.click("#change_password_submit")
        assert "current password is not right" in page.inner_text("#change-password-result")
        page.fill("input[name=current_password]", "carl-first-pass")
        page.fill("input[name=password]", "carl-second-pass")
        page.click("#change_password_submit")
        assert "Your password has been changed" in page.inner_text("#change-password-result")
        page.goto(f"{local_hub.url}/hub/logout")
        assert INVALID in log_in(page, local_hub, "carl", "carl-first-pass")
        log_in(page, local_hub, "carl", "carl-second-pass")
        assert logged_in(page, local_hub)
    finally:
        page.context.close()


def test_too_many_wrong_passwords_lock_the_account_even_against_the_right_one(local_hub, browser):
    roster_account(local_hub, "tom")
    page = new_page(browser)
    try:
        log_in(page, local_hub, "tom", "tom-real-pass")
        page.goto(f"{local_hub.url}/hub/logout")
        for attempt in range(4):
            assert INVALID in log_in(page, local_hub, "tom", f"guess-{attempt}-xx")
        text = log_in(page, local_hub, "tom", "guess-5-xx")
        assert "Too many failed logins for tom" in text
        text = log_in(page, local_hub, "tom", "tom-real-pass")
        assert "locked until" in text and "UTC" in text and "Try again then" in text
        page.screenshot(path=str(ARTIFACTS / "login-locked.png"))
        assert not logged_in(page, local_hub)
    finally:
        page.context.close()


def test_nobody_claims_the_admin_account_and_admins_are_not_reset(local_hub, browser, admin_api):
    page = new_page(browser)
    try:
        assert INVALID in log_in(page, local_hub, "admin", "i-got-here-first")
        assert not logged_in(page, local_hub)
        log_in(page, local_hub, "admin", local_hub.admin_password())
        assert logged_in(page, local_hub)
    finally:
        page.context.close()
    r = admin_api.call("POST", "/accounts/admin/password-reset")
    assert r.status_code == 403 and "administrator" in r.json()["message"]
    assert admin_api.call("POST", "/accounts/nobody-here/password-reset").status_code == 404


def test_only_admins_may_reset_passwords_not_students_nor_course_staff(local_hub):
    roster_account(local_hub, "victim")
    roster_account(local_hub, "eve")
    local_hub.enrol("prof", "intro-python", staff=True)
    for name in ("eve", "prof"):
        r = ServiceClient(local_hub, user_token(local_hub, name)).call("POST", "/accounts/victim/password-reset")
        assert r.status_code == 403 and "custom:goldenhub:accounts" in r.json()["message"], (name, r.text)
    # the hub's own endpoint refuses them too
    r = requests.post(f"{local_hub.url}/hub/api/goldenhub/password-reset/victim", timeout=30,
                      headers={"Authorization": f"token {user_token(local_hub, 'eve')}"})
    assert r.status_code == 403


def test_the_command_line_resets_a_password(local_hub):
    roster_account(local_hub, "dora")
    session = requests.Session()
    session.get(f"{local_hub.url}/hub/login", timeout=30)
    r = session.post(f"{local_hub.url}/hub/login", timeout=30, data={
        "username": "dora", "password": "dora-first-pass", "_xsrf": session.cookies.get("_xsrf", "")})
    assert r.status_code == 200 and "/hub/login" not in r.url
    result = goldenhub("accounts", "reset-password", "dora", "--yes",
                       env={"JUPYTERHUB_API_TOKEN": user_token(local_hub, "admin"), "GOLDENHUB_HUB_URL": local_hub.url})
    assert result.returncode == 0 and "dora sets a new password at the next login" in result.stdout
    assert session.get(f"{local_hub.url}/hub/home", timeout=30).url.startswith(f"{local_hub.url}/hub/login")
    refused = goldenhub("accounts", "reset-password", "dora", "--yes",
                        env={"JUPYTERHUB_API_TOKEN": user_token(local_hub, "dora"), "GOLDENHUB_HUB_URL": local_hub.url})
    assert refused.returncode == 1 and "custom:goldenhub:accounts" in refused.stderr
