"""The goldenhub service's REST API under /services/goldenhub/api: authentication, scopes,
bad input, and resets that never lose a student's files."""

import json

import docker
import pytest

from hub_ext import contract
from tests.helpers import ServiceClient, user_token, volume_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clients(hub):
    r = hub.request("POST", "/groups/sec-students", json={})
    assert r.status_code in (201, 409)
    for name in ("sec-ann", "admin", "sec-teacher", "lab-bob", "lab-cat"):
        hub.ensure_user(name)
    hub.request("POST", "/groups/sec-students/users", json={"users": ["sec-ann"]}).raise_for_status()
    return {name: ServiceClient(hub, user_token(hub, name))
            for name in ("sec-ann", "admin", "sec-teacher", "lab-bob", "lab-cat")}


def test_no_token_is_401_json(hub):
    r = ServiceClient(hub).call("GET", "/")
    assert r.status_code == 401 and r.json()["status"] == 401


def test_openapi_is_served(hub):
    r = ServiceClient(hub).call("GET", "/openapi.json")
    assert r.status_code == 200 and "/resets" in r.json()["paths"]


def test_admin_holds_the_goldenhub_scopes(clients):
    scopes = clients["admin"].call("GET", "/").json()["scopes"]
    assert {"custom:goldenhub:reset", "custom:goldenhub:templates", "custom:goldenhub:branding"} <= set(scopes)
    assert clients["lab-bob"].call("GET", "/").json()["scopes"] == []


@pytest.mark.parametrize("body,status,message", [
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe{}", 400, "not valid UTF-8"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"x" * 70000, 413, "too large"),
    (json.dumps({"course": "lab", "evil": 1}).encode(), 400, "Unknown fields: evil"),
    (json.dumps({"course": "nope"}).encode(), 400, "There is no course 'nope'"),
    (json.dumps({"course": "lab", "all": True}).encode(), 400, 'needs "confirm": "lab"'),
])
def test_bad_input_is_a_clear_4xx(clients, body, status, message):
    r = clients["lab-bob"].call("POST", "/resets", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["status"] == status and message in r.json()["message"]


def test_scopes_decide_who_may_reset_whom(clients):
    # a student may not reset another student
    r = clients["lab-bob"].call("POST", "/resets", json={"course": "lab", "user": "lab-cat"})
    assert r.status_code == 403 and "custom:goldenhub:reset" in r.json()["message"]
    # an instructor of course sec may reset sec's students, but nobody in course lab
    assert clients["sec-teacher"].call("POST", "/resets", json={"course": "sec", "user": "sec-ann"}).status_code == 200
    r = clients["sec-teacher"].call("POST", "/resets", json={"course": "lab", "user": "lab-cat"})
    assert r.status_code == 403
    # students cannot read the audit log or restore backups; admins can read it
    assert clients["lab-bob"].call("GET", "/audit").status_code == 403
    entries = clients["admin"].call("GET", "/audit").json()["entries"]
    assert any(e["actor"] == "sec-teacher" and e["user"] == "lab-cat" and e["result"] == "refused" for e in entries)
    assert any(e["actor"] == "sec-teacher" and e["user"] == "sec-ann" and e["result"] == "ok" for e in entries)


def test_reset_keeps_every_file_in_a_backup_that_an_admin_restores(hub, clients):
    user = "lab-bob"
    hub.spawn(user, {"template": "lab-cpu"})
    assert hub.exec(user, "cd ~ && echo work > notes.txt && mkdir -p .hidden && echo h > .hidden/f"
                          " && head -c 50000000 /dev/urandom > big.bin && echo mine >> lab/README.md")[0] == 0
    home = contract.home_volume_name(hub.prefix, user, "lab")
    before = volume_files(home)

    r = clients[user].call("POST", "/resets", json={"course": "lab"})  # self-service
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["result"] == "ok" and hub.server(user) is None
    backup = result["backup"]
    assert volume_files(backup) == before  # byte for byte, hidden and large files too

    listed = clients[user].call("GET", "/backups").json()["backups"]
    assert [b["volume"] for b in listed] == [backup]

    hub.spawn(user)  # a fresh home with freshly pulled courseware
    try:
        assert hub.exec(user, "ls -a ~")[1].split().count("notes.txt") == 0
        assert "mine" not in hub.exec(user, "cat ~/lab/README.md")[1]
    finally:
        hub.stop(user)

    assert clients[user].call("POST", f"/backups/{backup}/restore").status_code == 403
    r = clients["admin"].call("POST", f"/backups/{backup}/restore")
    assert r.status_code == 200, r.text
    assert volume_files(home) == before
    replaced = r.json()["replaced"]
    assert replaced  # the fresh home it replaced is itself kept

    assert clients["admin"].call("DELETE", f"/backups/{replaced}").status_code == 400  # needs confirm
    assert clients["admin"].call("DELETE", f"/backups/{replaced}", params={"confirm": replaced}).status_code == 200
    assert replaced not in [b["volume"] for b in clients["admin"].call("GET", "/backups").json()["backups"]]


def test_course_wide_reset_and_races_leave_a_consistent_state(hub, clients):
    from concurrent.futures import ThreadPoolExecutor

    for user in ("lab-cat", "race-1", "race-2"):
        hub.spawn(user, {"template": "lab-cpu"})
        hub.exec(user, f"echo {user} > ~/mine.txt")
    with ThreadPoolExecutor(6) as pool:
        jobs = [pool.submit(clients["admin"].call, "POST", "/resets",
                            json={"course": "lab", "all": True, "confirm": "lab"}),
                pool.submit(clients["lab-cat"].call, "POST", "/resets", json={"course": "lab"}),
                pool.submit(hub.start, "race-1", {"template": "lab-cpu"}),
                pool.submit(clients["admin"].call, "POST", "/resets", json={"course": "lab", "user": "race-2"})]
        responses = [j.result() for j in jobs]
    for r in responses:
        # a failure is the recipe's own sentence (a single reset's as an error answer), never an internal error
        assert r.status_code < 500 or r.json().get("results") or "Something went wrong" not in r.json()["message"], r.text
    for user in ("lab-cat", "race-1", "race-2"):
        hub.request("DELETE", f"/users/{user}/server")
    client = docker.from_env()
    for user in ("lab-cat", "race-1", "race-2"):
        home = contract.home_volume_name(hub.prefix, user, "lab")
        places = [v.name for v in client.volumes.list(filters={"label": f"goldenhub.user={user}"})]
        found = [p for p in places if "./mine.txt" in volume_files(p)]
        assert found, f"{user}'s file is in no home and no backup: {places}"
        assert home in places or any(p.startswith(home + "-backup-") for p in places)
