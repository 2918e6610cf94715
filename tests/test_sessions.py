"""Scheduled class sessions on a real hub with real Docker (hub_ext.sessions): time is made to
pass through the sessions' test clock (GOLDENHUB_SESSIONS_NOW_FILE, read only when set), the
loop runs every second.

Proves: only the course's staff and admins schedule (API, page, CLI) (a student gets the refusal naming the
scope; a start in the past is a 400 and nothing is written); nothing starts before the lead
time; at the lead time exactly the enrolled students' servers start (a user outside the course
gets none); a pre-started student's progress page goes straight to JupyterLab (which opens
it); at 20 minutes in the unopened server is stopped, its home kept with the student's file,
and the student's home page says why, while the opened one runs on; the page and the CLI
show what the session did per student; the page schedules in the browser's local time (stored
UTC), refuses a bad duration with its sentence and nothing written, and cancels; in Chromium in
Chinese at UTC+8 its script sends the browser's zone, the page reads as Chinese (tests/walk.py's
rules) and Cancel asks first. A GPU session starts only as many servers as GPUs are free. Bad
input (dates, bounds, fields, ids) is a 4xx sentence and writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import textwrap

import pytest
import requests

from hub_ext import contract
from tests.helpers import (HUB_PORT, PREFIX, ServiceClient, enrolled_only_course, goldenhub, hub_running,
                           user_token, volume_files, wait_for)

COURSE = "ssc"
OTHER = "ssd"  # another course, whose session starts earlier: proof that a pass ran
GPU_COURSE = "ssg"  # one template of 1 GPU; the hub has one (declared, no device requests)
M = timedelta(minutes=1)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def ss_hub(tmp_path_factory):
    courses = tmp_path_factory.mktemp("ss-courses")
    enrolled_only_course(courses, COURSE)
    enrolled_only_course(courses, OTHER)
    (courses / f"{GPU_COURSE}.yaml").write_text(textwrap.dedent(f"""\
        id: {GPU_COURSE}
        title: GPU course
        templates:
          - id: {GPU_COURSE}-gpu
            title: GPU lab
            image: goldenhub/course-intro-python:latest
            gpus: 1
            cpu: 1
            memory: 512M
        """))
    clock = tmp_path_factory.mktemp("ss-clock") / "now"
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    clock.write_text(iso(t0))
    env = {"GOLDENHUB_SESSIONS_NOW_FILE": str(clock), "GOLDENHUB_SESSIONS_EVERY": "1"}
    extra = ("c.JupyterHub.last_activity_interval = 2\n"  # the proxy's activity reaches the hub at once
             "c.GoldenSpawner.gpu_inventory = ['GPU-ss-0']\nc.GoldenSpawner.gpu_device_requests = False\n")
    with hub_running(tmp_path_factory.mktemp("ss-hub"), courses, HUB_PORT + 10, f"{PREFIX}ss", extra, env) as hub:
        hub.enrol("ssprof", COURSE, staff=True)
        for name in ("ssamy", "ssbob"):
            hub.enrol(name, COURSE)
        hub.enrol("sscat", OTHER)
        for name in ("ssgpu1", "ssgpu2"):
            hub.enrol(name, GPU_COURSE)
        hub.ensure_user("ssout")  # a hub user outside the courses
        hub.clock, hub.t0 = clock, t0
        hub.clients = {n: ServiceClient(hub, user_token(hub, n)) for n in ("ssprof", "ssamy")}
        yield hub


def session_of(hub, sid: int) -> dict:
    r = hub.clients["ssprof"].call("GET", f"/sessions/{sid}")
    assert r.status_code == 200, r.text
    return r.json()


def states(hub, sid: int) -> dict:
    return {s["user"]: s["state"] for s in session_of(hub, sid)["students"]}


@pytest.mark.integration
def test_a_session_pre_starts_the_class_and_stops_the_unopened_server(ss_hub):
    hub, t0 = ss_hub, ss_hub.t0
    start = t0 + 30 * M
    student = hub.clients["ssamy"].call("POST", "/sessions", json={"course": COURSE, "at": iso(start), "minutes": 60})
    assert student.status_code == 403 and "custom:goldenhub:enrol" in student.json()["message"], student.text
    past = hub.clients["ssprof"].call("POST", "/sessions", json={"course": COURSE, "at": iso(t0 - M), "minutes": 60})
    assert past.status_code == 400 and "has passed" in past.json()["message"], past.text
    r = hub.clients["ssprof"].call("POST", "/sessions", json={"course": COURSE, "at": iso(start), "minutes": 60,
                                                             "lead": 10})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert r.json()["template"] == f"{COURSE}-cpu"
    listed = hub.clients["ssprof"].call("GET", "/sessions", params={"course": COURSE}).json()["sessions"]
    assert [s["id"] for s in listed] == [sid]

    other = hub.clients["ssprof"].call("POST", "/sessions", json={"course": OTHER, "at": iso(start),
                                                                  "minutes": 60, "lead": 12})
    assert other.status_code == 403, other.text  # ssprof teaches COURSE only
    admin = ServiceClient(hub, user_token(hub, "admin"))
    other = admin.call("POST", "/sessions", json={"course": OTHER, "at": iso(start), "minutes": 60, "lead": 12})
    assert other.status_code == 201, other.text

    # 11 minutes before the start: OTHER's window (12 minutes) is open, COURSE's (10) is not.
    # The same pass that starts sscat starts nobody of COURSE.
    hub.clock.write_text(iso(start - 11 * M))
    wait_for(lambda: hub.server("sscat") is not None, 120, "the other session's pre-start")
    for name in ("ssamy", "ssbob", "ssout"):
        assert hub.server(name) is None

    # the lead time: exactly the enrolled students' servers start
    hub.clock.write_text(iso(start - 10 * M))
    for name in ("ssamy", "ssbob"):
        hub.wait_ready(name)
    wait_for(lambda: all(s["ready_at"] for s in session_of(hub, sid)["students"]) and
             len(session_of(hub, sid)["students"]) == 2, 120, "both pre-starts seen ready")
    assert states(hub, sid) == {"ssamy": "pre-started", "ssbob": "pre-started"}
    assert hub.server("ssout") is None
    assert hub.exec("ssbob", "echo 'my notes' > ~/notes.txt")[0] == 0
    home = contract.home_volume_name(hub.prefix, "ssbob", COURSE)
    files = volume_files(home)
    assert "./notes.txt" in files

    # amy opens hers: the progress page goes straight to JupyterLab
    ready_at = datetime.fromisoformat(next(s["ready_at"] for s in session_of(hub, sid)["students"]
                                           if s["user"] == "ssamy"))
    wait_for(lambda: datetime.now(timezone.utc) > ready_at + timedelta(seconds=6), 30, "a moment after ready")
    amy = hub.login("ssamy")
    page = amy.get(f"{hub.url}/hub/spawn-pending/ssamy", timeout=60)
    assert page.status_code == 200 and page.url.rstrip("/").endswith("/user/ssamy/lab"), (page.url, page.text[:300])
    assert "JupyterLab" in page.text
    wait_for(lambda: datetime.fromisoformat(hub.server("ssamy")["last_activity"].replace("Z", "+00:00"))
             > ready_at + timedelta(seconds=5), 60, "amy's activity reaching the hub")

    # 20 minutes in: bob's unopened server stops, his home kept; amy's runs on
    hub.clock.write_text(iso(start + 20 * M))
    wait_for(lambda: states(hub, sid) == {"ssamy": "opened", "ssbob": "stopped-unopened"}, 180,
             "the 20-minute pass")
    wait_for(lambda: hub.server("ssbob") is None, 120, "bob's server stopped")
    assert hub.server("ssamy")["ready"]
    assert volume_files(home) == files
    bob_home = hub.login("ssbob").get(f"{hub.url}/hub/home", timeout=30).text
    assert "was not opened within 20 minutes" in bob_home

    # the page and the CLI show what happened
    token = user_token(hub, "ssprof")
    page = requests.get(f"{hub.url}/services/goldenhub/admin/courses/{COURSE}/sessions",
                        headers={"Authorization": f"token {token}"}, timeout=60)
    text = page.text
    assert page.status_code == 200, hub.log_tail(40)
    assert 'data-user="ssbob" data-state="stopped-unopened"' in text and 'data-user="ssamy" data-state="opened"' in text
    out = goldenhub("sessions", "list", COURSE, "--hub-url", hub.url,
                    env={"JUPYTERHUB_API_TOKEN": token, "GOLDENHUB_LANGUAGE": "en"})
    assert "opened 1, stopped unopened 1" in out.stdout, out.stdout + out.stderr


@pytest.mark.integration
def test_the_course_page_schedules_in_local_time_and_cancels(ss_hub):
    hub = ss_hub
    token = user_token(hub, "ssprof")
    auth = {"Authorization": f"token {token}"}
    base = f"{hub.url}/services/goldenhub/admin/courses/{COURSE}"
    course_page = requests.get(base, headers=auth, timeout=60)
    assert course_page.status_code == 200 and f'href="/services/goldenhub/admin/courses/{COURSE}/sessions"' in course_page.text
    student = requests.get(f"{base}/sessions", headers={"Authorization": f"token {user_token(hub, 'ssamy')}"},
                           timeout=60)
    assert student.status_code == 403 and "custom:goldenhub:enrol" in student.text
    before = hub.clients["ssprof"].call("GET", "/sessions", params={"course": COURSE}).json()["sessions"]

    local = (datetime.fromisoformat(hub.clock.read_text().replace("Z", "+00:00")) + timedelta(days=2)
             ).replace(second=0) + timedelta(hours=8)  # the browser's wall clock at UTC+8
    form = {"at_local": local.strftime("%Y-%m-%dT%H:%M"), "tz_offset": "480", "minutes": "5", "lead": "5",
            "template": f"{COURSE}-cpu"}
    refused = requests.post(f"{base}/sessions/schedule", data=form, headers=auth, timeout=60)
    assert refused.status_code == 400 and "from 30 to 720" in refused.text
    assert hub.clients["ssprof"].call("GET", "/sessions", params={"course": COURSE}).json()["sessions"] == before

    made = requests.post(f"{base}/sessions/schedule", data={**form, "minutes": "45"}, headers=auth, timeout=60)
    assert made.status_code == 200 and "scheduled" in made.text, made.text[-2000:]
    after = hub.clients["ssprof"].call("GET", "/sessions", params={"course": COURSE}).json()["sessions"]
    [new] = [s for s in after if s["id"] not in {b["id"] for b in before}]
    assert datetime.fromisoformat(new["starts_at"]) == (local - timedelta(hours=8)).replace(tzinfo=timezone.utc)
    assert (new["minutes"], new["lead_minutes"], new["cancelled"]) == (45, 5, False)

    cancelled = requests.post(f"{base}/sessions/{new['id']}/cancel", headers=auth, timeout=60)
    assert cancelled.status_code == 200 and f"Session {new['id']} cancelled" in cancelled.text
    assert hub.clients["ssprof"].call("GET", f"/sessions/{new['id']}").json()["cancelled"] is True
    out = goldenhub("sessions", "cancel", str(new["id"]), "--hub-url", hub.url,
                    env={"JUPYTERHUB_API_TOKEN": user_token(hub, "ssamy"), "GOLDENHUB_LANGUAGE": "en"})
    assert out.returncode == 1 and "custom:goldenhub:enrol" in out.stderr


@pytest.mark.integration
@pytest.mark.browser
def test_the_page_in_chinese_schedules_in_the_browsers_zone_and_cancels_after_asking(ss_hub, browser, tmp_path):
    from tests import walk

    hub = ss_hub
    locale, accept = walk.LANGS["zh"]
    context = browser.new_context(locale=locale, timezone_id="Asia/Shanghai", extra_http_headers={"Accept-Language": accept},
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "ssprof")
    page.fill("input[name=password]", hub.student_password())
    page.locator("form:has(input[name=username]) [type=submit]").first.click()
    page.wait_for_load_state()
    page.goto(f"{hub.url}/services/goldenhub/admin/courses/{COURSE}/sessions")
    local = (datetime.fromisoformat(hub.clock.read_text().replace("Z", "+00:00")) + timedelta(days=3)
             ).replace(hour=10, minute=0, second=0, tzinfo=None)  # 10:00 on Shanghai's wall clock
    page.fill("#at_local", local.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#minutes", "60")
    page.locator("#session-form [type=submit]").click()
    page.wait_for_load_state()
    w = walk.Walk(tmp_path, "zh", names={"ssprof", "ssamy", "ssbob", COURSE, f"{COURSE}-cpu"},
                  data={f"Course {COURSE}", f"{COURSE} (CPU)"})
    text = w.see(page, 1, "sessions")
    assert not w.problems, w.report()
    assert "课堂" in text and "Asia/Shanghai" in text
    made = max(hub.clients["ssprof"].call("GET", "/sessions", params={"course": COURSE}).json()["sessions"],
               key=lambda s: s["id"])
    assert datetime.fromisoformat(made["starts_at"]) == (local - timedelta(hours=8)).replace(tzinfo=timezone.utc)

    dialog = walk.dialog_of(page, page.locator(f"#session-{made['id']} [type=submit]"))
    assert "取消" in dialog.inner_text()
    walk.confirm(page, dialog)
    page.wait_for_load_state()
    assert page.locator(f"#session-{made['id']} .badge").inner_text() == "已取消"
    assert hub.clients["ssprof"].call("GET", f"/sessions/{made['id']}").json()["cancelled"] is True
    context.close()


@pytest.mark.integration
def test_a_gpu_session_starts_only_as_many_servers_as_there_are_free_gpus(ss_hub):
    hub = ss_hub
    admin = ServiceClient(hub, user_token(hub, "admin"))
    now = datetime.fromisoformat(hub.clock.read_text().replace("Z", "+00:00"))
    start = now + 30 * M
    r = admin.call("POST", "/sessions", json={"course": GPU_COURSE, "at": iso(start), "minutes": 60})
    assert r.status_code == 201 and r.json()["template"] == f"{GPU_COURSE}-gpu", r.text
    sid = r.json()["id"]
    hub.clock.write_text(iso(start - 10 * M))
    hub.wait_ready("ssgpu1")
    # a pass after ssgpu1's server was ready (it noted when) saw no free GPU for ssgpu2
    wait_for(lambda: any(s["ready_at"] for s in admin.call("GET", f"/sessions/{sid}").json()["students"]), 120,
             "the pass that sees ssgpu1 ready")
    assert hub.server("ssgpu2") is None
    assert {s["user"]: s["state"] for s in admin.call("GET", f"/sessions/{sid}").json()["students"]} == {
        "ssgpu1": "pre-started"}


@pytest.mark.integration
def test_hostile_input_is_a_sentence_and_nothing_is_written(ss_hub):
    hub = ss_hub
    c = hub.clients["ssprof"]
    at = iso(datetime.fromisoformat(hub.clock.read_text().replace("Z", "+00:00")) + timedelta(days=1))
    before = c.call("GET", "/sessions", params={"course": COURSE}).json()["sessions"]
    for body, status, words in [
        ({"course": COURSE, "at": "2026-99-99T00:00Z", "minutes": 60}, 400, "not a real date"),
        ({"course": COURSE, "at": at + "\n", "minutes": 60}, 400, "with its time zone"),
        ({"course": COURSE, "at": at, "minutes": 10}, 400, "from 30 to 720"),
        ({"course": COURSE, "at": at, "minutes": 60, "lead": 500}, 400, "from 0 to 120"),
        ({"course": COURSE, "at": at, "minutes": 60, "template": "<b>nope</b>"}, 400, f"its templates: {COURSE}-cpu"),
        ({"course": COURSE, "at": at, "minutes": 60, "evil": 1}, 400, "Unknown fields: evil"),
        ({"course": ["x"], "at": at, "minutes": 60}, 400, '"course" is required'),
        ({"course": "nope", "at": at, "minutes": 60}, 404, "There is no course 'nope'"),
    ]:
        r = c.call("POST", "/sessions", json=body)
        assert r.status_code == status and words in r.json()["message"], (body, r.text)
    for path in ("/sessions/%D9%A1%D9%A2", "/sessions/99999", "/sessions/1%2F2"):
        assert c.call("DELETE", path).status_code == 404
    assert c.call("GET", "/sessions", params={"course": COURSE}).json()["sessions"] == before
