"""Usage pages on a real hub (the session `hub`): GPU sessions recorded in the service's
database for two students of deep-learning show on the course's usage page (hours with one
decimal, quota, sessions), in the chart, and in both CSV exports (attachments, header row,
formulas defused); the grant form gives extra hours (and refuses a bad number, granting
nothing); an instructor of another course and a student get 403 and see nothing; the
overview lists only the caller's courses."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from hub_ext.hubconfig import Settings
from hub_ext.service.db import UsageGrant, UsageSession, open_database, utcnow
from tests.helpers import user_token

COURSE = "deep-learning"
ANN, BOB, TEACHER, OTHER = "u5-ann", "u5-bob", "u5-teacher", "u5-other"


def page(hub, path: str, token: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"{hub.url}/services/goldenhub/{path}", timeout=120, allow_redirects=False,
                            headers={"Authorization": f"token {token}"}, **kwargs)


def row(html: str, user: str) -> str:
    found = re.search(rf'<tr class="student" data-user="{user}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {user}"
    return found.group(1)


def cell(html: str, user: str, name: str) -> str:
    return re.search(rf'<td class="{name}">(.*?)</td>', row(html, user), re.S).group(1).strip()


@pytest.fixture(scope="module")
def usage(hub):
    """ann: one session of 2 h on one GPU; bob: 1.5 h on two GPUs (3 GPU-hours), its template
    named like a spreadsheet formula; the teacher is staff of deep-learning, `other` of lab."""
    for name in (ANN, BOB):
        hub.enrol(name, COURSE)
    hub.enrol(TEACHER, COURSE, staff=True)
    hub.enrol(OTHER, "lab", staff=True)
    db = open_database(Settings.default_db_url(hub.state_dir))
    now = utcnow()
    with db() as s:
        s.add(UsageSession(container_id="u5-c1", username=ANN, course=COURSE, template="dl-gpu", gpus="GPU-test-0",
                           started_at=now - timedelta(hours=3), last_seen=now - timedelta(hours=1),
                           ended_at=now - timedelta(hours=1), end_reason="stop"))
        s.add(UsageSession(container_id="u5-c2", username=BOB, course=COURSE, template="=HYPERLINK(\"x\")",
                           gpus="GPU-test-0,GPU-test-1", started_at=now - timedelta(hours=30),
                           last_seen=now - timedelta(hours=28, minutes=30),
                           ended_at=now - timedelta(hours=28, minutes=30), end_reason="cull"))
        s.commit()
    return {"db": db, "tokens": {n: user_token(hub, n) for n in (ANN, TEACHER, OTHER, "admin")}}


@pytest.mark.integration
def test_the_instructor_sees_each_students_hours_and_the_chart(hub, usage):
    r = page(hub, f"admin/courses/{COURSE}/usage", usage["tokens"][TEACHER])
    assert r.status_code == 200, r.text[:500]
    html = r.text
    assert (cell(html, ANN, "used"), cell(html, ANN, "quota"), cell(html, ANN, "sessions")) == ("2.0", "20.0", "1")
    assert (cell(html, BOB, "used"), cell(html, BOB, "sessions")) == ("3.0", "1")
    assert cell(html, ANN, "server") == "none"
    bars = re.findall(r'<rect class="bar" data-day="[^"]+" data-hours="([0-9.]+)"', html)
    # the chart holds every session of the course (other tests on this shared hub add theirs)
    with usage["db"]() as s:
        rows = s.scalars(select(UsageSession).where(UsageSession.course == COURSE)).all()
        held = sum(((r.ended_at or utcnow()) - r.started_at).total_seconds() / 3600 * len(r.gpus.split(","))
                   for r in rows if r.gpus and r.gpus != "cpu")
    assert held >= 5.0
    assert len(bars) == 14 and abs(sum(float(h) for h in bars) - held) < 0.2
    assert 'role="img"' in html and "No GPU use yet" not in html
    chinese = page(hub, f"admin/courses/{COURSE}/usage?lang=zh_CN", usage["tokens"][TEACHER]).text
    assert "已用 GPU 小时" in chinese and "GPU-hours used" not in chinese
    # the course page links here
    course_page = page(hub, f"admin/courses/{COURSE}", usage["tokens"][TEACHER]).text
    assert f'admin/courses/{COURSE}/usage"' in course_page


@pytest.mark.integration
def test_the_csv_exports_students_and_sessions_as_attachments(hub, usage):
    token = usage["tokens"][TEACHER]
    r = page(hub, f"admin/courses/{COURSE}/usage.csv?rows=students", token)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    by_user = {x["username"]: x for x in rows}
    assert by_user[ANN]["used_hours"] == "2.0" and by_user[BOB]["used_hours"] == "3.0"
    assert by_user[ANN]["quota_hours"] == "20.0" and by_user[ANN]["period"] == "term"
    r = page(hub, f"admin/courses/{COURSE}/usage.csv?rows=sessions", token)
    sessions = {x["username"]: x for x in csv.DictReader(io.StringIO(r.text))}
    assert sessions[BOB]["gpu_hours"] == "3.0" and sessions[BOB]["end_reason"] == "cull"
    assert sessions[BOB]["template"] == "'=HYPERLINK(\"x\")"  # no spreadsheet runs it
    assert page(hub, f"admin/courses/{COURSE}/usage.csv?rows=everything", token).status_code == 400


@pytest.mark.integration
def test_the_grant_form_adds_hours_and_refuses_a_bad_number(hub, usage):
    token, db = usage["tokens"][TEACHER], usage["db"]

    def grants():
        with db() as s:
            return [(g.username, g.hours, g.granted_by, g.reason)
                    for g in s.scalars(select(UsageGrant).where(UsageGrant.course == COURSE))]

    before = grants()
    r = page(hub, f"admin/courses/{COURSE}/usage/grant", token, "POST",
             data={"user": ANN, "hours": "abc", "reason": "x"})
    assert r.status_code == 400 and "Nothing was granted" in r.text and grants() == before
    r = page(hub, f"admin/courses/{COURSE}/usage/grant", token, "POST",
             data={"user": ANN, "hours": "1.5", "reason": "project deadline"})
    assert r.status_code == 200, r.text[:500]
    assert cell(r.text, ANN, "granted") == "1.5" and "extra GPU-hours" in r.text
    assert grants() == before + [(ANN, 1.5, TEACHER, "project deadline")]


@pytest.mark.integration
@pytest.mark.parametrize("who", [OTHER, ANN])
def test_another_courses_instructor_and_a_student_get_403(hub, usage, who):
    token, db = usage["tokens"][who], usage["db"]
    for path in (f"admin/courses/{COURSE}/usage", f"admin/courses/{COURSE}/usage.csv?rows=sessions"):
        r = page(hub, path, token)
        assert r.status_code == 403 and BOB not in r.text and 'class="student"' not in r.text
    r = page(hub, f"admin/courses/{COURSE}/usage/grant", token, "POST", data={"user": who, "hours": "50"})
    assert r.status_code == 403
    with db() as s:
        assert s.scalar(select(UsageGrant).where(UsageGrant.granted_by == who)) is None


@pytest.mark.integration
def test_the_overview_lists_only_the_callers_courses(hub, usage):
    mine = page(hub, "admin/usage", usage["tokens"][TEACHER]).text
    assert re.findall(r'<tr class="course" data-course="([^"]+)"', mine) == [COURSE]
    every = re.findall(r'<tr class="course" data-course="([^"]+)"', page(hub, "admin/usage", usage["tokens"]["admin"]).text)
    assert COURSE in every and "lab" in every
    assert page(hub, "admin/usage", usage["tokens"][ANN]).status_code == 403
