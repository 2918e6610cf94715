"""GPU-aware idle culling end to end: a real hub running jupyterhub-idle-culler with goldenhub's
hook, the goldenhub service's keeper, real Docker containers, and GPU utilisation fed
through a file (gpu_load.FedReader), with timeouts shortened: a timeout "minute" is
UNIT seconds here (GOLDENHUB_CULL_UNIT_SECONDS, for tests only).

Proves what a student sees or loses: an idle GPU server is warned, then culled, its home
kept, its GPU free again in the picker, and the next start says why it stopped; a server
whose GPU stays busy is kept past its timeout; activity through the proxy after a warning
cancels it."""

from __future__ import annotations

import json
import os

import docker
import pytest
from sqlalchemy import select

from hub_ext import contract
from hub_ext.service.db import AuditEntry, open_database
from hub_ext.usage import notices
from tests.helpers import HUB_PORT, PREFIX, WAIT_SPAWN, hub_running, user_token, wait_for

pytestmark = pytest.mark.integration

UNIT = 10  # seconds in a timeout's "minute"
PORT = HUB_PORT + 110  # a hub of its own: no other test uses this port or prefix
GPUS = ["GPU-test-0", "GPU-test-1"]
COURSE = """\
id: cull
title: Culling lab
access: everyone
templates:
  - id: cull-gpu
    title: Culling (GPU)
    image: goldenhub/course-intro-python:latest
    gpus: 1
    cpu: 1
    memory: 512M
    idle_timeout: 2
  - id: cull-cpu
    title: Culling (CPU)
    image: goldenhub/course-intro-python:latest
    gpus: 0
    cpu: 1
    memory: 512M
    idle_timeout: 2
"""
HUB_CONFIG = f"""\
c.GoldenSpawner.gpu_inventory = {GPUS!r}
c.GoldenSpawner.gpu_device_requests = False
# the hub reads the proxy's record of requests to servers every 2 s (default 300 s)
c.JupyterHub.last_activity_interval = 2
"""
WAIT_CULL = 6 * UNIT + WAIT_SPAWN


@pytest.fixture(scope="module")
def culling_hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("culling")
    courses = tmp / "courses"
    courses.mkdir()
    (courses / "cull.yaml").write_text(COURSE)
    fed = tmp / "gpu-load.json"
    fed.write_text("{}")
    env = {"GOLDENHUB_CULL_EVERY": "2", "GOLDENHUB_CULL_WARN_MINUTES": "1",
           "GOLDENHUB_CULL_UNIT_SECONDS": str(UNIT), "GOLDENHUB_GPU_LOAD_FILE": str(fed)}
    with hub_running(tmp / "state", courses, PORT, f"{PREFIX}cu", extra_config=HUB_CONFIG, env=env) as hub:
        hub.fed = fed
        hub.db = open_database(f"sqlite:///{tmp / 'state' / 'goldenhub.sqlite'}")
        yield hub


def feed(hub, readings: dict) -> None:
    """Write the GPU readings the keeper sees, whole (a temporary file renamed)."""
    partial = hub.fed.with_suffix(".tmp")
    partial.write_text(json.dumps(readings))
    os.replace(partial, hub.fed)


def cull_notice(hub, user: str):
    return next((w for w in notices.for_user(hub.db, user) if w.kind == "cull"), None)


def gpus_of(hub, user: str) -> list[str]:
    return hub.container(user).labels[contract.LABEL_GPUS].split(",")


def gone(hub, user: str) -> bool:
    return hub.server(user) is None


def test_an_idle_gpu_server_is_warned_then_culled_keeping_its_home_and_freeing_its_gpu(culling_hub):
    hub = culling_hub
    feed(hub, {g: {"utilisation": 0} for g in GPUS})
    hub.spawn("ida", {"template": "cull-gpu"})
    assert "1 of 2 GPUs free" in hub.options_form("ivo")
    home = hub.container("ida").labels[contract.LABEL_HOME_VOLUME]

    warning = wait_for(lambda: cull_notice(hub, "ida"), WAIT_CULL, "the cull warning of ida")
    assert warning.params["template"] == "Culling (GPU)" and warning.params["idle_minutes"] == 2
    assert "will be stopped at" in notices.sentence(warning) and "Your files stay" in notices.sentence(warning)

    wait_for(lambda: gone(hub, "ida"), WAIT_CULL, "ida's idle server culled")
    docker.from_env().volumes.get(home)  # the home is kept
    assert "2 of 2 GPUs free" in hub.options_form("ivo")
    wait_for(lambda: cull_notice(hub, "ida") is None, WAIT_CULL, "the warning gone with the server")
    with hub.db() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.target_user == "ida")).all()
    assert [(a.actor, a.action, a.course) for a in audit] == [("idle-culler", "cull", "cull")]
    # the next start page says why the server stopped
    assert "stopped after 2 minutes idle; your files are kept" in hub.options_form("ida")


def test_a_server_busy_on_its_gpu_is_kept_while_an_idle_one_started_later_is_culled(culling_hub):
    hub = culling_hub
    feed(hub, {g: {"utilisation": 0} for g in GPUS})
    hub.spawn("bea", {"template": "cull-gpu"})
    (busy_gpu,) = gpus_of(hub, "bea")
    feed(hub, {g: {"utilisation": 93 if g == busy_gpu else 0} for g in GPUS})
    hub.spawn("ola", {"template": "cull-gpu"})

    # ola started after bea: once ola's timeout has run out, bea's has too
    wait_for(lambda: gone(hub, "ola"), WAIT_CULL, "ola's idle server culled")
    assert hub.server("bea")["ready"]
    assert cull_notice(hub, "bea") is None
    hub.stop("bea")


def test_activity_through_the_proxy_after_a_warning_cancels_it(culling_hub):
    import requests

    hub = culling_hub
    hub.spawn("cara", {"template": "cull-cpu"})
    first = wait_for(lambda: cull_notice(hub, "cara"), WAIT_CULL, "the cull warning of cara")
    token = user_token(hub, "cara")
    # what a browser tab does: a request to the student's server through the proxy
    r = requests.get(f"{hub.url}/user/cara/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    wait_for(lambda: cull_notice(hub, "cara") is None, WAIT_CULL, "the warning cancelled by activity")
    # idle again: warned again, for a later time, and still running past the first due time
    second = wait_for(lambda: cull_notice(hub, "cara"), WAIT_CULL, "the next cull warning of cara")
    assert second.due_at > first.due_at
    assert hub.server("cara")["ready"]
    hub.stop("cara")
