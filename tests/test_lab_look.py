"""JupyterLab follows the platform: the uploaded logo takes exactly the box of JupyterLab's own
logo (aspect kept), its menus are in the language of the start (Chinese or English) unless
the student chose another in JupyterLab; the admin previews the logo and favicon in use and
restores the defaults, after a dialog, audited."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import requests

from hub_ext.branding import container as lab_branding
from hub_ext.branding.store import DEFAULTS_DIR, describe, reset_branding, store_branding
from tests.helpers import ARTIFACTS, ServiceClient, make_png, png_pixels, user_token
from tests.helpers import browser_login as login

RED, BLUE = (230, 20, 20), (20, 40, 230)
JUPYTER_ORANGE = (0xF3, 0x77, 0x26)  # the stock JupyterLab logo's colour


def archive_files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


# --- pure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("language, locale", [("zh_CN", "zh_CN"), ("zh-CN", "zh_CN"), ("en", "en"),
                                              ("fr", "en"), ("", "en")])
def test_the_container_gets_jupyterlabs_language_as_a_settings_default(tmp_path, language, locale):
    files = archive_files(lab_branding.make_branding_archive(tmp_path, language=language))
    overrides = json.loads(files["goldenhub-branding/lab/overrides.json"])
    assert overrides == {"@jupyterlab/translation-extension:plugin": {"locale": locale}}


def test_the_logo_is_painted_in_the_stock_logos_own_box(tmp_path):
    logo = make_png(30, 6)
    store_branding(tmp_path, "logo", logo)
    css = archive_files(lab_branding.make_branding_archive(tmp_path))["goldenhub-branding/custom/custom.css"].decode()
    # The upload is the background of the stock <svg> (its box is JupyterLab's), scaled to fit,
    # and only the stock drawing inside it is hidden; #jp-MainLogo itself is left alone.
    svg_rule = css.split("#jp-MainLogo > svg {", 1)[1].split("}", 1)[0]
    assert "background-size: contain" in svg_rule and "data:image/png;base64," in svg_rule
    assert "#jp-MainLogo {" not in css and "#jp-MainLogo > svg > * {\n  visibility: hidden;" in css


# --- real hub, real browser -------------------------------------------------------------------


def painted_box(shot: bytes, colour: tuple[int, int, int], tolerance: int = 40):
    """(left, top, right, bottom) in CSS pixels of the pixels of a screenshot (taken at scale 1
    from the page's top-left corner) that have `colour`, or None."""
    hits = [(x, y) for y, row in enumerate(png_pixels(shot)) for x, px in enumerate(row)
            if all(abs(px[i] - colour[i]) <= tolerance for i in range(3))]
    if not hits:
        return None
    xs, ys = [x for x, _ in hits], [y for _, y in hits]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def start_lab(browser, hub, user: str, locale: str):
    """A student's browser in `locale` logs in, starts the CPU environment, waits for JupyterLab."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale,
                               device_scale_factor=1).new_page()
    page.set_default_timeout(120_000)  # a shared 2-core machine can be slow
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", hub.student_password())
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/hub/spawn**")
    page.check("#template-intro-python-cpu")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=240_000)
    page.locator(".lm-MenuBar-itemLabel").first.wait_for()
    page.locator("#jp-MainLogo > svg").wait_for()
    return page


def menu_labels(page) -> list[str]:
    return page.locator(".lm-MenuBar-itemLabel").all_inner_texts()


@pytest.mark.browser
@pytest.mark.parametrize("shape, size, colour, locale, file_menu", [
    ("wide", (300, 60), RED, "zh-CN", "文件"),
    ("tall", (60, 300), BLUE, "en-US", "File"),
])
def test_jupyterlab_shows_the_logo_in_the_stock_logo_box_and_menus_in_the_students_language(
        hub, browser, shape, size, colour, locale, file_menu):
    user = f"lablook-{shape}"
    store_branding(hub.state_dir, "logo", make_png(*size, colour))  # uploaded before the start
    page = None
    try:
        page = start_lab(browser, hub, user, locale)
        assert menu_labels(page)[0] == file_menu, menu_labels(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"lab-look-{shape}-{locale}.png"))
        logo_shot = page.screenshot(clip={"x": 0, "y": 0, "width": 48, "height": 32})

        # The stock logo, measured in the same page: without goldenhub's stylesheet.
        page.evaluate("() => document.querySelectorAll('link[href$=\"custom/custom.css\"]').forEach(l => l.remove())")
        page.wait_for_function("() => getComputedStyle(document.querySelector('#jp-MainLogo > svg')).backgroundImage === 'none'")
        stock = page.locator("#jp-MainLogo > svg").bounding_box()
        stock_shot = page.screenshot(clip={"x": 0, "y": 0, "width": 48, "height": 32})
        assert painted_box(stock_shot, JUPYTER_ORANGE) is not None  # that box shows JupyterLab's own logo

        painted = painted_box(logo_shot, colour)
        assert painted is not None, "the uploaded logo is not painted in JupyterLab's header"
        assert painted_box(logo_shot, JUPYTER_ORANGE) is None  # and the stock logo is not shown beside it
        left, top, right, bottom = painted
        s_left, s_top, s_right, s_bottom = stock["x"], stock["y"], stock["x"] + stock["width"], stock["y"] + stock["height"]
        # Inside the stock logo's box (1 px for anti-aliased edges) ...
        assert s_left - 1 <= left and right <= s_right + 1 and s_top - 1 <= top and bottom <= s_bottom + 1, (painted, stock)
        # ... filling it along the image's long side, the other side in the image's proportion.
        width, height = right - left, bottom - top
        if shape == "wide":
            assert abs(width - stock["width"]) <= 1 and abs(height - stock["width"] * size[1] / size[0]) <= 1.5
        else:
            assert abs(height - stock["height"]) <= 1 and abs(width - stock["height"] * size[0] / size[1]) <= 1.5

        if locale == "zh-CN":
            # The student's own choice (JupyterLab's Settings > Language, a user setting) wins.
            status = page.evaluate("""async (url) => {
                const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
                const r = await fetch(url, {method: "PUT", headers: {"X-XSRFToken": decodeURIComponent(xsrf),
                    "Content-Type": "application/json"}, body: JSON.stringify({raw: '{"locale": "en"}'})});
                return r.status; }""", f"/user/{user}/lab/api/settings/@jupyterlab/translation-extension:plugin")
            assert status == 204
            page.reload()
            page.locator(".lm-MenuBar-itemLabel").first.wait_for()
            assert menu_labels(page)[0] == "File"
    finally:
        if page:
            page.context.close()
        hub.stop(user)
        reset_branding(hub.state_dir, "logo")


@pytest.mark.browser
def test_admin_previews_and_restores_the_default_logo_and_favicon(hub, browser):
    admin_api = ServiceClient(hub, user_token(hub, "admin"))
    logo, favicon = make_png(40, 20, RED), make_png(16, 16, BLUE)
    default_logo = (DEFAULTS_DIR / "logo.png").read_bytes()
    default_favicon = (DEFAULTS_DIR / "favicon.ico").read_bytes()
    for kind, data in (("logo", logo), ("favicon", favicon)):
        admin_api.call("PUT", f"/branding/{kind}", data=data).raise_for_status()
    page = login(browser, hub, "admin", hub.admin_password())
    try:
        def preview(kind: str) -> bytes:
            img = page.locator(f"#{kind}-preview")
            img.wait_for()
            page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=img.element_handle())
            return page.request.get(img.evaluate("e => e.src")).body()

        page.goto(f"{hub.url}/services/goldenhub/admin#branding")
        assert preview("logo") == logo and preview("favicon") == favicon
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#branding").screenshot(path=str(ARTIFACTS / "branding-preview.png"))

        # A forged form (no XSRF token) is refused and changes nothing.
        forged = page.request.post(f"{hub.url}/services/goldenhub/admin/branding/logo/restore", max_redirects=0)
        assert forged.status == 403 and describe(hub.state_dir, "logo").custom

        # Cancel in the dialog: nothing changes.
        page.click("#restore-logo button")
        dialog = page.locator("#confirm-dialog")
        assert "the goldenhub logo" in dialog.inner_text()
        page.click("#confirm-no")
        assert describe(hub.state_dir, "logo").custom and preview("logo") == logo

        # Confirm: the default is served again and previewed; the favicon is untouched.
        page.click("#restore-logo button")
        assert "The uploaded logo is removed" in page.inner_text("#confirm-text")
        page.click("#confirm-yes")
        page.wait_for_url("**/admin?message=*")
        assert "The goldenhub logo is back" in page.inner_text("body")
        assert requests.get(f"{hub.url}/hub/goldenhub/branding/logo", timeout=30).content == default_logo
        assert preview("logo") == default_logo and preview("favicon") == favicon
        assert page.locator("#restore-logo").count() == 0  # nothing left to restore

        # The API does the same for the favicon.
        r = admin_api.call("DELETE", "/branding/favicon")
        assert r.status_code == 200 and r.json()["changed"] is True
        assert requests.get(f"{hub.url}/hub/goldenhub/branding/favicon", timeout=30).content == default_favicon
        page.goto(f"{hub.url}/services/goldenhub/admin#branding")
        assert preview("favicon") == default_favicon

        entries = admin_api.call("GET", "/audit").json()["entries"]
        actions = [(e["actor"], e["action"]) for e in entries]
        assert ("admin", "restore-logo") in actions and ("admin", "restore-favicon") in actions

        # The section in Chinese (the platform's language switch).
        page.goto(f"{hub.url}/services/goldenhub/admin?lang=zh_CN#branding")
        assert page.inner_text("#branding h1") == "品牌"
        assert page.inner_text("#upload-logo button") == "上传徽标"
        assert page.inner_text("#logo-state") == "goldenhub 徽标（默认）"
    finally:
        page.context.close()
        reset_branding(hub.state_dir, "logo")
        reset_branding(hub.state_dir, "favicon")
