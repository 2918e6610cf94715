"""The student sees the warning before a stop (idle cull, GPU-hour quota) where they are: on the
goldenhub environments page, on the hub's home page and inside JupyterLab; when the reason
goes (the notice is cleared), the warning goes within one poll. Notices are written as the
culler and the quota loop write them (hub_ext.usage.notices.put) into the hub's real service
database; the pages are read by Debian's Chromium."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime, timedelta, timezone

import pytest
import requests

from hub_ext import i18n
from hub_ext.hubconfig import Settings
from hub_ext.i18n.format import iso
from hub_ext.service.db import open_database
from hub_ext.usage import lab_warnings, notices, warnings
from tests.helpers import ARTIFACTS, ServiceClient, browser_login, user_token

GONE_MS = 75_000  # a bound on "within one poll" (the scripts poll every 30 s), never a threshold
EN_CULL = "has been idle for 50 minutes and will be stopped at"
ZH_CULL = "已空闲 50 分钟"


def soon() -> datetime:
    return (datetime.now(timezone.utc) + timedelta(minutes=10)).replace(microsecond=0)


def db_of(hub):
    return open_database(Settings.default_db_url(hub.state_dir))


def put_cull(hub, user: str) -> datetime:
    due = soon()
    notices.put(db_of(hub), user, "", "cull", due, template="Lab (CPU)", idle_minutes=50)
    return due


# --- pure: the words and the extension ---------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "zh_CN"])
@pytest.mark.parametrize("kind", ["cull", "quota"])
def test_each_warning_fits_jupyterlab_and_names_its_time(lang, kind):
    """JupyterLab cuts a notification at 140 characters: the short words fit whole; the time a
    page turns into a <time> element is the one written in the sentence."""
    i18n.use(lang)
    try:
        w = notices.Warning("ann", "", kind, datetime(2026, 11, 26, 23, 5, tzinfo=timezone.utc),
                            {"template": "Deep learning (GPU)", "idle_minutes": 50, "used": 19.5, "quota": 20,
                             "course": "deep-learning", "period": "term"})
        got = warnings.item(w)
    finally:
        i18n.use(i18n.SOURCE)
    assert got["due_text"] == "2026-11-26 23:05 UTC" and got["due_at"] == "2026-11-26T23:05:00Z"
    assert got["due_text"] in got["message"] and got["due_text"] in got["short"]
    assert len(got["short"]) <= warnings.SHORT_MAX and not got["short"].endswith("…")
    if lang == "zh_CN":
        assert "停止" in got["short"] and "停止" in got["message"]


def test_the_jupyterlab_extension_is_what_jupyterlab_loads():
    """package.json names a remoteEntry file that the archive holds, under the labextensions
    directory on JUPYTER_PATH; a JUPYTER_PATH the image sets is kept after ours."""
    with tarfile.open(fileobj=io.BytesIO(lab_warnings.make_lab_archive()), mode="r") as tar:
        names = set(tar.getnames())
        base = "goldenhub-lab/labextensions/@goldenhub/notices"
        package = json.load(tar.extractfile(f"{base}/package.json"))
        assert all(m.mode & 0o022 == 0 for m in tar.getmembers())  # nobody but root writes them
    assert package["name"] == lab_warnings.NAME and package["jupyterlab"]["_build"]["extension"] == "./extension"
    assert f"{base}/{package['jupyterlab']['_build']['load']}" in names
    assert lab_warnings.make_lab_env({"JUPYTER_PATH": "/opt/x"}) == {"JUPYTER_PATH": "/tmp/goldenhub-lab:/opt/x"}


# --- the hub's endpoint ------------------------------------------------------------------------

@pytest.mark.integration
def test_the_hub_and_the_service_answer_each_user_their_own_warnings_only(hub):
    due = put_cull(hub, "warn-own")
    try:
        mine = hub.login("warn-own").get(f"{hub.url}/hub/goldenhub/notices", timeout=30)
        theirs = hub.login("warn-other").get(f"{hub.url}/hub/goldenhub/notices", timeout=30)
        nobody = requests.get(f"{hub.url}/hub/goldenhub/notices", timeout=30, allow_redirects=False)
        api_mine = ServiceClient(hub, user_token(hub, "warn-own")).call(
            "GET", "/notices/me", headers={"Accept-Language": "zh-CN"})
        api_theirs = ServiceClient(hub, user_token(hub, "warn-other")).call("GET", "/notices/me")
    finally:
        notices.clear(db_of(hub), "warn-own")
    assert mine.status_code == 200 and [n["kind"] for n in mine.json()] == ["cull"]
    assert EN_CULL in mine.json()[0]["message"] and mine.json()[0]["due_at"] == iso(due)
    assert theirs.status_code == 200 and theirs.json() == []
    assert nobody.status_code == 403 and "log in" in nobody.json()["message"]
    assert api_mine.status_code == 200 and ZH_CULL in api_mine.json()[0]["message"]  # the request's language
    assert api_theirs.status_code == 200 and api_theirs.json() == []


# --- what the student sees ---------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.integration
def test_warning_on_the_environments_page_and_the_hub_home_then_gone(hub, browser):
    user = "warn-pages"
    due = put_cull(hub, user)
    page = browser_login(browser, hub, user, hub.student_password())
    try:
        home = page.context.new_page()
        home.goto(f"{hub.url}/hub/home")
        page.goto(f"{hub.url}/services/goldenhub/")
        for p, where in ((page, "environments"), (home, "home")):
            warning = p.locator("#goldenhub-notices .goldenhub-notice")
            warning.wait_for()
            assert EN_CULL in warning.inner_text(), where
            assert "Your files stay" in warning.inner_text(), where
            # the time is a <time> element (shown in the viewer's zone by localtime.js)
            assert warning.locator("time").get_attribute("datetime") == iso(due), where
        ARTIFACTS.mkdir(exist_ok=True)
        home.screenshot(path=str(ARTIFACTS / "warning-hub-home.png"))

        notices.clear(db_of(hub), user)
        for p in (page, home):
            p.locator("#goldenhub-notices .goldenhub-notice").wait_for(state="detached", timeout=GONE_MS)
        assert page.locator("#goldenhub-notices").inner_text().strip() == ""
    finally:
        notices.clear(db_of(hub), user)
        page.context.close()


@pytest.mark.browser
@pytest.mark.integration
def test_warning_in_chinese(hub, browser):
    user = "warn-zh"
    put_cull(hub, user)
    page = browser_login(browser, hub, user, hub.student_password(), locale="zh-CN")
    try:
        for path in ("/services/goldenhub/", "/hub/home"):
            page.goto(hub.url + path)
            warning = page.locator("#goldenhub-notices .goldenhub-notice")
            warning.wait_for()
            assert ZH_CULL in warning.inner_text() and "你的文件会保留" in warning.inner_text(), path
            assert "idle" not in warning.inner_text(), path
    finally:
        notices.clear(db_of(hub), user)
        page.context.close()


@pytest.mark.browser
@pytest.mark.integration
def test_warning_in_jupyterlab_then_dismissed(hub, browser):
    """In the student's JupyterLab (the lab template; no image rebuilt): a notification that
    stays while the warning stands and goes when it is cleared."""
    user = "warn-lab"
    hub.spawn(user, {"template": "lab-cpu"})
    put_cull(hub, user)
    page = browser_login(browser, hub, user, hub.student_password())
    try:
        page.goto(f"{hub.url}/user/{user}/lab")
        toast = page.locator(".Toastify__toast", has_text="Idle: your server stops at")
        toast.wait_for(timeout=120_000)
        assert "Your files stay; use it to keep it." in toast.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "warning-jupyterlab.png"))

        notices.clear(db_of(hub), user)
        toast.wait_for(state="detached", timeout=GONE_MS)
    finally:
        notices.clear(db_of(hub), user)
        page.context.close()
        hub.stop(user)
