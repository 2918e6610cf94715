"""Faults an operator meets, against a real hub, proxy, goldenhub service and Docker: the hub
killed with -9 (its service must not outlive it and hold the port), the proxy killed (routes
come back, students' servers are kept), a dataset gone at start, and a registry that is down
while a course image is pulled. Each asserts what the student or admin would see or lose."""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import docker
import pytest
import requests

from hub_ext import contract
from hub_ext.service import process
from tests.helpers import (HUB_PORT, PREFIX, ServiceClient, extra_course, free_port, remove_docker_objects, running, service_pid,
                           start_hub, user_token, wait_for)

integration = pytest.mark.integration


def is_proxy(pid: int) -> bool:
    try:
        return b"configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# --- the service's pid file (pure: real processes, no hub) -----------------------------------


@pytest.fixture
def fake_service():
    """A process that looks like a goldenhub service (`… -m hub_ext.service`), child of this one."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "hub_ext.service"])
    # Until its exec is done, the child's command line is still this test process's.
    wait_for(lambda: b"hub_ext.service" in Path(f"/proc/{child.pid}/cmdline").read_bytes(), 10,
             "the fake service's exec", interval=0.01)
    yield child
    child.kill()
    child.wait()


def test_a_service_left_by_a_dead_hub_is_stopped_and_replaced(tmp_path, fake_service):
    gone_hub = subprocess.Popen(["true"])
    gone_hub.wait()
    (tmp_path / process.PID_FILE).write_text(f"{fake_service.pid} {gone_hub.pid}\n")
    path = process.claim(tmp_path, os.getppid())
    assert fake_service.wait(process.STOP_WAIT * 2 + 5) is not None  # stopped, within a bound
    assert path.read_text() == f"{os.getpid()} {os.getppid()}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    process.release(path)
    assert not path.exists()


def test_a_service_of_another_live_hub_is_left_alone_with_a_sentence(tmp_path, fake_service):
    # The fake service's parent (this test process) is alive: another hub serves this state dir.
    (tmp_path / process.PID_FILE).write_text(f"{fake_service.pid} {os.getpid()}\n")
    with pytest.raises(process.AnotherService, match="stop that hub first, or give this hub its own GOLDENHUB_STATE_DIR"):
        process.claim(tmp_path, os.getppid())
    assert fake_service.poll() is None


def test_a_pid_file_naming_another_program_is_overwritten_and_the_program_untouched(tmp_path):
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / process.PID_FILE).write_text(f"{other.pid} 1\n")
        process.claim(tmp_path, os.getppid())
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def failure_message(response, events) -> str:
    return response.json().get("message", "") if response.status_code >= 400 else events[-1]["message"]


def container_of(user: str):
    try:
        return docker.from_env().containers.get(contract.container_name(PREFIX, user))
    except docker.errors.NotFound:
        return None


@integration
def test_the_service_exits_with_its_killed_hub_and_the_next_hub_gets_its_own(tmp_path, courses_dir):
    prefix, port = f"{PREFIX}k", HUB_PORT + 30
    state = tmp_path / "state"
    token = secrets.token_hex(16)
    remove_docker_objects(prefix)
    hub = start_hub(state, courses_dir, port, prefix, token)
    proxy = None
    try:
        admin = ServiceClient(hub, user_token(hub, "admin"))
        wait_for(lambda: admin.call("GET", "/").status_code == 200, 60, "the goldenhub service answering")
        old = service_pid(hub)
        proxy = int((state / "jupyterhub-proxy.pid").read_text())

        hub.process.kill()  # kill -9: the hub cannot stop its service
        hub.process.wait(30)
        wait_for(lambda: not running(old), 30, f"the orphaned goldenhub service (pid {old}) exiting")

        hub = start_hub(state, courses_dir, port, prefix, token)
        admin = ServiceClient(hub, user_token(hub, "admin"))
        r = wait_for(lambda: (r := admin.call("GET", "/")).status_code == 200 and r, 60,
                     "the new hub's goldenhub service answering")
        assert r.json()["user"] == "admin"
        assert service_pid(hub) != old
        assert "Address already in use" not in hub.log_path.read_text(errors="replace")
    finally:
        hub.terminate()
        if proxy and running(proxy) and is_proxy(proxy):
            os.kill(proxy, signal.SIGTERM)  # the killed hub's proxy, if the restart never replaced it
        remove_docker_objects(prefix)


@integration
def test_a_proxy_restart_brings_routes_back_and_keeps_running_servers(hub):
    user = "ops-proxy"
    hub.spawn(user, {"template": "lab-cpu"})
    try:
        assert hub.exec(user, "echo kept > ~/note.txt")[0] == 0
        before = container_of(user).attrs
        note = f"{hub.url}/user/{user}/api/contents/note.txt"
        headers = {"Authorization": f"token {hub.token}"}

        def reachable():
            r = requests.get(note, headers=headers, timeout=10)
            return r.status_code == 200 and r.json()["content"] == "kept\n"

        assert reachable()
        pid_file = hub.state_dir / "jupyterhub-proxy.pid"
        old = int(pid_file.read_text())
        assert is_proxy(old)
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: int(pid_file.read_text()) != old, 120, "the hub restarting its proxy")
        wait_for(reachable, 120, "the student's server reachable through the proxy again")

        after = container_of(user).attrs
        assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"])
        assert hub.server(user)["ready"]
    finally:
        hub.stop(user)


@integration
def test_a_dataset_gone_at_start_is_one_sentence_and_leaves_nothing(hub, courses_dir, tmp_path):
    data = tmp_path / "exam-data"
    data.mkdir()
    link = tmp_path / "exam-current"
    link.symlink_to(data)
    course = f"""\
        - id: gone-cpu
          title: Gone dataset
          image: goldenhub/course-intro-python:latest
          gpus: 0
          cpu: 1
          memory: 512M
          datasets:
            - name: exam
              source: {link}
        """
    with extra_course(courses_dir, "gone", textwrap.dedent(course)):
        data.rmdir()  # valid when written; gone when the student starts
        response, events = hub.spawn_with_progress("ops-gone", {"template": "gone-cpu"})
        message = failure_message(response, events)
        assert "The dataset exam is not available on this server right now; an administrator has been told." in message
        assert str(link) not in message and "/srv/" not in message  # no server path for a student
        assert "Traceback" not in message
        assert hub.server("ops-gone") is None
        assert container_of("ops-gone") is None


@integration
def test_a_registry_down_while_pulling_is_one_sentence_and_leaves_nothing(hub, courses_dir):
    image = f"127.0.0.1:{free_port()}/goldenhub/course-offline:1"  # nothing listens there
    course = f"""\
        - id: offline-cpu
          title: Registry down
          image: {image}
          gpus: 0
          cpu: 1
          memory: 512M
        """
    with extra_course(courses_dir, "offline", textwrap.dedent(course)):
        response, events = hub.spawn_with_progress("ops-offline", {"template": "offline-cpu"})
        message = failure_message(response, events)
        assert "The Registry down environment is not ready on this server yet" in message, events
        assert image not in message  # no image name for a student; the hub log has it
        assert "Traceback" not in message and "\n" not in message
        assert hub.server("ops-offline") is None
        assert container_of("ops-offline") is None
        assert docker.from_env().images.list(name=image.rsplit(":", 1)[0]) == []
