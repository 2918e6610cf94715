"""Branding: uploads are judged by content, stored atomically, and shown on the hub's pages
and inside students' JupyterLab (real hub, real Docker, Debian's Chromium)."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest
import requests

from hub_ext.branding.store import (
    MAX_BYTES, BrandingError, Upload, current_branding, describe, reset_branding, store_branding,
    validate_upload,
)
from hub_ext.branding import container as lab_branding
from tests.helpers import ARTIFACTS, make_jpeg, make_png

# --- tiny real images (made in tests.helpers) ---------------------------------------------------


def make_ico(png: bytes) -> bytes:
    return lab_branding.as_ico(png)


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'

# --- validate_upload ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind, data, expected", [
    ("logo", make_png(), Upload("image/png", "png")),
    ("logo", make_jpeg(), Upload("image/jpeg", "jpg")),
    ("favicon", make_ico(make_png(16, 16)), Upload("image/x-icon", "ico")),
    ("favicon", make_png(32, 32), Upload("image/png", "png")),
])
def test_png_jpeg_and_ico_are_accepted(kind, data, expected):
    assert validate_upload(kind, data) == expected


def test_the_shipped_defaults_are_valid():
    for kind in ("logo", "favicon"):
        path, mime = current_branding("/nonexistent", kind)
        assert validate_upload(kind, path.read_bytes()).mime == mime


def test_type_comes_from_content_not_name_or_declared_type():
    assert validate_upload("logo", make_png(), "logo.jpg", "image/jpeg") == Upload("image/png", "png")
    with pytest.raises(BrandingError, match="judged by its content"):
        validate_upload("logo", b"just some text, honest\n", "logo.png", "image/png")


@pytest.mark.parametrize("svg", [SVG, b"\xef\xbb\xbf  <svg onload='alert(1)'/>", b"<!-- x -->\n<svg></svg>"])
def test_svg_is_refused_with_the_reason_and_the_alternatives(svg):
    with pytest.raises(BrandingError) as e:
        validate_upload("logo", svg, "logo.png", "image/png")
    assert "SVG" in str(e.value) and "scripts" in str(e.value) and "PNG or JPEG" in str(e.value)


def test_oversized_and_empty_files_are_refused():
    big = make_png() + b"\0" * MAX_BYTES["favicon"]
    with pytest.raises(BrandingError, match="larger than the limit.*ICO or PNG \\(at most 256 KiB\\)"):
        validate_upload("favicon", big)
    with pytest.raises(BrandingError, match="empty"):
        validate_upload("logo", b"")


@pytest.mark.parametrize("cut", [10, 30, 45, -13, -1])
def test_truncated_png_is_refused(cut):
    with pytest.raises(BrandingError, match="truncated|damaged"):
        validate_upload("logo", make_png()[:cut])


def test_damaged_and_out_of_range_images_are_refused():
    png = bytearray(make_png())
    png[40] ^= 0xFF  # inside IDAT: checksum no longer matches
    with pytest.raises(BrandingError, match="checksum"):
        validate_upload("logo", bytes(png))
    with pytest.raises(BrandingError, match="5000x2 pixels"):
        validate_upload("logo", make_png(5000, 2))
    with pytest.raises(BrandingError, match="end-of-image"):
        validate_upload("logo", make_jpeg()[:-2])
    with pytest.raises(BrandingError, match="0x8 pixels"):
        validate_upload("logo", make_jpeg(width=0))
    with pytest.raises(BrandingError, match="1 to 64"):
        validate_upload("favicon", b"\0\0\1\0\0\0")
    with pytest.raises(BrandingError, match="outside the file"):
        validate_upload("favicon", make_ico(make_png())[:-5])


def test_kinds_accept_only_their_formats():
    with pytest.raises(BrandingError, match="a JPEG image.*ICO or PNG"):
        validate_upload("favicon", make_jpeg())
    with pytest.raises(BrandingError, match="an ICO image.*PNG or JPEG"):
        validate_upload("logo", make_ico(make_png()))
    with pytest.raises(BrandingError, match="choose one of: logo, favicon"):
        validate_upload("banner", make_png())

# --- store / current / reset ------------------------------------------------------------------


def test_store_replaces_the_current_file_and_records_its_metadata(tmp_path):
    store_branding(tmp_path, "logo", make_jpeg())
    store_branding(tmp_path, "logo", make_png())
    path, mime = current_branding(tmp_path, "logo")
    assert (path.read_bytes(), mime) == (make_png(), "image/png")
    assert sorted(p.name for p in (tmp_path / "branding").iterdir()) == ["logo.json", "logo.png"]
    meta = json.loads((tmp_path / "branding" / "logo.json").read_text())
    assert meta["mime"] == "image/png" and meta["ext"] == "png" and meta["updated"]
    assert meta["sha256"] == describe(tmp_path, "logo").sha256


def test_a_bad_upload_leaves_the_previous_file_byte_identical(tmp_path):
    store_branding(tmp_path, "favicon", make_ico(make_png(16, 16)))
    before = {p.name: p.read_bytes() for p in (tmp_path / "branding").iterdir()}
    for bad in (SVG, b"", make_png()[:30], b"x" * (MAX_BYTES["favicon"] + 1)):
        with pytest.raises(BrandingError):
            store_branding(tmp_path, "favicon", bad)
    assert {p.name: p.read_bytes() for p in (tmp_path / "branding").iterdir()} == before


def test_reset_goes_back_to_the_shipped_default(tmp_path):
    default_path, _ = current_branding(tmp_path, "logo")
    store_branding(tmp_path, "logo", make_png())
    assert describe(tmp_path, "logo").custom
    reset_branding(tmp_path, "logo")
    assert current_branding(tmp_path, "logo") == (default_path, "image/png")
    assert not any((tmp_path / "branding").iterdir())

# --- what goes into a student's container -------------------------------------------------------


def test_container_archive_holds_config_css_and_every_favicon_name(tmp_path):
    logo, favicon = make_png(7, 5), make_png(16, 16)
    store_branding(tmp_path, "logo", logo)
    store_branding(tmp_path, "favicon", favicon)
    with tarfile.open(fileobj=io.BytesIO(lab_branding.make_branding_archive(tmp_path))) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    config = json.loads(files["goldenhub-branding/config/jupyter_server_config.json"])
    assert config["LabApp"]["custom_css"] is True
    assert config["ServerApp"]["extra_static_paths"] == ["/tmp/goldenhub-branding/static"]
    assert base64.b64encode(logo).decode() in files["goldenhub-branding/custom/custom.css"].decode()
    for name in lab_branding.FAVICON_NAMES:
        ico = files[f"goldenhub-branding/static/favicons/{name}"]
        assert validate_upload("favicon", ico).ext == "ico" and ico.endswith(favicon)


def test_branding_env_keeps_existing_config_path_and_the_config_dir():
    env = lab_branding.make_branding_env({"JUPYTER_CONFIG_PATH": "/etc/course"})
    assert env == {"JUPYTER_CONFIG_PATH": "/tmp/goldenhub-branding/config:/etc/course"}
    assert lab_branding.make_branding_env({}) == {"JUPYTER_CONFIG_PATH": "/tmp/goldenhub-branding/config"}

# --- real hub, real browser --------------------------------------------------------------------



@pytest.fixture
def branded(hub):
    """A distinctive logo and favicon for the duration of a test, then the defaults again."""
    logo, favicon = make_png(48, 24, (10, 200, 120)), make_ico(make_png(16, 16, (250, 0, 250)))
    store_branding(hub.state_dir, "logo", logo)
    store_branding(hub.state_dir, "favicon", favicon)
    yield logo, favicon
    reset_branding(hub.state_dir, "logo")
    reset_branding(hub.state_dir, "favicon")


@pytest.mark.integration
def test_branding_endpoints_are_public_typed_and_revalidated(hub, branded):
    logo, _ = branded
    url = f"{hub.url}/hub/goldenhub/branding/logo"
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == logo
    assert r.headers["Content-Type"] == "image/png" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-cache"
    assert requests.get(url, headers={"If-None-Match": r.headers["Etag"]}, timeout=30).status_code == 304
    store_branding(hub.state_dir, "logo", make_jpeg())  # a new upload: no restart, new bytes
    r2 = requests.get(url, headers={"If-None-Match": r.headers["Etag"]}, timeout=30)
    assert r2.status_code == 200 and r2.content == make_jpeg() and r2.headers["Content-Type"] == "image/jpeg"
    # Every hub page extends page.html: home and spawn carry the versioned logo and favicon.
    session = hub.login("branding-visitor")
    version = describe(hub.state_dir, "logo").sha256[:16]
    for path in ("/hub/home", "/hub/spawn"):
        html = session.get(f"{hub.url}{path}", timeout=30).text
        assert f"/hub/goldenhub/branding/logo?v={version}" in html and "/hub/goldenhub/branding/favicon?v=" in html


@pytest.mark.browser
def test_login_page_and_jupyterlab_show_the_uploaded_logo_and_favicon(hub, browser, branded):
    logo, favicon = branded
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(120_000)  # a shared 2-core machine can be slow
    try:
        page.goto(f"{hub.url}/hub/login")
        img = page.locator("#jupyterhub-logo img")
        assert page.request.get(img.evaluate("e => e.src")).body() == logo
        assert img.evaluate("e => e.complete && e.naturalWidth") == 48  # the browser decoded it
        icon = page.locator("link[rel=icon]").evaluate("e => e.href")
        assert page.request.get(icon).body() == favicon
        page.screenshot(path=str(ARTIFACTS / "branding-login.png"))

        page.fill("input[name=username]", "branding-student")
        page.fill("input[name=password]", hub.student_password())
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url("**/hub/spawn**")
        page.check("#template-intro-python-cpu")
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url("**/user/branding-student/lab**", timeout=240_000)
        page.locator(".jp-DirListing-content").get_by_text("intro-python", exact=True).wait_for(timeout=120_000)
        main_logo = page.locator("#jp-MainLogo > svg")  # the stock logo's box (tests/test_lab_look.py)
        background = main_logo.evaluate("e => getComputedStyle(e).backgroundImage")
        assert base64.b64encode(logo).decode() in background
        assert main_logo.evaluate("e => getComputedStyle(e.firstElementChild).visibility") == "hidden"
        for href in page.locator("link.favicon").evaluate_all("links => links.map(l => l.href)"):
            assert page.request.get(href).body() == favicon, href
        page.screenshot(path=str(ARTIFACTS / "branding-jupyterlab.png"))
    finally:
        page.close()
        hub.request("DELETE", "/users/branding-student/server")
