"""GPU-hour quotas end to end: a real hub with a fake GPU inventory, the goldenhub service's
ledger loop looking every 2 s, real Docker containers. Earlier use is written into the
service's database as recorded sessions (as the loop itself writes them), so the hours are
large without waiting for them.

Proves what a student and an instructor see: the picker says "12.5 of 20 GPU-hours used";
a student over quota is refused at once with a sentence naming the quota and what to do,
and no GPU is taken; only the course's staff may grant hours, the grant is audited and lets
the student start; the running server is recorded from Docker's own start time; a server
that runs out of hours is warned, then stopped, and the student is told why."""

from __future__ import annotations

from datetime import timedelta

import docker
import pytest
from sqlalchemy import select

from hub_ext import contract
from hub_ext.service.db import AuditEntry, UsageGrant, UsageSession, open_database, utcnow
from hub_ext.usage import notices, records
from hub_ext.usage.ledger_loop import docker_time
from tests.helpers import HUB_PORT, PREFIX, ServiceClient, goldenhub, hub_running, user_token, wait_for

pytestmark = pytest.mark.integration

COURSE_ID, TEMPLATE = "gpu-lab", "gpu-lab-1"
COURSE = f"""\
id: {COURSE_ID}
title: GPU lab
access: everyone
templates:
  - id: {TEMPLATE}
    title: GPU lab (1 GPU)
    image: goldenhub/course-intro-python:latest
    gpus: 1
    cpu: 1
    memory: 512M
    quota: {{gpu_hours: 20, period: term}}
"""
HUB_CONFIG = """\
c.GoldenSpawner.gpu_inventory = ['GPU-quota-0']
c.GoldenSpawner.gpu_device_requests = False
"""


@pytest.fixture(scope="module")
def quota_hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quotas")
    courses = tmp / "courses"
    courses.mkdir()
    (courses / f"{COURSE_ID}.yaml").write_text(COURSE)
    env = {"GOLDENHUB_CULL_EVERY": "2", "GOLDENHUB_CULL_WARN_MINUTES": "10"}
    with hub_running(tmp / "state", courses, HUB_PORT + 140, f"{PREFIX}qu", extra_config=HUB_CONFIG, env=env) as hub:
        hub.db = open_database(f"sqlite:///{tmp / 'state' / 'goldenhub.sqlite'}")
        yield hub


def used_before(hub, user: str, hours: float, cid: str) -> None:
    """A finished session of `hours` GPU-hours, ending now (a container long gone)."""
    end = utcnow()
    with hub.db() as s:
        s.add(UsageSession(container_id=cid, username=user, course=COURSE_ID, template=TEMPLATE, gpus="GPU-quota-0",
                           started_at=end - timedelta(hours=hours), last_seen=end, ended_at=end, end_reason="stop"))
        s.commit()


def start_message(hub, user: str) -> tuple[int, str]:
    r = hub.start(user, {contract.OPTION_TEMPLATE: TEMPLATE})
    if r.status_code >= 400:
        return r.status_code, r.json().get("message", "")
    return r.status_code, hub.wait_spawn_failure(user)


def test_picker_refusal_grant_recording_and_stop_at_the_quota(quota_hub):
    hub = quota_hub
    used_before(hub, "qa", 12.5, "earlier-1")
    assert "12.5 of 20 GPU-hours used" in hub.options_form("qa")

    # over quota: refused at once, with the quota, the use and what to do; no GPU taken
    used_before(hub, "qa", 7.5, "earlier-2")
    status, message = start_message(hub, "qa")
    assert message == ("GPU lab (1 GPU) cannot start: you have used 20 of your 20 GPU-hours in GPU lab this term. "
                       "Ask your instructor for more hours."), hub.log_tail()
    assert "GPU lab (1 GPU) cannot start" in hub.options_form("qa")  # the picker says so too
    with pytest.raises(docker.errors.NotFound):
        hub.container("qa")

    # a student may not grant; the course's instructor may, and it is audited
    hub.enrol("prof", COURSE_ID, staff=True)
    body = {"course": COURSE_ID, "user": "qa", "hours": 5, "reason": "project"}
    other = ServiceClient(hub, user_token(hub, "mallory")).call("POST", "/usage/grants", json=body)
    assert other.status_code == 403 and "You may not grant hours in gpu-lab" in other.json()["message"]
    prof = ServiceClient(hub, user_token(hub, "prof"))
    bad = prof.call("POST", "/usage/grants", json={**body, "hours": "lots"})
    assert bad.status_code == 400 and "above 0 and at most 100000" in bad.json()["message"]
    extra = prof.call("POST", "/usage/grants", json={**body, "evil": 1})
    assert extra.status_code == 400 and "Unknown fields: evil" in extra.json()["message"]
    with hub.db() as s:
        assert s.scalars(select(UsageGrant)).all() == []
    r = prof.call("POST", "/usage/grants", json=body)
    assert r.status_code == 201 and r.json()["hours"] == 5, r.text
    with hub.db() as s:
        audit = s.scalar(select(AuditEntry).where(AuditEntry.action == "grant"))
    assert (audit.actor, audit.target_user, audit.course) == ("prof", "qa", COURSE_ID)
    assert "20 of 25 GPU-hours used" in hub.options_form("qa")

    # the grant lets the student start; the loop records the session from Docker's start time
    hub.spawn("qa", {contract.OPTION_TEMPLATE: TEMPLATE})
    container = hub.container("qa")
    started = docker_time(container.attrs["State"]["StartedAt"])
    row = wait_for(lambda: next((x for x in records.sessions(hub.db, user="qa") if x.ended_at is None), None),
                   60, "the running server recorded")
    assert (row.container_id, row.started_at, row.gpus) == (container.id, started, ("GPU-quota-0",))

    # a few seconds of hours left: warned (a quota notice), then stopped, and told why
    used_before(hub, "qa", 5 - 8 / 3600, "earlier-3")
    wait_for(lambda: any(w.kind == "quota" for w in notices.for_user(hub.db, "qa")), 60, "the quota warning")
    wait_for(lambda: hub.server("qa") is None, 120, "the server stopped at the quota", interval=1)
    with hub.db() as s:
        stop = s.scalar(select(AuditEntry).where(AuditEntry.action == "quota-stop"))
    assert (stop.target_user, stop.course, stop.result) == ("qa", COURSE_ID, "ok")
    ended = wait_for(lambda: next((x for x in records.sessions(hub.db, user="qa") if x.container_id == container.id
                                   and x.ended_at), None), 60, "the session closed")
    assert ended.end_reason == "quota"
    assert "because you used all 25 hours of your GPU lab quota" in hub.options_form("qa")
    assert notices.for_user(hub.db, "qa") == []
    _status, message = start_message(hub, "qa")
    assert message.startswith("GPU lab (1 GPU) cannot start: you have used 25 of your 25 GPU-hours"), message

    # the command line grants through the same API, as the instructor
    env = {"GOLDENHUB_HUB_URL": hub.url, "JUPYTERHUB_API_TOKEN": user_token(hub, "prof"), "GOLDENHUB_LANGUAGE": "en"}
    done = goldenhub("usage", "grant", COURSE_ID, "qa", "2", "--reason", "retake", env=env)
    assert done.returncode == 0 and "Granted 2 extra hours to qa in gpu-lab." in done.stdout
    refused = goldenhub("usage", "grant", COURSE_ID, "qa", "-1", env=env)
    assert refused.returncode != 0 and "HOURS must be a number above 0" in refused.stderr
    assert "25 of 27 GPU-hours used" in hub.options_form("qa")
