"""The service's pages look and speak like the hub's, in Debian's Chromium (Playwright) against
the session hub (demo mode): the hub's own nav bar (logo, user, logout, language switch, dark
mode), Chinese for a zh-CN browser and English after ?lang=en on the hub and the service alike
(one cookie), no script blocked by the service's CSP, long tables that page and filter (and
show every row without JavaScript), and times in the browser's time zone. Without a hub: the
counts of a page read right in both languages, and a JupyterHub whose page.html the service
cannot give its nonce stops the service instead of serving pages the CSP breaks."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, TemplateError

from hub_ext import i18n
from hub_ext.hubconfig import Settings
from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred
from hub_ext.service import templating
from hub_ext.service.db import AuditEntry, open_database
from tests.helpers import ARTIFACTS, PREFIX
from tests.helpers import browser_login as login


def in_chromium(test):
    return pytest.mark.integration(pytest.mark.browser(test))


SERVICE = "/services/goldenhub"
STUDENT = f"{PREFIX}-look"
ZH = {"locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}
EN = {"locale": "en-US", "extra_http_headers": {"Accept-Language": "en-US,en;q=0.9"}}
AUDITED = [f"{PREFIX}-aud{i:02d}" for i in range(30)]
NOON_UTC = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)




def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"service-look-{name}.png"), full_page=True)


def nav_links(page) -> list[str]:
    """The nav bar's links as a visitor can follow them (path and text; menu toggles and the
    language switch's links lead to the page itself, so only their words)."""
    return page.eval_on_selector_all(
        "nav.navbar a[href]", "els => els.map(a => (a.closest('#goldenhub-language') || a.getAttribute('href') === '#'"
                              " ? '' : new URL(a.href).pathname) + ' ' + a.textContent.trim())")


def csp_problems(page) -> list[str]:
    """Collects, from now on, what Chromium reports about the page: console errors (a CSP
    violation is one) and uncaught script errors."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    return seen


@pytest.fixture(scope="module")
def audited(hub):
    """30 audit entries (the audit table pages at 25), written to the service's database as
    its own actions write them, each at noon UTC on 15 January 2026."""
    db = open_database(Settings.default_db_url(hub.state_dir))
    with db() as s:
        for name in AUDITED:
            s.add(AuditEntry(at=NOON_UTC, actor="admin", action="reset", target_user=name, course="lab",
                             result="ok", detail=deferred(N_("no home yet: nothing to back up"))))
        s.commit()
    return AUDITED


@in_chromium
def test_student_and_admin_pages_have_the_hubs_nav_bar(hub, browser):
    for name, password, path in ((STUDENT, hub.student_password(), "/"), ("admin", hub.admin_password(), "/admin")):
        page = login(browser, hub, name, password, **EN)
        try:
            page.goto(f"{hub.url}/hub/home")
            on_hub = nav_links(page)
            page.goto(f"{hub.url}{SERVICE}{path}")
            on_service = nav_links(page)
            print(on_hub)
            assert on_service == on_hub, (on_hub, on_service)
            assert page.locator("#jupyterhub-logo img").evaluate("img => img.complete && img.naturalWidth > 0")
            assert page.inner_text("#login_widget").split()[0] == name
            assert page.get_attribute("#logout", "href") == "/hub/logout"
            assert page.locator("#goldenhub-language").is_visible()
            shot(page, f"nav-{name}")
        finally:
            page.context.close()


@in_chromium
def test_dark_mode_toggle_works_on_a_service_page(hub, browser):
    page = login(browser, hub, STUDENT, hub.student_password(), **EN)
    try:
        page.goto(f"{hub.url}{SERVICE}/")
        theme = page.locator("html").get_attribute("data-bs-theme")
        page.click("#dark-theme-toggle")
        flipped = page.locator("html").get_attribute("data-bs-theme")
        assert {theme, flipped} == {"light", "dark"}
        page.reload()  # remembered, as on the hub's pages
        assert page.locator("html").get_attribute("data-bs-theme") == flipped
        shot(page, f"theme-{flipped}")
    finally:
        page.context.close()


@in_chromium
def test_a_chinese_browser_gets_the_service_in_chinese_and_lang_en_switches_hub_and_service(hub, browser, audited):
    page = login(browser, hub, "admin", hub.admin_password(), **ZH)
    try:
        page.goto(f"{hub.url}{SERVICE}/")
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert page.inner_text("h1") == "我的环境"
        assert page.title() == "我的环境"
        page.goto(f"{hub.url}{SERVICE}/admin")
        assert page.inner_text("#goldenhub-subnav").split() == ["概览", "模板", "品牌", "备份", "审计日志"]
        assert page.inner_text("#audit") == "审计日志"
        assert "第 1–25 行，共" in page.inner_text("#audit-table + .goldenhub-table-pager")
        assert page.locator("#audit-table thead").inner_text().split()[:3] == ["时间", "操作人", "操作"]
        shot(page, "admin-zh")

        page.goto(f"{hub.url}{SERVICE}/admin?lang=en")  # the service remembers it ...
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.inner_text("#audit") == "Audit log"
        page.goto(f"{hub.url}/hub/home")  # ... and so does the hub: one cookie
        assert page.locator("html").get_attribute("lang") == "en"
        assert "My environments" in page.inner_text("nav.navbar")

        page.goto(f"{hub.url}/hub/home?lang=zh_CN")  # the other way round
        page.goto(f"{hub.url}{SERVICE}/")
        assert page.inner_text("h1") == "我的环境"
    finally:
        page.context.close()


@in_chromium
def test_no_script_is_blocked_on_the_service_pages(hub, browser, audited):
    page = login(browser, hub, "admin", hub.admin_password(), **EN)
    try:
        problems = csp_problems(page)
        for path in ("/", "/admin", "/admin/courses/lab", "/reset?course=lab", "/admin/reset-all?course=lab",
                     "/no-such-page"):
            page.goto(f"{hub.url}{SERVICE}{path}")
            page.wait_for_load_state("load")
            # the stock page's one inline script (its nonce) ran, and the service's own scripts did
            assert page.evaluate("window.jhdata && window.jhdata.base_url") == "/hub/", (path, problems)
            assert page.evaluate("typeof window.goldenhubLocalTime") == "function", path
        assert page.locator("#error-message").is_visible()  # the last one: the error page, framed
        assert [p for p in problems if "404" not in p] == []
    finally:
        page.context.close()


@in_chromium
def test_the_audit_table_pages_and_its_filter_finds_a_student(hub, browser, audited):
    page = login(browser, hub, "admin", hub.admin_password(), **EN)
    try:
        page.goto(f"{hub.url}{SERVICE}/admin")
        table = page.locator("#audit-table")
        rows = table.locator("tbody tr.audit")
        total = rows.count()
        assert total > 25
        status = page.locator("#audit-table + .goldenhub-table-pager .goldenhub-table-status")
        assert status.inner_text() == f"Rows 1–25 of {total}"
        assert table.locator("tbody tr.audit:visible").count() == 25

        page.click("#audit-table + .goldenhub-table-pager .goldenhub-next")
        assert status.inner_text() == f"Rows 26–{total} of {total}"
        assert table.locator("tbody tr.audit:visible").count() == total - 25
        assert page.locator("#audit-table + .goldenhub-table-pager .goldenhub-next").is_disabled()

        wanted = audited[7]
        page.fill("#audit-table-filter", wanted.upper())  # case does not matter
        visible = table.locator("tbody tr.audit:visible")
        assert visible.count() == 1 and wanted in visible.inner_text()
        assert status.inner_text() == "Rows 1–1 of 1"
        page.fill("#audit-table-filter", "nobody-has-this-name")
        assert table.locator("tbody tr.audit:visible").count() == 0
        assert status.inner_text() == "No row contains this."
        shot(page, "audit-filtered")
    finally:
        page.context.close()


@in_chromium
def test_without_javascript_every_row_shows(hub, browser, audited):
    page = login(browser, hub, "admin", hub.admin_password(), **EN)
    cookies = page.context.cookies()
    page.context.close()
    context = browser.new_context(java_script_enabled=False, **EN)
    context.add_cookies(cookies)
    try:
        page = context.new_page()
        page.goto(f"{hub.url}{SERVICE}/admin")
        rows = page.locator("#audit-table tbody tr.audit")
        assert rows.count() > 25
        assert page.locator("#audit-table tbody tr.audit:visible").count() == rows.count()
        assert page.locator(".goldenhub-table-pager").count() == 0
        # times stay as the server wrote them: UTC, named
        assert "2026-01-15 12:00 UTC" in page.inner_text("#audit-table")
    finally:
        context.close()


@in_chromium
@pytest.mark.parametrize("zone,clock", [("Asia/Shanghai", "08:00 PM"), ("America/New_York", "07:00 AM")])
def test_times_show_in_the_browsers_time_zone(hub, browser, audited, zone, clock):
    page = login(browser, hub, "admin", hub.admin_password(), timezone_id=zone, **EN)
    try:
        page.goto(f"{hub.url}{SERVICE}/admin")
        cell = page.locator(f"#audit-table tr.audit:has-text('{audited[0]}') time")
        text = cell.first.inner_text()
        assert clock in text and "Jan 15, 2026" in text, text
        assert cell.first.get_attribute("title") == "2026-01-15 12:00 UTC"
        assert re.search(r"UTC\b", text) is None  # the viewer's zone, not the server's
    finally:
        page.context.close()


def render(name: str, lang: str, **values) -> str:
    token = i18n._current.set(lang)
    try:
        page = templating.page_values(username="admin", scopes=(), service_prefix="/services/goldenhub/",
                                      xsrf_token="x", nonce="n")
        return templating.make_environment().get_template(name).render(page, xsrf_form_html="", **values)
    finally:
        i18n._current.reset(token)


@pytest.mark.parametrize("students,english,chinese", [
    (["ann"], ["Reset the 1 student of Lab?", "Reset 1 student"],
     ["重置 Lab 的全部 1 名学生？", "重置 1 名学生"]),
    (["ann", "bo"], ["Reset all 2 students of Lab?", "Reset 2 students"],
     ["重置 Lab 的全部 2 名学生？", "重置 2 名学生"]),
])
def test_the_counts_of_a_reset_all_read_right_in_both_languages(students, english, chinese):
    course = type("C", (), {"id": "lab", "title": "Lab"})()
    page = render("confirm_reset_all.html", "en", course=course, students=students)
    assert all(words in page for words in english)
    assert re.search(r"\b1 students\b", page) is None
    page = render("confirm_reset_all.html", "zh_CN", course=course, students=students)
    assert all(words in page for words in chinese)
    assert '<html lang="zh-CN">' in page


def test_a_stock_page_without_its_inline_script_stops_the_service(tmp_path):
    (tmp_path / "page.html").write_text(
        '<!DOCTYPE HTML>\n<html lang="en"><body>{% block main %}{% endblock %}</body></html>')
    env = Environment(loader=ChoiceLoader([
        FileSystemLoader(templating.SERVICE_TEMPLATES),
        PrefixLoader({"templates": templating.StockPageLoader(tmp_path)}),
    ]))
    with pytest.raises(TemplateError, match="expected exactly one"):
        env.get_template("templates/page.html")


def test_the_stock_script_gets_the_nonce_and_the_page_no_unsafe_inline():
    page = render("error.html", "en", status=404, message="There is no such page.")
    assert len(re.findall(r"<script(?![^>]*\bsrc=)", page)) == 1  # one inline script ...
    assert '<script nonce="n" type="text/javascript">' in page  # ... and it carries the nonce
    from hub_ext.service.pages import page_csp

    assert "script-src 'self' 'nonce-abc'" in page_csp("abc") and "unsafe-inline" not in page_csp("abc").split(
        "script-src")[1]
