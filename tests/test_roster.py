"""Roster import against a real hub: `goldenhub enrol` and the service API create accounts, put
people in the course's hub groups, record and audit every change, apply the same file again
without changing anything, move a role between groups, and with --sync unenrol an absent
student who keeps their account and home. A whole class of 500 goes through the real hub;
an instructor imports into their course only."""

from __future__ import annotations

import time

import docker
import pytest

from hub_ext import contract
from tests.helpers import ServiceClient, goldenhub, user_token

pytestmark = pytest.mark.integration

COURSE = "lab"


def cli(hub, *args: str, token: str):
    return goldenhub(*args, env={"GOLDENHUB_HUB_URL": hub.url, "JUPYTERHUB_API_TOKEN": token})


def members(hub, group: str) -> set[str]:
    r = hub.request("GET", f"/groups/{group}")
    return set(r.json()["users"]) if r.status_code == 200 else set()


def groups(hub, course: str) -> tuple[set[str], set[str]]:
    return members(hub, contract.course_group(course)), members(hub, contract.staff_group(course))


def audit(api: ServiceClient, course: str) -> list[dict]:
    r = api.call("GET", "/audit", params={"limit": 1000})
    r.raise_for_status()
    return [e for e in r.json()["entries"] if e["course"] == course]


def write(tmp_path, text: str, encoding: str = "utf-8", name: str = "roster.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


@pytest.fixture(scope="module")
def admin(hub) -> str:
    return user_token(hub, "admin", note="roster tests")


ROSTER = ("username;Display name;E-mail;Role\r\n"
          + "r9-alice;李爱丽;alice@example.cn;student\r\n"
          + "r9-bob;Bob;;STUDENT\r\n"
          + "r9-carol;Carol;carol@example.org;student\r\n"
          + "r9-teach;王老师;;instructor\r\n")


def test_dry_run_apply_reapply_role_change_and_sync(hub, admin, tmp_path):
    api = ServiceClient(hub, admin)
    before = groups(hub, COURSE)
    path = write(tmp_path, ROSTER, "gbk")

    # Dry run: the plan is printed, and the hub's groups and users are as they were.
    r = cli(hub, "enrol", COURSE, path, "--dry-run", token=admin)
    assert r.returncode == 0
    assert "Dry run for lab: 4 to enrol" in r.stdout and "Nothing was changed." in r.stdout
    assert "enrol    r9-alice  student  李爱丽  (new account)" in r.stdout
    assert "GB18030" in r.stdout and "semicolon" in r.stdout
    assert groups(hub, COURSE) == before
    assert hub.request("GET", "/users/r9-alice").status_code == 404

    # Apply: accounts made, students and staff in their groups, rows and audit with the actor.
    r = cli(hub, "enrol", COURSE, path, token=admin)
    assert r.returncode == 0 and "Applied to lab: enrolled 4" in r.stdout
    students, staff = groups(hub, COURSE)
    assert {"r9-alice", "r9-bob", "r9-carol"} <= students and "r9-teach" not in students
    assert "r9-teach" in staff
    assert hub.request("GET", "/users/r9-alice").status_code == 200
    people = {p["username"]: p for p in api.call("GET", f"/courses/{COURSE}/people").json()["people"]}
    assert people["r9-alice"]["display_name"] == "李爱丽" and people["r9-alice"]["email"] == "alice@example.cn"
    assert people["r9-alice"]["source"] == "roster" and people["r9-alice"]["last_activity"] == "never logged in"
    assert people["r9-teach"]["role"] == "instructor" and people["r9-bob"]["server"] == "stopped"
    enrolled = [e for e in audit(api, COURSE) if e["action"] == "enrol" and e["user"].startswith("r9-")]
    assert {e["user"] for e in enrolled} == {"r9-alice", "r9-bob", "r9-carol", "r9-teach"}
    assert {e["actor"] for e in enrolled} == {"admin"}
    entries = len(audit(api, COURSE))

    # The same file again: nothing changes, and it says so.
    r = cli(hub, "enrol", COURSE, path, token=admin)
    assert r.returncode == 0 and "Nothing to change in lab: all 4 people of the file are enrolled" in r.stdout
    assert len(audit(api, COURSE)) == entries
    assert groups(hub, COURSE) == (students, staff)

    # Bob becomes a TA: he moves to the staff group, and the change is audited.
    path = write(tmp_path, ROSTER.replace("r9-bob;Bob;;STUDENT", "r9-bob;Bob;;ta"), "gbk")
    r = cli(hub, "enrol", COURSE, path, token=admin)
    assert r.returncode == 0 and "changed 1 role " in r.stdout
    students, staff = groups(hub, COURSE)
    assert "r9-bob" in staff and "r9-bob" not in students
    role = [e for e in audit(api, COURSE) if e["action"] == "role" and e["user"] == "r9-bob"]
    assert role and role[0]["actor"] == "admin" and "student -> ta" in role[0]["detail"]

    # Carol has a home in the course; a synced roster without her unenrols her, keeps her
    # account and her home, and the people list shows that home as not enrolled.
    client = docker.from_env()
    home = contract.home_volume_name(hub.prefix, "r9-carol", COURSE)
    client.volumes.create(name=home, labels={contract.LABEL_USER: "r9-carol", contract.LABEL_COURSE: COURSE})
    without = "\r\n".join(line for line in ROSTER.replace("r9-bob;Bob;;STUDENT", "r9-bob;Bob;;ta").split("\r\n")
                          if not line.startswith("r9-carol"))
    path = write(tmp_path, without, "gbk")
    r = cli(hub, "enrol", COURSE, path, "--sync", "--dry-run", token=admin)
    assert "unenrol  r9-carol  (student; keeps the account and homes)" in r.stdout
    assert "r9-carol" in groups(hub, COURSE)[0]
    r = cli(hub, "enrol", COURSE, path, "--sync", token=admin)
    assert r.returncode == 0 and "unenrolled" in r.stdout
    students, staff = groups(hub, COURSE)
    assert "r9-carol" not in students | staff and {"r9-alice", "r9-bob", "r9-teach"} <= students | staff
    assert hub.request("GET", "/users/r9-carol").status_code == 200
    assert home in {v.name for v in client.volumes.list(filters={"name": home})}
    listed = api.call("GET", f"/courses/{COURSE}/people").json()
    assert "r9-carol" not in {p["username"] for p in listed["people"]}
    assert {"username": "r9-carol", "volumes": [home]} in listed["homes_not_enrolled"]
    unenrol = [e for e in audit(api, COURSE) if e["action"] == "unenrol" and e["user"] == "r9-carol"]
    assert unenrol and unenrol[0]["actor"] == "admin"


def test_a_bad_file_prints_every_problem_and_changes_nothing(hub, admin, tmp_path):
    before = groups(hub, COURSE)
    path = write(tmp_path, "username,role,email\nr9-ok,student,\nR9-Caps,student,\nr9-x,dean,\nr9-y,ta,nope\n"
                           "r9-ok,ta,\n")
    r = cli(hub, "enrol", COURSE, path, token=admin)
    assert r.returncode == 1
    assert "The roster has 5 problems; nothing was changed" in r.stderr
    for words in ["line 2: username r9-ok is also on line 6", "line 3: username 'R9-Caps' has capital letters",
                  "line 4: role 'dean' is not one of student, ta, instructor",
                  "line 5: email 'nope' is not an email address", "line 6: username r9-ok is also on line 2"]:
        assert words in r.stderr
    assert groups(hub, COURSE) == before
    assert hub.request("GET", "/users/r9-ok").status_code == 404


def test_a_name_differing_only_by_case_from_a_hub_user_is_refused(hub, admin):
    hub.request("POST", "/users/R9-Dora")  # a name made before lower-casing, e.g. by a script
    api = ServiceClient(hub, admin)
    r = api.call("POST", f"/courses/{COURSE}/roster", data=b"username\nr9-dora\n",
                 headers={"Content-Type": "text/csv"})
    print(r.text)
    assert r.status_code == 400
    assert r.json()["problems"] == ["line 2: username r9-dora differs only by case from the existing hub user "
                                    "'R9-Dora'; use that exact name, or rename one of them"]


def test_unknown_course_is_404_naming_the_courses(hub, admin):
    r = ServiceClient(hub, admin).call("POST", "/courses/no-such-course/roster", data=b"username\nx\n")
    print(r.text)
    assert r.status_code == 404 and "There is no course 'no-such-course'" in r.json()["message"]
    assert "lab" in r.json()["message"] and "intro-python" in r.json()["message"]


def test_a_class_of_500_through_the_real_hub(hub, admin):
    api = ServiceClient(hub, admin)
    course = "intro-python"
    text = "username,name,email,role\n" + "".join(f"r9s{i:03d},学生{i},r9s{i}@example.edu,student\n"
                                                  for i in range(500))
    started = time.perf_counter()
    r = api.call("POST", f"/courses/{course}/roster", data=text.encode("utf-8-sig"),
                 headers={"Content-Type": "text/csv"})
    elapsed = time.perf_counter() - started
    print(f"500-student roster applied through the hub in {elapsed:.2f} s")
    assert r.status_code == 200, r.text
    assert r.json()["applied"] and len(r.json()["enrol"]) == 500 and len(r.json()["accounts_to_create"]) == 500
    assert {f"r9s{i:03d}" for i in range(500)} <= groups(hub, course)[0]
    started = time.perf_counter()
    again = api.call("POST", f"/courses/{course}/roster", data=text.encode("utf-8-sig"))
    print(f"the same 500 again (nothing to change) in {time.perf_counter() - started:.2f} s")
    assert again.json()["unchanged"] == 500 and not again.json()["applied"]


def test_an_instructor_imports_into_their_course_only(hub, admin, tmp_path):
    hub.enrol("r9-prof", COURSE, staff=True)
    token = user_token(hub, "r9-prof", note="instructor")
    api = ServiceClient(hub, token)
    r = api.call("POST", f"/courses/{COURSE}/roster", params={"sync": "0"},
                 files={"roster": ("roster.csv", b"username,role\nr9-pupil,student\n", "text/csv")})
    print(r.text)
    assert r.status_code == 200 and r.json()["applied"]
    assert "r9-pupil" in groups(hub, COURSE)[0]
    assert [e["actor"] for e in audit(ServiceClient(hub, admin), COURSE)
            if e["action"] == "enrol" and e["user"] == "r9-pupil"] == ["r9-prof"]
    assert "r9-pupil" in {p["username"] for p in api.call("GET", f"/courses/{COURSE}/people").json()["people"]}

    before = groups(hub, "intro-python")
    r = api.call("POST", "/courses/intro-python/roster", data=b"username\nr9-intruder\n")
    print(r.text)
    assert r.status_code == 403 and "custom:goldenhub:enrol" in r.json()["message"]
    assert groups(hub, "intro-python") == before
    r = api.call("GET", "/courses/intro-python/people")
    assert r.status_code == 403 and "r9s" not in r.text
    r = api.call("GET", "/courses/no-such/people")
    assert r.status_code == 404 and "Courses you manage: lab" in r.json()["message"]
    assert "intro-python" not in r.json()["message"]
    # A student of the course sees nobody.
    student = ServiceClient(hub, user_token(hub, "r9-pupil", note="student"))
    assert student.call("GET", f"/courses/{COURSE}/people").status_code == 403
    assert student.call("POST", f"/courses/{COURSE}/roster", data=b"username\nr9-pupil2\n").status_code == 403


def test_an_oversized_upload_is_refused_with_the_limit(hub, admin):
    r = ServiceClient(hub, admin).call("POST", f"/courses/{COURSE}/roster",
                                       data=b"username\n" + b"x" * (3 * 2**20), headers={"Content-Type": "text/csv"})
    print(r.text)
    assert r.status_code == 413
    assert "a roster may be at most 2 MiB (5000 people): split it into several files" in r.json()["message"]


def test_the_people_list_shows_a_running_server_and_its_activity(hub, admin):
    api = ServiceClient(hub, admin)
    r = api.call("POST", f"/courses/{COURSE}/roster", data=b"username,name\nr9-sam,Sam\n")
    assert r.status_code == 200, r.text
    hub.spawn("r9-sam", {"template": "lab-cpu"})
    try:
        sam = next(p for p in api.call("GET", f"/courses/{COURSE}/people").json()["people"]
                   if p["username"] == "r9-sam")
        print(sam)
        assert sam["server"] == "running" and sam["display_name"] == "Sam"
        assert sam["last_activity"] != "never logged in"
    finally:
        hub.stop("r9-sam")
