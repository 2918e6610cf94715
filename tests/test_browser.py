"""A student in a real browser (Debian's Chromium driven by Playwright): log in, click
Start, pick the CPU course, and land in JupyterLab with the courseware in the file browser."""

import pytest

from tests.helpers import ARTIFACTS

pytestmark = pytest.mark.browser



def test_student_starts_cpu_course_and_sees_courseware_in_jupyterlab(hub, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("input[name=username]", "browser-student")
        page.fill("input[name=password]", hub.student_password())
        page.click("input[type=submit], button[type=submit]")

        # The options form lists the student's environments; pick the CPU course.
        page.wait_for_url("**/hub/spawn**")
        assert page.locator("text=Python (CPU)").is_visible()
        page.check("#template-intro-python-cpu")
        page.click("input[type=submit], button[type=submit]")

        page.wait_for_url("**/user/browser-student/lab**", timeout=240_000)
        listing = page.locator(".jp-DirListing-content")
        listing.get_by_text("intro-python", exact=True).wait_for(timeout=120_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "student-jupyterlab.png"))
        assert listing.get_by_text("intro-python", exact=True).is_visible()
    finally:
        page.close()
        hub.request("DELETE", "/users/browser-student/server")
