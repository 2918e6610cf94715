"""The Docker Swarm backend, live on a SINGLE-NODE swarm on this host's engine (the multi-node
cluster, fake GPUs and killed workers are N-H4's tests/swarm_cluster.py): a real hub with
GOLDENHUB_BACKEND=swarm starts a student's server as a Swarm service, the student reaches
JupyterLab through the proxy, the service runs as uid 1000 with the template's limits, stop
removes it, the home volume survives with the student's file, the second start is pinned to the
home's node, and a home whose node is unavailable gets one sentence and nothing started.

The swarm is initialised here only if the engine is in none (`--advertise-addr 127.0.0.1`),
and left at the end only if it was; only objects with this run's prefix are touched."""

from __future__ import annotations

import subprocess

import docker
import pytest
import requests

from hub_ext import contract
from hub_ext.homes import resets
from spawner import swarm
from tests.helpers import (HELPER, HUB_PORT, PREFIX, hub_running, run_in_volumes, start_hub, tear_down, user_token,
                           wait_for)

# Its own prefix and ports: the session hub (PREFIX, HUB_PORT) runs beside these hubs, and
# a hub's teardown removes every container and volume of its prefix.
SW = f"{PREFIX}sw"
SW_PORT = HUB_PORT + 600  # and +610, +620 (each hub takes PORT..PORT+3 and PORT+27)

pytestmark = pytest.mark.integration

COURSE, TEMPLATE = "lab", "lab-cpu"  # tests/conftest.py's courses_dir: 1 CPU, 512M, a dataset, courseware


@pytest.fixture(scope="module")
def single_node_swarm():
    """(client, whether this module initialised the swarm)."""
    client = docker.from_env()
    state = client.info()["Swarm"]["LocalNodeState"]
    initialised = False
    if state == "inactive":
        subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=True,
                       capture_output=True, timeout=120)
        initialised = True
    elif state != "active" or not client.info()["Swarm"].get("ControlAvailable"):
        pytest.skip(f"this engine is a swarm {state} node without a manager here: the test needs a manager")
    try:
        yield client, initialised
    finally:
        try:
            remove_swarm_objects(client)
        finally:
            if initialised:
                subprocess.run(["docker", "swarm", "leave", "--force"], check=False, capture_output=True,
                               timeout=120)


def remove_swarm_objects(client) -> None:
    """Only this run's services and configs (other helpers share the engine)."""
    for s in client.api.services(filters={"name": f"{SW}-"}):
        if s["Spec"]["Name"].startswith(f"{SW}-"):
            client.api.remove_service(s["ID"])
    def ours():
        return [c for c in client.containers.list(all=True, filters={"label": "com.docker.swarm.service.name"})
                if c.labels["com.docker.swarm.service.name"].startswith(f"{SW}-")]

    wait_for(lambda: not ours(), 120, "this run's task containers going")
    for c in client.api.configs(filters={"name": f"{SW}-"}):
        if c["Spec"]["Name"].startswith(f"{SW}-"):
            client.api.remove_config(c["ID"])


@pytest.fixture(scope="module")
def swarm_hub(single_node_swarm, tmp_path_factory, courses_dir):
    client, initialised = single_node_swarm
    with hub_running(tmp_path_factory.mktemp("swarm-hub"), courses_dir, SW_PORT, SW,
                     env={"GOLDENHUB_BACKEND": "swarm"}) as hub:
        yield hub, client, initialised
        remove_swarm_objects(client)


def service_of(client, user: str) -> dict:
    return client.api.inspect_service(swarm.service_name(contract.container_name(SW, user)))


def task_container(client, user: str):
    name = swarm.service_name(contract.container_name(SW, user))
    [c] = client.containers.list(filters={"label": f"com.docker.swarm.service.name={name}"})
    return c


def run_in(client, user: str, command: str) -> tuple[int, str]:
    code, out = task_container(client, user).exec_run(["sh", "-c", command])
    return code, out.decode(errors="replace")


def test_a_student_reaches_jupyterlab_on_a_swarm_service_with_the_templates_limits(swarm_hub):
    hub, client, _ = swarm_hub
    user = "swarm-student"
    response, events = hub.spawn_with_progress(user, {"template": TEMPLATE})
    assert response.status_code in (201, 202), response.text[:300]
    hub.wait_ready(user)
    try:
        # Progress relays the task's own lines (read from the service's log, not a container's).
        messages = [e.get("message", "") for e in events]
        assert any(m.startswith("Courseware synced into ~/lab") for m in messages), messages
        token = user_token(hub, user)
        r = requests.get(f"{hub.url}/user/{user}/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
        assert r.status_code == 200 and "started" in r.json(), r.text[:300]
        spec = service_of(client, user)["Spec"]
        c = spec["TaskTemplate"]["ContainerSpec"]
        assert c["User"] == "1000" and c["CapabilityDrop"] == ["ALL"]
        assert spec["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 10**9, "MemoryBytes": 512 * 2**20,
                                                               "Pids": 1024}
        assert spec["Labels"][contract.LABEL_USER] == user and spec["Labels"][contract.LABEL_TEMPLATE] == TEMPLATE
        inspected = task_container(client, user).attrs
        assert inspected["HostConfig"]["CapDrop"] == ["ALL"] and inspected["HostConfig"]["Privileged"] is False
        assert inspected["HostConfig"]["Memory"] == 512 * 2**20 and inspected["HostConfig"]["PidsLimit"] == 1024
        assert run_in(client, user, "id -u") == (0, "1000\n")
        assert run_in(client, user, "echo evil > ~/datasets/numbers/x")[0] != 0  # datasets read-only
        code, shm = run_in(client, user, "df -P /dev/shm | tail -n 1")
        assert code == 0 and shm.split()[0] == "tmpfs"
        # Branding arrived as configs, where the Docker backend copies it: read-only for the student.
        code, css = run_in(client, user, "cat /tmp/goldenhub-branding/custom/custom.css && "
                                         "! touch /tmp/goldenhub-branding/custom/custom.css")
        assert code == 0 and "#jp-MainLogo" in css
        assert not any(m.get("Source", "").endswith("docker.sock") for m in c["Mounts"])
    finally:
        hub.stop(user)


def test_stop_removes_the_service_the_home_comes_back_pinned_and_a_reset_works(swarm_hub):
    hub, client, _ = swarm_hub
    user = "swarm-keeper"
    hub.spawn(user, {"template": TEMPLATE})
    name = swarm.service_name(contract.container_name(SW, user))
    home = contract.home_volume_name(SW, user, COURSE)
    node_id = task_container(client, user).labels["com.docker.swarm.node.id"]
    assert service_of(client, user)["Spec"]["TaskTemplate"]["Placement"].get("Constraints") in (None, [])
    assert run_in(client, user, "echo 'my work' > ~/mine.txt")[0] == 0
    hub.stop(user)
    with pytest.raises(docker.errors.NotFound):
        client.api.inspect_service(name)
    assert client.volumes.get(home).attrs["Labels"][contract.LABEL_USER] == user  # the home stays
    hub.spawn(user)
    try:
        assert run_in(client, user, "cat ~/mine.txt") == (0, "my work\n")
        assert service_of(client, user)["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == [f"node.id=={node_id}"]
    finally:
        hub.stop(user)
    # A stopped server no longer holds its home: a reset right after the stop works as on Docker,
    # the file is in the backup and the next start is fresh.
    assert not client.api.containers(all=True, filters={"volume": home})
    backup = resets.move_home_to_backup(client, home, user=user, course=COURSE, helper_image=HELPER)
    assert "mine.txt" in run_in_volumes(client, "ls /h", {backup.volume: "/h"})
    hub.spawn(user)
    try:
        assert run_in(client, user, "ls ~/mine.txt")[0] != 0
    finally:
        hub.stop(user)
        client.volumes.get(backup.volume).remove()


def test_a_pinned_home_on_an_unavailable_node_gets_one_sentence_and_nothing_starts(swarm_hub):
    hub, client, initialised = swarm_hub
    if not initialised:
        pytest.skip("the swarm is not this test's: its only node is not drained here")
    user = "swarm-pinned"
    hub.spawn(user, {"template": TEMPLATE})
    hub.stop(user)
    [node] = client.api.nodes()
    spec = dict(node["Spec"], Availability="drain")
    client.api.update_node(node["ID"], node["Version"]["Index"], spec)
    try:
        r = hub.start(user)
        message = r.json().get("message", "") if r.status_code >= 400 else hub.wait_spawn_failure(user)
        hostname = node["Description"]["Hostname"]
        assert f"on node {hostname}, which is down" in message and "administrator" in message, message
        assert not client.api.services(filters={"name": swarm.service_name(contract.container_name(SW, user))})
    finally:
        node = client.api.inspect_node(node["ID"])
        client.api.update_node(node["ID"], node["Version"]["Index"], dict(node["Spec"], Availability="active"))


def test_a_gpu_template_is_refused_at_once_when_the_cluster_has_no_free_gpu(swarm_hub):
    hub, client, _ = swarm_hub
    user = "swarm-gpu"
    r = hub.start(user, {"template": "deep-learning-gpu"})
    assert r.status_code == 503, r.text[:300]
    assert "GPU" in r.json()["message"]
    assert not client.api.services(filters={"name": swarm.service_name(contract.container_name(SW, user))})


def test_a_server_whose_task_died_shows_as_stopped_and_the_student_is_told_why(swarm_hub):
    """The single-node case of a lost server: its task's container is killed; the task is not
    restarted (restart condition none), the hub's poll finds it stopped and removes the service,
    and the start page tells the student why; they start again."""
    hub, client, _ = swarm_hub
    user = "swarm-killed"
    hub.spawn(user, {"template": TEMPLATE})
    name = swarm.service_name(contract.container_name(SW, user))
    task_container(client, user).kill()
    # JupyterHub polls running servers every 30 s (and at once when the proxy cannot reach one).
    wait_for(lambda: hub.server(user) is None, 180, f"the hub seeing {user}'s dead server")
    wait_for(lambda: not client.api.services(filters={"name": name}), 60, "the dead server's service removed")
    assert "Your Test lab environment was stopped from outside (killed). Your files are kept: " \
           "start it again." in hub.options_form(user)
    hub.spawn(user)
    hub.stop(user)


@pytest.fixture(scope="module")
def nfs_homes_hub(single_node_swarm, tmp_path_factory, courses_dir):
    """A hub with homes on an NFS root that cannot be mounted (loopback has no NFS server and
    these machines no kernel NFS, so the engine refuses at once)."""
    client, _ = single_node_swarm
    env = {"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_HOMES": "nfs",
           "GOLDENHUB_SWARM_HOMES_NFS_ROOT": "nfs://127.0.0.1/export/homes"}
    with hub_running(tmp_path_factory.mktemp("swarm-nfs-hub"), courses_dir, SW_PORT + 10, SW, env=env) as hub:
        yield hub, client
        remove_swarm_objects(client)


def test_an_nfs_home_is_a_local_nfs_volume_and_an_unreachable_server_gets_one_sentence(nfs_homes_hub):
    hub, client = nfs_homes_hub
    user = "swarm-nfs"
    r = hub.start(user, {"template": TEMPLATE})
    message = r.json().get("message", "") if r.status_code >= 400 else hub.wait_spawn_failure(user)
    assert "The file server holding your home is unreachable" in message, message
    home = contract.home_volume_name(SW, user, COURSE)
    options = client.volumes.get(home).attrs["Options"]
    assert options == {"type": "nfs", "o": f"addr=127.0.0.1,rw,{swarm.HOME_NFS_OPTIONS}",
                       "device": f":/export/homes/{home}"}
    assert not client.api.services(filters={"name": swarm.service_name(contract.container_name(SW, user))})
    assert hub.server(user) is None


def test_a_hub_restart_keeps_a_running_swarm_server(single_node_swarm, tmp_path, courses_dir):
    """The server's service and task are in spawner state: a restarted hub finds the same task,
    the student still reaches it, and stopping it then removes the service."""
    import secrets

    client, _ = single_node_swarm
    state, token, port, user = tmp_path / "state", secrets.token_hex(16), SW_PORT + 20, "swarm-runner"
    env = {"GOLDENHUB_BACKEND": "swarm"}
    hub = start_hub(state, courses_dir, port, SW, token, env=env)
    try:
        hub.spawn(user, {"template": TEMPLATE})
        task_id = task_container(client, user).labels["com.docker.swarm.task.id"]
        hub.terminate()
        hub = start_hub(state, courses_dir, port, SW, token, env=env)
        assert (hub.server(user) or {}).get("ready"), "a running server must survive a hub restart"
        assert task_container(client, user).labels["com.docker.swarm.task.id"] == task_id
        r = requests.get(f"{hub.url}/user/{user}/api/status",
                         headers={"Authorization": f"token {user_token(hub, user)}"}, timeout=30)
        assert r.status_code == 200, r.text[:300]
        hub.stop(user)
        assert not client.api.services(filters={"name": swarm.service_name(contract.container_name(SW, user))})
    finally:
        tear_down(hub, SW)
        remove_swarm_objects(client)


def test_publish_prepulls_on_every_node_with_a_global_service_and_names_a_node_that_failed(single_node_swarm):
    """hub_ext.images.swarm_prepull through the real manager: a pushed image is pulled (here: found)
    on the one node; a reference the registry does not have fails there, and the report names the
    node; the one-shot service and its containers are gone either way."""
    from hub_ext.images import push as pushing
    from hub_ext.images import swarm_prepull

    client, _ = single_node_swarm
    repository = f"127.0.0.1:5000/{SW}/os-base"
    client.images.get(HELPER).tag(repository, "prepull")
    try:
        client.images.push(repository, tag="prepull")
        digest = client.api.inspect_distribution(f"{repository}:prepull")["Descriptor"]["digest"]
        hosts = [("swarm", swarm_prepull.SwarmPuller(client.api, SW, timeout_s=300))]
        [ok] = pushing.prepull(hosts, f"{repository}@{digest}", log=lambda line: None)
        assert ok.ok, ok.problem
        missing = f"{repository}@sha256:{'0' * 64}"
        [bad] = pushing.prepull(hosts, missing, log=lambda line: None)
        hostname = client.info()["Name"]
        assert not bad.ok and f"node {hostname}:" in bad.problem, bad.problem
        assert not [s for s in client.api.services() if s["Spec"]["Name"].startswith(f"{SW}-prepull-")]
        wait_for(lambda: not client.containers.list(all=True, filters={"name": f"{SW}-prepull-"}), 60,
                 "the pre-pull containers going")
    finally:
        client.images.remove(f"{repository}:prepull")
