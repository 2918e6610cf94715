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

from tests.helpers import HUB_PORT, PREFIX, remove_docker_objects, running, start_hub, wait_for

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
    wait_for(lambda: not running(pid), 120, "dockerd stopping", interval=0.5)
    # Started as .ci/setup starts it: detached, so that it is not this test's child.
    flags = " --live-restore" if live_restore else ""
    subprocess.run(["sh", "-c", f"setsid dockerd{flags} >>{DOCKERD_LOG} 2>&1 &"], check=True)
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


def check_after_restart(hub, before: str) -> str:
    """After a daemon restart the hub must tell the truth and the student must lose nothing:
    a surviving server is still ready and answers through the proxy; a stopped one is noticed
    by the hub and starts again. Either way every file is there. Returns what happened."""
    try:
        container = hub.container("dora")
        survived = container.status == "running" and container.id == before
    except docker.errors.NotFound:
        survived = False
    if survived:
        assert hub.server("dora")["ready"]
        r = requests.get(f"{hub.url}/user/dora/api/status", headers={"Authorization": f"token {hub.token}"},
                         timeout=30)
        assert r.status_code == 200, f"a server that survived must answer through the proxy: {r.text[:200]}"
    else:
        wait_for(lambda: hub.server("dora") is None, 120,
                 "the hub noticing that dora's server stopped with the Docker daemon", interval=1)
        hub.spawn("dora", {"template": "lab-cpu"})
    assert hub.exec("dora", "cat ~/thesis.txt") == (0, "my thesis\n"), "the home must survive"
    return "kept running" if survived else "stopped, started again"


def test_docker_restart_with_and_without_live_restore_keeps_every_file(docker_hub):
    hub = docker_hub
    hub.spawn("dora", {"template": "lab-cpu"})
    assert hub.exec("dora", "echo 'my thesis' > ~/thesis.txt")[0] == 0

    # 1. The running daemon has no live-restore: its restart stops the student's container.
    assert not live_restore_on()
    before = hub.container("dora").id
    restart_dockerd(live_restore=True)
    assert check_after_restart(hub, before) == "stopped, started again"

    # 2. The daemon has live-restore now. Whether containers outlive its restart depends on
    # the engine (Debian's docker.io 20.10 with the containerd that dockerd starts itself
    # stops them; engines with containerd as its own service keep them): either way the hub
    # and the student see the truth, and nothing is lost.
    assert live_restore_on()
    before = hub.container("dora").id
    restart_dockerd(live_restore=False)
    outcome = check_after_restart(hub, before)
    print(f"with live-restore, dora's server {outcome}")
