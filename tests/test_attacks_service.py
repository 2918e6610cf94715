"""Attacks on the goldenhub service through the real hub and proxy: a logged-in browser's
cookie used cross-site (no XSRF token, a garbage or foreign one) on every mutating endpoint
and form, scope escalation, reading templates one may not see, malformed input, oversized
and crafted uploads; and no token, cookie or password in the logs or error pages.

Every test checks what a user sees or loses: the answer's status and sentence, and that
the state an attack aimed at (a running server, a backup, a template, the logo) is intact.
"""

from __future__ import annotations

import json
import re
import struct

import pytest
import requests
import yaml
from sqlalchemy import update

from hub_ext.hubconfig import Settings
from hub_ext.service.db import TemplateRevision, open_database
from tests.helpers import RUNTIME_TEMPLATE as NEW, ServiceClient, make_jpeg, make_png, user_token

pytestmark = pytest.mark.integration

SERVICE = "/services/goldenhub/"
ANSWER = 30  # seconds: a bound on every request; a frozen service fails the test, never hangs it


class Browser:
    """A logged-in browser, as requests: the hub login cookie, then the service's own
    cookie from the OAuth round trip (whose URLs are kept to look for them in logs)."""

    def __init__(self, hub, name: str, password: str):
        self.hub, self.name = hub, name
        self.session = requests.Session()
        self.session.get(f"{hub.url}/hub/login", timeout=ANSWER)
        r = self.session.post(f"{hub.url}/hub/login", timeout=ANSWER, data={
            "username": name, "password": password, "_xsrf": self.session.cookies.get("_xsrf", "")})
        assert r.status_code == 200, r.text[:300]
        page = self.session.get(f"{hub.url}{SERVICE}", timeout=ANSWER)  # OAuth login to the service
        assert page.status_code == 200, page.text[:300]
        self.oauth_urls = [h.headers.get("Location", "") for h in page.history]
        assert self.xsrf, "the service page set no _xsrf cookie"

    @property
    def xsrf(self) -> str:
        """This browser's XSRF token as its page holds it now (a refused request may renew it)."""
        return self.service_cookie("_xsrf")

    def service_cookie(self, name: str) -> str:
        return next((c.value for c in self.session.cookies if c.name == name and c.path.startswith(SERVICE)), "")

    def secrets(self) -> list[str]:
        """Every login and XSRF cookie value and OAuth code this browser holds or used (not
        jupyterhub-session-id: an identifier that logs in nobody, which JupyterHub itself logs)."""
        codes = [m for u in self.oauth_urls for m in re.findall(r"[?&]code=([^&]+)", u)]
        return [c.value for c in self.session.cookies if c.name != "jupyterhub-session-id"] + codes

    def cookie_header(self, **replace: str) -> str:
        cookies = {c.name: c.value for c in self.session.cookies if c.name not in replace}
        return "; ".join(f"{k}={v}" for k, v in {**cookies, **replace}.items())

    def send(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", ANSWER)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, f"{self.hub.url}{SERVICE}{path}", **kwargs)


@pytest.fixture(scope="module")
def world(hub):
    """Users, groups, tokens, browsers; a victim with a running server, a home and a backup;
    a runtime template limited to a group; a custom logo."""
    hub.request("POST", "/groups/atk-group", json={}).status_code in (201, 409) or pytest.fail("group")
    for name in ("admin", "atk-victim", "atk-member", "atk-outsider", "sec-teacher"):
        hub.ensure_user(name)
    hub.request("POST", "/groups/atk-group/users", json={"users": ["atk-member"]}).raise_for_status()
    tokens = {name: user_token(hub, name) for name in ("admin", "atk-victim", "atk-member", "atk-outsider",
                                                       "sec-teacher")}
    admin = ServiceClient(hub, tokens["admin"])
    template = {**NEW, "id": "atk-tpl", "title": "Group only", "groups": ["atk-group"],
                "courseware": {"repo": "https://git.example.org/atk.git", "target": "atk"}}
    r = admin.call("POST", "/templates", json={"course": "atk", "template": template})
    assert r.status_code == 201, r.text
    r = admin.call("PATCH", "/templates/atk-tpl", json={"template": {"memory": "768M"}, "comment": "more"})
    assert r.status_code == 200, r.text
    r = admin.call("PUT", "/branding/logo", data=make_png(5, 5))
    assert r.status_code == 200, r.text

    hub.spawn("atk-victim", {"template": "lab-cpu"})
    r = admin.call("POST", "/resets", json={"course": "lab", "user": "atk-victim"})
    assert r.status_code == 200, r.text
    backup = r.json()["results"][0]["backup"]
    hub.spawn("atk-victim", {"template": "lab-cpu"})
    assert hub.exec("atk-victim", "echo precious > ~/precious.txt")[0] == 0
    browsers = {"admin": Browser(hub, "admin", hub.admin_password()),
                "atk-victim": Browser(hub, "atk-victim", hub.student_password()),
                "atk-outsider": Browser(hub, "atk-outsider", hub.student_password())}
    yield {"tokens": tokens, "admin": admin, "backup": backup, "browsers": browsers}
    hub.request("DELETE", "/users/atk-victim/server")


def snapshot(hub, world) -> dict:
    """What an attack could damage, as the admin and the victim would see it."""
    admin = world["admin"]
    server = hub.server("atk-victim") or {}
    return {
        "victim running": bool(server.get("ready")),
        "victim file": hub.exec("atk-victim", "cat ~/precious.txt")[1] if server.get("ready") else "",
        "backups": sorted(b["volume"] for b in admin.call("GET", "/backups").json()["backups"]),
        "template": admin.call("GET", "/templates/atk-tpl").json(),
        "templates": sorted(t["id"] for t in admin.call("GET", "/templates").json()["templates"]),
        "logo": admin.call("GET", "/branding/logo").json(),
        "favicon": admin.call("GET", "/branding/favicon").json(),
        # refusals are audited; anything else would be a change
        "audit": [e for e in admin.call("GET", "/audit").json()["entries"] if e["result"] != "refused"][:3],
    }


def mutations(world) -> list[tuple[str, str, dict]]:
    """Every state-changing request of the service: the API and the admin's forms, aimed
    at the victim's server, home and backup, the template and the logo."""
    b = world["backup"]
    form = lambda **fields: {"data": fields}  # noqa: E731
    return [
        ("POST", "api/resets", {"json": {"course": "lab", "user": "atk-victim"}}),
        ("POST", "api/resets", {"json": {"course": "lab", "all": True, "confirm": "lab"}}),
        ("POST", f"api/backups/{b}/restore", {"json": {}}),
        ("DELETE", f"api/backups/{b}?confirm={b}", {}),
        ("POST", "api/templates", {"json": {"course": "atk", "template": {**NEW, "id": "atk-planted"}}}),
        ("PATCH", "api/templates/atk-tpl", {"json": {"template": {"memory": "1G"}}}),
        ("DELETE", "api/templates/atk-tpl?confirm=atk-tpl", {}),
        ("POST", "api/templates/atk-tpl/rollback", {"json": {"revision": 1}}),
        ("POST", "api/templates/atk-tpl/disable", {"json": {}}),
        ("PUT", "api/branding/logo", {"data": make_png(7, 7)}),
        ("DELETE", "api/branding/logo", {}),
        ("POST", "admin/stop", form(course="lab", user="atk-victim")),
        ("POST", "admin/reset", form(course="lab", user="atk-victim")),
        ("POST", "admin/reset-all", form(course="lab", confirm="lab")),
        ("POST", "admin/restore", form(backup=b)),
        ("POST", "admin/delete-backup", form(backup=b, confirm=b)),
        ("POST", "admin/templates/atk-tpl", form(yaml="memory: 1G\n", comment="x")),
        ("POST", "admin/templates/atk-tpl", form(state="disable")),
        ("POST", "admin/templates/atk-tpl", form(state="delete", confirm="atk-tpl")),
        ("POST", "admin/templates/atk-tpl", form(rollback="1")),
        ("POST", "admin/templates/new", form(course="atk", yaml=yaml.safe_dump({**NEW, "id": "atk-planted"}))),
        ("POST", "admin/branding/logo", {"files": {"file": ("logo.png", make_png(7, 7), "image/png")}}),
    ]


def victims_self_reset(world):
    return ("POST", "reset?course=lab", {"data": {"confirm": "lab"}})


def test_cookie_post_without_xsrf_is_refused_and_the_service_keeps_answering(hub, world):
    """Issue 7 item 1: this request used to freeze the service for everyone."""
    admin = world["browsers"]["admin"]
    r = admin.send("POST", "api/templates/atk-tpl/disable", json={})
    assert r.status_code == 403, r.text
    message = r.json()["message"]
    assert "XSRF token" in message and "Authorization header" in message and "Traceback" not in r.text
    assert world["admin"].call("GET", "/").status_code == 200  # still answering, for everyone
    # the admin's own correct token: accepted, once, and the service still answers
    r = admin.send("POST", "api/templates/atk-tpl/disable", json={}, headers={"X-XSRFToken": admin.xsrf})
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    r = admin.send("POST", "api/templates/atk-tpl/enable", json={}, headers={"X-XSRFToken": admin.xsrf})
    assert r.status_code == 200 and r.json()["disabled"] is False, r.text
    for _ in range(3):
        assert world["admin"].call("GET", "/").status_code == 200


def test_the_service_cookies_are_samesite(world):
    cookies = [c for c in world["browsers"]["admin"].session.cookies if c.path.startswith(SERVICE)]
    assert {c.name for c in cookies} >= {"_xsrf"} and len(cookies) >= 2
    for c in cookies:
        assert c.get_nonstandard_attr("SameSite", "").lower() in ("lax", "strict"), c.name


@pytest.mark.parametrize("how", ["no token", "garbage Authorization", "foreign XSRF token", "forged _xsrf cookie"])
def test_cross_site_requests_change_nothing(hub, world, how):
    before = snapshot(hub, world)
    assert before["victim running"] and before["victim file"].strip() == "precious"
    admin, victim = world["browsers"]["admin"], world["browsers"]["atk-victim"]
    attacks = [(admin, m) for m in mutations(world)] + [(victim, victims_self_reset(world))]
    for browser, (method, path, kwargs) in attacks:
        kwargs = {**kwargs, "headers": {}}
        if how == "garbage Authorization":
            kwargs["headers"] = {"Authorization": "token garbage"}
        elif how == "foreign XSRF token":  # another logged-in user's valid token
            other = victim if browser is admin else admin
            kwargs["headers"] = {"X-XSRFToken": other.xsrf}
            if isinstance(kwargs.get("data"), dict):
                kwargs["data"] = {**kwargs["data"], "_xsrf": other.xsrf}
        elif how == "forged _xsrf cookie":  # a token the attacker made up, in cookie and field
            forged = "2|6d61646575|7570|1700000000"
            kwargs["headers"] = {"X-XSRFToken": forged, "Cookie": browser.cookie_header(_xsrf=forged)}
            if isinstance(kwargs.get("data"), dict):
                kwargs["data"] = {**kwargs["data"], "_xsrf": forged}
        r = browser.send(method, path, **kwargs)
        assert r.status_code == 403, f"{how}: {method} {path} answered {r.status_code}: {r.text[:300]}"
        assert "XSRF" in r.text and "Traceback" not in r.text, r.text[:300]
    assert snapshot(hub, world) == before


def test_with_the_right_xsrf_token_the_same_forms_work(world):
    """The refusals above are the XSRF check, not a broken endpoint."""
    admin = world["browsers"]["admin"]
    r = admin.send("POST", "admin/templates/atk-tpl", data={"state": "disable", "_xsrf": admin.xsrf})
    assert r.status_code == 302 and "disabled" in requests.utils.unquote(r.headers["Location"])
    r = admin.send("POST", "admin/templates/atk-tpl", data={"state": "enable", "_xsrf": admin.xsrf})
    assert r.status_code == 302 and "enabled" in requests.utils.unquote(r.headers["Location"])


def test_scope_escalation_is_refused_everywhere(hub, world):
    before = snapshot(hub, world)
    tokens = world["tokens"]
    # the admin's, but without the goldenhub scopes
    narrow = user_token(hub, "admin", "service only", scopes=["access:services!service=goldenhub"])
    # the admin's, without access to the service at all
    no_access = user_token(hub, "admin", "read only", scopes=["read:users:name"])
    callers = {"student": tokens["atk-outsider"], "other course's instructor": tokens["sec-teacher"],
               "narrow admin token": narrow, "no-access admin token": no_access}
    for who, token in callers.items():
        for method, path, kwargs in mutations(world):
            r = requests.request(method, f"{hub.url}{SERVICE}{path}", timeout=ANSWER, allow_redirects=False,
                                 headers={"Authorization": f"token {token}"}, **kwargs)
            assert_refused(r, f"{who}: {method} {path}")
        r = requests.get(f"{hub.url}{SERVICE}api/audit", headers={"Authorization": f"token {token}"}, timeout=ANSWER)
        assert r.status_code == 403
    student = world["browsers"]["atk-outsider"]
    for method, path, kwargs in mutations(world):
        kwargs = {**kwargs, "headers": {"X-XSRFToken": student.xsrf}}
        if path.startswith("admin/"):
            kwargs["data"] = {**kwargs.get("data", {}), "_xsrf": student.xsrf}
        assert_refused(student.send(method, path, **kwargs), f"student's browser: {method} {path}")
    assert snapshot(hub, world) == before


def assert_refused(r: requests.Response, what: str) -> None:
    """403 with a sentence; a course-wide reset may instead answer that it reset nobody
    (it resets those the caller may reset and lists the rest)."""
    course_wide = "reset-all" in r.request.url or '"all": true' in str(r.request.body)
    if course_wide and r.status_code in (200, 302):
        return  # the snapshot taken after the attacks proves that nobody was reset
    assert r.status_code == 403, f"{what}: answered {r.status_code}: {r.text[:300]}"
    assert ("needs the scope" in r.text or "may not" in r.text) and "Traceback" not in r.text, r.text[:300]


def test_templates_are_read_only_by_those_who_may_start_them(hub, world):
    tokens = world["tokens"]
    outsider, member = ServiceClient(hub, tokens["atk-outsider"]), ServiceClient(hub, tokens["atk-member"])
    listed = outsider.call("GET", "/templates").json()["templates"]
    assert "atk-tpl" not in [t["id"] for t in listed] and "sec-cpu" not in [t["id"] for t in listed]
    assert "lab-cpu" in [t["id"] for t in listed]
    r = outsider.call("GET", "/templates/atk-tpl")
    assert r.status_code == 404 and r.json()["message"] == "There is no template atk-tpl."

    mine = {t["id"]: t for t in member.call("GET", "/templates").json()["templates"]}
    shown = member.call("GET", "/templates/atk-tpl").json()
    assert mine["atk-tpl"] == shown and shown["memory"] == 768 * 2**20
    for hidden in ("revisions", "template", "groups", "datasets", "courseware", "managed_by"):
        assert hidden not in shown
    body = json.dumps(member.call("GET", "/templates").json())
    assert "git.example.org" not in body and "/srv/" not in body and '"admin"' not in body
    full = world["admin"].call("GET", "/templates/atk-tpl").json()
    assert full["revisions"][0]["author"] == "admin" and "+memory: 768M" in full["revisions"][0]["diff"]


STORED_CREDENTIALS = ("hunter2secret", "ghp_tokenvalue1234")


def test_credentials_stored_before_the_rule_are_masked_everywhere(hub, world):
    """A revision saved when credentials in repository URLs were still accepted."""
    url = Settings.default_db_url(hub.state_dir)
    with open_database(url)() as session:
        for rev in session.query(TemplateRevision).filter_by(template_id="atk-tpl"):
            session.execute(update(TemplateRevision).where(TemplateRevision.id == rev.id).values(
                data=rev.data.replace("https://git.example.org", "https://deploy:hunter2secret@git.example.org"),
                diff=rev.diff + "+  repo: https://ghp_tokenvalue1234@git.example.org/atk.git\n"))
        session.commit()
    admin_browser = world["browsers"]["admin"]
    answers = [world["admin"].call("GET", "/templates/atk-tpl").text,
               world["admin"].call("GET", "/templates").text,
               admin_browser.send("GET", "admin/templates/atk-tpl").text,
               admin_browser.send("GET", "admin").text]
    for page in answers:
        assert not any(secret in page for secret in STORED_CREDENTIALS)
    assert "https://***@git.example.org/atk.git" in answers[0] and "https://***@git.example.org" in answers[2]


@pytest.mark.parametrize("method,path,body,expected", [
    ("POST", "resets", {"course": ["lab"]}, '"course" must be a string, not a list'),
    ("POST", "resets", {"course": {"a": 1}}, '"course" must be a string, not an object'),
    ("POST", "resets", {"course": "lab", "all": "yes", "confirm": "lab"}, '"all" must be true or false'),
    ("GET", "audit?limit=abc", None, '"limit" must be a whole number from 1 to 1000'),
    ("POST", "templates", {"course": "atk", "course_title": ["x"], "template": NEW}, '"course_title" must be a string'),
    ("POST", "templates", {"course": "atk", "comment": {"x": 1}, "template": NEW}, '"comment" must be a string'),
    ("PATCH", "templates/atk-tpl", {"template": {"memory": "1G"}, "comment": [1]}, '"comment" must be a string'),
    ("POST", "templates/atk-tpl/rollback", {"revision": "abc"}, '"revision" must be a whole number'),
    ("POST", "templates/atk-tpl/rollback", {"revision": True}, '"revision" must be a whole number'),
    ("GET", "no/such/endpoint", None, "There is no API endpoint"),
])
def test_malformed_input_gets_a_sentence_not_a_500(world, method, path, body, expected):
    r = world["admin"].call(method, "/" + path, **({"json": body} if body is not None else {}))
    assert r.status_code in (400, 404), r.text
    assert r.json()["status"] == r.status_code and expected in r.json()["message"], r.text


def test_admin_pages_answer_malformed_input_with_a_sentence(world):
    admin = world["browsers"]["admin"]
    r = admin.send("GET", "admin/reset-all?course=nope")
    assert r.status_code == 404 and "There is no course nope" in r.text and "Traceback" not in r.text
    r = admin.send("POST", "admin/templates/atk-tpl", data={"rollback": "abc", "_xsrf": admin.xsrf})
    assert r.status_code == 400 and "must be a whole number" in r.text


def png_with_trailer() -> bytes:
    return make_png(4, 4) + b"<?php system($_GET['c']); ?>"


def ico_with_huge_bitmap() -> bytes:
    header = struct.pack("<IiiHHIIiiII", 40, 50000, 100000, 1, 32, 0, 0, 0, 0, 0, 0)
    image = header + b"\0" * 64
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(image), 22) + image


@pytest.mark.parametrize("kind,data,expected", [
    ("logo", png_with_trailer(), "bytes of other data after its end (IEND)"),
    ("logo", make_jpeg() + b"PK\x03\x04 a zip", "bytes of other data after its end (end-of-image marker)"),
    ("favicon", ico_with_huge_bitmap(), "is a bitmap of 50000x50000 pixels"),
])
def test_crafted_images_are_refused_and_change_nothing(hub, world, kind, data, expected):
    before = world["admin"].call("GET", f"/branding/{kind}").json()
    r = world["admin"].call("PUT", f"/branding/{kind}", data=data)
    assert r.status_code == 400 and expected in r.json()["message"], r.text
    assert world["admin"].call("GET", f"/branding/{kind}").json() == before


def test_a_120_mb_upload_gets_a_sentence_through_the_proxy(hub, world):
    before = world["admin"].call("GET", "/branding/logo").json()
    big = make_png(4, 4) + b"\0" * (120 * 2**20)
    r = world["admin"].call("PUT", "/branding/logo", data=big)
    assert r.status_code == 413, r.text[:300]
    assert "at most 2 MiB" in r.json()["message"] and "a logo at most 1024 KiB" in r.json()["message"]
    admin = world["browsers"]["admin"]
    r = admin.send("POST", "admin/branding/logo", data={"_xsrf": admin.xsrf},
                   files={"file": ("logo.png", big, "image/png")})
    assert r.status_code == 413 and "at most 2 MiB" in r.text
    assert world["admin"].call("GET", "/branding/logo").json() == before
    assert world["admin"].call("GET", "/").status_code == 200


def test_logs_and_error_pages_hold_no_token_cookie_or_password(hub, world):
    """Runs last in this module: every token, cookie, password and OAuth code used above."""
    browsers = world["browsers"].values()
    # error pages, as a browser shows them, with the secrets in the request
    admin = world["browsers"]["admin"]
    errors = [admin.send("POST", "api/resets", json={"course": "lab"},
                         headers={"Authorization": f"token {world['tokens']['atk-outsider']}x"}),
              admin.send("GET", "admin/reset-all?course=nope"),
              admin.send("POST", "reset?course=lab", data={"confirm": "lab"}),
              requests.get(f"{hub.url}{SERVICE}api/no-such?token={world['tokens']['admin']}", timeout=ANSWER)]
    used = [*world["tokens"].values(), hub.token, hub.student_password(), hub.admin_password(),
            *STORED_CREDENTIALS,
            *(s for b in browsers for s in b.secrets())]
    used = [s for s in used if s and len(s) >= 12]
    assert len(used) >= 10
    log = hub.log_path.read_text(errors="replace")
    assert "goldenhub" in log
    for secret in used:
        at = log.find(secret)
        assert at < 0, f"the hub/service log holds a secret: ...{log[max(0, at - 200):at + 40]}"
    for r in errors:
        assert r.status_code >= 400, r.text[:300]
        for secret in used:
            assert secret not in r.text, f"an error page shows a secret: {r.text[:200]}"
