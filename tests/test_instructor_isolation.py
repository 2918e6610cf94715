"""An instructor of course A cannot see or reset course B's students through pages or API
(issue 9), on a real hub with real Docker: the admin page, the people list, backups, the
audit log, resets (API and page form), backup restore/delete, roster import and term close
of B are refused or show nothing of B, and B's homes stay as they were; the same actions on
A succeed. Removing the instructor from A's staff group takes their rights away at the next
request. A student of A sees A's template and not B's, and starting B's is refused with the
sentence listing what they may start.

Runs its own hub (GOLDENHUB_TEST_PREFIX + "i", GOLDENHUB_TEST_PORT + 50) with two
enrolled-only courses, isoa and isob; instructor `ins` is staff of isoa only."""

from __future__ import annotations


import docker
import pytest
import requests

from hub_ext import contract
from tests.helpers import (ARTIFACTS, HUB_PORT, PREFIX, SMALL_HOME, ServiceClient, enrolled_only_course, hub_running,
                           manifest, run_in_volumes, user_token)

A, B = "isoa", "isob"


@pytest.fixture(scope="module")
def iso_hub(tmp_path_factory, gateway):
    courses = tmp_path_factory.mktemp("iso-courses")
    for course in (A, B):
        enrolled_only_course(courses, course)
    with hub_running(tmp_path_factory.mktemp("iso-hub"), courses, HUB_PORT + 50, f"{PREFIX}i") as hub:
        yield hub


def seed_home(hub, user: str, course: str) -> str:
    client = docker.from_env()
    name = contract.home_volume_name(hub.prefix, user, course)
    client.volumes.create(name=name, labels={contract.LABEL_USER: user, contract.LABEL_COURSE: course})
    run_in_volumes(client, SMALL_HOME + f"echo '{user}' > /h/mine.txt\n", {name: "/h"})
    return name


@pytest.fixture(scope="module")
def classes(iso_hub):
    """a1, a2 in isoa and b1, b2 in isob, each with a home; b2 reset once by the admin, so
    isob has a backup; ins is staff of isoa."""
    hub = iso_hub
    for user, course in (("a1", A), ("a2", A), ("b1", B), ("b2", B)):
        hub.enrol(user, course)
    hub.enrol("ins", A, staff=True)
    homes = {user: seed_home(hub, user, course) for user, course in (("a1", A), ("a2", A), ("b1", B), ("b2", B))}
    admin = ServiceClient(hub, user_token(hub, "admin"))
    r = admin.call("POST", "/resets", json={"course": B, "user": "b2"})
    assert r.status_code == 200, r.text
    backups = admin.call("GET", "/backups", params={"course": B}).json()["backups"]
    assert [b["user"] for b in backups] == ["b2"]
    return {"homes": homes, "b2_backup": backups[0]["volume"], "admin": admin}


@pytest.fixture
def ins(iso_hub):
    return ServiceClient(iso_hub, user_token(iso_hub, "ins"))


def page(hub, path: str, token: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"{hub.url}/services/goldenhub/{path}", timeout=120,
                            headers={"Authorization": f"token {token}"}, **kwargs)


def b_state(hub, classes) -> dict:
    """What the instructor of isoa must not change: isob's homes, backups and members."""
    client = docker.from_env()
    return {"b1 home": manifest(client, classes["homes"]["b1"]),
            "b2 backup": manifest(client, classes["b2_backup"]),
            "members": sorted(hub.request("GET", f"/groups/{contract.course_group(B)}").json()["users"])}


@pytest.mark.integration
def test_a_student_of_a_sees_and_may_start_only_as_templates(iso_hub, classes):
    form = iso_hub.options_form("a1")
    assert 'value="isoa-cpu"' in form and "isob-cpu" not in form
    r = iso_hub.start("a1", {"template": "isob-cpu"})
    assert r.status_code == 400
    assert r.json()["message"] == "No such environment template: 'isob-cpu'. Options include: isoa-cpu"
    assert iso_hub.server("a1") is None


@pytest.mark.integration
def test_the_instructor_of_a_sees_as_students_and_nothing_of_b(iso_hub, classes, ins):
    hub = iso_hub
    token = ins.headers["Authorization"].split()[1]
    admin_page = page(hub, "admin", token)
    assert admin_page.status_code == 200, admin_page.text
    assert 'data-user="a1"' in admin_page.text and 'data-user="a2"' in admin_page.text
    for other in ("b1", "b2", classes["b2_backup"], 'id="course-isob"'):
        assert other not in admin_page.text, other
    # The people list: A's, not B's.
    people = ins.call("GET", f"/courses/{A}/people")
    assert people.status_code == 200, people.text
    assert {"a1", "a2"} <= {p["username"] for p in people.json()["people"]}
    r = ins.call("GET", f"/courses/{B}/people")
    assert r.status_code == 403 and f"You may not change the enrolment of {B}" in r.json()["message"]
    assert page(hub, f"admin/courses/{B}", token).status_code == 403
    # Backups and the audit log.
    assert ins.call("GET", "/backups", params={"course": B}).json()["backups"] == []
    assert all(b["course"] != B for b in ins.call("GET", "/backups").json()["backups"])
    r = ins.call("GET", "/backups", params={"user": "b2"})
    assert r.status_code == 403 or r.json()["backups"] == []
    r = ins.call("GET", "/audit")
    assert r.status_code == 403 and "custom:goldenhub:reset" in r.json()["message"]


@pytest.mark.integration
def test_the_instructor_of_a_cannot_reset_import_or_close_b_and_bs_homes_stay(iso_hub, classes, ins):
    hub = iso_hub
    token = ins.headers["Authorization"].split()[1]
    before = b_state(hub, classes)
    r = ins.call("POST", "/resets", json={"course": B, "user": "b1"})
    assert r.status_code == 403
    assert r.json()["message"] == (f"You may not reset b1's {B} environment: that needs the scope "
                                   "custom:goldenhub:reset for them or their course group")
    r = ins.call("POST", "/resets", json={"course": A, "user": "b1"})  # b1 named under A's course
    assert r.status_code == 403 and "You may not reset b1's isoa environment" in r.json()["message"]
    r = ins.call("POST", "/resets", json={"course": B, "all": True, "confirm": B})
    assert r.status_code == 403
    r = page(hub, "admin/reset", token, "POST", data={"user": "b1", "course": B})
    assert r.status_code == 403 and "You may not reset b1" in r.text
    r = page(hub, "admin/stop", token, "POST", data={"user": "b1", "course": B})
    assert r.status_code == 403
    for method, path in (("POST", f"/backups/{classes['b2_backup']}/restore"),
                         ("DELETE", f"/backups/{classes['b2_backup']}?confirm={classes['b2_backup']}")):
        r = ins.call(method, path)
        assert r.status_code == 403 and "You may not restore or delete b2's isob backups" in r.json()["message"]
    r = ins.call("POST", f"/courses/{B}/roster", data="username,display name,email,role\nmallory,M,m@x.org,student\n",
                 headers={"Content-Type": "text/csv"})
    assert r.status_code == 403 and f"You may not change the enrolment of {B}" in r.json()["message"]
    r = ins.call("POST", f"/courses/{B}/term-close", json={"confirm": B})
    assert r.status_code == 403 and f"You may not close the term of {B}" in r.json()["message"]
    assert page(hub, f"admin/courses/{B}/close", token).status_code == 403
    r = page(hub, f"admin/courses/{B}/close", token, "POST", data={"confirm": B})
    assert r.status_code == 403
    assert b_state(hub, classes) == before
    assert hub.request("GET", "/users/mallory").status_code == 404
    # The same on A succeeds.
    r = ins.call("POST", "/resets", json={"course": A, "user": "a2"})
    assert r.status_code == 200 and r.json()["results"][0]["result"] == "ok", r.text
    assert r.json()["results"][0]["backup"].startswith(classes["homes"]["a2"] + "-backup-")


@pytest.mark.browser
def test_in_a_browser_the_instructor_sees_only_as_students(iso_hub, classes, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        p = context.new_page()
        p.set_default_timeout(60_000)
        p.goto(f"{iso_hub.url}/hub/login")
        p.fill("input[name=username]", "ins")
        p.fill("input[name=password]", iso_hub.student_password())  # demo mode: the class password
        p.click("input[type=submit], button[type=submit]")
        p.wait_for_load_state()
        p.goto(f"{iso_hub.url}/services/goldenhub/admin")
        rows = p.locator("tr.student").evaluate_all("rows => rows.map(r => r.dataset.user)")
        ARTIFACTS.mkdir(exist_ok=True)
        p.screenshot(path=str(ARTIFACTS / "instructor-isolation-admin.png"))
        assert "a1" in rows and not {"b1", "b2"} & set(rows), rows
        p.goto(f"{iso_hub.url}/services/goldenhub/admin/courses/{B}/close")
        assert f"You may not close the term of {B}" in p.inner_text("body")
    finally:
        context.close()


@pytest.mark.integration
def test_an_instructor_removed_from_as_staff_is_refused_at_the_next_request(iso_hub, classes, ins):
    hub = iso_hub
    token = ins.headers["Authorization"].split()[1]
    assert ins.call("GET", f"/courses/{A}/people").status_code == 200  # rights held (and the login cached)
    staff = contract.staff_group(A)
    hub.request("DELETE", f"/groups/{staff}/users", json={"users": ["ins"]}).raise_for_status()
    try:
        r = ins.call("POST", "/resets", json={"course": A, "user": "a1"})
        assert r.status_code == 403 and "You may not reset a1's isoa environment" in r.json()["message"]
        assert ins.call("GET", f"/courses/{A}/people").status_code == 403
        r = ins.call("POST", f"/courses/{A}/term-close", json={"confirm": A})
        assert r.status_code == 403 and f"You may not close the term of {A}" in r.json()["message"]
        assert page(hub, "admin", token).status_code == 403
        assert docker.from_env().volumes.get(classes["homes"]["a1"])  # untouched
    finally:
        hub.request("POST", f"/groups/{staff}/users", json={"users": ["ins"]}).raise_for_status()


@pytest.mark.integration
def test_the_instructor_of_a_closes_as_term_and_b_is_untouched(iso_hub, classes, ins):
    hub = iso_hub
    before = b_state(hub, classes)
    r = ins.call("POST", f"/courses/{A}/term-close", json={"confirm": A})
    assert r.status_code == 200, r.text
    result = r.json()
    print(result["message"])
    assert result["result"] == "ok" and result["students_unenrolled"] == 2 and result["homes_backed_up"] == 1
    assert hub.request("GET", f"/groups/{contract.course_group(A)}").json()["users"] == []
    assert hub.request("GET", f"/groups/{contract.staff_group(A)}").json()["users"] == ["ins"]
    assert b_state(hub, classes) == before
