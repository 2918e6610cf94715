"""Who may do what, through the real hub and proxy: every service endpoint and page against
every role (no token, a student, an instructor of one course, an admin, an admin's token
with fewer scopes); an instructor of one course with backups present in two courses sees
and acts on exactly their course's; forms need XSRF; every answer carries nosniff and a CSP;
a failed action is an error answer {status, message}.

The instructor is conftest's sec-teacher: custom:goldenhub:reset!group=sec-students, the
group of course sec's template."""

import html
import re

import docker
import pytest

from hub_ext import contract
from tests.helpers import ServiceClient, user_token

pytestmark = pytest.mark.integration

SERVICE = "/services/goldenhub/"

# (method, path, json body or raw bytes, scope needed: None = any logged-in user,
#  what the instructor of course sec gets)
ENDPOINTS = [
    ("GET", "/", None, None, 200),
    ("GET", "/templates", None, None, 200),
    ("POST", "/templates", {"course": "m", "template": {"id": "m1"}}, "templates", 403),
    ("PATCH", "/templates/no-such", {"template": {}}, "templates", 403),
    ("DELETE", "/templates/no-such?confirm=no-such", None, "templates", 403),
    ("POST", "/templates/no-such/disable", {}, "templates", 403),
    ("GET", "/deleted-templates", None, "templates", 403),
    ("POST", "/resets", {"course": "lab", "user": "matrix-other"}, "reset", 403),
    ("GET", "/backups?user=matrix-other", None, "reset", 200),  # theirs they may see: none
    ("POST", "/backups/no-such/restore", {}, "reset", 404),
    ("DELETE", "/backups/no-such?confirm=no-such", None, "reset", 404),
    ("GET", "/audit", None, "reset", 403),
    ("GET", "/branding/logo", None, None, 200),
    ("PUT", "/branding/logo", b"not an image", "branding", 403),
    ("DELETE", "/branding/favicon", None, "branding", 403),
    # publishing (this hub has no registry: the admin's publish is a 400 saying how to set one)
    ("GET", "/courses/lab/images", None, "publish", 403),
    ("POST", "/courses/lab/publish", {"ref": "main"}, "publish", 403),
    ("POST", "/courses/lab/rollback", {"version": 1}, "publish", 403),
    ("POST", "/courses/lab/restart-idle", {}, "publish", 403),
]


def hub_token(hub, name: str, scopes: list[str]) -> str:
    r = hub.request("POST", f"/users/{name}/tokens", json={"note": "matrix", "scopes": scopes})
    assert r.status_code == 201, r.text
    return r.json()["token"]


@pytest.fixture(scope="module")
def tokens(hub):
    hub.ensure_user("matrix-other")
    r = hub.request("POST", "/groups/sec-students", json={})
    assert r.status_code in (201, 409), r.text
    return {"student": user_token(hub, "matrix-student"), "admin": user_token(hub, "admin"),
            "instructor": user_token(hub, "sec-teacher"),
            # the admin's, but only to open the service: none of the goldenhub scopes
            "narrow admin token": hub_token(hub, "admin", ["access:services!service=goldenhub"])}


def send(client, method, path, body):
    if isinstance(body, bytes):
        return client.call(method, path, data=body)
    return client.call(method, path, json=body) if body is not None else client.call(method, path)


@pytest.mark.parametrize("method,path,body,scope,instructor", ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS])
def test_endpoint_authentication_and_scopes(hub, tokens, method, path, body, scope, instructor):
    r = send(ServiceClient(hub), method, path, body)
    assert r.status_code == 401 and r.json() == {"status": 401, "message": r.json()["message"]}
    answers = [r]
    for role in ("student", "narrow admin token"):
        answer = send(ServiceClient(hub, tokens[role]), method, path, body)
        if scope:
            assert answer.status_code == 403, f"{role}: {answer.text}"
            assert f"custom:goldenhub:{scope}" in answer.json()["message"]
        else:
            assert answer.status_code == 200, f"{role}: {answer.text}"
        answers.append(answer)
    teacher = send(ServiceClient(hub, tokens["instructor"]), method, path, body)
    assert teacher.status_code == instructor, teacher.text
    if instructor == 200 and "backups" in path:
        assert teacher.json() == {"backups": []}
    admin = send(ServiceClient(hub, tokens["admin"]), method, path, body)
    assert admin.status_code not in (401, 403, 500), admin.text
    for response in (*answers, teacher, admin):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Content-Type"].startswith("application/json")
        if response.status_code >= 400:  # {status, message}, and details such as problems
            assert response.json()["status"] == response.status_code and response.json()["message"]


# --- pages: what each role sees ----------------------------------------------------------------

def page(hub, token: str | None, path: str, method: str = "GET", **kwargs):
    import requests

    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(method, f"{hub.url}{SERVICE}{path}", headers=headers, timeout=300,
                            allow_redirects=False, **kwargs)


def sections(html: str) -> dict:
    """What the admin page shows: course sections, the other sections, students and backups
    (with whether each backup has its restore and delete forms)."""
    backups = re.findall(r'<tr class="backup" data-volume="([^"]+)">(.*?)</tr>', html, re.S)
    return {
        "courses": set(re.findall(r'<section id="course-([^"]+)">', html)),
        "sections": set(re.findall(r'<(?:h1|section) id="(\w+)"', html)),
        "students": set(re.findall(r'<tr class="student" data-user="([^"]+)">', html)),
        "backups": {volume: "admin/restore" in row and "admin/delete-backup" in row for volume, row in backups},
    }


def test_pages_show_each_role_what_it_may_do(hub, tokens):
    home = {role: page(hub, token, "") for role, token in tokens.items()}
    for role, r in home.items():
        assert r.status_code == 200, f"{role}: {r.text[:300]}"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert (f'href="{SERVICE}admin"' in r.text) == (role in ("admin", "instructor")), role
    assert page(hub, None, "").status_code == 302  # to the hub's login

    for role in ("student", "narrow admin token"):
        r = page(hub, tokens[role], "admin")
        assert r.status_code == 403 and "needs the scope custom:goldenhub:reset" in r.text, r.text[:300]
        assert "Traceback" not in r.text

    admin = sections(page(hub, tokens["admin"], "admin").text)
    assert {"lab", "sec", "intro-python"} <= admin["courses"]
    assert admin["sections"] == {"templates", "branding", "backups", "audit"}

    teacher = page(hub, tokens["instructor"], "admin")
    assert teacher.status_code == 200, teacher.text[:300]
    seen = sections(teacher.text)
    assert seen["courses"] == {"sec"}  # nothing of the courses they do not teach
    assert seen["sections"] == {"backups"}  # no templates, branding or audit log: not theirs
    assert page(hub, tokens["instructor"], "admin/reset-all?course=lab").status_code == 403
    assert page(hub, tokens["instructor"], "admin/reset-all?course=sec").status_code == 200
    assert page(hub, tokens["instructor"], "admin/templates/new").status_code == 403


# --- an instructor of one course, with backups present in two courses -------------------------

def make_home(client, hub, user: str, course: str) -> str:
    name = contract.home_volume_name(hub.prefix, user, course)
    client.volumes.create(name=name, labels={contract.LABEL_USER: user, contract.LABEL_COURSE: course})
    return name


@pytest.fixture(scope="module")
def two_courses(hub, tokens):
    """sec-ann (in group sec-students) has a backup in sec and one in lab; lab-dan one in
    lab; each of them has a (fresh) home again afterwards."""
    client = docker.from_env()
    hub.ensure_user("sec-ann")
    hub.ensure_user("lab-dan")
    hub.request("POST", "/groups/sec-students/users", json={"users": ["sec-ann"]}).raise_for_status()
    admin = ServiceClient(hub, tokens["admin"])
    backups = {}
    for user, course in (("sec-ann", "sec"), ("sec-ann", "lab"), ("lab-dan", "lab")):
        make_home(client, hub, user, course)
        r = admin.call("POST", "/resets", json={"course": course, "user": user})
        assert r.status_code == 200, r.text
        backups[user, course] = r.json()["results"][0]["backup"]
        make_home(client, hub, user, course)
    return backups


def test_an_instructor_sees_and_manages_exactly_their_courses_backups(hub, tokens, two_courses):
    teacher, admin = ServiceClient(hub, tokens["instructor"]), ServiceClient(hub, tokens["admin"])
    mine, lab = two_courses["sec-ann", "sec"], {two_courses["sec-ann", "lab"], two_courses["lab-dan", "lab"]}

    def listed(client, query=""):
        r = client.call("GET", "/backups" + query)
        assert r.status_code == 200, r.text
        return {b["volume"] for b in r.json()["backups"]}

    assert {mine} | lab <= listed(admin)
    assert listed(teacher) == {mine}  # was empty: the reset actions shown, the backups not
    assert listed(teacher, "?user=sec-ann") == {mine}  # not sec-ann's lab backup
    assert listed(teacher, "?user=lab-dan") == set()

    # the admin page shows the same, and offers restore/delete for exactly these
    seen = sections(page(hub, tokens["instructor"], "admin").text)
    assert seen["backups"] == {mine: True}
    assert seen["students"] == {"sec-ann"} and seen["courses"] == {"sec"}
    everything = sections(page(hub, tokens["admin"], "admin").text)
    assert {everything["backups"][v] for v in {mine} | lab} == {True}
    assert {"sec-ann", "lab-dan"} <= everything["students"]

    # the other course's backups and students: refused by the API and by the page's forms
    for volume in lab:
        r = teacher.call("POST", f"/backups/{volume}/restore", json={})
        assert r.status_code == 403 and "You may not restore or delete" in r.json()["message"], r.text
        r = teacher.call("DELETE", f"/backups/{volume}?confirm={volume}")
        assert r.status_code == 403, r.text
        r = page(hub, tokens["instructor"], "admin/delete-backup", "POST", data={"backup": volume, "confirm": volume})
        assert r.status_code == 403 and "You may not restore or delete" in r.text, r.text[:300]
    for action in ("stop", "reset"):
        r = page(hub, tokens["instructor"], f"admin/{action}", "POST", data={"course": "lab", "user": "lab-dan"})
        assert r.status_code == 403 and "You may not reset lab-dan's lab environment" in html.unescape(r.text), r.text
    assert lab <= listed(admin)  # still there

    # their own course's backup: restored through the API, as the page offers
    r = teacher.call("POST", f"/backups/{mine}/restore", json={})
    assert r.status_code == 200 and r.json()["result"] == "ok", r.text
    assert r.json()["replaced"] in listed(teacher)  # the home it replaced is a backup they see


def test_instructor_of_another_course_is_refused(hub, tokens, two_courses):
    """Course lab has students with homes (two_courses): the course-wide reset of an
    instructor of sec resets none of them."""
    teacher = ServiceClient(hub, tokens["instructor"])
    r = teacher.call("POST", "/resets", json={"course": "lab", "user": "matrix-other"})
    assert r.status_code == 403
    r = teacher.call("POST", "/resets", json={"course": "lab", "all": True, "confirm": "lab"})
    assert r.status_code == 403, r.text
    assert re.match(r"You may not reset (any of )?the \d+ environments? of lab", r.json()["message"]), r.json()
    client = docker.from_env()
    for user in ("sec-ann", "lab-dan"):  # their lab homes are still there
        client.volumes.get(contract.home_volume_name(hub.prefix, user, "lab"))


# --- errors are answers: {status, message}, from one place -------------------------------------

def test_a_failed_reset_or_deletion_is_an_error_answer(hub, tokens, two_courses):
    """A home or backup held by a foreign container cannot be moved or deleted: a 500 with the
    recipe's sentence, in the same {status, message} shape as every other error."""
    client = docker.from_env()
    admin = ServiceClient(hub, tokens["admin"])
    home = contract.home_volume_name(hub.prefix, "lab-dan", "lab")
    backup = two_courses["lab-dan", "lab"]
    holder = client.containers.create("goldenhub/os-base:bookworm", ["true"], name=f"{hub.prefix}-matrix-holder",
                                      volumes={home: {"bind": "/h"}, backup: {"bind": "/b"}})
    try:
        r = admin.call("POST", "/resets", json={"course": "lab", "user": "lab-dan"})
        assert r.status_code == 500, r.text
        assert r.json() == {"status": 500, "message": r.json()["message"]}
        assert f"{home} is used by container(s) {holder.name}" in r.json()["message"]
        r = admin.call("DELETE", f"/backups/{backup}?confirm={backup}")
        assert r.status_code == 500, r.text
        assert r.json() == {"status": 500, "message": r.json()["message"]}
        assert f"{backup} is used by container(s) {holder.name}" in r.json()["message"]
    finally:
        holder.remove(force=True)
    client.volumes.get(home)
    assert backup in {b["volume"] for b in admin.call("GET", "/backups").json()["backups"]}


def test_forms_need_the_xsrf_token(hub):
    session = hub.login("xsrf-student")
    page = session.get(f"{hub.url}/services/goldenhub/", timeout=30)  # OAuth login to the service
    assert page.status_code == 200 and page.headers["X-Content-Type-Options"] == "nosniff"
    r = session.post(f"{hub.url}/services/goldenhub/reset?course=lab", data={"confirm": "lab"}, timeout=30)
    assert r.status_code == 403 and "_xsrf" in r.text
    assert "Traceback" not in r.text
