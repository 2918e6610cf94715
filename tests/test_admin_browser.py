"""Admin and student flows in a real browser (Debian's Chromium via Playwright): a
template edit reaches the student's next server; a student's self-reset keeps their files
in a backup that an admin restores; an uploaded logo shows on the login page."""

import base64

import pytest
import requests

from hub_ext import contract
from tests.helpers import ARTIFACTS, ServiceClient, make_png, user_token, volume_files
from tests.helpers import browser_login as login

pytestmark = pytest.mark.browser



def test_admin_edits_a_template_and_the_students_next_server_has_the_new_limit(hub, browser):
    admin_api = ServiceClient(hub, user_token(hub, "admin"))
    admin_api.call("POST", "/templates", json={"course": "runtime2", "template": {
        "id": "edit-me", "title": "Edit me", "image": "goldenhub/course-intro-python:latest",
        "gpus": 0, "cpu": 1, "memory": "512M"}}).raise_for_status()
    page = login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin/templates/edit-me")
        text = page.input_value("textarea[name=yaml]")
        assert "memory: 512M" in text
        page.fill("textarea[name=yaml]", text.replace("memory: 512M", "memory: 640M"))
        page.fill("input[name=comment]", "bigger datasets this week")
        page.click("button:has-text('Save')")
        page.wait_for_selector("#message")
        assert "Saved template edit-me" in page.inner_text("#message")
        page.goto(f"{hub.url}/services/goldenhub/admin/templates/edit-me")
        assert "bigger datasets this week" in page.inner_text("body")
    finally:
        page.context.close()
    hub.enrol("edited-student", "runtime2")
    hub.spawn("edited-student", {"template": "edit-me"})
    try:
        assert hub.container("edited-student").attrs["HostConfig"]["Memory"] == 640 * 2**20
    finally:
        hub.stop("edited-student")

    page = login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin/templates/edit-me")
        page.click("button:has-text('Disable this template')")
        page.click("#confirm-yes")  # asked first (confirm.js)
        page.wait_for_selector("#message")
        r = hub.start("edited-student", {"template": "edit-me"})
        assert r.status_code == 400 and "No such environment template" in r.json()["message"]
        page.goto(f"{hub.url}/services/goldenhub/admin/templates/edit-me")
        page.fill("input[name=confirm]", "edit-me")
        page.click("button:has-text('Delete')")
        page.click("#confirm-yes")  # asked first (confirm.js)
        page.wait_for_selector("#message")
        assert "Template edit-me deleted" in page.inner_text("#message")
    finally:
        page.context.close()
    assert admin_api.call("GET", "/templates/edit-me").status_code == 404


def test_student_self_reset_then_admin_restores_from_the_admin_page(hub, browser):
    user = "self-resetter"
    hub.spawn(user, {"template": "lab-cpu"})
    hub.exec(user, "echo 'my thesis' > ~/thesis.txt")
    home = contract.home_volume_name(hub.prefix, user, "lab")
    page = login(browser, hub, user, hub.student_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/")
        page.click("a[href$='reset?course=lab']")
        assert "nothing is deleted" in page.inner_text("body")
        page.fill("input[name=confirm]", "lab")
        page.click("button:has-text('Reset my environment')")
        page.click("#confirm-yes")  # asked first (confirm.js)
        result = page.inner_text("#result")
        assert "Your old files are kept in a backup" in result
        assert "goldenhub-home" not in result  # no volume name for a student
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "student-self-reset.png"))
    finally:
        page.context.close()
    assert hub.server(user) is None
    made = ServiceClient(hub, user_token(hub, "admin")).call("GET", f"/backups?user={user}").json()["backups"]
    assert len(made) == 1, made
    backup = made[0]["volume"]
    assert "./thesis.txt" in volume_files(backup)

    page = login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin")
        assert "self-resetter" in page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "admin-page.png"), full_page=True)
        row = page.locator(f"tr.backup[data-volume='{backup}']")  # listed for the admin
        row.locator("button:has-text('Restore')").click()
        page.click("#confirm-yes")  # asked first (confirm.js)
        page.wait_for_selector("#message")
        assert f"restored {backup}" in page.inner_text("#message")
    finally:
        page.context.close()
    hub.spawn(user)
    try:
        assert hub.exec(user, "cat ~/thesis.txt") == (0, "my thesis\n")
    finally:
        hub.stop(user)
    assert volume_files(home)


def test_admin_uploads_a_logo_and_the_login_page_shows_it(hub, browser):
    logo = make_png(64, 24, (200, 30, 120))
    page = login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin#branding")
        path = hub.state_dir / "upload-logo.png"
        path.write_bytes(logo)
        page.set_input_files("#upload-logo input[type=file]", str(path))
        page.click("#upload-logo button")
        page.wait_for_selector("#message")
        assert "The new logo is live" in page.inner_text("#message")

        bad = hub.state_dir / "evil.png"
        bad.write_text("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
        page.goto(f"{hub.url}/services/goldenhub/admin#branding")
        page.set_input_files("#upload-logo input[type=file]", str(bad))
        page.click("#upload-logo button")
        page.wait_for_selector("#message")
        assert "The logo was not changed" in page.inner_text("#message")
        assert "SVG" in page.inner_text("#message")
    finally:
        page.context.close()

    anonymous = browser.new_page()
    try:
        anonymous.goto(f"{hub.url}/hub/login")
        src = anonymous.eval_on_selector("img#jupyterhub-logo, .navbar-brand img, img[alt*=logo i]", "e => e.src")
        served = requests.get(src, timeout=30)
        assert served.content == logo and served.headers["Content-Type"] == "image/png"
        anonymous.screenshot(path=str(ARTIFACTS / "branded-login.png"))

        # A student who starts now sees the uploaded logo in JupyterLab's top-left corner.
        anonymous.set_default_timeout(120_000)
        anonymous.fill("input[name=username]", "branded-student")
        anonymous.fill("input[name=password]", hub.student_password())
        anonymous.click("input[type=submit], button[type=submit]")
        anonymous.wait_for_url("**/hub/spawn**")
        anonymous.check("#template-intro-python-cpu")
        anonymous.click("input[type=submit], button[type=submit]")
        anonymous.wait_for_url("**/user/branded-student/lab**", timeout=240_000)
        main_logo = anonymous.locator("#jp-MainLogo > svg")  # painted in the stock logo's box
        main_logo.wait_for()
        background = main_logo.evaluate("e => getComputedStyle(e).backgroundImage")
        assert base64.b64encode(logo).decode() in background
    finally:
        anonymous.close()
        hub.request("DELETE", "/users/branded-student/server")
        from hub_ext.branding.store import reset_branding

        reset_branding(hub.state_dir, "logo")
