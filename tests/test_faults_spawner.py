"""Faults around the spawner, against a real hub and real Docker: starts stopped while
queued, a student container killed or out of memory, a reset interrupting a start, a
missing course image, and the hub killed with -9 in the middle of a burst of starts with
declared GPUs. Each test asserts what a student sees or would lose.

GPUs: this host has no NVIDIA runtime, so the hub here hands out two declared GPUs with
`gpu_device_requests = False` (the mode for hosts whose default runtime is nvidia's): the
containers start, carry their GPU ids in NVIDIA_VISIBLE_DEVICES and in the goldenhub.gpus
label, and the allocation rules are the same as with device requests.

A start is held in flight, for as long as a test wants, by courseware on a git remote that
accepts connections and never answers (HangingRemote); releasing it lets the start finish."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import textwrap
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
import requests

from hub_ext import contract, procstat
from tests.helpers import (HUB_PORT, PREFIX, WAIT_SPAWN, copy_courses, extra_course, remove_docker_objects, start_hub,
                           user_token, wait_for)

pytestmark = pytest.mark.integration

FAULT_PREFIX = f"{PREFIX}f"
FAULT_PORT = HUB_PORT + 10
HANG_PORT = HUB_PORT + 30
GPUS = ["GPU-test-0", "GPU-test-1"]

HUB_CONFIG = f"""\
c.GoldenSpawner.gpu_inventory = {GPUS!r}
c.GoldenSpawner.gpu_device_requests = False
c.GoldenSpawner.concurrent_starts = 2
c.GoldenSpawner.courseware_sync_timeout = 600
c.GoldenSpawner.poll_interval = 2
# The slow starts here wait inside their containers on a git remote that hangs; the hub's
# courseware mirror would make them wait in the hub instead (tests/test_mirror.py covers it).
c.GoldenSpawner.courseware_mirror_interval = -1
"""

COURSE = """\
id: fault
title: Fault lab
access: everyone
templates:
  - id: fault-gpu
    title: Fault (GPU)
    image: goldenhub/course-intro-python:latest
    gpus: 1
    cpu: 1
    memory: 512M
  - id: fault-cpu
    title: Fault (CPU)
    image: goldenhub/course-intro-python:latest
    gpus: 0
    cpu: 1
    memory: 512M
  - id: fault-gpu-slow
    title: Fault (GPU, courseware that hangs)
    image: goldenhub/course-intro-python:latest
    gpus: 1
    cpu: 1
    memory: 512M
    courseware:
      repo: git://host.docker.internal:{port}/course.git
      target: course
  - id: fault-cpu-slow
    title: Fault (CPU, courseware that hangs)
    image: goldenhub/course-intro-python:latest
    gpus: 0
    cpu: 1
    memory: 512M
    courseware:
      repo: git://host.docker.internal:{port}/course.git
      target: course
"""


class HangingRemote:
    """Accepts TCP connections and never answers until released; then refuses them."""

    def __init__(self, host: str, port: int):
        self.server = socket.create_server((host, port))
        self.server.settimeout(0.5)
        self.connections: list[socket.socket] = []
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.released.is_set():
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(conn)

    def release(self) -> None:
        if self.released.is_set():
            return
        self.released.set()
        self.thread.join(5)
        self.server.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def hanging(gateway):
    remote = HangingRemote(gateway, HANG_PORT)
    yield remote
    remote.release()


class FaultHub:
    """The hub of these tests; `restart` replaces it on the same state directory."""

    def __init__(self, state, courses):
        self.state, self.courses, self.token = state, courses, secrets.token_hex(16)
        self.leftovers: list[tuple[int, bytes]] = []  # (pid, cmdline) of a killed hub's children
        self.hub = self._start()

    def _start(self):
        return start_hub(self.state, self.courses, FAULT_PORT, FAULT_PREFIX, self.token, extra_config=HUB_CONFIG)

    def kill_and_restart(self) -> None:
        """kill -9 the hub and start a new one on the same state directory."""
        self.leftovers += child_pids(self.hub.process.pid)
        self.hub.process.send_signal(signal.SIGKILL)
        self.hub.process.wait(30)
        self.hub = self._start()


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def child_pids(pid: int) -> list[tuple[int, bytes]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            if procstat.parent_of(int(entry)) == pid:
                found.append((int(entry), cmdline(int(entry))))
    return found


@pytest.fixture(scope="module")
def fault(tmp_path_factory, sample_services):
    remove_docker_objects(FAULT_PREFIX)
    courses = copy_courses(tmp_path_factory.mktemp("fault-courses"))
    (courses / "fault.yaml").write_text(COURSE.format(port=HANG_PORT))
    holder = FaultHub(tmp_path_factory.mktemp("fault-state"), courses)
    yield holder
    hub = holder.hub
    with contextlib.suppress(Exception):
        for user in hub.request("GET", "/users").json():
            if user.get("servers"):
                hub.request("DELETE", f"/users/{user['name']}/server")
    hub.terminate()
    for pid, started_as in holder.leftovers:  # the killed hub's proxy and service, if they outlived it
        if started_as and cmdline(pid) == started_as:  # still that process, not a reused pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    remove_docker_objects(FAULT_PREFIX)


def container_of(user: str):
    try:
        return docker.from_env().containers.get(contract.container_name(FAULT_PREFIX, user))
    except docker.errors.NotFound:
        return None


def running_container(user: str):
    c = container_of(user)
    return c if c is not None and c.status == "running" else None


def prefix_containers() -> list:
    return [c for c in docker.from_env().containers.list(all=True) if c.name.startswith(FAULT_PREFIX + "-")]


def visible_gpus(c) -> list[str]:
    env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
    value = env.get("NVIDIA_VISIBLE_DEVICES", "void")
    return [] if value == "void" else value.split(",")


def free_gpus_text(hub, student: str) -> str:
    html = hub.options_form(student)
    start = html.index('<span class="goldenhub-gpus-free">') + len('<span class="goldenhub-gpus-free">')
    return html[start:html.index("</span>", start)]


def first_event(hub, name: str, wanted, what: str) -> dict:
    """Read the start's progress stream until an event satisfies `wanted`."""
    def read():
        with hub.request("GET", f"/users/{name}/server/progress", stream=True, timeout=(10, WAIT_SPAWN)) as r:
            if r.status_code != 200:
                return None
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    if wanted(event):
                        return event
                    if event.get("ready") or event.get("failed"):
                        raise AssertionError(f"{what}: the start ended first: {event}")
        return None

    return wait_for(read, WAIT_SPAWN, what, interval=0.2)


def start_in_background(pool, hub, name, template):
    hub.ensure_user(name)
    return pool.submit(hub.start, name, {"template": template})


def is_queued(event) -> bool:
    return "in the queue" in event.get("message", "")


def settled(hub, users) -> bool:
    """No server of these users is still starting or stopping."""
    return all((s := hub.server(u)) is None or (s.get("ready") and not s.get("pending")) for u in users)


def test_starts_stopped_while_queued_give_their_places_back(fault, hanging):
    hub = fault.hub
    holders, queued, late = ["q-ann", "q-bob"], ["q-cat", "q-dan"], "q-eve"
    everyone = [*holders, *queued, late]
    with ThreadPoolExecutor(8) as pool:
        try:
            posts = [start_in_background(pool, hub, u, "fault-cpu-slow") for u in holders]
            # Both slots are taken by starts whose containers wait for the hanging remote.
            wait_for(lambda: all(running_container(u) for u in holders), WAIT_SPAWN, "two starts holding the slots")
            posts += [start_in_background(pool, hub, u, "fault-cpu") for u in queued]
            for u in queued:
                first_event(hub, u, is_queued, f"{u} queued")
            for u in queued:
                hub.stop(u)  # stopped while waiting in the queue

            posts.append(start_in_background(pool, hub, late, "fault-cpu"))
            event = first_event(hub, late, is_queued, f"{late} queued")
            assert event["message"] == ("Waiting for a free start slot: you are number 1 in the queue "
                                        "(2 starting now)"), event

            hanging.release()  # the two starts finish (courseware unreachable: started with a warning)
            for u in [*holders, late]:
                hub.wait_ready(u)
            assert all(r.result().status_code in (201, 202) for r in posts[:2])
            hub.spawn("q-fay", {"template": "fault-cpu"})  # and later starts still get a slot
        finally:
            for u in [*everyone, "q-fay"]:
                hub.request("DELETE", f"/users/{u}/server")
            wait_for(lambda: not any(container_of(u) for u in [*everyone, "q-fay"]), 120, "servers stopped")


def test_a_killed_server_is_explained_and_its_gpu_released(fault):
    hub = fault.hub
    hub.spawn("k-ann", {"template": "fault-gpu"})
    try:
        assert free_gpus_text(hub, "k-watcher") == "1 of 2 GPUs free"
        running_container("k-ann").kill()
        wait_for(lambda: hub.server("k-ann") is None, 120, "the hub noticing the killed server")
        wait_for(lambda: container_of("k-ann") is None, 60, "the dead container removed")
        assert free_gpus_text(hub, "k-watcher") == "2 of 2 GPUs free"
        html = hub.options_form("k-ann")
        assert "Your Fault lab environment was stopped from outside (killed). Your files are kept: " \
               "start it again." in html
        _, events = hub.spawn_with_progress("k-ann", {"template": "fault-gpu"})
        messages = [e["message"] for e in events]
        assert messages[1].startswith("Last time: Your Fault lab environment was stopped from outside"), messages
        assert events[-1].get("ready"), messages
        assert "goldenhub-notice" not in hub.options_form("k-ann")  # told once
    finally:
        hub.request("DELETE", "/users/k-ann/server")


def test_a_server_out_of_memory_says_so_and_releases_its_gpu(fault):
    hub = fault.hub
    hub.spawn("m-ann", {"template": "fault-gpu"})
    try:
        c = running_container("m-ann")
        # The Jupyter server itself (pid 1) is the one the kernel's OOM killer picks.
        code, out = c.exec_run(["sh", "-c", "echo 1000 > /proc/1/oom_score_adj && "
                                "python3 -c \"x = b'x' * (2 << 30)\""])
        wait_for(lambda: hub.server("m-ann") is None, 120, "the hub noticing the out-of-memory server")
        assert free_gpus_text(hub, "m-watcher") == "2 of 2 GPUs free"
        html = hub.options_form("m-ann")
        assert "Your Fault lab environment stopped because it ran out of memory (its limit is 512 MiB). " \
               "Your files are kept: start it again, and use less memory." in html, out
        assert container_of("m-ann") is None
    finally:
        hub.request("DELETE", "/users/m-ann/server")


def test_a_reset_that_interrupts_a_start_tells_the_student(fault, hanging):
    hub = fault.hub
    admin = user_token(hub, "admin", "reset test")
    with ThreadPoolExecutor(2) as pool:
        post = start_in_background(pool, hub, "r-ann", "fault-cpu-slow")
        try:
            wait_for(lambda: running_container("r-ann"), WAIT_SPAWN, "the start in flight")
            first_event(hub, "r-ann", lambda e: e.get("message") == "Container started", "container started")
            progress = pool.submit(hub.progress_events, "r-ann")
            r = requests.post(f"{hub.url}/services/goldenhub/api/resets", json={"course": "fault", "user": "r-ann"},
                              headers={"Authorization": f"token {admin}"}, timeout=300)
            assert r.status_code == 200 and r.json()["results"][0]["result"] == "ok", r.text
            told = ("An administrator reset your Fault lab environment while it was starting; your previous "
                    "files are kept in a backup. Start it again.")
            assert told in [e["message"] for e in progress.result(WAIT_SPAWN)]
            assert told in hub.options_form("r-ann")  # the start page says it too
            answer = post.result(WAIT_SPAWN)  # still waiting for the start, or already told "202 pending"
            assert answer.status_code == 202 or told in answer.json()["message"], answer.text
        finally:
            hanging.release()
            hub.request("DELETE", "/users/r-ann/server")


def test_a_missing_course_image_is_refused_not_pulled(fault):
    hub = fault.hub
    template = """\
        - id: unbuilt-cpu
          title: Unbuilt
          image: goldenhub/not-built-here:1
          gpus: 0
          cpu: 1
          memory: 512M
        """
    with extra_course(fault.courses, "unbuilt", textwrap.dedent(template)):
        response, events = hub.spawn_with_progress("i-ann", {"template": "unbuilt-cpu"})
    messages = [e["message"] for e in events]
    assert not any(m.startswith("Pulling image") for m in messages), messages  # Docker Hub never asked
    message = response.json().get("message", "") if response.status_code >= 400 else messages[-1]
    assert "environment is not ready on this server yet; an administrator has been told." in message, messages
    assert "goldenhub/not-built-here" not in message  # the image's name is for the hub log
    assert hub.server("i-ann") is None and container_of("i-ann") is None


def test_hub_killed_mid_burst_loses_nothing_and_gives_no_gpu_twice(fault, hanging):
    """Kill -9 while one GPU server runs, a GPU start and a CPU start are in flight and one
    more waits in the queue; a container of a start the hub never recorded is also there."""
    hub = fault.hub
    users = ["b-ann", "b-bob", "b-cat", "b-dan"]
    client = docker.from_env()
    ghost = None
    with ThreadPoolExecutor(8) as pool:
        try:
            hub.spawn("b-ann", {"template": "fault-gpu"})
            start_in_background(pool, hub, "b-bob", "fault-gpu-slow")
            start_in_background(pool, hub, "b-cat", "fault-cpu-slow")
            wait_for(lambda: running_container("b-bob") and running_container("b-cat"), WAIT_SPAWN,
                     "two starts in flight")
            start_in_background(pool, hub, "b-dan", "fault-cpu")
            first_event(hub, "b-dan", is_queued, "b-dan queued")
            ghost = client.containers.run(
                "goldenhub/course-intro-python:latest", ["sleep", "600"], detach=True,
                name=contract.container_name(FAULT_PREFIX, "b-ghost"),
                labels={"goldenhub.user": "b-ghost", "goldenhub.server": "", "goldenhub.gpus": GPUS[0]})

            fault.kill_and_restart()
            hub = fault.hub
            hanging.release()  # the starts that were in flight can now finish
            wait_for(lambda: settled(hub, users), WAIT_SPAWN, "every server running or stopped")

            for user in ("b-ann", "b-bob", "b-cat"):  # running, or in flight and then adopted
                assert (hub.server(user) or {}).get("ready") and running_container(user), f"{user}'s server was lost"
            assert hub.server("b-dan") is None  # queued at the crash: no container, cleaned up
            wait_for(lambda: container_of("b-ghost") is None, 60, "the forgotten start's container removed")
            for c in prefix_containers():  # every container belongs to a server the hub has
                user = c.labels["goldenhub.user"]
                assert c.status == "running" and (hub.server(user) or {}).get("ready"), (c.name, c.status)
            held = [g for c in prefix_containers() for g in visible_gpus(c)]
            assert sorted(held) == sorted(set(held)), f"a GPU is given twice: {Counter(held)}"
            assert sorted(held) == GPUS  # b-ann's and b-bob's
            assert free_gpus_text(hub, "b-watcher") == "0 of 2 GPUs free"
            r = hub.start("b-eve", {"template": "fault-gpu"})
            assert r.status_code == 503 and "All 2 GPUs for Fault lab are in use" in r.json()["message"], r.text
        finally:
            if ghost is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    ghost.remove(force=True)
            for u in [*users, "b-eve"]:
                fault.hub.request("DELETE", f"/users/{u}/server")
