"""Every page a person can see, walked in Chromium in English (en-US) and Chinese (zh-CN):
the student's (login, picker, progress, JupyterLab, hub home, My environments, self-reset,
reset done, backups), the instructor's (their course: people, roster preview, term close),
the administrator's (admin page and its sections, template editor, course pages) and the
error paths (404s, a student on the admin page, a refused start, a wrong confirmation, a bad
roster, a too-big upload). Each page is screenshot to artifacts/walk/<lang>/<NN>-<page>.png
and checked by tests/walk.py: no raw codes, leaked values, server paths or volume names
for students, one time format, and in Chinese no untranslated English.

The confirmation dialogs that the walk meets (Reset all, Close term, roster Apply with sync,
Reset password; Stop/Reset/Restore/Delete backup are tests/test_confirmations_browser.py's):
Cancel changes nothing, Confirm acts, both checked through the hub's API and Docker.

The pure tests at the end show that each rule of the checker fails on what it is for.
"""

from __future__ import annotations

import contextlib
import textwrap

import docker
import pytest

from hub_ext import contract
from tests.helpers import ARTIFACTS
from tests.walk import (HUB_ADMIN_UNTRANSLATED, JUPYTERLAB_UNTRANSLATED, LANGS, Walk, can_log_in, cancel,
                        catalog_strings, check_text, confirm, dialog_of, literal_parts, log_in, open_page,
                        upload_roster)

SERVICE = "/services/goldenhub"
# Data given in English only: the titles of tests/conftest.py's test courses (the admin's
# words) and a display name of this test's roster.
ENGLISH_DATA = {"Test lab", "Lab (CPU)", "Security course, for its group only", "Security (CPU)",
                "New Student", "Not An Id!"}  # the last: the id the admin walk types into the template editor
IDS = {"admin", "lab", "lab-cpu", "sec", "sec-cpu", "intro-python", "intro-python-cpu", "deep-learning",
       "sec-students", "sec-teacher"}
ROSTER_HEAD = "username,display name,email,role\n"


def course_file(courses_dir, cid: str) -> None:
    """An enrolled-only course with titles in both languages, template <cid>-cpu."""
    (courses_dir / f"{cid}.yaml").write_text(textwrap.dedent(f"""\
        id: {cid}
        title:
          en: Walk course {cid}
          zh_CN: 漫游课程 {cid}
        templates:
          - id: {cid}-cpu
            title:
              en: Walk {cid} (CPU)
              zh_CN: 漫游 {cid}（CPU）
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
        """))


def names(lang: str) -> set[str]:
    """Every user name, course id and template id a page of this walk may show."""
    people = {f"walk-{lang}", "walk-prof", f"walk-new-{lang}", f"walka-{lang}-s1", f"walkt-{lang}-s1",
              f"walkr-{lang}-s1", f"walkr-{lang}-s2", f"walkp-{lang}"}
    courses = {f"walkc-{lang}", f"walka-{lang}", f"walkt-{lang}", f"walkr-{lang}"}
    return IDS | people | courses | {f"{c}-cpu" for c in courses} | {f"{c}-{lang}" for c in ("walkc", "walka")}


@pytest.fixture(scope="module")
def walk_courses(hub, courses_dir):
    cids = [f"{c}-{lang}" for c in ("walkc", "walka", "walkt", "walkr") for lang in LANGS]
    for cid in cids:
        course_file(courses_dir, cid)
    yield
    for cid in cids:
        (courses_dir / f"{cid}.yaml").unlink(missing_ok=True)


@contextlib.contextmanager
def walking(lang: str, part: str):
    """A walk whose problems are saved (artifacts/walk/<lang>/problems-<part>.json) even when
    a step fails, and fail the test at its end."""
    walk = Walk(ARTIFACTS / "walk" / LANGS[lang][0], LANGS[lang][0], names(lang), ENGLISH_DATA)
    try:
        yield walk
    except Exception:
        print(walk.report())
        raise
    finally:
        walk.save(part)
    assert not walk.problems, walk.report()


def members(hub, group: str) -> set[str]:
    r = hub.request("GET", f"/groups/{group}")
    return set(r.json()["users"]) if r.status_code == 200 else set()


def home_of(hub, user: str, course: str) -> str:
    """A home volume, labelled as the spawner labels it (the reset and close need no server)."""
    name = contract.home_volume_name(hub.prefix, user, course)
    docker.from_env().volumes.create(name=name, labels={contract.LABEL_USER: user, contract.LABEL_COURSE: course})
    return name


def volumes_of(user: str) -> set[str]:
    return {v.name for v in docker.from_env().volumes.list(filters={"label": f"{contract.LABEL_USER}={user}"})}


# --- the walks ---------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_student_walk(hub, browser, walk_courses, lang):
    """Login, picker, progress, JupyterLab, hub home, My environments, self-reset (a wrong
    confirmation first), reset done, backups: one server start."""
    user, course = f"walk-{lang}", f"walkc-{lang}"
    hub.enrol(user, course)
    page = open_page(browser, lang)
    with walking(lang, "student") as walk:
        try:
            walk.visit(page, f"{hub.url}/hub/login", 1, "login", student=True)
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", hub.student_password())
            page.locator("form:has(input[name=username]) [type=submit]").first.click()
            page.wait_for_url("**/hub/spawn**")
            walk.see(page, 2, "picker", student=True)
            page.check(f"#template-{course}-cpu")
            page.locator("#spawn_form [type=submit]").first.click()
            try:  # the progress page shows until the server is ready (it may be quick)
                page.wait_for_url("**/hub/spawn-pending/**", timeout=20_000)
                walk.see(page, 3, "progress", student=True, full_page=False)
            except Exception as e:  # noqa: BLE001 - a progress page gone before its screenshot
                print(f"progress page not captured: {e}")
            page.wait_for_url(f"**/user/{user}/lab**", timeout=240_000)
            page.locator(".jp-LabShell, #jp-main-dock-panel").first.wait_for(timeout=120_000)
            page.wait_for_timeout(3000)  # JupyterLab fills its panels after the shell shows
            walk.see(page, 4, "jupyterlab", student=True, full_page=False, upstream=JUPYTERLAB_UNTRANSLATED)
            walk.visit(page, f"{hub.url}/hub/home", 5, "hub-home", student=True)
            walk.visit(page, f"{hub.url}{SERVICE}/", 6, "my-environments", student=True)
            walk.visit(page, f"{hub.url}{SERVICE}/reset?course={course}", 7, "self-reset-confirm", student=True)
            page.fill("input[name=confirm]", "not-the-id")
            dialog = dialog_of(page, page.locator("form[data-confirm] [type=submit]").first)
            walk.see(page, 8, "self-reset-dialog", student=True, full_page=False)
            confirm(page, dialog)
            walk.see(page, 9, "self-reset-wrong-confirmation", student=True)
            assert hub.server(user)["ready"]  # a wrong confirmation resets nothing
            page.goto(f"{hub.url}{SERVICE}/reset?course={course}")
            page.fill("input[name=confirm]", course)
            confirm(page, dialog_of(page, page.locator("form[data-confirm] [type=submit]").first))
            walk.see(page, 10, "reset-done", student=True)
            assert hub.server(user) is None
            text = walk.visit(page, f"{hub.url}{SERVICE}/", 11, "backups", student=True)
            # They reset it themselves: told so, in their language (not "An administrator reset...").
            assert ("You reset your" if lang == "en" else "你重置了你的") in text, text
            assert contract.home_volume_name(hub.prefix, user, course) not in volumes_of(user)
        finally:
            page.context.close()
            hub.stop(user)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_instructor_walk(hub, browser, walk_courses, lang):
    """The instructor's course page: people, a roster preview, a bad roster, a too-big
    upload, the term close page and a wrong confirmation there."""
    course = f"walkc-{lang}"
    hub.enrol("walk-prof", course, staff=True)
    hub.enrol(f"walk-{lang}", course)
    page = log_in(browser, hub, lang, "walk-prof", hub.student_password())
    url = f"{hub.url}{SERVICE}/admin/courses/{course}"
    with walking(lang, "instructor") as walk:
        try:
            walk.visit(page, url, 20, "course-people")
            upload_roster(page, f"{ROSTER_HEAD}walk-new-{lang},New Student,n@example.org,student\n".encode())
            walk.see(page, 21, "roster-preview")
            assert f"walk-new-{lang}" not in members(hub, contract.course_group(course))  # a dry run
            page.goto(url)
            upload_roster(page, b"username;role\nBad Name!;professor\n")
            walk.see(page, 22, "roster-bad-file")
            page.goto(url)
            upload_roster(page, ROSTER_HEAD.encode() + b"x" * (2 * 2**20 + 10))
            walk.see(page, 23, "roster-too-big")
            walk.visit(page, f"{url}/close", 24, "term-close")
            page.fill("input[name=confirm]", "not-the-id")
            confirm(page, dialog_of(page, page.locator("form[data-confirm] [type=submit]").first))
            walk.see(page, 25, "term-close-wrong-confirmation")
            assert f"walk-{lang}" in members(hub, contract.course_group(course))  # nothing was closed
        finally:
            page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_admin_walk(hub, browser, walk_courses, lang):
    """The admin page (courses, templates, branding, backups, audit), the template editor,
    the course pages, the hub's own admin page."""
    hub.enrol(f"walk-{lang}", f"walkc-{lang}")
    page = log_in(browser, hub, lang, "admin", hub.admin_password())
    service = f"{hub.url}{SERVICE}"
    with walking(lang, "admin") as walk:
        try:
            walk.visit(page, f"{hub.url}/hub/home", 30, "admin-hub-home")
            walk.visit(page, f"{service}/admin", 31, "admin-page")
            for n, section in enumerate(("templates", "branding", "backups", "audit"), 32):
                # the admin page's sections, shown one by one (the page is checked whole above)
                walk.visit(page, f"{service}/admin#{section}", n, f"admin-{section}", full_page=False, check=False)
            walk.visit(page, f"{service}/admin/templates/new", 36, "template-editor-new")
            page.fill("#course", f"walkc-{lang}")
            page.fill("#yaml", "id: Not An Id!\ngpus: -1\nmemory: lots\n")
            page.locator("#editor [type=submit]").click()
            page.wait_for_load_state()
            walk.see(page, 42, "template-editor-errors")
            walk.visit(page, f"{service}/admin/templates/intro-python-cpu", 37, "template-course-file")
            for n, course in enumerate(("intro-python", "lab", f"walkc-{lang}"), 38):
                walk.visit(page, f"{service}/admin/courses/{course}", n, f"course-{course}")
        finally:
            page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_hub_admin_page_walk(hub, browser, lang):
    """JupyterHub's own admin page (a React app, not a template), linked from the nav bar: its
    own words are English only (HUB_ADMIN_UNTRANSLATED, exempt like data); the rest is checked."""
    page = log_in(browser, hub, lang, "admin", hub.admin_password())
    with walking(lang, "hub-admin") as walk:
        try:
            walk.visit(page, f"{hub.url}/hub/admin", 41, "hub-admin", upstream=HUB_ADMIN_UNTRANSLATED)
        finally:
            page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_error_walk(hub, browser, walk_courses, lang):
    """404s of the hub and the service, an unknown course, a student on the admin pages, a
    refused start."""
    user = f"walk-{lang}"
    hub.enrol(user, f"walkc-{lang}")
    page = log_in(browser, hub, lang, user, hub.student_password())
    service = f"{hub.url}{SERVICE}"
    with walking(lang, "errors") as walk:
        try:
            walk.visit(page, f"{hub.url}/hub/no-such-page", 50, "hub-404", student=True)
            walk.visit(page, f"{service}/no-such-page", 51, "service-404", student=True)
            walk.visit(page, f"{service}/reset?course=no-such-course", 52, "self-reset-unknown-course", student=True)
            walk.visit(page, f"{service}/admin", 53, "student-on-admin-page", student=True)
            walk.visit(page, f"{service}/admin/courses/lab", 54, "student-on-course-page", student=True)
            # A refused start: the picker's form sent with an environment this student may not use.
            page.goto(f"{hub.url}/hub/spawn")
            page.locator(f"#template-walkc-{lang}-cpu").evaluate("e => { e.value = 'sec-cpu'; e.checked = true; }")
            page.locator("#spawn_form [type=submit]").first.click()
            page.wait_for_load_state()
            walk.see(page, 55, "refused-start", student=True)
            assert hub.server(user) is None
        finally:
            page.context.close()
            hub.stop(user)


# --- the dialogs: Cancel changes nothing, Confirm acts ---------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_reset_all_asks_first(hub, browser, walk_courses, lang):
    course, student = f"walka-{lang}", f"walka-{lang}-s1"
    hub.enrol(student, course)
    home = home_of(hub, student, course)
    page = log_in(browser, hub, lang, "admin", hub.admin_password())
    with walking(lang, "reset-all") as walk:
        try:
            walk.visit(page, f"{hub.url}{SERVICE}/admin/reset-all?course={course}", 60, "reset-all")
            page.fill("input[name=confirm]", course)
            submit = page.locator("form[data-confirm] [type=submit]").first
            dialog = dialog_of(page, submit)
            walk.see(page, 61, "reset-all-dialog", full_page=False)
            cancel(page, dialog)
            assert volumes_of(student) == {home}  # no backup made, the home is there
            confirm(page, dialog_of(page, submit))
            walk.see(page, 62, "reset-all-done")
            after = volumes_of(student)
            assert home not in after and len(after) == 1 and next(iter(after)).startswith(f"{home}-backup-")
        finally:
            page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_close_term_asks_first(hub, browser, walk_courses, lang):
    course, student = f"walkt-{lang}", f"walkt-{lang}-s1"
    hub.enrol(student, course)
    home = home_of(hub, student, course)
    page = log_in(browser, hub, lang, "admin", hub.admin_password())
    with walking(lang, "term-close") as walk:
        try:
            page.goto(f"{hub.url}{SERVICE}/admin/courses/{course}/close")
            page.fill("input[name=confirm]", course)
            submit = page.locator("form[data-confirm] [type=submit]").first
            dialog = dialog_of(page, submit)
            walk.see(page, 63, "term-close-dialog", full_page=False)
            cancel(page, dialog)
            assert student in members(hub, contract.course_group(course)) and volumes_of(student) == {home}
            confirm(page, dialog_of(page, submit))
            walk.see(page, 64, "term-closed")
            assert student not in members(hub, contract.course_group(course)) and home not in volumes_of(student)
        finally:
            page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_roster_apply_with_sync_asks_first(hub, browser, walk_courses, lang):
    course, kept, dropped = f"walkr-{lang}", f"walkr-{lang}-s1", f"walkr-{lang}-s2"
    group = contract.course_group(course)
    for student in (kept, dropped):
        hub.enrol(student, course)
    page = log_in(browser, hub, lang, "admin", hub.admin_password())
    with walking(lang, "roster-sync") as walk:
        try:
            page.goto(f"{hub.url}{SERVICE}/admin/courses/{course}")
            upload_roster(page, f"{ROSTER_HEAD}{kept},,,student\n".encode(), sync=True)
            walk.see(page, 65, "roster-sync-preview")
            assert members(hub, group) == {kept, dropped}  # a dry run
            submit = page.locator("#apply [type=submit]")
            dialog = dialog_of(page, submit)
            walk.see(page, 66, "roster-sync-dialog", full_page=False)
            cancel(page, dialog)
            assert members(hub, group) == {kept, dropped}
            confirm(page, dialog_of(page, submit))
            walk.see(page, 67, "roster-sync-applied")
            assert members(hub, group) == {kept}
        finally:
            page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_password_reset_asks_first_and_change_password_page(local_hub, browser, lang):
    student = f"walkp-{lang}"
    local_hub.enrol(student, "intro-python")
    page = log_in(browser, local_hub, lang, student, "walk-first-pass")  # the first login sets it
    with walking(lang, "password-reset") as walk:
        try:
            walk.visit(page, f"{local_hub.url}/hub/auth/change-password", 68, "change-password", student=True)
        finally:
            page.context.close()
        assert can_log_in(local_hub, student, "walk-first-pass")
        page = log_in(browser, local_hub, lang, "admin", local_hub.admin_password())
        try:
            page.goto(f"{local_hub.url}{SERVICE}/admin/courses/intro-python")
            submit = page.locator(f"tr.person[data-user='{student}'] form[data-confirm] [type=submit]")
            dialog = dialog_of(page, submit)
            walk.see(page, 69, "password-reset-dialog", full_page=False)
            cancel(page, dialog)
            assert can_log_in(local_hub, student, "walk-first-pass")
            confirm(page, dialog_of(page, submit))
            walk.see(page, 70, "password-reset-done")
            assert not can_log_in(local_hub, student, "walk-first-pass")
        finally:
            page.context.close()


# --- the checker's rules, pure -----------------------------------------------------------------


def problems(text: str, lang: str = "zh-CN", **kw) -> list[tuple[str, str]]:
    return [(p.rule, p.text) for p in check_text("p", lang, text, msgids=(), **kw)]


def test_raw_codes_and_leaked_values_fail_in_any_language():
    assert problems("Error: HTTP 503: error (x)", "en-US") == [("raw-code", "Error: HTTP 503: error (x)")]
    assert problems("出错了\n404 : Not Found", "en-US") == [("raw-code", "404 : Not Found")]
    assert problems("400", "en-US") == [("raw-code", "a page whose text is only 400"), ("raw-code", "400")]
    assert problems("1", "en-US") == [("raw-code", "a page whose text is only 1")]
    assert problems("Error: 500", "en-US") == [("raw-code", "Error: 500")]
    for leaked in ("Memory: None", "null", "undefined GiB", "NaN%", "Traceback (most recent call last):",
                   "KeyError Exception: x"):
        assert [r for r, _ in problems(leaked, "en-US")] == ["leak"], leaked
    assert problems("Homes of people not enrolled\nNone.", "en-US") == []  # an English sentence
    assert problems("Ran 404 steps; 500 GiB free", "en-US") == []


def test_server_paths_and_volume_names_fail_on_student_pages_only():
    text = "Reset done: goldenhub-home-maya--intro-backup-1 in /var/lib/docker/volumes and /tmp/x"
    assert problems(text, "en-US", student=True) == [
        ("server-path", "/var/lib/docker/volumes"), ("server-path", "/tmp/x"),
        ("volume-name", "goldenhub-home-maya--intro-backup-1")]
    assert problems(text, "en-US") == []


def test_the_page_says_its_language():
    assert problems("我的环境", html_lang="zh-CN") == [] and problems("Home", "en-US", html_lang="en") == []
    assert problems("Home", "zh-CN", html_lang="en") == [("html-lang", '<html lang="en"> on a zh-CN page')]


def test_plurals_are_right_in_english():
    assert problems("Reset all 1 students of lab", "en-US") == [("plural", "Reset all 1 students of lab")]
    assert problems("3 home(s) move", "en-US") == [("plural", "3 home(s) move")]
    assert problems("1 student, 1 class, 2 homes; 1 of 2 GPUs free", "en-US") == []


def test_times_have_one_format_and_a_datetime():
    assert problems("at 2026-11-26 12:53 UTC", "en-US", times=[{"datetime": "2026-11-26T12:53:00Z"}]) == []
    assert [r for r, _ in problems("x", "en-US", times=[{"datetime": None, "text": "today"}])] == ["time"]
    for bad in ("2026-11-26 12:53:11.123456", "12:53+00:00", "2026-11-26T12:53:11Z"):
        assert [r for r, _ in problems(f"created {bad}", "en-US")] == ["time"], bad


def test_english_left_in_chinese_pages_fails_with_its_text():
    assert problems("我的环境\nReset this environment now") == [("english", "Reset this environment now")]
    assert problems("Reset this environment now", "en-US") == []
    # names, ids, product names, code and the admin's own English data are not sentences to translate
    assert problems("在 JupyterLab 中打开 Python GPU CUDA", names=set()) == []
    assert problems("walk-prof maya lin 的课程", names={"walk-prof", "maya", "lin"}) == []
    assert problems("运行 goldenhub courses status", exempt=["goldenhub courses status"]) == []
    assert problems("课程 Test lab shown here", data={"Test lab"}) == []
    assert problems("课程 Test lab shown here now") == [("english", "Test lab shown here now")]
    # a marked source string verbatim, or a literal part of one between its placeholders
    parts = literal_parts("%(name)s's server will stop now; their files stay")
    assert parts == ["'s server will stop now; their files stay"]
    found = check_text("p", "zh-CN", "lin's server will stop now; their files stay", msgids=tuple(parts))
    assert [(p.rule, p.text) for p in found] == [("msgid", parts[0])]
    assert literal_parts("Sign in with <strong>your class</strong> password &mdash; please") == [
        "Sign in with", "your class", "password — please"]


def test_the_catalog_strings_are_the_marked_english_strings():
    strings = catalog_strings()
    assert any("could not be created on this server" in s for s in strings)
    assert all(len(s) >= 8 and " " in s for s in strings)
