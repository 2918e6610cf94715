"""A live multi-node Docker Swarm (tests/swarm_cluster.py): a manager and two workers, each a
Docker-in-Docker container, advertising fake GPUs as generic resources and pulling from the
host's registry. What is checked is what a cluster operator would see: the nodes and their
GPUs, tasks placed with GPUs nobody else holds, a dead worker's tasks no longer running while
everything else keeps its place.

Skipped (with the failing command's error) only when a Docker engine cannot start inside a
container on this machine; every other failure fails."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import docker
import docker.types
import pytest
import requests

from hub_ext import contract
from tests.helpers import HUB_PORT, PREFIX, hub_running, user_token, wait_for

# Its own prefix and port: the session hub (PREFIX, HUB_PORT) runs beside this hub, and a
# hub's teardown removes every container and volume of its prefix.
SC = f"{PREFIX}sc"
SC_PORT = HUB_PORT + 630
from tests.swarm_cluster import GPU_KIND, NestedDockerUnavailable, SwarmCluster, wait_until

pytestmark = pytest.mark.integration

GPU_ENV = f"DOCKER_RESOURCE_{GPU_KIND}"  # set by Swarm in the task's container: the ids it got
WAIT_TASKS = 180


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory) -> Path:
    """A dataset every node sees at the same path, as an NFS export mounted on each node would be."""
    root = tmp_path_factory.mktemp("swarm-shared")
    (root / "numbers").mkdir()
    (root / "numbers" / "numbers.csv").write_text("n\n1\n2\n3\n")
    return root


@pytest.fixture(scope="module")
def cluster(shared_dir):
    try:
        with SwarmCluster(shared_dirs=[str(shared_dir)]) as c:
            yield c
    except NestedDockerUnavailable as exc:
        pytest.skip(f"nested Docker cannot run on this machine: {exc}")


@pytest.fixture(scope="module")
def small_image(cluster):
    """The offline base, pushed to the host's registry and pulled by every node through it."""
    ref = cluster.push("goldenhub/os-base:bookworm", f"{cluster.name}/os-base:bookworm")
    cluster.pull_everywhere(ref)
    return ref


def gpu_service(cluster: SwarmCluster, image: str, name: str):
    """A service that holds one fake GPU and sleeps."""
    return cluster.api().services.create(
        image, ["sleep", "infinity"], name=f"{cluster.name}-{name}",
        resources=docker.types.Resources(generic_resources={GPU_KIND: 1}),
        restart_policy=docker.types.RestartPolicy(condition="any"), stop_grace_period=10**9,
    )


def held_gpus(cluster: SwarmCluster, service: str) -> tuple[str, dict, list[str]]:
    """(node key, task, GPU ids seen inside the task's container) of a service's running task."""
    task = cluster.running_task(service)
    assert task is not None, f"{service} has no running task"
    ids = [g for g in cluster.task_env(task).get(GPU_ENV, "").split(",") if g]
    return cluster.node_of(task["NodeID"]).key, task, ids


def pending_reason(cluster: SwarmCluster, service: str) -> str:
    """The scheduler's message on a service's pending task ('' while it has none)."""
    for task in cluster.tasks(service):
        if task["DesiredState"] == "running" and task["Status"]["State"] == "pending":
            return task["Status"].get("Err", "")
    return ""


@pytest.fixture(scope="module")
def gpu_services(cluster, small_image):
    """10 services of one GPU each, all running (the cluster has 10 fake GPUs); their
    placement before anything else happens: {service name: (node key, task id, GPU ids)}."""
    services = [gpu_service(cluster, small_image, f"gpu-{i}") for i in range(10)]
    names = [s.name for s in services]
    wait_until(lambda: all(cluster.running_task(n) for n in names), WAIT_TASKS,
               "10 one-GPU services all running")
    placement = {}
    for name in names:
        key, task, ids = held_gpus(cluster, name)
        placement[name] = (key, task["ID"], ids)
    yield placement
    for service in cluster.api().services.list(filters={"name": f"{cluster.name}-gpu"}):
        service.remove()


def test_cluster_forms_with_its_fake_gpus(cluster):
    nodes = {n.attrs["Description"]["Hostname"]: n.attrs for n in cluster.api().nodes.list()}
    assert sorted(nodes) == sorted(n.container for n in cluster.nodes.values())
    for node in cluster.nodes.values():
        attrs = nodes[node.container]
        assert attrs["Status"]["State"] == "ready"
        assert attrs["Spec"]["Role"] == ("manager" if node.manager else "worker")
        advertised = [g["NamedResourceSpec"] for g in attrs["Description"]["Resources"]["GenericResources"]]
        assert sorted(g["Value"] for g in advertised if g["Kind"] == GPU_KIND) == sorted(node.gpus)
    # The host reaches the manager's API only on the node container's own address.
    assert cluster.manager_url.startswith("tcp://") and "0.0.0.0" not in cluster.manager_url


def test_gpus_are_never_shared_and_the_eleventh_waits(cluster, small_image, gpu_services):
    every_gpu = sorted(g for n in cluster.nodes.values() for g in n.gpus)
    assert len(every_gpu) == 10
    held = [g for _, _, ids in gpu_services.values() for g in ids]
    # Each task sees exactly one GPU, no GPU is seen by two tasks, all ten are in use.
    assert all(len(ids) == 1 for _, _, ids in gpu_services.values()), gpu_services
    assert sorted(held) == every_gpu
    # Each GPU a task sees belongs to the node the task runs on; all three nodes got tasks.
    for key, _, ids in gpu_services.values():
        assert all(g.startswith(f"fake-{key}-") for g in ids), (key, ids)
    assert {key for key, _, _ in gpu_services.values()} == set(cluster.nodes)

    eleventh = gpu_service(cluster, small_image, "gpu-eleventh")
    try:
        reason = wait_until(lambda: pending_reason(cluster, eleventh.name), WAIT_TASKS,
                            "the 11th one-GPU service waiting for a GPU")
        assert "insufficient resources" in reason
        assert cluster.running_task(eleventh.name) is None
        # Nothing already running lost its GPU to it.
        for name, (key, task_id, ids) in gpu_services.items():
            assert held_gpus(cluster, name)[1]["ID"] == task_id
    finally:
        eleventh.remove()


def test_killing_a_worker_stops_only_its_tasks(cluster, gpu_services):
    victim = "w2"
    on_victim = sorted(n for n, (key, _, _) in gpu_services.items() if key == victim)
    elsewhere = {n: p for n, p in gpu_services.items() if p[0] != victim}
    assert on_victim and elsewhere
    cluster.kill(victim)
    try:
        cluster.wait_node(victim, "down")
        # The dead worker's services are shown as not running: a replacement waits for a GPU
        # (all the others are held), none reports running.
        wait_until(lambda: all("insufficient resources" in pending_reason(cluster, n) for n in on_victim),
                   WAIT_TASKS, f"the services of the dead {victim} waiting to be placed again")
        assert all(cluster.running_task(n) is None for n in on_victim)
        # The others keep the same task, node and GPU.
        for name, (key, task_id, ids) in elsewhere.items():
            now_key, task, now_ids = held_gpus(cluster, name)
            assert (now_key, task["ID"], now_ids) == (key, task_id, ids)

        # Two GPUs freed elsewhere: two of the dead worker's services start again there, on
        # GPUs nobody else holds; the rest keep waiting.
        freed = sorted(elsewhere)[:2]
        for name in freed:
            cluster.api().services.get(name).remove()
        wait_until(lambda: sum(bool(cluster.running_task(n)) for n in on_victim) == 2, WAIT_TASKS,
                   f"two services of the dead {victim} running again on another node")
        moved = [n for n in on_victim if cluster.running_task(n)]
        in_use = {}
        for name in [*moved, *(n for n in elsewhere if n not in freed)]:
            key, _, ids = held_gpus(cluster, name)
            assert key != victim
            for gpu in ids:
                assert gpu not in in_use, f"{gpu} held by {name} and {in_use[gpu]}"
                in_use[gpu] = name
        assert sorted(g for n in moved for g in held_gpus(cluster, n)[2]) == \
            sorted(g for n in freed for g in gpu_services[n][2])
        assert all(cluster.running_task(n) is None for n in on_victim if n not in moved)
    finally:
        cluster.revive(victim)


# --- a real hub with the swarm backend ------------------------------------------------------

STUDENTS = [f"swarm-student-{i}" for i in range(10)]
WAIT_STOPPED = 180  # the hub polls servers every 30 s (JupyterHub's Spawner.poll_interval)


@pytest.fixture(scope="module")
def swarm_courses(tmp_path_factory, cluster, shared_dir, sample_services) -> Path:
    """One course whose template asks for 1 GPU, its image in the host's registry (pushed and
    pulled by every node through it), a dataset on every node, the sample courseware."""
    image = cluster.push("goldenhub/course-intro-python:latest", f"{cluster.name}/course-intro-python:latest")
    cluster.pull_everywhere(image)
    courses = tmp_path_factory.mktemp("swarm-courses")
    (courses / "swarmlab.yaml").write_text(textwrap.dedent(f"""\
        id: swarmlab
        title: Swarm lab
        framework: scipy
        access: everyone
        templates:
          - id: swarm-gpu
            title: Swarm (1 GPU)
            image: {image}
            gpus: 1
            cpu: 1
            memory: 512M
            datasets:
              - name: numbers
                source: {shared_dir / "numbers"}
            courseware:
              repo: git://host.docker.internal/intro-python.git
              target: intro-python
        """))
    return courses


@pytest.fixture(scope="module")
def swarm_hub(tmp_path_factory, cluster, swarm_courses, gateway):
    """A real hub whose servers are services of the cluster; tasks reach its API at the host's
    gateway address (where the sample git server listens too). The earlier tests' services go
    first: their GPUs are the hub's."""
    cluster.remove_services()
    env = {"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_DOCKER_HOST": cluster.manager_url,
           "GOLDENHUB_SWARM_CONNECT": "node", "GOLDENHUB_SWARM_HUB_IP": gateway}
    with hub_running(tmp_path_factory.mktemp("swarm-hub"), swarm_courses, SC_PORT, SC, env=env) as hub:
        yield hub


def student_task(cluster: SwarmCluster, user: str) -> dict | None:
    from spawner import swarm

    return cluster.running_task(swarm.service_name(contract.container_name(SC, user)))


def reaches_lab(hub, user: str, token: str) -> bool:
    r = requests.get(f"{hub.url}/user/{user}/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
    return r.status_code == 200 and "started" in r.json()


def test_a_hub_starts_ten_students_across_the_nodes_and_a_dead_worker_stops_only_theirs(cluster, swarm_hub):
    hub = swarm_hub
    failures: dict[str, str] = {}

    def start(user: str) -> None:  # as ten students clicking Start at once
        try:
            hub.spawn(user, {"template": "swarm-gpu"})
        except (AssertionError, TimeoutError) as exc:
            failures[user] = str(exc)

    starts = [threading.Thread(target=start, args=(u,)) for u in STUDENTS]
    for t in starts:
        t.start()
    for t in starts:
        t.join()
    assert not failures, failures
    tokens = {u: user_token(hub, u) for u in STUDENTS}
    placed: dict[str, tuple[str, str, list[str]]] = {}
    for user in STUDENTS:
        assert hub.server(user) and hub.server(user)["ready"], f"{user} has no ready server"
        assert reaches_lab(hub, user, tokens[user]), f"{user} does not reach JupyterLab"
        task = student_task(cluster, user)
        ids = [g for g in cluster.container_env(task).get(GPU_ENV, "").split(",") if g]
        # The student's server process sees exactly the GPU Swarm assigned, never `all`.
        assert cluster.task_env(task).get("NVIDIA_VISIBLE_DEVICES") == ",".join(ids), user
        placed[user] = (cluster.node_of(task["NodeID"]).key, task["ID"], ids)
    # Across every node, each student with exactly one fake GPU nobody else has.
    assert {key for key, _, _ in placed.values()} == set(cluster.nodes)
    assert all(len(ids) == 1 for _, _, ids in placed.values()), placed
    assert sorted(g for _, _, ids in placed.values() for g in ids) == sorted(g for n in cluster.nodes.values()
                                                                              for g in n.gpus)

    victim = "w1"
    lost = [u for u, (key, _, _) in placed.items() if key == victim]
    kept = [u for u in STUDENTS if u not in lost]
    assert lost and kept
    cluster.kill(victim)
    try:
        cluster.wait_node(victim, "down")
        wait_for(lambda: all(hub.server(u) is None for u in lost), WAIT_STOPPED,
                 f"the hub showing the servers on the dead {victim} as stopped", interval=2)
        for user in kept:  # untouched: same task, still reachable
            assert hub.server(user) and hub.server(user)["ready"]
            assert student_task(cluster, user)["ID"] == placed[user][1]
            assert reaches_lab(hub, user, tokens[user])
        # Homes are pinned (no NFS here): even with a GPU free on another node, a start is
        # refused with one sentence naming the node that holds the home, and nothing starts.
        hub.stop(kept[0])
        user = lost[0]
        r = hub.start(user)  # refused within the hub's 10 s answer, or later in the progress stream
        message = hub.wait_spawn_failure(user) if r.status_code == 202 else r.json()["message"]
        assert r.status_code in (202, 500), r.text
        assert f"{cluster.name}-{victim}" in message and "down" in message, message
        assert student_task(cluster, user) is None
    finally:
        cluster.revive(victim)
    # The node is back: the student starts again, on the node that holds their home.
    hub.spawn(user)
    assert reaches_lab(hub, user, tokens[user])
    assert cluster.node_of(student_task(cluster, user)["NodeID"]).key == victim
