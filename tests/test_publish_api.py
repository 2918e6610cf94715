"""The publishing API of the service (hub_ext.service.publish_api) on a hub of its own, with
versions written into its database as a publish writes them (hub_ext.images.versions).

Proves: only the course's staff and admins see a course's versions, roll back or publish
(an instructor of another course and a student get the refusal sentence naming the scope);
the versions carry their provenance; a rollback moves the pin (and a templates' image with
it) and is audited, an unknown or current version is refused with a sentence; a bad ref is a
400 and nothing starts; a publish while another runs is a 409 naming it; a started publish
whose process ends leaves the run failed and the lock free; the run's log is read from a byte
offset on, whole characters only; a running server is shown on the version it runs and is
left alone by restart-idle while it is in use. Pure: which rows are idle and which version
a container runs."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

import docker
import pytest
import requests
from sqlalchemy import select

from hub_ext import contract
from hub_ext.hubconfig import Settings
from hub_ext.images import servers, versions
from hub_ext.service.db import AuditEntry, open_database
from tests.helpers import HUB_PORT, PREFIX, ServiceClient, enrolled_only_course, hub_running, user_token, wait_for

A, B = "ppa", "ppb"
INTRO = "goldenhub/course-intro-python:latest"  # a sample image that exists: what version 1 "is"


# --- pure -----------------------------------------------------------------------------------

class V:
    def __init__(self, number, image_id, reference):
        self.number, self.image_id, self.reference = number, image_id, reference


def test_a_container_runs_the_version_of_its_image_id_else_of_its_reference():
    published = [V(2, "sha256:two", "reg/goldenhub/course-a@sha256:d2"), V(1, "sha256:one", "reg/x@sha256:d1")]
    assert servers.version_of(servers.Container("anything", "sha256:one"), published) == 1
    assert servers.version_of(servers.Container("reg/goldenhub/course-a@sha256:d2", "sha256:gone"), published) == 2
    assert servers.version_of(servers.Container("goldenhub/course-a:latest", "sha256:other"), published) is None
    assert servers.version_of(None, published) is None


def test_only_course_servers_idle_for_fifteen_minutes_are_idle():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

    def user(name, template, minutes, ready=True, pending=None):
        at = (now - timedelta(minutes=minutes)).isoformat()
        return {"name": name, "servers": {"": {"ready": ready, "pending": pending, "last_activity": at,
                                               "user_options": {contract.OPTION_TEMPLATE: template},
                                               "state": {contract.STATE_CONTAINER: f"c-{name}"}}}}

    users = [user("old", "a-cpu", 16), user("busy", "a-cpu", 14), user("edge", "a-cpu", 15),
             user("other", "b-cpu", 60), user("starting", "a-cpu", 60, ready=False, pending="spawn"),
             {"name": "stopped", "servers": {}}]
    containers = {"c-old": servers.Container("x", "sha256:one"), "c-busy": None, "c-edge": None,
                  "c-starting": None}
    rows = servers.make_rows(users, {"a-cpu"}, containers, [V(1, "sha256:one", "r")], now)
    assert [(r.user, r.idle, r.version, r.state) for r in rows] == [
        ("busy", False, None, "running"), ("edge", True, None, "running"), ("old", True, 1, "running"),
        ("starting", False, None, "starting")]


def test_the_log_is_read_in_whole_characters_from_an_offset(tmp_path, monkeypatch):
    from hub_ext.service import publish_api

    monkeypatch.setenv("GOLDENHUB_STATE_DIR", str(tmp_path))
    (tmp_path / "publish").mkdir()
    (tmp_path / "publish" / "7.log").write_bytes("ab构建\n".encode())  # 构 and 建: 3 bytes each
    assert publish_api.read_log(7, 0, limit=4) == ("ab", 2)  # 构 cut after 2 of its bytes: left for later
    assert publish_api.read_log(7, 2, limit=4) == ("构", 5)
    assert publish_api.read_log(7, 5) == ("建\n", 9)
    assert publish_api.read_log(7, 9) == ("", 9)
    assert publish_api.read_log(8, 0) == ("", 0)  # no log yet


# --- a hub of its own -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pub_hub(tmp_path_factory):
    courses = tmp_path_factory.mktemp("pp-courses")
    for course in (A, B):  # each course's own image: what a pin replaces
        enrolled_only_course(courses, course, image=f"goldenhub/course-{course}:latest")
    # publishing "on" (a registry nobody answers: a real publish fails, which the tests use)
    env = {"GOLDENHUB_REGISTRY": "127.0.0.1:9"}
    with hub_running(tmp_path_factory.mktemp("pp-hub"), courses, HUB_PORT + 160, f"{PREFIX}pp", env=env) as hub:
        hub.db = open_database(Settings.default_db_url(hub.state_dir))
        hub.enrol("insa", A, staff=True)
        hub.enrol("insb", B, staff=True)
        hub.enrol("stu", A)
        hub.clients = {name: ServiceClient(hub, user_token(hub, name)) for name in ("admin", "insa", "insb", "stu")}
        yield hub


def publish_version(hub, course: str, image_id: str, reference: str, commit: str) -> int:
    """A version as a finished publish records it, pinned."""
    with hub.db() as s:
        v = versions.record_version(
            s, course, reference=reference, image_id=image_id, actor="insa", commit=commit, ref="main",
            requirements_digest="sha256:" + "ab" * 32,
            labels={contract.LABEL_ENV_COMMIT: commit, contract.LABEL_ENV_REF: "main",
                    contract.LABEL_BASE_IMAGE: "goldenhub/os-base:bookworm",
                    contract.LABEL_FRAMEWORK_IMAGE: "goldenhub/framework-scipy:1",
                    contract.LABEL_REQUIREMENTS: "sha256:" + "ab" * 32,
                    "org.opencontainers.image.created": "2026-11-01T10:00:00+00:00"})
        versions.pin(s, course, v, "publish", "insa")
        s.commit()
        return v.number


@pytest.fixture(scope="module")
def two_versions(pub_hub):
    intro = docker.from_env().images.get(INTRO).id
    one = publish_version(pub_hub, A, intro, INTRO, "1" * 40)
    two = publish_version(pub_hub, A, "sha256:" + "0" * 64, INTRO, "2" * 40)
    return one, two


def refused(r, course: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json()["message"].startswith(f"You may not publish or roll back the image of {course}")
    assert "custom:goldenhub:publish" in r.json()["message"]


@pytest.mark.integration
def test_versions_with_provenance_for_staff_and_admins_only(pub_hub, two_versions):
    c = pub_hub.clients
    for who in ("admin", "insa"):
        r = c[who].call("GET", f"/courses/{A}/images")
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["pin"]["number"] == 2 and [v["number"] for v in data["versions"]] == [2, 1]
        p = data["versions"][1]["provenance"]
        assert p["commit"] == "1" * 40 and p["ref"] == "main" and p["base_image"] == "goldenhub/os-base:bookworm"
        assert p["framework_image"] == "goldenhub/framework-scipy:1" and p["built"].startswith("2026-11-01")
        assert data["versions"][1]["published_by"] == "insa" and data["pin_history"][0]["version"] == 2
    for who in ("insb", "stu"):
        refused(c[who].call("GET", f"/courses/{A}/images"), A)
        refused(c[who].call("POST", f"/courses/{A}/rollback", json={"version": 1}), A)
        refused(c[who].call("POST", f"/courses/{A}/publish", json={}), A)
        refused(c[who].call("POST", f"/courses/{A}/restart-idle", json={}), A)
    refused(c["insa"].call("GET", f"/courses/{B}/images"), B)
    assert c["insb"].call("GET", f"/courses/{B}/images").json()["versions"] == []


@pytest.mark.integration
def test_rollback_moves_the_pin_and_is_audited_refusals_say_why(pub_hub, two_versions):
    c = pub_hub.clients["insa"]
    r = c.call("POST", f"/courses/{A}/rollback", json={"version": 9})
    assert r.status_code == 404 and r.json()["message"] == f"{A} has no published version 9; published versions: 2, 1"
    r = c.call("POST", f"/courses/{A}/rollback", json={"version": "../1"})
    assert r.status_code == 404 and "published versions: 2, 1" in r.json()["message"]
    r = c.call("POST", f"/courses/{A}/rollback", json={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json()["pin"]["number"] == 1
    images = c.call("GET", f"/courses/{A}/images").json()
    assert images["pin"]["number"] == 1 and images["pin_history"][0]["action"] == "rollback"
    listed = pub_hub.clients["admin"].call("GET", "/templates").json()["templates"]
    template = next(t for t in listed if t["id"] == f"{A}-cpu")
    assert INTRO in str(template), template  # the course's template now runs version 1's image
    admin_page = requests.get(f"{pub_hub.url}/services/goldenhub/admin", timeout=60,
                              headers=pub_hub.clients["admin"].headers).text
    row = admin_page.split(f'data-template="{A}-cpu"', 1)[1].split("</tr>", 1)[0]
    assert "version 1 (pinned)" in row and f"declared: goldenhub/course-{A}:latest" in row
    r = c.call("POST", f"/courses/{A}/rollback", json={"version": 1})
    assert r.status_code == 409 and r.json()["message"] == f"{A} already uses version 1; nothing changed"
    with pub_hub.db() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "rollback", AuditEntry.course == A)).all()
    detail = f"rolled back to version 1 ({images['pin']['reference']})"  # read in the reader's language
    assert [(e.actor, e.detail_text) for e in rows] == [("insa", detail)]


@pytest.mark.integration
def test_a_bad_ref_starts_nothing_a_second_publish_is_refused_and_a_dead_process_fails_its_run(pub_hub):
    c = pub_hub.clients["insa"]
    for ref in ("../etc", "-x", "a..b", "a b", "x" * 201, "main;rm"):
        r = c.call("POST", f"/courses/{A}/publish", json={"ref": ref})
        assert r.status_code == 400 and "is not a git branch, tag or commit name" in r.json()["message"], (ref, r.text)
    with pub_hub.db() as s:
        assert versions.runs(s, A) == []
    # a publish of A that this test process holds: a second one is refused, naming it
    held = versions.begin_run(pub_hub.db, A, "main", "insb", holder=f"{socket.gethostname()}:{os.getpid()}")
    r = c.call("POST", f"/courses/{A}/publish", json={"ref": "main"})
    assert r.status_code == 409, r.text
    assert r.json()["message"].startswith(f"A publish of {A} is already running: publish {held.id}, started by insb")
    versions.finish_run(pub_hub.db, held.id, ok=False, message="stopped by the test")
    # a real start: the publish process cannot reach the registry (or is refused), so its run fails
    r = c.call("POST", f"/courses/{A}/publish", json={"ref": "main"})
    assert r.status_code == 202, r.text
    run = r.json()["run"]
    assert run["state"] == "running" and run["actor"] == "insa" and run["ref"] == "main"
    done = wait_for(lambda: (a := c.call("GET", f"/publish/{run['id']}").json())["state"] != "running" and a, 600,
                    "the publish process ending")
    assert done["state"] == "failed" and done["message"], done
    with pub_hub.db() as s:  # the lock is free again
        assert s.get(versions.PublishLock, A) is None


@pytest.mark.integration
def test_the_run_log_is_read_from_an_offset_for_those_who_may_publish(pub_hub):
    run = versions.begin_run(pub_hub.db, B, "", "insb", holder=f"{socket.gethostname()}:{os.getpid()}")
    try:
        log = pub_hub.state_dir / "publish" / f"{run.id}.log"
        log.parent.mkdir(mode=0o700, exist_ok=True)
        first = "build: pip install numpy\n构建镜像：第一步\n"
        log.write_text(first, encoding="utf-8")
        c = pub_hub.clients["insb"]
        r = c.call("GET", f"/publish/{run.id}")
        assert r.status_code == 200, r.text
        a = r.json()
        assert (a["state"], a["log"], a["next_offset"]) == ("running", first, len(first.encode()))
        with log.open("a", encoding="utf-8") as f:
            f.write("smoke: 1 notebook ran\n")
        b = c.call("GET", f"/publish/{run.id}", params={"offset": a["next_offset"]}).json()
        assert b["log"] == "smoke: 1 notebook ran\n"
        assert c.call("GET", f"/publish/{run.id}", params={"offset": b["next_offset"]}).json()["log"] == ""
        refused(pub_hub.clients["insa"].call("GET", f"/publish/{run.id}"), B)
        refused(pub_hub.clients["stu"].call("GET", f"/publish/{run.id}"), B)
        r = c.call("GET", f"/publish/{run.id}", params={"offset": "-1"})
        assert r.status_code == 400 and "\"offset\" must be a whole number" in r.json()["message"]
        r = c.call("GET", "/publish/999999")
        assert r.status_code == 404 and r.json()["message"] == "There is no publish 999999."
    finally:
        versions.finish_run(pub_hub.db, run.id, ok=True)


@pytest.mark.integration
def test_a_server_shows_its_version_and_restart_idle_leaves_it_while_in_use(pub_hub, two_versions):
    hub, c = pub_hub, pub_hub.clients["insa"]
    with hub.db() as s:  # version 1 (the sample image) is the pin while stu starts
        if versions.current_pins(s, [A])[A].number != 1:
            versions.rollback(s, A, 1, "insa")
            s.commit()
    hub.spawn("stu", {contract.OPTION_TEMPLATE: f"{A}-cpu"})
    try:
        # version 3: another image, pinned after stu started
        three = publish_version(hub, A, "sha256:" + "3" * 64, INTRO, "3" * 40)
        data = c.call("GET", f"/courses/{A}/images").json()
        assert [(r["user"], r["template"], r["version"], r["idle"]) for r in data["servers"]] == [
            ("stu", f"{A}-cpu", 1, False)]
        r = c.call("POST", f"/courses/{A}/restart-idle", json={"version": 1})
        assert r.status_code == 409 and "roll back to version 1 first" in r.json()["message"]
        r = c.call("POST", f"/courses/{A}/restart-idle", json={})
        assert r.status_code == 200, r.text
        assert r.json() == {"course": A, "version": three, "restarted": [],
                            "left": [{"user": "stu", "template": f"{A}-cpu", "version": 1, "reason": "active"}]}
        assert hub.server("stu")["ready"]  # still running, untouched
    finally:
        hub.request("DELETE", "/users/stu/server")
