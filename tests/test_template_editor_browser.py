"""The template editor in Chromium (Debian's, via Playwright), on the session hub: a new
template from the commented example saves; a copy of intro-python's template is prefilled;
three mistakes give three problems and the text stays; a course-file template is shown
read-only with its YAML and no server path; a deleted template's revisions are visible and a
new template starts from one; Roll back asks first (Cancel changes nothing, Confirm acts)."""

import pytest

from hub_ext import i18n
from hub_ext.catalog import fields
from tests.helpers import ARTIFACTS, ServiceClient, user_token
from tests.helpers import browser_login as login

pytestmark = pytest.mark.browser
SERVICE = "/services/goldenhub"


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def api(hub):
    return ServiceClient(hub, user_token(hub, "admin"))


@pytest.fixture
def admin(hub, browser):
    page = login(browser, hub, "admin", hub.admin_password())
    yield page
    page.context.close()


def save(page) -> str:
    with page.expect_navigation():
        page.click("#editor button[type=submit]")
    return page.inner_text("body")


def test_a_new_template_from_the_example_saves(hub, admin, api):
    admin.goto(f"{hub.url}{SERVICE}/admin/templates/new")
    text = admin.input_value("textarea[name=yaml]")
    assert text == fields.example_yaml()
    help_rows = admin.locator("#field-help tr.field-help")
    expect(help_rows).to_have_count(len(fields.FIELDS) + 1)  # every field, and the course id
    expect(admin.locator("#field-help tr[data-field='memory']")).to_contain_text("2G or 512M")
    admin.fill("input[name=course]", "gh10i-course")
    admin.fill("textarea[name=yaml]", text.replace("id: data-lab-cpu", "id: gh10i-example"))
    assert "Saved template gh10i-example" in save(admin)
    saved = api.call("GET", "/templates/gh10i-example").json()
    assert saved["course"] == "gh10i-course" and saved["template"]["memory"] == "2G"


def test_a_copy_of_a_file_template_is_prefilled(hub, admin):
    admin.goto(f"{hub.url}{SERVICE}/admin/templates/new")
    admin.select_option("#from", "intro-python-cpu")
    with admin.expect_navigation():
        admin.click("#start-from button[type=submit]")
    text = admin.input_value("textarea[name=yaml]")
    assert text.startswith("id: intro-python-cpu-copy\n")
    for line in ("memory: 1G", "shm_size: 256M", "image: goldenhub/course-intro-python:latest",
                 "  zh_CN: Python（CPU）", "  target: intro-python"):
        assert line in text.splitlines(), line
    assert admin.input_value("input[name=course]") == "intro-python"


def test_three_mistakes_show_three_problems_and_the_text_stays(hub, admin, api):
    admin.goto(f"{hub.url}{SERVICE}/admin/templates/new")
    text = (admin.input_value("textarea[name=yaml]").replace("id: data-lab-cpu", "id: gh10i-wrong")
            .replace("cpu: 1\n", "cpu: 0\n").replace("memory: 2G", "memory: lots")
            .replace("image: goldenhub/course-intro-python:latest", "image: Not An Image"))
    admin.fill("input[name=course]", "gh10i-course")
    admin.fill("textarea[name=yaml]", text)
    save(admin)
    problems = admin.locator("#problems li.problem")
    expect(problems).to_have_count(3)
    assert [problems.nth(i).get_attribute("data-field") for i in range(3)] == ["image", "cpu", "memory"]
    expect(problems.nth(0)).to_contain_text("got 'Not An Image'")
    expect(problems.nth(1)).to_contain_text("got 0")
    expect(problems.nth(2)).to_contain_text("got 'lots'")
    expect(admin.locator("#problems")).to_contain_text("3 problems")
    assert admin.input_value("textarea[name=yaml]") == text
    assert admin.input_value("input[name=course]") == "gh10i-course"
    ARTIFACTS.mkdir(exist_ok=True)
    admin.screenshot(path=str(ARTIFACTS / "template-editor-problems.png"), full_page=True)
    assert api.call("GET", "/templates/gh10i-wrong").status_code == 404  # nothing saved


def test_a_course_file_template_is_shown_with_its_yaml_and_no_path(hub, admin, courses_dir):
    admin.goto(f"{hub.url}{SERVICE}/admin")
    admin.click("tr.template[data-template='intro-python-cpu'] a")
    expect(admin.locator("#template-yaml")).to_contain_text("id: intro-python-cpu")
    yaml_text = admin.inner_text("#template-yaml")
    assert "memory: 1G" in yaml_text and "repo: git://host.docker.internal/intro-python.git" in yaml_text
    expect(admin.locator("#managed-by")).to_contain_text("course file intro-python.yaml")
    assert str(courses_dir) not in admin.content()
    assert admin.locator("textarea").count() == 0  # read-only
    ARTIFACTS.mkdir(exist_ok=True)
    admin.screenshot(path=str(ARTIFACTS / "template-file-view.png"), full_page=True)
    with admin.expect_navigation():
        admin.click("#copy")
    assert admin.input_value("textarea[name=yaml]").startswith("id: intro-python-cpu-copy\n")


NEW = {"title": "Kept", "image": "goldenhub/course-intro-python:latest", "gpus": 0, "cpu": 1, "memory": "512M"}


def test_a_deleted_templates_revisions_are_visible_and_a_new_one_starts_from_one(hub, admin, api):
    api.call("POST", "/templates", json={"course": "gh10i-course", "template": {**NEW, "id": "gh10i-gone"}}
             ).raise_for_status()
    api.call("PATCH", "/templates/gh10i-gone", json={"template": {"memory": "640M"}, "comment": "more memory"}
             ).raise_for_status()
    api.call("DELETE", "/templates/gh10i-gone?confirm=gh10i-gone").raise_for_status()
    admin.goto(f"{hub.url}{SERVICE}/admin")
    with admin.expect_navigation():
        admin.click("a[href$='admin/deleted-templates']")
    section = admin.locator("section.deleted-template[data-template='gh10i-gone']")
    revisions = section.locator(".revision")
    expect(revisions).to_have_count(2)
    expect(revisions.nth(0)).to_contain_text("more memory")
    assert "-memory: 512M" in revisions.nth(0).locator("pre.diff").inner_text()
    assert "+memory: 640M" in revisions.nth(0).locator("pre.diff").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    admin.screenshot(path=str(ARTIFACTS / "template-deleted-revisions.png"), full_page=True)
    listed = {d["id"]: d for d in api.call("GET", "/deleted-templates").json()["deleted"]}  # the API agrees
    assert [r["template"]["memory"] for r in listed["gh10i-gone"]["revisions"]] == ["640M", "512M"]
    with admin.expect_navigation():
        section.locator(".revision[data-number='1'] a.restore").click()
    assert "memory: 512M" in admin.input_value("textarea[name=yaml]")
    assert admin.input_value("input[name=course]") == "gh10i-course"
    assert "Saved template gh10i-gone" in save(admin)
    again = api.call("GET", "/templates/gh10i-gone").json()
    assert again["template"]["memory"] == "512M" and again["revision"] == 3


def test_roll_back_asks_first_cancel_changes_nothing_confirm_acts(hub, admin, api):
    api.call("POST", "/templates", json={"course": "gh10i-course", "template": {**NEW, "id": "gh10i-roll"}}
             ).raise_for_status()
    api.call("PATCH", "/templates/gh10i-roll", json={"template": {"memory": "640M"}}).raise_for_status()
    url = f"{hub.url}{SERVICE}/admin/templates/gh10i-roll"
    admin.goto(url)
    button = admin.locator(".revision[data-number='1'] button[type=submit]")
    expect(admin.locator(".revision[data-number='2'] button[type=submit]")).to_have_count(0)  # the current one
    button.click()
    dialog = admin.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-text")).to_contain_text("gh10i-roll goes back to revision 1")
    dialog.locator("#confirm-no").click()
    expect(dialog).to_be_hidden()
    assert admin.url == url
    now = api.call("GET", "/templates/gh10i-roll").json()
    assert now["revision"] == 2 and now["template"]["memory"] == "640M"  # Cancel changed nothing

    button.click()
    with admin.expect_navigation():
        dialog.locator("#confirm-yes").click()
    assert "rolled back to revision 1" in admin.inner_text("body")
    now = api.call("GET", "/templates/gh10i-roll").json()
    assert now["revision"] == 3 and now["template"]["memory"] == "512M"


def test_the_editor_its_help_and_example_in_chinese(hub, browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", hub.admin_password())
        with page.expect_navigation():
            page.click("input[type=submit], button[type=submit]")
        page.goto(f"{hub.url}{SERVICE}/admin/templates/new?lang=zh_CN")
        expect(page.locator("h1").last).to_have_text("新建模板")
        memory = next(f for f in fields.FIELDS if f.name == "memory")
        expect(page.locator("#field-help tr[data-field='memory']")).to_contain_text(
            i18n.translate(memory.meaning, "zh_CN"))
        text = page.input_value("textarea[name=yaml]")
        assert i18n.translate(memory.allowed, "zh_CN") in text and "memory: 2G" in text
        page.fill("input[name=course]", "gh10i-course")
        page.fill("textarea[name=yaml]", text.replace("memory: 2G", "memory: lots"))
        with page.expect_navigation():
            page.click("#editor button[type=submit]")
        problem = page.locator("#problems li.problem[data-field='memory']")
        expect(problem).to_contain_text("允许的值：" + i18n.translate(memory.allowed, "zh_CN"))
        expect(page.locator("#problems")).to_contain_text("未保存：模板有 1 个问题")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "template-editor-zh_CN.png"), full_page=True)
        page.goto(f"{hub.url}{SERVICE}/admin/templates/intro-python-cpu")
        expect(page.locator("#managed-by")).to_contain_text("课程文件 intro-python.yaml")
    finally:
        context.close()
