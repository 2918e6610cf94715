"""The course page in a real browser (Debian's Chromium via Playwright): an admin opens a
course from the admin page, uploads a roster, sees the dry-run plan, applies it and sees the
people; a bad file shows every line's problem and changes nothing."""

import pytest

from hub_ext import contract
from tests.helpers import ARTIFACTS
from tests.helpers import browser_login as login

pytestmark = pytest.mark.browser

COURSE = "deep-learning"
ROSTER = ("username\tname\temail\trole\r\n"
          "r9b-lin\t林小明\tlin@example.cn\tstudent\r\n"
          "r9b-ana\tAna <b>Bold</b>\t\tstudent\r\n"
          "r9b-tutor\tTutor\t\tTA\r\n")


def members(hub, group: str) -> set[str]:
    r = hub.request("GET", f"/groups/{group}")
    return set(r.json()["users"]) if r.status_code == 200 else set()


def upload(page, data: bytes, dry_run: bool = True) -> None:
    page.set_input_files("input[name=roster]", files=[{"name": "roster.csv", "mimeType": "text/csv",
                                                       "buffer": data}])
    if not dry_run:
        page.uncheck("input[name=dry_run]")
    page.click("button:has-text('Upload roster')")
    page.wait_for_load_state()


def test_admin_uploads_a_roster_sees_the_plan_applies_it_and_sees_the_people(hub, browser):
    page = login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin")
        page.click(f"a[href$='admin/courses/{COURSE}']")
        page.wait_for_selector("#upload-roster")
        assert page.is_checked("input[name=dry_run]")
        assert page.query_selector("button:has-text('Reset password')") is None  # demo mode: no passwords

        upload(page, ROSTER.encode("utf-8-sig"))
        plan = page.inner_text("#plan")
        print(plan)
        assert "Dry run for deep-learning: 3 to enrol" in plan and "Nothing was changed." in plan
        assert "r9b-lin — student, 林小明 (new account)" in plan
        assert "Ana <b>Bold</b>" in plan  # shown as text, never as markup
        assert "r9b-lin" not in page.inner_text("#people")
        assert members(hub, contract.course_group(COURSE)).isdisjoint({"r9b-lin", "r9b-ana"})

        page.click("button:has-text('Apply this roster')")
        page.wait_for_selector("#message")
        assert "Applied to deep-learning: enrolled 3" in page.inner_text("#message")
        rows = {r.get_attribute("data-user"): r.inner_text() for r in page.query_selector_all("#people tr.person")}
        print(rows)
        assert "林小明" in rows["r9b-lin"] and "lin@example.cn" in rows["r9b-lin"]
        assert "never logged in" in rows["r9b-lin"] and "roster" in rows["r9b-lin"]
        assert "ta" in page.inner_text("#people tr.person[data-user='r9b-tutor'] td.role")
        page.screenshot(path=str(ARTIFACTS / "roster-applied.png"), full_page=True)
        assert {"r9b-lin", "r9b-ana"} <= members(hub, contract.course_group(COURSE))
        assert "r9b-tutor" in members(hub, contract.staff_group(COURSE))
    finally:
        page.context.close()


def test_a_bad_roster_shows_every_line_and_changes_nothing(hub, browser):
    page = login(browser, hub, "admin", hub.admin_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin/courses/{COURSE}")
        before = members(hub, contract.course_group(COURSE))
        upload(page, b"username;role\nr9b-new;student\nR9B-Upper;student\nr9b-x;teacher\n", dry_run=False)
        problems = [li.inner_text() for li in page.query_selector_all("#problems li.problem")]
        print(problems)
        assert problems == [
            "line 3: username 'R9B-Upper' has capital letters; JupyterHub lower-cases names at login, "
            "so write it as 'r9b-upper'",
            "line 4: role 'teacher' is not one of student, ta, instructor"]
        assert "The roster has 2 problems; nothing was changed" in page.inner_text("#problems")
        page.screenshot(path=str(ARTIFACTS / "roster-problems.png"), full_page=True)
        assert members(hub, contract.course_group(COURSE)) == before
        assert hub.request("GET", "/users/r9b-new").status_code == 404
    finally:
        page.context.close()


def test_an_instructor_sees_and_imports_only_their_course(hub, browser):
    hub.enrol("r9b-prof", "lab", staff=True)
    page = login(browser, hub, "r9b-prof", hub.student_password())
    try:
        page.goto(f"{hub.url}/services/goldenhub/admin")
        links = {a.get_attribute("href").rsplit("/", 1)[-1] for a in page.query_selector_all("a.course-people")}
        assert links == {"lab"}
        response = page.goto(f"{hub.url}/services/goldenhub/admin/courses/intro-python")
        assert response.status == 403
        text = page.inner_text("body")
        assert "You may not change the enrolment of intro-python" in text
        assert page.query_selector("#people") is None and page.query_selector("#upload-roster") is None
        page.goto(f"{hub.url}/services/goldenhub/admin/courses/lab")
        assert "r9b-prof" in page.inner_text("#people")
        upload(page, b"username,name\nr9b-kid,Kid\n", dry_run=False)
        assert "Applied to lab: enrolled 1" in page.inner_text("#message")
        assert "r9b-kid" in page.inner_text("#people")
    finally:
        page.context.close()
    assert "r9b-kid" in members(hub, contract.course_group("lab"))


def test_with_local_accounts_a_roster_account_logs_in_and_the_course_page_resets_its_password(local_hub, browser):
    hub = local_hub
    admin = login(browser, hub, "admin", hub.admin_password())
    student = None
    try:
        admin.goto(f"{hub.url}/services/goldenhub/admin/courses/intro-python")
        upload(admin, "username,name,role\nr9l-mei,韩梅梅,student\n".encode("gb18030"), dry_run=False)
        assert "Applied to intro-python: enrolled 1" in admin.inner_text("#message")

        # The roster made the account; its first login chooses the password.
        student = login(browser, hub, "r9l-mei", "mei-first-pass")
        student.goto(f"{hub.url}/hub/home")
        assert "/hub/login" not in student.url
        admin.goto(f"{hub.url}/services/goldenhub/admin/courses/intro-python")
        assert "never logged in" not in admin.inner_text("#people tr.person[data-user='r9l-mei']")

        admin.click("#people tr.person[data-user='r9l-mei'] button:has-text('Reset password')")
        admin.click("#confirm-yes")  # asked first (confirm.js)
        admin.wait_for_selector("#message")
        answer = admin.inner_text("#message")
        print(answer)
        assert "r9l-mei sets a new password at the next login" in answer
        assert admin.url.split("?")[0].endswith("/admin/courses/intro-python")
        student.goto(f"{hub.url}/hub/home")
        assert "/hub/login" in student.url  # logged out everywhere
    finally:
        admin.context.close()
        if student:
            student.context.close()
