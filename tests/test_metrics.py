"""Prometheus metrics end to end: a real hub with a one-GPU fake inventory, real Docker
containers, the goldenhub service answering /services/goldenhub/metrics, its text parsed with
prometheus_client's parser.

Proves what an operator's Prometheus sees: three servers started → the servers gauge sums to
three, with their course and template; the GPU one holds the only GPU (allocated 1, free 0);
the next GPU start is refused and counted as a failure with its reason; every successful
start is in the duration histogram. And who may read them: no token, a token without the
metrics scope and a student's token are refused with 403; an admin's token with only the
metrics scope reads them; with GOLDENHUB_METRICS_PUBLIC=1 anyone does."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from hub_ext import contract
from tests.helpers import HUB_PORT, PREFIX, hub_running, user_token

pytestmark = pytest.mark.integration

COURSE_ID, CPU, GPU = "metrics-lab", "metrics-cpu", "metrics-gpu"
COURSE = f"""\
id: {COURSE_ID}
title: Metrics lab
access: everyone
templates:
  - id: {CPU}
    title: Metrics lab (CPU)
    image: goldenhub/course-intro-python:latest
    gpus: 0
    cpu: 1
    memory: 512M
  - id: {GPU}
    title: Metrics lab (1 GPU)
    image: goldenhub/course-intro-python:latest
    gpus: 1
    cpu: 1
    memory: 512M
"""
HUB_CONFIG = """\
c.GoldenSpawner.gpu_inventory = ['GPU-metrics-0']
c.GoldenSpawner.gpu_device_requests = False
"""


@pytest.fixture(scope="module")
def metrics_hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    courses = tmp / "courses"
    courses.mkdir()
    (courses / f"{COURSE_ID}.yaml").write_text(COURSE)
    with hub_running(tmp / "state", courses, HUB_PORT + 120, f"{PREFIX}me", extra_config=HUB_CONFIG) as hub:
        yield hub


def scrape(hub, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{hub.url}/services/goldenhub/metrics", headers=headers, timeout=60)


def values(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_who_may_read_the_metrics(metrics_hub):
    hub = metrics_hub
    for token in (None, user_token(hub, "admin", scopes=["custom:goldenhub:templates"]),
                  user_token(hub, "student-m")):
        r = scrape(hub, token)
        assert r.status_code == 403, r.text
        assert "custom:goldenhub:metrics" in r.json()["message"]
        assert "goldenhub_" not in r.text
    r = scrape(hub, user_token(hub, "admin", scopes=["custom:goldenhub:metrics"]))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert ("goldenhub_gpus_allocated", ()) in values(r.text)


def test_servers_gpus_starts_and_failures(metrics_hub):
    hub = metrics_hub
    token = user_token(hub, "admin", scopes=["custom:goldenhub:metrics"])
    for name in ("mc1", "mc2"):
        r = hub.start(name, {contract.OPTION_TEMPLATE: CPU})
        assert r.status_code in (201, 202), r.text
    r = hub.start("mg1", {contract.OPTION_TEMPLATE: GPU})
    assert r.status_code in (201, 202), r.text
    for name in ("mc1", "mc2", "mg1"):
        hub.wait_ready(name)

    # the only GPU is held: the next GPU start is refused at once
    refused = hub.start("mg2", {contract.OPTION_TEMPLATE: GPU})
    assert refused.status_code >= 400 and "GPU" in refused.json()["message"], refused.text

    got = values(scrape(hub, token).text)
    running = {labels: v for (name, labels), v in got.items() if name == "goldenhub_servers_running"}
    assert sum(running.values()) == 3, running
    assert running[(("course", COURSE_ID), ("template", CPU))] == 2
    assert running[(("course", COURSE_ID), ("template", GPU))] == 1
    assert got[("goldenhub_gpus_allocated", ())] == 1
    assert got[("goldenhub_gpus_free", ())] == 0
    assert got[("goldenhub_gpus_total", ())] == 1
    assert got[("goldenhub_spawn_failures_total", (("outcome", "refused"), ("reason", "no-gpu")))] == 1
    assert got[("goldenhub_start_duration_seconds_count", (("template", CPU),))] == 2
    assert got[("goldenhub_start_duration_seconds_count", (("template", GPU),))] == 1
    assert got[("goldenhub_start_queue_length", ())] == 0

    # a stopped server leaves the gauge and gives its GPU back
    hub.stop("mg1")
    got = values(scrape(hub, token).text)
    assert sum(v for (name, _), v in got.items() if name == "goldenhub_servers_running") == 2
    assert got[("goldenhub_gpus_free", ())] == 1


def test_public_metrics_need_no_token(tmp_path):
    """GOLDENHUB_METRICS_PUBLIC=1: anyone reads them; the hub's own /hub/metrics keeps its rule."""
    courses = tmp_path / "courses"
    courses.mkdir()
    (courses / f"{COURSE_ID}.yaml").write_text(COURSE)
    with hub_running(tmp_path / "state", courses, HUB_PORT + 130, f"{PREFIX}mp",
                     env={"GOLDENHUB_METRICS_PUBLIC": "1"}) as hub:
        r = scrape(hub, None)
        assert r.status_code == 200, r.text
        assert values(r.text)[("goldenhub_start_queue_length", ())] == 0
        assert requests.get(f"{hub.url}/hub/metrics", timeout=60).status_code == 403
