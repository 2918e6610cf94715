"""The one hub client (hub_ext.hubclient) pages through JupyterHub's user list: the hub
answers at most 200 users a request, so with 250 students the admin page dropped 50 of them
before. Now the service and `goldenhub servers list` (the same client, through asyncio.run)
show every one."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
import requests

from hub_ext import contract
from hub_ext.hubclient import HubAPI, HubAPIError
from tests.helpers import HUB_PORT, PREFIX, goldenhub, hub_running, user_token

pytestmark = pytest.mark.integration

STUDENTS = 250  # more than the 200 the hub sends in one page
COURSE = "intro-python"


@pytest.fixture(scope="module")
def paging_hub(tmp_path_factory, courses_dir):
    """A hub of its own: 250 students do not join the shared hub's user list."""
    with hub_running(tmp_path_factory.mktemp("paging-hub"), courses_dir, HUB_PORT + 70, f"{PREFIX}pg") as hub:
        yield hub


@pytest.fixture(scope="module")
def students(paging_hub) -> list[str]:
    """250 students, each with a home in the course (an empty labelled volume, as the spawner
    makes it), so each has a row on the admin page."""
    names = [f"pg{i:03d}" for i in range(STUDENTS)]
    r = paging_hub.request("POST", "/users", json={"usernames": names})
    assert r.status_code == 201, r.text
    client = docker.from_env()

    def make_home(name: str) -> None:
        client.volumes.create(contract.home_volume_name(paging_hub.prefix, name, COURSE),
                              labels={contract.LABEL_USER: name, contract.LABEL_COURSE: COURSE})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make_home, names))
    return names  # removed with the hub's prefix when it stops


def test_the_client_follows_every_page(paging_hub, students):
    hub = HubAPI(paging_hub.api, paging_hub.token)
    users = asyncio.run(hub.users())
    names = [u["name"] for u in users]
    assert set(students) <= set(names)
    assert len(names) == len(set(names))  # no page read twice
    print(f"{len(names)} users listed")


def test_every_student_is_on_the_admin_page(paging_hub, students):
    admin = user_token(paging_hub, "admin", note="paging test")
    r = requests.get(f"{paging_hub.url}/services/goldenhub/admin", headers={"Authorization": f"token {admin}"},
                     timeout=300)
    assert r.status_code == 200, r.text[-2000:]
    shown = set(re.findall(r'data-user="(pg\d{3})"', r.text))
    missing = sorted(set(students) - shown)
    assert not missing, f"{len(missing)} students missing from the admin page, e.g. {missing[:5]}"


def test_servers_list_shows_a_server_beyond_the_first_page(paging_hub, students):
    last = students[-1]  # created last: on the second page of the hub's list
    paging_hub.spawn(last, {"template": "intro-python-cpu"})
    admin = user_token(paging_hub, "admin", note="paging cli test")
    listed = goldenhub("servers", "list", env={"GOLDENHUB_HUB_URL": paging_hub.url, "JUPYTERHUB_API_TOKEN": admin})
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:3] for line in listed.stdout.splitlines() if line.startswith(last)] == \
        [[last, "running", "intro-python-cpu"]]


def test_servers_stop_goes_through_the_same_client(paging_hub, students):
    last = students[-1]
    if paging_hub.server(last) is None:
        paging_hub.spawn(last, {"template": "intro-python-cpu"})
    env = {"GOLDENHUB_HUB_URL": paging_hub.url, "JUPYTERHUB_API_TOKEN": user_token(paging_hub, "admin")}
    stopped = goldenhub("servers", "stop", last, env=env)
    assert stopped.returncode == 0 and f"stopped {last}'s server (their files are kept)" in stopped.stdout
    assert paging_hub.server(last) is None
    again = goldenhub("servers", "stop", last, env=env)
    assert again.returncode == 0 and f"{last} has no running server" in again.stdout
    unknown = goldenhub("servers", "stop", "nobody-here", env=env)
    assert unknown.returncode == 1 and "(HTTP 404 from GET /hub/api/users/nobody-here)" in unknown.stderr


def test_a_hub_that_is_not_there_is_a_sentence():
    hub = HubAPI("http://127.0.0.1:9/hub/api", "no-token")  # the discard port: nothing listens
    with pytest.raises(HubAPIError) as failed:
        asyncio.run(hub.users())
    assert failed.value.status == 502 and not failed.value.reached
    assert str(failed.value).startswith("The hub did not answer")
