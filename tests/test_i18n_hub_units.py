"""The hub's per-request language (hub_ext.i18n.hub), pure: negotiation from a request, the
remembered cookie, the <html lang> fix, the transform in a real tornado application (its
handlers, write_error and concurrent requests), the Course admin rule, the config applier.
No hub, no Docker."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.testing import bind_unused_port
from tornado.web import Application, GZipContentEncoding, HTTPError, RequestHandler
from traitlets.config import Config

from hub_ext import contract, i18n
from hub_ext.hubconfig import Settings, update_i18n
from hub_ext.i18n.hub import (LanguageTransform, cookie_header, is_course_admin, make_transforms,
                              request_language)

PAGE = b'<!DOCTYPE HTML>\n<html lang="en">\n<head></head><body>x</body></html>'


def request(uri="/hub/home", cookie=None, accept=None, protocol="http"):
    headers = HTTPHeaders({"Host": "hub.example"})
    if cookie:
        headers["Cookie"] = f"{i18n.COOKIE}={cookie}"
    if accept:
        headers["Accept-Language"] = accept
    req = HTTPServerRequest(start_line=RequestStartLine("GET", uri, "HTTP/1.1"), headers=headers)
    req.protocol = protocol
    return req


@pytest.mark.parametrize("uri,cookie,accept,served,remembered", [
    ("/hub/home?lang=zh_CN", None, "en-US", "zh_CN", "zh_CN"),  # ?lang= wins and is remembered
    ("/hub/home?lang=zh-CN", "en", None, "zh_CN", "zh_CN"),
    ("/hub/home?lang=en", "zh_CN", "zh-CN", "en", "en"),
    ("/hub/home", "zh_CN", "en-US,en;q=0.9", "zh_CN", None),  # the cookie beats the browser
    ("/hub/home", None, "zh-CN,zh;q=0.9,en;q=0.8", "zh_CN", None),
    ("/hub/home", None, "fr-FR,en;q=0.5", "en", None),
    ("/hub/home", None, None, "en", None),
    # Hostile or unknown ?lang= values are ignored: nothing is remembered.
    ("/hub/home?lang=fr", None, "zh-CN", "zh_CN", None),
    ("/hub/home?lang=" + "zh" * 40, None, None, "en", None),
    ("/hub/home?lang=zh_CN%3B%20Path%3D%2Fevil", None, None, "en", None),
    ("/hub/home?lang=%ff%fe", None, None, "en", None),
])
def test_request_language(uri, cookie, accept, served, remembered):
    assert request_language(request(uri, cookie, accept)) == (served, remembered)


def test_a_bad_cookie_falls_back_to_the_browser():
    assert request_language(request(cookie="<script>", accept="zh-CN")) == ("zh_CN", None)


def test_the_platform_default_applies_when_nothing_else_says():
    try:
        i18n.set_default("zh_CN")
        assert request_language(request()) == ("zh_CN", None)
        assert request_language(request(accept="en-US")) == ("en", None)
    finally:
        i18n.set_default("en")


def test_cookie_header_remembers_for_a_year_on_every_path():
    assert cookie_header("zh_CN", secure=False) == "goldenhub_lang=zh_CN; Path=/; Max-Age=31536000; SameSite=Lax"
    assert cookie_header("en", secure=True).endswith("; SameSite=Lax; Secure")


def transform(uri="/hub/home", **kw):
    return LanguageTransform(request(uri, **kw))


def test_chosen_language_sets_the_cookie_secure_over_https():
    headers = HTTPHeaders({"Content-Type": "text/html"})
    _, headers, _ = transform("/hub/home?lang=zh_CN", protocol="https").transform_first_chunk(200, headers, b"", True)
    assert headers.get_list("Set-Cookie") == [cookie_header("zh_CN", secure=True)]
    headers = HTTPHeaders({"Content-Type": "text/html"})
    _, headers, _ = transform("/hub/home", accept="zh-CN").transform_first_chunk(200, headers, b"", True)
    assert "Set-Cookie" not in headers  # only an explicit choice is remembered
    assert headers["Vary"] == "Accept-Language,Cookie"  # a page depends on the language
    headers = HTTPHeaders({"Content-Type": "application/json"})
    _, headers, _ = transform("/hub/api/user", accept="zh-CN").transform_first_chunk(200, headers, b"{}", True)
    assert "Vary" not in headers


def test_html_lang_is_the_served_language_and_content_length_follows():
    headers = HTTPHeaders({"Content-Type": "text/html; charset=UTF-8", "Content-Length": str(len(PAGE))})
    _, headers, chunk = transform(accept="zh-CN").transform_first_chunk(200, headers, PAGE, True)
    assert chunk.startswith(b'<!DOCTYPE HTML>\n<html lang="zh-CN">')
    assert headers["Content-Length"] == str(len(chunk))
    headers = HTTPHeaders({"Content-Type": "text/html"})
    _, _, chunk = transform(accept="en").transform_first_chunk(200, headers, PAGE, True)
    assert chunk == PAGE


@pytest.mark.parametrize("content_type,body,finishing", [
    ("application/json", PAGE, True),  # not a page
    ("text/html", b'<p><html lang="en"></p>', True),  # not at the document's start
    ("text/html", PAGE, False),  # a streamed response: left alone
])
def test_html_lang_touches_only_a_whole_stock_page(content_type, body, finishing):
    headers = HTTPHeaders({"Content-Type": content_type})
    _, _, chunk = transform(accept="zh-CN").transform_first_chunk(200, headers, body, finishing)
    assert chunk == body


def test_transform_sets_the_current_language():
    transform(accept="zh-CN")
    assert i18n.current() == "zh_CN"
    transform(accept="en-US")
    assert i18n.current() == "en"


def test_gzip_is_kept_when_the_settings_ask_for_it():
    assert make_transforms({}) == [LanguageTransform]
    assert make_transforms({"compress_response": True}) == [LanguageTransform, GZipContentEncoding]
    assert make_transforms({"gzip": True})[-1] is GZipContentEncoding


def test_course_admin_is_an_admin_or_any_course_staff():
    assert is_course_admin(True, [])
    assert is_course_admin(False, ["students", contract.staff_group("intro-python")])
    assert not is_course_admin(False, [contract.course_group("intro-python"), "staff", "course:"])


def test_update_i18n_merges_with_existing_settings():
    c = Config()
    c.JupyterHub.jinja_environment_options = {"extensions": ["jinja2.ext.do"], "trim_blocks": True}
    c.JupyterHub.tornado_settings = {"compress_response": True, "cookie_options": {"x": 1}}
    update_i18n(c, Settings(language="en"))
    update_i18n(c, Settings(language="en"))  # idempotent
    assert c.JupyterHub.jinja_environment_options == {
        "extensions": ["jinja2.ext.do", "hub_ext.i18n.jinja.GoldenhubI18n", "hub_ext.i18n.hub.HubFilters"],
        "trim_blocks": True}
    assert c.JupyterHub.tornado_settings["transforms"] == [LanguageTransform, GZipContentEncoding]
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"x": 1}


# --- the transform in a real tornado application ---------------------------------------------


class Echo(RequestHandler):
    """Answers the language it sees, after yielding to other requests."""

    async def get(self):
        await asyncio.sleep(0.01)
        before = i18n.current()
        await asyncio.sleep(0.01)
        if self.get_argument("fail", ""):
            raise HTTPError(404)
        self.finish(f"{before} {i18n.current()} {i18n._('Home')}")

    def write_error(self, status_code, **kwargs):
        self.finish(f"error {i18n.current()}")


@contextlib.asynccontextmanager
async def echo_app():
    """A tornado application with the hub's transform, on a free loopback port (started in
    the running test's event loop)."""
    sock, port = bind_unused_port()
    server = HTTPServer(Application([("/echo", Echo)], transforms=[LanguageTransform]))
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True, max_clients=40)
    try:
        yield client, f"http://127.0.0.1:{port}/echo"
    finally:
        client.close()
        server.stop()


async def test_handlers_and_write_error_see_their_requests_language():
    async with echo_app() as (client, app_url):
        r = await client.fetch(app_url, headers={"Accept-Language": "zh-CN"})
        assert r.body.decode() == "zh_CN zh_CN 首页"
        with pytest.raises(HTTPClientError) as e:
            await client.fetch(app_url + "?fail=1", headers={"Accept-Language": "zh-CN"})
        assert e.value.code == 404 and e.value.response.body == b"error zh_CN"


async def test_concurrent_requests_in_two_languages_do_not_mix():
    async with echo_app() as (client, app_url):
        wanted = ["zh_CN" if i % 2 else "en" for i in range(60)]
        answers = await asyncio.gather(*(
            client.fetch(f"{app_url}?lang={lang}") for lang in wanted))
        for lang, r in zip(wanted, answers):
            word = "首页" if lang == "zh_CN" else "Home"
            assert r.body.decode() == f"{lang} {lang} {word}"
            assert r.headers.get_list("Set-Cookie") == [cookie_header(lang, secure=False)]


# --- every hub page we override, rendered as the hub renders it ------------------------------

STOCK_ENGLISH = ("Sign in", "Username:", "Start My Server", "Stop My Server", "Server Options", "Toggle dark mode",
                 "Logout", "Your server is starting up", "Event log", "Spawn failed", "Server not running",
                 "Jupyter has lots of moons", "Request new API token", "Your server is stopping", "Token expires in",
                 "Change your password", "My environments", "Course admin", "Home</a>")


def hub_environment():
    """The hub's Jinja environment as JupyterHub builds it (init_tornado_settings), with the
    extensions update_i18n adds."""
    import importlib
    import sys
    from pathlib import Path

    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader

    stock = Path(sys.prefix) / "share" / "jupyterhub" / "templates"
    repo = Path(__file__).resolve().parent.parent
    loader = ChoiceLoader([
        PrefixLoader({"templates": FileSystemLoader([str(stock)])}, "/"),
        FileSystemLoader([str(repo / "branding" / "templates"), str(repo / "hub_ext" / "accounts" / "templates"),
                          str(stock)]),
    ])
    c = Config()
    update_i18n(c, Settings(language="en"))
    extensions = [getattr(importlib.import_module(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[1])
                  for name in c.JupyterHub.jinja_environment_options["extensions"]]
    return Environment(loader=loader, autoescape=True, extensions=extensions)


class FakeUser:
    name = "lin"
    json_escaped_name = "lin"
    admin = False
    groups = ()
    spawner = type("Spawner", (), {"options_form": None})()


def namespace(**extra):
    from datetime import datetime

    class Spawner:
        active = False
        stop_reason = ""

    token = {"api_id": "a1", "note": "ci", "scopes": ["read:users"], "last_activity": None,
             "created": datetime(2026, 11, 26, 12, 53), "expires_at": None}
    ns = dict(base_url="/hub/", prefix="/", user=FakeUser(), login_url="/hub/login", logout_url="/hub/logout",
              static_url=lambda path, include_version=True: f"/hub/static/{path}", version_hash="x",
              services=[], parsed_scopes=set(), xsrf="x", xsrf_token="x", default_server=Spawner(), url="/hub/spawn",
              goldenhub_auth="demo", authenticator_login_url="/hub/login", authenticator=None,
              spawner_options_form="", progress_url="/hub/api/p", spawn_url="/hub/spawn", status_code=404,
              status_message="Not Found", api_tokens=[type("T", (), token)()], oauth_clients=[],
              token_expires_in_options_html='<option value="31536000">1 Year</option>', min_length=8)
    ns.update(extra)
    return ns


@pytest.mark.parametrize("template,extra,chinese", [
    ("login.html", {"user": None}, "登录"),
    ("home.html", {}, "启动我的服务器"),
    ("spawn.html", {}, "启动环境"),
    ("spawn_pending.html", {}, "您的服务器正在启动"),
    ("error.html", {"status_code": 500, "message": "Invalid username or password"}, "服务器出错了"),
    ("404.html", {}, "找不到页面"),
    ("not_running.html", {"failed": True}, "您的服务器未能启动"),
    ("not_running.html", {}, "您的服务器没有在运行"),
    ("stop_pending.html", {}, "您的服务器正在停止"),
    ("token.html", {}, "申请新的 API 令牌"),
    ("change-password.html", {}, "修改您的密码"),
])
def test_every_overridden_hub_page_is_in_chinese(template, extra, chinese):
    env = hub_environment()
    i18n.use("zh_CN")
    page = env.get_template(template).render(namespace(**extra))
    assert chinese in page
    left = [english for english in STOCK_ENGLISH if english in page]
    assert not left, f"{template} still shows {left}"
    i18n.use("en")
    page = env.get_template(template).render(namespace(**extra))
    assert chinese not in page


def test_token_times_are_one_style_and_never_is_a_word():
    i18n.use("zh_CN")
    page = hub_environment().get_template("token.html").render(namespace())
    assert '<time datetime="2026-11-26T12:53:00Z">2026-11-26 12:53 UTC</time>' in page
    assert "从不" in page and "T12:53:00Z</td>" not in page
    i18n.use("en")


def test_nav_bar_shows_course_admin_to_staff_and_marks_the_current_language():
    env = hub_environment()
    i18n.use("zh_CN")
    page = env.get_template("home.html").render(namespace(goldenhub_course_admin=True))
    assert 'href="/services/goldenhub/admin">课程管理</a>' in page
    assert 'href="/services/goldenhub/">我的环境</a>' in page
    assert 'class="dropdown-item active"' in page and 'aria-current="true"' in page
    assert 'href="?lang=en">English</a>' in page
    page = env.get_template("home.html").render(namespace())
    assert "课程管理" not in page
    i18n.use("en")
