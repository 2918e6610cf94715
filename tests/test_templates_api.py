"""Templates curated at runtime through the service API: validation and policy, revisions
with diffs and rollback, file-managed templates read-only, and the spawner using every
change at the next start without a hub restart."""

import pytest

from tests.helpers import RUNTIME_TEMPLATE as NEW, ServiceClient, user_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin(hub):
    return ServiceClient(hub, user_token(hub, "admin"))


@pytest.fixture(scope="module")
def student(hub):
    return ServiceClient(hub, user_token(hub, "tpl-student"))


def test_file_templates_are_listed_as_managed_by_file_and_read_only(admin):
    items = {t["id"]: t for t in admin.call("GET", "/templates").json()["templates"]}
    assert items["intro-python-cpu"]["managed_by"] == "file"
    r = admin.call("PATCH", "/templates/intro-python-cpu", json={"template": {"memory": "2G"}})
    assert r.status_code == 409 and "managed by file" in r.json()["message"]
    r = admin.call("POST", "/templates", json={"course": "x", "template": {**NEW, "id": "intro-python-cpu"}})
    assert r.status_code == 409


@pytest.mark.parametrize("change,expected", [
    ({"gpus": -1}, "template.gpus: got -1; allowed: a whole number from 0"),
    ({"image": "evil.example/miner:1"}, "is not from an allowed registry or prefix; allowed: goldenhub/"),
    ({"datasets": [{"name": "etc", "source": "/var/lib/goldenhub-other"}]}, "is outside the dataset roots"),
    ({"datasets": [{"name": "sock", "source": "/var/run/docker.sock"}]}, "may not be /, system directories"),
    ({"courseware": {"repo": "file:///etc"}}, "allowed: a URL with scheme https://"),
    ({"privileged": True}, "template.privileged: unknown field"),
])
def test_bad_templates_are_refused_and_change_nothing(admin, change, expected):
    r = admin.call("POST", "/templates", json={"course": "runtime", "template": {**NEW, "id": "bad-one", **change}})
    assert r.status_code == 400 and expected in r.json()["message"], r.text
    assert "bad-one" not in [t["id"] for t in admin.call("GET", "/templates").json()["templates"]]


def test_students_cannot_change_templates(student):
    r = student.call("POST", "/templates", json={"course": "runtime", "template": NEW})
    assert r.status_code == 403 and "custom:goldenhub:templates" in r.json()["message"]


def test_created_template_is_used_at_the_next_start_and_edits_are_revisions(hub, admin):
    r = admin.call("POST", "/templates", json={"course": "runtime", "course_title": "Runtime course", "template": NEW})
    assert r.status_code == 201, r.text
    user = "rt-student"
    hub.enrol(user, "runtime")  # the course is for its enrolled students
    hub.spawn(user, {"template": "rt-cpu"})
    assert hub.container(user).attrs["HostConfig"]["Memory"] == 512 * 2**20
    hub.stop(user)

    r = admin.call("PATCH", "/templates/rt-cpu", json={"template": {"memory": "768M"}, "comment": "more room"})
    assert r.status_code == 200 and r.json()["revision"] == 2
    hub.spawn(user)  # no hub restart: the next start has the new limit
    assert hub.container(user).attrs["HostConfig"]["Memory"] == 768 * 2**20
    hub.stop(user)

    shown = admin.call("GET", "/templates/rt-cpu").json()
    latest = shown["revisions"][0]
    assert latest["author"] == "admin" and latest["comment"] == "more room"
    assert "-memory: 512M" in latest["diff"] and "+memory: 768M" in latest["diff"]

    r = admin.call("POST", "/templates/rt-cpu/rollback", json={"revision": 1})
    assert r.status_code == 200 and r.json()["revision"] == 3
    assert admin.call("GET", "/templates/rt-cpu").json()["template"]["memory"] == "512M"

    assert admin.call("POST", "/templates/rt-cpu/disable", json={}).status_code == 200
    r = hub.start(user, {"template": "rt-cpu"})
    assert r.status_code == 400 and "No such environment template: 'rt-cpu'" in r.json()["message"]
    assert admin.call("POST", "/templates/rt-cpu/enable", json={}).status_code == 200

    assert admin.call("DELETE", "/templates/rt-cpu").status_code == 400  # needs confirm
    assert admin.call("DELETE", "/templates/rt-cpu", params={"confirm": "rt-cpu"}).status_code == 200
    assert "rt-cpu" not in [t["id"] for t in admin.call("GET", "/templates").json()["templates"]]
