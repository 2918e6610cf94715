"""The platform as an operator runs it, with the real command line: `goldenhub up --detach`
(passwords last, in a box), `status`, `down` (students' servers kept, or stopped with
--stop-servers), and a hub serving HTTPS with a generated self-signed pair."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import docker
import pytest
import requests
import yaml

from hub_ext import contract
from hub_ext.paths import REPO_ROOT
from tests.helpers import HUB_PORT, PREFIX, Hub, goldenhub, remove_docker_objects, running, wait_for

pytestmark = pytest.mark.integration

OPS_PREFIX = f"{PREFIX}op"
STUDENT = "ops-student"


def platform_env(tmp: Path, port: int, token: str) -> dict[str, str]:
    """A platform of its own: state, courses (the samples and a course without courseware),
    ports, prefix and sample git server port; a test service holds `token` (admin scopes)."""
    courses = tmp / "courses"  # all of it: `up` prepares the sample courseware and datasets
    shutil.copytree(REPO_ROOT / "courses", courses)
    (courses / "ops.yaml").write_text(textwrap.dedent("""\
        id: ops
        title: Operations
        access: everyone
        templates:
          - id: ops-cpu
            title: Operations (CPU)
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
        """))
    config = tmp / "test_config.py"
    config.write_text(
        "c.JupyterHub.services.append({'name': 'ops-tests', 'api_token': %r})\n"
        "c.JupyterHub.load_roles.append({'name': 'ops-tests', 'services': ['ops-tests'],"
        " 'scopes': ['admin:users', 'admin:servers', 'list:users', 'read:users']})\n" % token)
    return {
        "GOLDENHUB_STATE_DIR": str(tmp / "state"), "GOLDENHUB_COURSES_DIR": str(courses),
        "GOLDENHUB_BIND_URL": f"http://127.0.0.1:{port}", "GOLDENHUB_HUB_PORT": str(port + 1),
        "GOLDENHUB_PROXY_API_PORT": str(port + 2), "GOLDENHUB_SERVICE_PORT": str(port + 3),
        "GOLDENHUB_GIT_PORT": str(port + 4), "GOLDENHUB_PREFIX": OPS_PREFIX, "GOLDENHUB_AUTH": "demo",
        "GOLDENHUB_SSH_PORT": str(port + 27),
        "GOLDENHUB_EXTRA_CONFIG": str(config), "JUPYTERHUB_API_TOKEN": None,
    }


def pid_of(state: Path, name: str) -> int:
    return int((state / name).read_text().split()[0])


def assert_box_is_last(stdout: str, *must: str) -> list[str]:
    """The output ends with a box that holds each of `must`; returns the box's lines."""
    lines = stdout.rstrip().splitlines()
    assert lines[-1].startswith("+-") and lines[-1].endswith("-+"), stdout
    top = max(i for i, line in enumerate(lines[:-1]) if line.startswith("+-"))
    box = lines[top:]
    assert all(line.startswith(("|", "+")) for line in box)
    for text in must:
        assert any(text in line for line in box), (text, box)
    return box


@pytest.fixture
def platform(tmp_path):
    token = secrets.token_hex(16)
    env = platform_env(tmp_path, HUB_PORT + 60, token)
    remove_docker_objects(OPS_PREFIX)
    yield env, token
    goldenhub("down", "--stop-servers", env={**env, "JUPYTERHUB_API_TOKEN": token})
    remove_docker_objects(OPS_PREFIX)


def test_up_detach_status_down_keep_or_stop_students_servers(platform):
    env, token = platform
    state = Path(env["GOLDENHUB_STATE_DIR"])
    url = env["GOLDENHUB_BIND_URL"]
    up = goldenhub("up", "--detach", env=env, timeout=300)
    assert up.returncode == 0
    password = yaml.safe_load((state / "secrets.yaml").read_text())["student_password"]
    assert_box_is_last(up.stdout, url, password, "Demo mode")
    assert up.stdout.index(f":{HUB_PORT + 64}") < up.stdout.index("+-")  # prepare's output comes before the box
    login = requests.get(f"{url}/hub/login", timeout=30)
    assert login.status_code == 200 and 'name="password"' in login.text

    again = goldenhub("up", "--detach", env=env)
    assert again.returncode != 0 and "already runs" in again.stderr

    status = goldenhub("status", env=env)
    assert status.returncode == 0
    for line in ("hub:                running", "answering", "goldenhub service:  running", "healthy",
                 "sample git server:  running", "Docker:             reachable", "student servers:    0 running"):
        assert line in status.stdout, line

    hub = Hub(url, token, state, OPS_PREFIX, None, state / "jupyterhub.log")
    hub.spawn(STUDENT, {"template": "ops-cpu"})
    parts = {name: pid_of(state, name) for name in
             ("jupyterhub.pid", "jupyterhub-proxy.pid", "goldenhub-service.pid", "git/git-daemon.pid")}
    down = goldenhub("down", env=env)
    assert down.returncode == 0
    for said in (f"stopped the hub (pid {parts['jupyterhub.pid']})",
                 f"the proxy (pid {parts['jupyterhub-proxy.pid']}) stopped with the hub",
                 f"the goldenhub service (pid {parts['goldenhub-service.pid']}) stopped with the hub",
                 f"stopped the sample git server (pid {parts['git/git-daemon.pid']})",
                 "1 student server keeps running"):
        assert said in down.stdout, said
    assert not any(running(pid) for pid in parts.values())
    container = docker.from_env().containers.get(contract.container_name(OPS_PREFIX, STUDENT))
    assert container.status == "running"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/hub/login", timeout=10)
    down_status = goldenhub("status", env=env)
    assert down_status.returncode == 3 and "hub:                not running" in down_status.stdout
    assert "student servers:    1 running" in down_status.stdout
    assert "nothing of goldenhub was running" in goldenhub("down", env=env).stdout

    refused = goldenhub("down", "--stop-servers", env=env)
    assert refused.returncode == 1 and "the hub is not running" in refused.stderr
    assert goldenhub("up", "--detach", env=env, timeout=300).returncode == 0
    no_token = goldenhub("down", "--stop-servers", env=env)
    assert no_token.returncode == 1 and "needs an admin's API token" in no_token.stderr
    assert goldenhub("status", env=env).returncode == 0  # nothing was stopped
    stopped = goldenhub("down", "--stop-servers", env={**env, "JUPYTERHUB_API_TOKEN": token})
    assert stopped.returncode == 0 and "stopped 1 student server through the hub" in stopped.stdout
    assert "stopped the hub" in stopped.stdout
    client = docker.from_env()
    assert not client.containers.list(all=True, filters={"name": contract.container_name(OPS_PREFIX, STUDENT)})
    homes = [v.name for v in client.volumes.list(filters={"label": f"{contract.LABEL_USER}={STUDENT}"})
             if v.name.startswith(OPS_PREFIX + "-")]
    assert homes, "the student's home volume must survive --stop-servers"


def test_a_hub_with_a_generated_self_signed_pair_serves_https(platform, tmp_path):
    env, _ = platform
    port = HUB_PORT + 70
    env = {**env, "GOLDENHUB_HUB_PORT": str(port + 1), "GOLDENHUB_PROXY_API_PORT": str(port + 2),
           "GOLDENHUB_SERVICE_PORT": str(port + 3), "GOLDENHUB_GIT_PORT": str(port + 4),
           "GOLDENHUB_SSH_PORT": str(port + 27)}
    tls = goldenhub("tls", "self-signed", "--host", "localhost", env=env)
    assert tls.returncode == 0
    cert = Path(env["GOLDENHUB_STATE_DIR"]) / "tls" / "goldenhub.crt"
    key = cert.with_name("goldenhub.key")
    env.update(GOLDENHUB_BIND_URL=f"https://127.0.0.1:{port}", GOLDENHUB_SSL_CERT=str(cert), GOLDENHUB_SSL_KEY=str(key))
    up = goldenhub("up", "--detach", env=env, timeout=300)
    assert up.returncode == 0
    assert_box_is_last(up.stdout, f"https://127.0.0.1:{port}")
    page = requests.get(f"https://localhost:{port}/hub/login", verify=str(cert), timeout=30)
    assert page.status_code == 200 and 'name="password"' in page.text
    with pytest.raises(requests.exceptions.SSLError):  # really TLS, with our certificate only
        requests.get(f"https://localhost:{port}/hub/login", timeout=30)
    with pytest.raises(requests.ConnectionError):  # no plain HTTP on the public address
        requests.get(f"http://127.0.0.1:{port}/hub/login", timeout=30)
    status = goldenhub("status", env=env)
    assert status.returncode == 0 and "healthy" in status.stdout
    assert "stopped the hub" in goldenhub("down", env=env).stdout


def test_up_refuses_an_unreadable_certificate_with_a_sentence(platform, tmp_path):
    env, _ = platform
    env = {**env, "GOLDENHUB_BIND_URL": f"https://127.0.0.1:{HUB_PORT + 60}",
           "GOLDENHUB_SSL_CERT": str(tmp_path / "missing.crt"), "GOLDENHUB_SSL_KEY": str(tmp_path / "missing.key")}
    up = goldenhub("up", "--detach", env=env)
    assert up.returncode != 0 and "missing.crt does not exist" in up.stderr
    assert not (Path(env["GOLDENHUB_STATE_DIR"]) / "jupyterhub.pid").exists()


def test_foreground_up_prints_the_box_last_before_the_hubs_log(platform, tmp_path):
    env, _ = platform
    environment = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    with (tmp_path / "hub.err").open("w") as err:
        up = subprocess.Popen([sys.executable, "-m", "hub_ext.cli", "up"], env=environment, text=True,
                              stdout=subprocess.PIPE, stderr=err)
        try:
            wait_for(lambda: requests.get(f"{env['GOLDENHUB_BIND_URL']}/hub/login", timeout=5).ok, 120,
                     "the foreground hub answering")
            assert up.poll() is None
            down = goldenhub("down", env=env)
            assert f"stopped the hub (pid {up.pid})" in down.stdout  # `up` became the hub
            out, _ = up.communicate(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
    password = yaml.safe_load((Path(env["GOLDENHUB_STATE_DIR"]) / "secrets.yaml").read_text())["student_password"]
    # What `up` printed ends with the box; only the hub's own log (its proxy logs to stdout) follows.
    ours, log = out.split("+\n2", 1) if "+\n2" in out else (out, "")
    assert_box_is_last(ours + "+", "is starting at", password)
    assert all("[ConfigProxy]" in line or not line[:1].isalnum() for line in ("2" + log).splitlines()), log
    assert "JupyterHub" in (tmp_path / "hub.err").read_text()


def test_down_after_the_hub_was_killed_stops_what_it_left_behind(platform):
    env, _ = platform
    state = Path(env["GOLDENHUB_STATE_DIR"])
    assert goldenhub("up", "--detach", env=env, timeout=300).returncode == 0
    hub, proxy = pid_of(state, "jupyterhub.pid"), pid_of(state, "jupyterhub-proxy.pid")
    os.kill(hub, signal.SIGKILL)
    wait_for(lambda: not running(hub), 30, "the killed hub gone")
    status = goldenhub("status", env=env)
    assert status.returncode == 3 and f"proxy:              running (pid {proxy})" in status.stdout
    down = goldenhub("down", env=env)
    assert down.returncode == 0
    assert f"pid {hub} is not running" in down.stdout
    assert f"stopped the proxy (pid {proxy}) left behind by the hub" in down.stdout
    assert not running(proxy)
    assert "stopped the sample git server" in down.stdout


def test_up_detach_says_why_when_the_hub_does_not_start(platform, tmp_path):
    """A hub that exits while starting: `up --detach` says so with the end of its log."""
    env, _ = platform
    config = Path(env["GOLDENHUB_EXTRA_CONFIG"])
    config.write_text(config.read_text() + "c.DockerSpawner.mem_limit = '1G'\n")
    up = goldenhub("up", "--detach", env=env, timeout=300)
    assert up.returncode == 1
    assert "the hub exited (code" in up.stderr and "Last lines of" in up.stderr
    assert "c.DockerSpawner.mem_limit is not used by goldenhub" in up.stderr
    assert "class password" not in up.stdout  # no box for a hub that is not there
    assert goldenhub("status", env=env).returncode == 3
