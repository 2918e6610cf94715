"""Publishing from the Images page in a real browser (Debian's Chromium via Playwright), end to
end: a hub with a loopback registry, a tiny course whose environment names a package its
framework already has, and the real publish process started by the service.

Proves what an instructor sees: from the admin page they open their course's Images page,
publish after the in-page confirmation, and watch log lines arrive while the page still says
the run is running; then the run has succeeded and version 1 is the pin, with its provenance,
and the whole log stays readable. For a course they do not teach there is no Images link, its
page is refused with the sentence naming the scope, and the API refuses its publish."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import (ARTIFACTS, HUB_PORT, PREFIX, ServiceClient, browser_login, enrolled_only_course,
                           hub_running, user_token)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

A, B, PROF = "ppe", "ppf", "pp-prof"
COURSE_A = textwrap.dedent(f"""\
    id: {A}
    title: Publish in a browser
    framework: scipy
    templates:
      - id: {A}-cpu
        title: {A} (CPU)
        image: goldenhub/course-{A}:latest
        gpus: 0
        cpu: 1
        memory: 1G
    """)
RUNNING_WITH_NEW_LOG = """(before) => {
  const state = document.getElementById("run-state"), log = document.getElementById("publish-log");
  return state && state.dataset.state === "running" && log.textContent.length > before;
}"""


@pytest.fixture
def publish_hub(tmp_path, registry):
    courses = tmp_path / "courses"
    courses.mkdir()
    (courses / f"{A}.yaml").write_text(COURSE_A)
    (courses / A / "environment").mkdir(parents=True)
    (courses / A / "environment" / "requirements.txt").write_text("# in the framework already\nnumpy\n")
    enrolled_only_course(courses, B)
    with hub_running(tmp_path / "state", courses, HUB_PORT + 164, f"{PREFIX}pw",
                     env={"GOLDENHUB_REGISTRY": registry}) as hub:
        hub.enrol(PROF, A, staff=True)
        yield hub


def test_an_instructor_publishes_watches_the_log_and_cannot_touch_another_course(publish_hub, browser):
    hub = publish_hub
    page = browser_login(browser, hub, PROF, hub.student_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin")
        assert page.locator(f"a.course-images[href$='admin/courses/{B}/images']").count() == 0
        page.click(f"a.course-images[href$='admin/courses/{A}/images']")
        assert "Nothing published yet" in page.inner_text("#pin")
        assert page.locator("#pin-history").count() == 0 and "No version published yet." in page.inner_text("#versions")

        page.click("#publish-form button[type=submit]")
        assert "To undo, roll back to the previous version" in page.inner_text("#confirm-text")
        page.click("#confirm-yes")
        page.wait_for_url("**/images?run=*")
        assert page.get_attribute("#run-state", "data-state") == "running"
        before = len(page.inner_text("#publish-log"))
        page.wait_for_function(RUNNING_WITH_NEW_LOG, arg=before, timeout=300_000)
        assert "Step" in page.inner_text("#publish-log")  # a line arrived while the page said running
        page.screenshot(path=str(ARTIFACTS / "publish-running.png"), full_page=True)

        page.wait_for_selector("#run-state[data-state=succeeded], #run-state[data-state=failed]", timeout=600_000)
        log_text = page.inner_text("#publish-log")
        assert page.get_attribute("#run-state", "data-state") == "succeeded", (page.inner_text("#run"), log_text)
        assert "Step 1/5" in log_text and f"Published {A} version 1" in log_text
        assert page.get_attribute("#pin", "data-version") == "1"
        assert "/goldenhub/course-ppe@sha256:" in page.inner_text("#pin")
        assert "current" in page.inner_text("#versions tr.version[data-version='1']")
        assert "none" not in page.inner_text("#pin")  # provenance outside git: a dash, not "none"
        page.screenshot(path=str(ARTIFACTS / "publish-done.png"), full_page=True)

        answer = page.goto(f"{hub.url}/services/goldenhub/admin/courses/{B}/images")
        assert answer.status == 403
        assert (f"You may not publish or roll back the image of {B}: that needs the scope custom:goldenhub:publish"
                in page.inner_text("body"))

        page.goto(f"{hub.url}/services/goldenhub/admin/courses/{A}/images?lang=zh_CN")
        text = page.inner_text("main, body")
        assert "当前版本" in text and "版本 1" in text and "谁在运行哪个版本" in text and "成功" in page.inner_text("#run-state")
    finally:
        page.context.close()
    r = ServiceClient(hub, user_token(hub, PROF)).call("POST", f"/courses/{B}/publish", json={})
    assert r.status_code == 403 and r.json()["message"].startswith(f"You may not publish or roll back the image of {B}")
