"""The hub's own pages in Chinese and English, as a visitor sees them: a real jupyterhub
(the session `hub`, demo mode) and Debian's Chromium with a zh-CN or en-US browser, plus
plain HTTP clients for the error page, the nav bar rule and concurrent requests."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import ARTIFACTS, WAIT_SPAWN
from tests.helpers import browser_login as login

pytestmark = pytest.mark.integration

ZH = {"locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-CN,zh;q=0.9"}}
EN = {"locale": "en-US", "extra_http_headers": {"Accept-Language": "en-US,en;q=0.9"}}




def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"i18n-hub-{name}.png"), full_page=True)


def text(r: requests.Response) -> str:
    """The page as the browser reads it (the hub's pages are UTF-8; requests would guess
    ISO-8859-1 for a text/html answer without a charset)."""
    return r.content.decode("utf-8")


def session(hub, name, password=None, accept="en-US"):
    """A logged-in requests session whose browser asks for `accept`."""
    s = requests.Session()
    s.headers["Accept-Language"] = accept
    s.get(f"{hub.url}/hub/login", timeout=30)
    r = s.post(f"{hub.url}/hub/login", timeout=30, data={
        "username": name, "password": password or hub.student_password(), "_xsrf": s.cookies.get("_xsrf", "")})
    assert r.status_code == 200, text(r)[:300]
    return s


@pytest.mark.browser
@pytest.mark.parametrize("context,lang,heading,banner", [
    (ZH, "zh-CN", "登录", "演示模式"),
    (EN, "en", "Sign in", "Demo mode"),
])
def test_login_page_is_in_the_browsers_language(browser, hub, context, lang, heading, banner):
    page = browser.new_context(**context).new_page()
    page.goto(f"{hub.url}/hub/login")
    assert page.locator("html").get_attribute("lang") == lang
    assert page.inner_text(".auth-form-header h1").strip() == heading
    assert banner in page.inner_text("#goldenhub-demo-banner")
    shot(page, f"login-{lang}")
    page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("context,lang,words", [
    (ZH, "zh-CN", {"start": "启动我的服务器", "envs": "我的环境", "pick": "请选择要启动的课程环境",
                   "button": "启动", "memory": "内存 512 MiB"}),
    (EN, "en", {"start": "Start My Server", "envs": "My environments", "pick": "Pick the course environment",
                "button": "Start", "memory": "512 MiB memory"}),
])
def test_home_and_picker_are_in_the_browsers_language(browser, hub, context, lang, words):
    name = f"i18n-{lang.lower()}"
    page = login(browser, hub, name, hub.student_password(), **context)
    page.goto(f"{hub.url}/hub/home")
    assert page.locator("html").get_attribute("lang") == lang
    assert page.inner_text("#start").strip() == words["start"]
    assert page.inner_text("#goldenhub-nav-environments").strip() == words["envs"]
    assert page.locator("#goldenhub-nav-course-admin").count() == 0  # a student
    shot(page, f"home-{lang}")
    page.goto(f"{hub.url}/hub/spawn")
    assert words["pick"] in page.inner_text("#spawn_form")
    assert words["memory"] in page.inner_text("label[for=template-lab-cpu]")
    assert page.inner_text("#spawn_form button[type=submit]").strip() == words["button"]
    shot(page, f"picker-{lang}")
    # My environments leads to the service's page for this student.
    page.goto(f"{hub.url}/hub/home")
    page.click("#goldenhub-nav-environments")
    page.wait_for_load_state()
    assert page.url.startswith(f"{hub.url}/services/goldenhub/")
    assert name in page.inner_text("body")
    page.context.close()


@pytest.mark.browser
def test_lang_query_switches_and_is_remembered_across_pages(browser, hub):
    page = login(browser, hub, "i18n-switch", hub.student_password(), **EN)
    page.goto(f"{hub.url}/hub/home")
    assert page.inner_text("#start").strip() == "Start My Server"
    # The switch in the nav bar: a link to ?lang=zh_CN on the same page.
    page.click("#goldenhub-language .dropdown-toggle")
    page.click("#goldenhub-language a[hreflang=zh-CN]")
    page.wait_for_load_state()
    assert page.inner_text("#start").strip() == "启动我的服务器"
    assert {c["name"]: c["value"] for c in page.context.cookies()}["goldenhub_lang"] == "zh_CN"
    page.goto(f"{hub.url}/hub/spawn")  # no ?lang=: the cookie, over an en-US browser
    assert "请选择要启动的课程环境" in page.inner_text("#spawn_form")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.goto(f"{hub.url}/hub/home?lang=en")
    page.goto(f"{hub.url}/hub/spawn")
    assert "Pick the course environment" in page.inner_text("#spawn_form")
    page.context.close()


def nav_links(s: requests.Session, hub) -> tuple[str | None, str | None]:
    page = text(s.get(f"{hub.url}/hub/home", timeout=30))
    found = [re.search(rf'id="goldenhub-nav-{what}"\s+href="([^"]+)"', page) for what in ("environments", "course-admin")]
    return tuple(m.group(1) if m else None for m in found)


def test_course_admin_link_is_for_admins_and_course_staff_only(hub):
    hub.enrol("i18n-student", "intro-python")
    hub.enrol("i18n-prof", "intro-python", staff=True)
    student = session(hub, "i18n-student")
    envs, course_admin = nav_links(student, hub)
    assert envs == "/services/goldenhub/" and course_admin is None
    assert student.get(f"{hub.url}{envs}", timeout=60).status_code == 200
    for s in (session(hub, "i18n-prof"), session(hub, "admin", hub.admin_password())):
        envs, course_admin = nav_links(s, hub)
        assert envs == "/services/goldenhub/" and course_admin == "/services/goldenhub/admin"
        r = s.get(f"{hub.url}{course_admin}", timeout=60)
        assert r.status_code == 200 and r.url.rstrip("/").endswith("/services/goldenhub/admin"), r.url


def test_a_missing_page_is_in_chinese_for_a_chinese_browser(hub):
    s = session(hub, "i18n-404", accept="zh-CN,zh;q=0.9")
    r = s.get(f"{hub.url}/hub/does-not-exist", timeout=30)
    assert r.status_code == 404
    page = text(r)
    assert '<html lang="zh-CN">' in page and "此地址没有页面" in page
    assert re.search(r'<h1 id="goldenhub-error-title"[^>]*>找不到页面</h1>', page)
    assert "404 : Not Found" not in page and "Jupyter has lots of moons" not in page
    # An error raised by a handler (write_error, rendered by the hub's sync environment):
    # another user's start page, which the hub answers as not found.
    hub.ensure_user("i18n-other")
    r = s.get(f"{hub.url}/hub/spawn/i18n-other", timeout=30)
    assert r.status_code == 404 and '<html lang="zh-CN">' in text(r)
    assert re.search(r'<h1 id="goldenhub-error-title"[^>]*>找不到页面</h1>', text(r))
    r = requests.get(f"{hub.url}/hub/does-not-exist", headers={"Accept-Language": "en-US"}, timeout=30)
    assert r.status_code == 404 and "Page not found" in text(r) and "找不到" not in text(r)


def test_concurrent_requests_in_two_languages_do_not_mix(hub):
    wanted = ["zh-CN" if i % 2 else "en-US" for i in range(60)]

    def fetch(accept):
        return accept, requests.get(f"{hub.url}/hub/login", headers={"Accept-Language": accept}, timeout=60)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(fetch, wanted))
    for accept, r in answers:
        chinese = accept == "zh-CN"
        assert r.status_code == 200
        page = text(r)
        assert ("用户名" in page) is chinese and ("Username:" in page) is not chinese
        assert f'<html lang="{"zh-CN" if chinese else "en"}">' in page


def test_progress_page_and_its_events_follow_the_watchers_language(hub):
    name = "i18n-progress"
    s = session(hub, name, accept="zh-CN")
    poster = threading.Thread(target=lambda: hub.start(name, {"template": "lab-cpu"}))
    poster.start()
    try:
        pending = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and pending is None:
            r = s.get(f"{hub.url}/hub/spawn-pending/{name}", allow_redirects=False, timeout=30)
            if r.status_code == 200 and "progress-bar" in text(r):
                pending = text(r)
            time.sleep(0.05)
        assert pending, "the start never showed its progress page"
        assert "您的服务器正在启动" in pending and "事件日志" in pending and "停止服务器" in pending
        # The page's own event stream, as its script opens it (with the page's session).
        progress_url = html.unescape(re.search(r'new EventSource\("([^"]+)"\)', pending).group(1))
        events = []
        with s.get(f"{hub.url}{progress_url}", stream=True, timeout=(10, WAIT_SPAWN)) as r:
            assert r.status_code == 200, text(r)[:300]
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if events[-1].get("ready") or events[-1].get("failed"):
                        break
        messages = "\n".join(e.get("message", "") for e in events)
        assert "正在启动您的环境" in messages and "容器已启动" in messages, messages
        assert "Starting your environment" not in messages
    finally:
        poster.join(WAIT_SPAWN)
        hub.stop(name)
