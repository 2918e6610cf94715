"""LTI 1.3 launches end to end: Debian's Chromium opens a course page of the test LMS
(tests/lms.py, real RS256 tokens), the LMS launches the real hub (GOLDENHUB_AUTH=lti), and
the student lands in the hub as themselves with what their course allows; forged, stale,
misaddressed, replayed and unlinked launches are refused with a sentence and create nobody."""

from __future__ import annotations

import textwrap
from urllib.parse import quote

import pytest
import requests

from hub_ext import contract
from hub_ext.accounts import lti_launch as rules
from tests.helpers import HUB_PORT, PREFIX, ServiceClient, hub_running, user_token
from tests.lms import INSTRUCTOR, LEARNER, SITE_ADMIN, TA, Person, TestLMS

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ML = {"id": "moodle-101", "label": "ML101", "title": "Machine learning"}
STATS = {"id": "moodle-202", "label": "ST202", "title": "Statistics"}
UNLINKED = {"id": "moodle-999", "label": "X999", "title": "Not on the hub"}


def course_file(cid: str, title: str, contexts: list[str]) -> str:
    """A course with the default access (enrolled members only)."""
    return textwrap.dedent(f"""\
        id: {cid}
        title: {title}
        lms_contexts: {contexts!r}
        templates:
          - id: {cid}-cpu
            title: {title} (CPU)
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
        """)


@pytest.fixture(scope="module")
def lms():
    platform = TestLMS()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def lti_hub(tmp_path_factory, lms):
    courses = tmp_path_factory.mktemp("lti-courses")
    (courses / "ml.yaml").write_text(course_file("ml", "Machine learning", [ML["id"]]))
    (courses / "stats.yaml").write_text(course_file("stats", "Statistics", [STATS["id"]]))
    (courses / "closed.yaml").write_text(course_file("closed", "Closed seminar", []))
    env = {"GOLDENHUB_AUTH": "lti", **lms.settings_env()}
    with hub_running(tmp_path_factory.mktemp("lti-state"), courses, HUB_PORT + 40, f"{PREFIX}l", env=env) as hub:
        lms.register_tool(hub.url)
        yield hub


def launch(browser, hub, lms, person: Person, roles, context, attack=None):
    """Open the LMS course page and follow its launch; the page where the hub answered."""
    page = browser.new_context().new_page()
    page.set_default_timeout(60_000)
    page.goto(lms.launch_url(person, roles, context, attack))
    page.wait_for_url(lambda u: u.startswith(hub.url) and ("/hub/spawn" in u or "oauth_callback" in u))
    page.wait_for_load_state()
    return page


def hub_user(hub, name: str) -> dict | None:
    r = hub.request("GET", f"/users/{quote(name)}")
    assert r.status_code in (200, 404), r.text
    return r.json() if r.status_code == 200 else None


def service_view(page, hub) -> dict:
    """What the goldenhub service says about the browser's user (after its OAuth login)."""
    page.goto(f"{hub.url}/services/goldenhub/")
    page.goto(f"{hub.url}/services/goldenhub/api")
    return page.evaluate("() => JSON.parse(document.body.innerText)")


def enrolments(hub, course: str) -> dict:
    from hub_ext.accounts.records import enrolments_of
    from hub_ext.service.db import open_database

    with open_database(f"sqlite:///{hub.state_dir / 'goldenhub.sqlite'}")() as session:
        return {name: row.to_dict() for name, row in enrolments_of(session, course).items()}


def test_a_learner_lands_in_the_hub_as_themselves_with_their_courses_environment(lti_hub, lms, browser):
    ana = Person("ana", "Ana.Lima@uni.example", "Ana Lima")
    page = launch(browser, lti_hub, lms, ana, LEARNER, ML)
    try:
        assert page.url == f"{lti_hub.url}/hub/spawn"
        text = page.inner_text("body")
        assert "Machine learning (CPU)" in text
        assert "Closed seminar (CPU)" not in text and "Statistics (CPU)" not in text
        assert "ana.lima@uni.example" in text  # the hub's header names who is logged in
        assert service_view(page, lti_hub)["user"] == "ana.lima@uni.example"
    finally:
        page.context.close()
    user = hub_user(lti_hub, "ana.lima@uni.example")
    assert user["groups"] == [contract.course_group("ml")] and not user["admin"]
    # Again, and from a second course: still one account, now in both courses.
    launch(browser, lti_hub, lms, ana, LEARNER, ML).context.close()
    launch(browser, lti_hub, lms, ana, LEARNER, STATS).context.close()
    names = [u["name"] for u in lti_hub.request("GET", "/users").json()]
    assert names.count("ana.lima@uni.example") == 1
    assert sorted(hub_user(lti_hub, "ana.lima@uni.example")["groups"]) == ["course:ml", "course:stats"]
    row = enrolments(lti_hub, "ml")["ana.lima@uni.example"]
    assert (row["role"], row["source"], row["display_name"], row["email"], row["updated_by"]) == (
        "student", "lti", "Ana Lima", "Ana.Lima@uni.example", f"lti:{lms.issuer}")


def test_an_instructor_gets_the_staff_group_and_its_scopes_then_a_learner_launch_moves_them(
        lti_hub, lms, browser):
    bo = Person("bo", "bo@uni.example", "Bo Chen")
    launch(browser, lti_hub, lms, bo, LEARNER, STATS).context.close()
    page = launch(browser, lti_hub, lms, bo, INSTRUCTOR, ML)
    try:
        assert "Machine learning (CPU)" in page.inner_text("body")
        scopes = service_view(page, lti_hub)["scopes"]
        assert "custom:goldenhub:reset!group=course:ml" in scopes
        assert "custom:goldenhub:enrol!group=course:ml" in scopes
        assert not any("course:stats" in s for s in scopes)  # a student there
    finally:
        page.context.close()
    assert sorted(hub_user(lti_hub, "bo@uni.example")["groups"]) == ["course:ml:staff", "course:stats"]
    # Demoted in the LMS: the next launch moves them; the other course stays as it was.
    page = launch(browser, lti_hub, lms, bo, LEARNER, ML)
    try:
        assert service_view(page, lti_hub)["scopes"] == []
    finally:
        page.context.close()
    assert sorted(hub_user(lti_hub, "bo@uni.example")["groups"]) == ["course:ml", "course:stats"]
    launch(browser, lti_hub, lms, Person("cy", "cy@uni.example", "Cy Ta"), TA, ML).context.close()
    assert hub_user(lti_hub, "cy@uni.example")["groups"] == ["course:ml:staff"]
    assert enrolments(lti_hub, "ml")["cy@uni.example"]["role"] == "ta"

    admin = ServiceClient(lti_hub, user_token(lti_hub, "admin"))
    entries = [e for e in admin.call("GET", "/audit").json()["entries"] if e["user"] == "bo@uni.example"]
    seen = {(e["action"], e["course"], e["actor"], e["detail"]) for e in entries}
    actor = f"lti:{lms.issuer}"
    assert ("enrol", "stats", actor, "enrolled as student (lti)") in seen
    assert ("enrol", "ml", actor, "enrolled as instructor (lti)") in seen
    assert ("role", "ml", actor, "role instructor -> student (lti)") in seen


@pytest.mark.parametrize("attack, sentence", [
    ("other_key", rules.SIGNATURE),
    ("wrong_aud", rules.AUDIENCE),
    ("expired", rules.EXPIRED),
])
def test_forged_misaddressed_and_expired_launches_are_refused(lti_hub, lms, browser, attack, sentence):
    name = f"mallory-{attack.replace('_', '-')}@uni.example"
    fetches = lms.requests.count("/jwks")
    page = launch(browser, lti_hub, lms, Person("m", name, "Mallory"), LEARNER, ML, attack=attack)
    try:
        assert sentence in page.inner_text("body")
        assert "oauth_callback" in page.url
    finally:
        page.context.close()
    assert hub_user(lti_hub, name) is None
    assert name not in enrolments(lti_hub, "ml")
    print(f"{attack}: the LMS's JWKS was fetched {lms.requests.count('/jwks') - fetches} more time(s)")


def test_unlinked_courses_and_roles_without_access_are_refused(lti_hub, lms, browser):
    for person, roles, context, sentence in [
        (Person("u", "unlinked@uni.example", "Una"), LEARNER, UNLINKED, rules.NOT_LINKED),
        (Person("r", "registrar@uni.example", "Reg"), SITE_ADMIN, ML, rules.NO_ROLE),
        (Person("n", "nocourse@uni.example", "Nat"), LEARNER, None, rules.NO_CONTEXT),
    ]:
        page = launch(browser, lti_hub, lms, person, roles, context)
        try:
            assert sentence in page.inner_text("body")
        finally:
            page.context.close()
        assert hub_user(lti_hub, person.email) is None


def test_a_hub_admin_may_launch_from_an_unlinked_course(lti_hub, lms, browser):
    page = launch(browser, lti_hub, lms, Person("admin", "admin", "The Admin"), SITE_ADMIN, UNLINKED)
    try:
        assert page.url == f"{lti_hub.url}/hub/spawn"
    finally:
        page.context.close()
    user = hub_user(lti_hub, "admin")
    assert user["admin"] and user["groups"] == []


def test_a_replayed_id_token_is_refused_even_with_the_captured_cookies(lti_hub, lms, browser):
    dee = Person("dee", "dee@uni.example", "Dee")
    url = lms.launch_url(dee, LEARNER, ML, capture=True)
    page = browser.new_context().new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(url)
        page.wait_for_url(lambda u: u.startswith(f"{lms.url}/authorize"))
        cookies = {c["name"]: c["value"] for c in page.context.cookies(lti_hub.url) if c["name"].startswith("lti13")}
        assert set(cookies) == {"lti13authenticator-state", "lti13authenticator-nonce-state"}
        page.click("#go")
        page.wait_for_url(f"{lti_hub.url}/hub/spawn")
    finally:
        page.context.close()
    captured = lms.captured[url.rsplit("/", 1)[-1]]
    r = requests.post(captured["redirect_uri"], data={"id_token": captured["id_token"], "state": captured["state"]},
                      cookies=cookies, allow_redirects=False, timeout=30)
    assert r.status_code == 401 and rules.REPLAYED in r.text
    assert not any(c.name.startswith("jupyterhub-") and c.value for c in r.cookies)  # nobody logged in


def test_opening_the_hub_without_the_lms_says_where_to_go(lti_hub):
    r = requests.get(f"{lti_hub.url}/hub/lti13/oauth_login", timeout=30)
    assert r.status_code == 400 and rules.DIRECT in r.text
    r = requests.post(f"{lti_hub.url}/hub/lti13/oauth_callback", data={"id_token": "x" * 70_000, "state": "s"},
                      timeout=30)
    assert r.status_code == 400 and rules.MALFORMED in r.text
    r = requests.post(f"{lti_hub.url}/hub/lti13/oauth_callback", data={"id_token": "a.b.c", "state": "s"}, timeout=30)
    assert r.status_code == 400 and rules.NOT_STARTED_HERE in r.text  # no state cookie: not this browser's launch


def test_login_cookies_go_cross_site_only_over_https_and_only_for_the_registered_lms(lti_hub, lms):
    form = {"iss": lms.issuer, "login_hint": "1:x", "target_link_uri": f"{lti_hub.url}/hub/spawn",
            "client_id": lms.client_id}
    login = f"{lti_hub.url}/hub/lti13/oauth_login"

    def set_cookies(**headers) -> list[str]:
        r = requests.post(login, data=form, headers=headers, allow_redirects=False, timeout=30)
        assert r.status_code == 302 and r.headers["Location"].startswith(f"{lms.url}/authorize?"), r.text[:300]
        return [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("lti13")]

    plain = set_cookies()
    assert len(plain) == 2 and not any("SameSite=None" in c or "Secure" in c or "expires" in c.lower() for c in plain)
    behind_tls = set_cookies(**{"X-Forwarded-Proto": "https"})  # as a TLS-terminating proxy says
    assert len(behind_tls) == 2 and all("SameSite=None" in c and "Secure" in c for c in behind_tls)
    r = requests.post(login, data={**form, "iss": "https://evil.example"}, allow_redirects=False, timeout=30)
    assert r.status_code == 403 and rules.ISSUER in r.text
    assert not [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("lti13")]
