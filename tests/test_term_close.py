"""End of term on a real hub with real Docker: a close moves every home of the course (enrolled
or not) to a verified backup holding every file, stops the course's servers and tells the
student why, unenrols the students and keeps the staff, exports one private tar per
student, audits who did it; a refused or unconfirmed close changes nothing; a second close
is harmless; the command line exports into a directory of the admin's choosing.

Runs its own hub (GOLDENHUB_TEST_PREFIX + "t", GOLDENHUB_TEST_PORT + 40) with two
enrolled-only courses, t9a and t9b (and t9c for a close that partly fails)."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

import docker
import pytest

from hub_ext import contract
from hub_ext.accounts import records
from hub_ext.homes import term
from hub_ext.homes.owner import Owner
from hub_ext.hubconfig import Settings
from hub_ext.i18n.deferred import told
from hub_ext.service.db import open_database
from tests.helpers import (HUB_PORT, PREFIX, SMALL_HOME, ServiceClient, enrolled_only_course, goldenhub, hub_running,
                           manifest, run_in_volumes, user_token, volume_files)

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def term_hub(tmp_path_factory, gateway):
    courses = tmp_path_factory.mktemp("term-courses")
    for course in ("t9a", "t9b", "t9c"):
        enrolled_only_course(courses, course, title=f"Term {course}")
    with hub_running(tmp_path_factory.mktemp("term-hub"), courses, HUB_PORT + 40, f"{PREFIX}t") as hub:
        yield hub


@pytest.fixture(scope="module")
def db(term_hub):
    return open_database(Settings.default_db_url(term_hub.state_dir))


def seed_home(hub, user: str, course: str, text: str) -> str:
    """A home volume as the spawner makes it (labels), holding SMALL_HOME plus one file."""
    client = docker.from_env()
    name = contract.home_volume_name(hub.prefix, user, course)
    client.volumes.create(name=name, labels={contract.LABEL_USER: user, contract.LABEL_COURSE: course})
    run_in_volumes(client, SMALL_HOME + f"echo '{text}' > /h/mine.txt\n", {name: "/h"})
    return name


def members(hub, group: str) -> list[str]:
    r = hub.request("GET", f"/groups/{group}")
    return sorted(r.json()["users"]) if r.status_code == 200 else []


def volumes(hub) -> list[str]:
    return sorted(v.name for v in docker.from_env().volumes.list(filters={"name": f"{hub.prefix}-"}))


def snapshot(hub) -> dict:
    return {"volumes": volumes(hub), "t9a": members(hub, "course:t9a"), "t9b": members(hub, "course:t9b"),
            "staff": members(hub, "course:t9a:staff"), "s1 running": bool((hub.server("s1") or {}).get("ready"))}


@pytest.fixture(scope="module")
def course_a(term_hub, db):
    """t9a: s1 (a running server with a file), s2 (a home), former (a home, not enrolled any
    more), instructor i1 (staff); rows as a roster would write them. t9b: s9 with a home."""
    hub = term_hub
    for user in ("s1", "s2"):
        hub.enrol(user, "t9a")
    hub.enrol("i1", "t9a", staff=True)
    hub.enrol("s9", "t9b")
    with db() as s:
        for user, role in (("s1", "student"), ("s2", "student"), ("i1", "instructor")):
            records.upsert_enrolment(s, "t9a", user, role, "admin", "roster")
        records.upsert_enrolment(s, "t9b", "s9", "student", "admin", "roster")
        s.commit()
    hub.spawn("s1", {"template": "t9a-cpu"})
    code, out = hub.exec("s1", "echo 'my essay' > ~/essay.txt")
    assert code == 0, out
    homes = {"s2": seed_home(hub, "s2", "t9a", "s2 was here"), "former": seed_home(hub, "former", "t9a", "old"),
             "s9": seed_home(hub, "s9", "t9b", "s9 in b")}
    homes["s1"] = contract.home_volume_name(hub.prefix, "s1", "t9a")
    return homes


def test_refused_or_unconfirmed_closes_change_nothing(term_hub, course_a):
    hub = term_hub
    before = snapshot(hub)
    assert before["s1 running"] and before["t9a"] == ["s1", "s2"] and before["staff"] == ["i1"]
    admin = ServiceClient(hub, user_token(hub, "admin"))
    for body, sentence in (({}, "needs the course id typed as confirmation"),
                           ({"confirm": "t9b"}, "needs the course id typed as confirmation"),
                           ({"confirm": "t9a", "export": "yes"}, "\"export\" must be true or false"),
                           ({"confirm": "t9a", "path": "/etc"}, "Unknown fields: path; allowed: confirm, export")):
        r = admin.call("POST", "/courses/t9a/term-close", json=body)
        assert r.status_code == 400 and sentence in r.json()["message"], (body, r.text)
    r = admin.call("POST", "/courses/no-such/term-close", json={"confirm": "no-such"})
    assert r.status_code == 404 and "There is no course no-such" in r.json()["message"]
    instructor = ServiceClient(hub, user_token(hub, "i1"))
    r = instructor.call("POST", "/courses/t9b/term-close", json={"confirm": "t9b"})
    assert r.status_code == 403 and "You may not close the term of t9b" in r.json()["message"]
    r = ServiceClient(hub, user_token(hub, "s2")).call("POST", "/courses/t9a/term-close", json={"confirm": "t9a"})
    assert r.status_code == 403 and "You may not close the term of t9a" in r.json()["message"]
    # The page: what will happen, then a wrong typed confirmation.
    page = f"{hub.url}/services/goldenhub/admin/courses/t9a/close"
    headers = {"Authorization": f"token {user_token(hub, 'i1')}"}
    import requests

    r = requests.get(page, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    assert ("Every student&#39;s home in t9a moves to a dated backup (restore it from Backups); servers stop; "
            "students are unenrolled; nothing is deleted.") in r.text
    assert "s1, s2" in r.text and "i1" in r.text
    r = requests.post(page, headers=headers, data={"confirm": "t9"}, timeout=60)
    assert r.status_code == 400 and "Not closed: type the course id t9a to confirm. Nothing was changed." in r.text
    assert requests.get(page.replace("t9a", "t9b"), headers=headers, timeout=60).status_code == 403
    assert snapshot(hub) == before


def test_instructor_closes_the_term_every_home_is_backed_up_exported_and_students_unenrolled(term_hub, course_a, db):
    hub, client = term_hub, docker.from_env()
    # s1's server runs: its Jupyter runtime files change as it stops, so its student files are compared.
    before = {user: volume_files(home) if user == "s1" else manifest(client, home) for user, home in course_a.items()}
    instructor = ServiceClient(hub, user_token(hub, "i1"))
    r = instructor.call("POST", "/courses/t9a/term-close", json={"confirm": "t9a", "export": True})
    assert r.status_code == 200, r.text
    result = r.json()
    print(result["message"])
    assert result["result"] == "ok" and result["failures"] == []
    assert (result["homes_backed_up"], result["servers_stopped"], result["students_unenrolled"],
            result["staff_kept"]) == (3, 1, 2, 1)
    # Every home of t9a is gone into a backup holding every file; t9b is untouched.
    names = volumes(hub)
    for user in ("s1", "s2", "former"):
        assert course_a[user] not in names
        backup = next(h["backup"] for h in result["homes"] if h["user"] == user)
        assert backup.startswith(course_a[user] + "-backup-") and backup in names
        assert (volume_files(backup) if user == "s1" else manifest(client, backup)) == before[user], user
    assert course_a["s9"] in names and manifest(client, course_a["s9"]) == before["s9"]
    # s1's server stopped, and s1 is told why.
    s1 = hub.request("GET", "/users/s1?include_stopped_servers=1").json()["servers"][""]
    assert not s1.get("ready") and "reset your Term t9a environment" in told(s1["state"][contract.STATE_STOP_REASON])
    # Students unenrolled (group and rows); the instructor stays; course t9b unchanged.
    assert members(hub, "course:t9a") == [] and members(hub, "course:t9a:staff") == ["i1"]
    assert members(hub, "course:t9b") == ["s9"]
    with db() as s:
        assert sorted(records.enrolments_of(s, "t9a")) == ["i1"] and sorted(records.enrolments_of(s, "t9b")) == ["s9"]
    # One private tar per student, with the home's files, owners and modes.
    export = Path(result["export_dir"])
    assert export.parent == hub.state_dir / "exports" and export.name.startswith("t9a-")
    assert stat.S_IMODE(export.stat().st_mode) == 0o700
    assert sorted(p.name for p in export.iterdir()) == ["former.tar", "s1.tar", "s2.tar"]
    for tar_path in export.iterdir():
        assert stat.S_IMODE(tar_path.stat().st_mode) == 0o600
    with tarfile.open(export / "s2.tar") as tar:
        assert tar.extractfile("./mine.txt").read() == b"s2 was here\n"
        assert tar.getmember("./private.key").mode & 0o777 == 0o600 and tar.getmember("./notes.txt").uid == 1000
    with tarfile.open(export / "s1.tar") as tar:
        assert tar.extractfile("./essay.txt").read() == b"my essay\n"
    # Audited with who did it.
    audit = ServiceClient(hub, user_token(hub, "admin")).call("GET", "/audit").json()["entries"]
    close = [e for e in audit if e["action"] == "term-close" and e["user"] == ""]
    assert close and close[0]["actor"] == "i1" and close[0]["result"] == "ok"
    assert "3 homes moved to backups, 1 server stopped, 2 students unenrolled" in close[0]["detail"]
    unenrolled = {e["user"] for e in audit if e["action"] == "unenrol" and e["detail"] == "term closed"}
    assert unenrolled == {"s1", "s2"}
    # s1 may no longer start t9a (an enrolled-only course): the sentence lists what they may start.
    r = hub.start("s1", {"template": "t9a-cpu"})
    assert r.status_code == 400 and "No such environment template: 't9a-cpu'" in r.json()["message"]


def test_a_second_close_is_harmless(term_hub, course_a):
    hub = term_hub
    before = snapshot(hub)
    r = ServiceClient(hub, user_token(hub, "admin")).call("POST", "/courses/t9a/term-close", json={"confirm": "t9a"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["homes_backed_up"], result["servers_stopped"], result["students_unenrolled"]) == (0, 0, 0)
    assert result["result"] == "ok" and result["export_dir"] is None
    assert snapshot(hub) == before


def test_the_command_line_closes_a_term_and_exports_into_a_directory(term_hub, course_a, tmp_path):
    hub = term_hub
    env = {"JUPYTERHUB_API_TOKEN": user_token(hub, "admin"), "GOLDENHUB_HUB_URL": hub.url,
           "GOLDENHUB_PREFIX": hub.prefix}
    before = snapshot(hub)
    refused = goldenhub("term", "close", "t9b", env=env, stdin="t9a\n")
    assert refused.returncode == 1 and "Not confirmed" in refused.stderr and snapshot(hub) == before
    out = tmp_path / "archive"
    done = goldenhub("term", "close", "t9b", "--export", str(out), "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert "Term of t9b closed: 1 home moved to a backup, 0 servers stopped, 1 student unenrolled" in done.stdout
    [folder] = list(out.iterdir())
    assert folder.name.startswith("t9b-") and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert f"exported s9: {folder / 's9.tar'}" in done.stdout
    with tarfile.open(folder / "s9.tar") as tar:
        assert tar.extractfile("./mine.txt").read() == b"s9 in b\n"
    assert stat.S_IMODE((folder / "s9.tar").stat().st_mode) == 0o600
    assert members(hub, "course:t9b") == [] and course_a["s9"] not in volumes(hub)
    assert members(hub, "course:t9a:staff") == ["i1"]
    # Instructors of t9a cannot close t9b from the command line either: the service's sentence.
    env["JUPYTERHUB_API_TOKEN"] = user_token(hub, "i1")
    r = goldenhub("term", "close", "t9b", "--yes", env=env)
    assert r.returncode == 1 and "You may not close the term of t9b" in r.stderr


def test_a_close_that_fails_for_one_student_goes_on_keeps_their_home_and_a_second_close_finishes(term_hub):
    """Through the page (token login) with export: c1's home is held by a container that is
    not the student's server, so moving it is refused; c2's close goes on; nothing is deleted."""
    hub, client = term_hub, docker.from_env()
    for user in ("c1", "c2"):
        hub.enrol(user, "t9c")
    homes = {user: seed_home(hub, user, "t9c", f"{user} text") for user in ("c1", "c2")}
    c1_before = manifest(client, homes["c1"])
    holder = client.containers.create("goldenhub/os-base:bookworm", ["true"], name=f"{hub.prefix}-holder",
                                      volumes={homes["c1"]: {"bind": "/h", "mode": "ro"}})
    token = user_token(hub, "admin")
    url = f"{hub.url}/services/goldenhub/admin/courses/t9c/close"
    import requests

    r = requests.post(url, headers={"Authorization": f"token {token}"}, data={"confirm": "t9c", "export": "yes"},
                      timeout=300)
    assert r.status_code == 200, r.text
    assert "Term of Term t9c closed, with problems" in r.text
    assert f"is used by container(s) {hub.prefix}-holder" in r.text and "Close the term again to retry" in r.text
    assert manifest(client, homes["c1"]) == c1_before  # untouched
    assert homes["c2"] not in volumes(hub) and members(hub, "course:t9c") == []
    exports = sorted((hub.state_dir / "exports").glob("t9c-*/*.tar"))
    assert [p.name for p in exports] == ["c2.tar"]
    holder.remove()
    r = ServiceClient(hub, token).call("POST", "/courses/t9c/term-close", json={"confirm": "t9c"})
    assert r.status_code == 200 and r.json()["result"] == "ok" and r.json()["homes_backed_up"] == 1, r.text
    backup = r.json()["homes"][0]["backup"]
    assert homes["c1"] not in volumes(hub) and manifest(client, backup) == c1_before


def test_an_export_interrupted_by_a_crash_leaves_a_container_that_is_cleaned_up(client, prefix):
    """A dead process's export container would keep its backup 'in use' (never deletable):
    the next export, or the service's start, removes it; a live process's is kept."""
    volume = f"{prefix}-home-x--c-backup-20260101T000000Z"
    client.volumes.create(name=volume)
    me = Owner.current()
    dead = Owner(me.host, me.boot, me.pid, "not-this-start").label()
    made = {}
    for who, owner in (("dead", dead), ("live", me.label())):
        made[who] = client.api.create_container(
            "goldenhub/os-base:bookworm", ["true"], name=f"{prefix}-export-{who}",
            labels={contract.LABEL_KIND: contract.KIND_EXPORT_HELPER, contract.LABEL_OWNER: owner,
                    contract.LABEL_SOURCE: volume})["Id"]
    assert term.remove_stale_exporters(client, prefix) == [volume]
    assert [c.name for c in client.containers.list(all=True, filters={"name": f"{prefix}-export-"})] == \
        [f"{prefix}-export-live"]
    assert term.remove_stale_exporters(client, "someone-else") == []
