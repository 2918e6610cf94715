"""Resource use in view, with real parts: servers started through the session `hub` from
templates of 512M and 1G, jupyter-resource-usage's /api/metrics/v1 read with the student's
own token, and Debian's Chromium reading JupyterLab's status bar.

The image is the course image (its base layer carries jupyter-resource-usage and
goldenhub_usage); GOLDENHUB_TEST_RESOURCE_IMAGE names another one, e.g. a base layer built
under a test tag. No GPU here: the GPU path ends at "a CPU template shows no GPU"; the real-GPU
check is left for a session with a GPU machine (README "Resource use")."""

from __future__ import annotations

import json
import os
import re

import pytest
import requests

from tests.helpers import ARTIFACTS, extra_course, user_token, wait_for

IMAGE = os.environ.get("GOLDENHUB_TEST_RESOURCE_IMAGE", "goldenhub/course-intro-python:latest")
TEMPLATES = f"""\
- id: ru-half
  title: Half a GiB
  image: {IMAGE}
  gpus: 0
  cpu: 1
  memory: 512M
- id: ru-one
  title: One GiB
  image: {IMAGE}
  gpus: 0
  cpu: 0.5
  memory: 1G
"""
GPUS_URL = re.compile(r".*/api/goldenhub/gpus(\?.*)?$")  # JupyterLab adds a cache-busting query

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def course(courses_dir):
    with extra_course(courses_dir, "ru", TEMPLATES):
        yield


def metrics(hub, user: str, token: str, path: str = "api/metrics/v1") -> dict:
    r = requests.get(f"{hub.url}/user/{user}/{path}", headers={"Authorization": f"token {token}"}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    return r.json()


@pytest.mark.parametrize("template, limit, cpus", [("ru-half", 512 * 2**20, 1.0), ("ru-one", 2**30, 0.5)])
def test_the_metrics_report_the_templates_memory_and_cpu_limits(hub, course, template, limit, cpus):
    user = f"ru{template.split('-')[1]}"
    hub.spawn(user, {"template": template})
    try:
        token = user_token(hub, user)
        m = metrics(hub, user, token)
        assert m["limits"]["memory"]["rss"] == limit
        assert m["limits"]["cpu"]["cpu"] == cpus * 100  # in the unit of cpu_percent: 100 = one CPU
        assert 0 < m["rss"] < limit and m["cpu_percent"] >= 0
        assert metrics(hub, user, token, "api/goldenhub/gpus") == {"gpus": []}  # a CPU template: no GPU
        # another student's token reads nothing of this server
        other = user_token(hub, "rustranger")
        r = requests.get(f"{hub.url}/user/{user}/api/metrics/v1", headers={"Authorization": f"token {other}"},
                         timeout=60, allow_redirects=False)
        assert r.status_code in (302, 403)
    finally:
        hub.request("DELETE", f"/users/{user}/server")


@pytest.mark.browser
def test_jupyterlab_shows_memory_against_the_templates_limit_and_no_gpu_on_a_cpu_template(hub, course, browser):
    from tests.helpers import browser_login

    user = "rulab"
    hub.spawn(user, {"template": "ru-one"})
    try:
        page = browser_login(browser, hub, user, hub.student_password())
        page.set_default_timeout(120_000)
        with page.expect_request(GPUS_URL) as asked:  # our GPU item asked, and was told: none
            page.goto(f"{hub.url}/user/{user}/lab")
            page.locator(".lm-MenuBar-itemLabel").first.wait_for()
        assert asked.value.response().json() == {"gpus": []}
        status = page.locator("#jp-main-statusbar")
        # jupyter-resource-usage's item: "CPU: 0.00 % | Mem: 95.21 / 1024.00 MB" (the limit in
        # the unit of the current use)
        item = status.get_by_text("Mem:")
        item.wait_for()
        text = wait_for(lambda: (t := item.inner_text()) and "/" in t and t, 60, "the memory limit in the status bar")
        assert "/ 1024.00 MB" in text or "/ 1.00 GB" in text, text
        assert "CPU:" in status.inner_text()
        page.screenshot(path=str(ARTIFACTS / "resource-usage-status-bar.png"))
        assert "GPU" not in status.inner_text()
    finally:
        hub.request("DELETE", f"/users/{user}/server")


@pytest.mark.browser
def test_a_gpu_answer_becomes_a_status_bar_item_with_memory_and_utilisation(hub, course, browser):
    """The frontend half of the GPU path: the server's answer is replaced by the browser (no GPU
    here), so this proves what the student would see from an answer, not real GPU numbers."""
    from tests.helpers import browser_login

    user = "rugpu"
    hub.spawn(user, {"template": "ru-half"})
    try:
        page = browser_login(browser, hub, user, hub.student_password())
        page.set_default_timeout(120_000)
        answer = {"gpus": [{"index": 0, "name": "NVIDIA L4", "memory_used": 2 * 2**30, "memory_total": 24 * 2**30,
                            "utilization": 37}]}
        page.route(GPUS_URL, lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answer)))
        page.goto(f"{hub.url}/user/{user}/lab")
        item = page.locator("#jp-main-statusbar .goldenhub-gpu-usage")
        item.wait_for()
        assert item.inner_text() == "GPU: 37 % | 2.00 / 24.00 GiB"
        # the GPU can no longer be read (the server's answer lists none): never the old numbers
        answer["gpus"] = []
        page.locator("#jp-main-statusbar .goldenhub-gpu-usage", has_text="GPU: n/a").wait_for()
    finally:
        hub.request("DELETE", f"/users/{user}/server")


def test_a_server_given_a_gpu_on_a_host_without_a_driver_reports_none_and_says_why_once():
    """The image's own path when NVML cannot be read (here: no driver at all): the
    server runs, reports no GPU, and its log says why, once, however often it is asked."""
    import docker

    from tests.helpers import PREFIX

    client = docker.from_env()
    name = f"{PREFIX}-resource-nodriver"
    for old in client.containers.list(all=True, filters={"name": name}):
        old.remove(force=True)
    box = client.containers.run(
        IMAGE, ["jupyter", "server", "--ip=0.0.0.0", "--IdentityProvider.token=ghru-test"], name=name, detach=True,
        environment={"NVIDIA_VISIBLE_DEVICES": "GPU-test-0", "MEM_LIMIT": str(2**30), "CPU_LIMIT": "1"},
        ports={"8888/tcp": ("127.0.0.1", None)}, user="1000", mem_limit="1g")
    try:
        box.reload()
        port = box.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}/api/goldenhub/gpus"
        headers = {"Authorization": "token ghru-test"}
        first = wait_for(lambda: requests.get(url, headers=headers, timeout=10).json(), 120, "the GPU endpoint")
        assert first == {"gpus": []}
        assert requests.get(url, headers=headers, timeout=10).json() == {"gpus": []}
        assert requests.get(url, timeout=10).status_code == 403  # no token, nothing
        log = box.logs().decode()
        assert log.count("GPU usage is not shown: NVML could not be read") == 1, log[-3000:]
    finally:
        box.remove(force=True)
