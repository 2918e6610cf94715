"""The Docker daemon restarts under a running class: without live-restore every student's
container stops, the hub notices and the student starts again with every file of theirs;
with live-restore the servers keep running through the restart and stay reachable.

These tests restart the machine's dockerd, so conftest runs them after every other test
(marker `docker_restart`), and they leave the daemon running as they found it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

import docker
import pytest
import requests

from tests.helpers import HUB_PORT, PREFIX, remove_docker_objects, start_hub, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.docker_restart]

DOCKER_PID = Path("/var/run/docker.pid")
DOCKERD_LOG = Path("/var/log/goldenhub-dockerd.log")


def dockerd_pid() -> int:
    return int(DOCKER_PID.read_text().strip())


def restart_dockerd(live_restore: bool) -> None:
    """Stop dockerd as an operator would (SIGTERM), then start it again with or without
    --live-restore. Whether containers survive depends on the daemon that *stops*."""
    pid = dockerd_pid()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 120, "dockerd stopping", interval=0.5)
    args = ["dockerd", *(["--live-restore"] if live_restore else [])]
    with DOCKERD_LOG.open("a") as log:
        subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: docker.from_env().ping(), 120, "dockerd answering after its restart", interval=1)


def live_restore_on() -> bool:
    return bool(docker.from_env().info().get("LiveRestoreEnabled"))


@pytest.fixture
def docker_hub(tmp_path, courses_dir):
    prefix, port = f"{PREFIX}dk", HUB_PORT + 60
    remove_docker_objects(prefix)
    hub = start_hub(tmp_path / "state", courses_dir, port, prefix, secrets.token_hex(16),
                    extra_config="c.Spawner.poll_interval = 5\n")
    yield hub
    hub.request("DELETE", "/users/dora/server")
    hub.terminate()
    remove_docker_objects(prefix)
    if live_restore_on():  # leave the daemon as .ci/setup starts it
        restart_dockerd(live_restore=False)


def test_docker_restart_with_and_without_live_restore_keeps_every_file(docker_hub):
    hub = docker_hub
    hub.spawn("dora", {"template": "lab-cpu"})
    assert hub.exec("dora", "echo 'my thesis' > ~/thesis.txt")[0] == 0
    before = hub.container("dora").id

    # 1. The running daemon has no live-restore: its restart stops the student's container.
    assert not live_restore_on()
    restart_dockerd(live_restore=True)
    wait_for(lambda: hub.server("dora") is None, 120,
             "the hub noticing that dora's server stopped with the Docker daemon", interval=1)
    hub.spawn("dora", {"template": "lab-cpu"})
    assert hub.exec("dora", "cat ~/thesis.txt") == (0, "my thesis\n"), "the home must survive"
    again = hub.container("dora").id
    assert again != before

    # 2. Now the daemon has live-restore: a restart leaves the server running and reachable.
    restart_dockerd(live_restore=False)
    container = hub.container("dora")
    assert container.id == again and container.status == "running"
    assert hub.server("dora")["ready"]
    r = requests.get(f"{hub.url}/user/dora/api/status", headers={"Authorization": f"token {hub.token}"},
                     timeout=30)
    assert r.status_code == 200, f"the server must answer through the proxy after a live restore: {r.text[:200]}"
    assert hub.exec("dora", "cat ~/thesis.txt") == (0, "my thesis\n")
