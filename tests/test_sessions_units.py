"""Scheduled class sessions, pure: the planner as data (hub_ext.sessions.planner) and the
store's checks and records on a real SQLite database (hub_ext.sessions.store).

Proves: nothing starts before the lead time, at or after the start, for a cancelled session or
with a lead of 0; exactly the enrolled students without a server start, at most `rate` a pass,
those who came last time first; a GPU template starts only as many as free GPUs allow (minus
those still starting); a student is pre-started once per session; at 20 minutes in only the
session's own unopened server stops (not an opened one, not one the student started or
restarted, not before 20 minutes, not after the end, not one an overlapping session keeps);
a cancelled session stops its unopened servers at once; a bad start time, duration, lead or
template is refused with a sentence and nothing is written; the page's local time becomes UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from hub_ext.catalog.model import Course, Template
from hub_ext.service.db import ClassSession, open_database
from hub_ext.service.sessions_pages import local_to_iso
from hub_ext.sessions import planner, store
from hub_ext.sessions.planner import Facts, Record, Server, Session

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)  # the class starts
M = timedelta(minutes=1)
STUDENTS = ("amy", "bob", "cat", "dan")


def session(sid=1, gpus=0, lead=10, minutes=90, cancelled=False, starts=T0, course="c1") -> Session:
    return Session(sid, course, "t1", gpus, starts, minutes, lead, cancelled)


def users(p: planner.Plan, what="start") -> list[str]:
    return [u for _, u in getattr(p, what)]


def run(now, facts, servers=None, free=0, rate=100) -> planner.Plan:
    return planner.plan(now, facts if isinstance(facts, list) else [facts], servers or {}, free, rate)


# --- when and whom ------------------------------------------------------------------------------

def test_nothing_starts_before_the_lead_time_and_everyone_starts_at_it():
    f = Facts(session(), STUDENTS)
    assert users(run(T0 - 11 * M, f)) == []
    assert users(run(T0 - 10 * M, f)) == list(STUDENTS)
    assert users(run(T0 - 1 * M, f)) == list(STUDENTS)


def test_nothing_starts_from_the_start_on_nor_when_cancelled_nor_with_no_lead():
    assert users(run(T0, Facts(session(), STUDENTS))) == []
    assert users(run(T0 - 5 * M, Facts(session(cancelled=True), STUDENTS))) == []
    assert users(run(T0 - 5 * M, Facts(session(lead=0), STUDENTS))) == []


def test_only_students_without_a_server_or_a_record_start():
    servers = {"amy": Server(active=True, started=T0 - 30 * M), "bob": Server(active=False)}
    records = {"cat": Record(planner.STOPPED_UNOPENED), "dan": Record(planner.FAILED)}
    assert users(run(T0 - 5 * M, Facts(session(), STUDENTS, records), servers)) == ["bob"]


def test_at_most_rate_starts_a_pass_and_the_last_sessions_students_first():
    f = Facts(session(), STUDENTS, attended=frozenset({"dan", "cat"}))
    assert users(run(T0 - 5 * M, f, rate=3)) == ["cat", "dan", "amy"]
    assert users(run(T0 - 5 * M, f, rate=1)) == ["cat"]


def test_the_rate_is_shared_by_sessions_and_a_student_starts_once():
    a = Facts(session(1), ("amy", "bob"))
    b = Facts(session(2, course="c2"), ("bob", "cat"))
    p = run(T0 - 5 * M, [a, b], rate=10)
    assert sorted(p.start) == [(1, "amy"), (1, "bob"), (2, "cat")]
    assert len(run(T0 - 5 * M, [a, b], rate=2).start) == 2


def test_a_gpu_template_starts_only_as_many_as_free_gpus_allow():
    f = Facts(session(gpus=1), STUDENTS)
    assert users(run(T0 - 5 * M, f, free=2)) == ["amy", "bob"]
    assert users(run(T0 - 5 * M, f, free=0)) == []
    assert users(run(T0 - 5 * M, Facts(session(gpus=2), STUDENTS), free=3)) == ["amy"]


def test_pre_starts_still_starting_count_against_the_free_gpus():
    starting = Server(active=True, pending=True, started=T0 - 8 * M)
    f = Facts(session(gpus=1), STUDENTS, {"amy": Record(planner.PRE_STARTED, T0 - 8 * M)})
    assert users(run(T0 - 5 * M, f, {"amy": starting}, free=2)) == ["bob"]


# --- opened and stopped ----------------------------------------------------------------------------

STARTED = T0 - 9 * M
READY = T0 - 8 * M  # when the loop first saw the pre-started server ready


def pre(started=STARTED, ready=READY) -> Record:
    return Record(planner.PRE_STARTED, started, ready)


def test_an_unopened_pre_started_server_stops_at_20_minutes_in_not_before_nor_after_the_end():
    f = Facts(session(), ("amy",), {"amy": pre()})
    idle = {"amy": Server(active=True, started=STARTED, last_activity=STARTED)}
    assert users(run(T0 + 19 * M, f, idle), "stop") == []
    assert users(run(T0 + 20 * M, f, idle), "stop") == ["amy"]
    assert users(run(T0 + 90 * M, f, idle), "stop") == []  # ended: the idle culler's rules


def test_an_opened_server_is_recorded_and_never_stopped():
    f = Facts(session(), ("amy",), {"amy": pre()})
    used = {"amy": Server(active=True, started=STARTED, last_activity=T0 + 2 * M)}
    p = run(T0 + 25 * M, f, used)
    assert users(p, "opened") == ["amy"] and users(p, "stop") == []


def test_the_start_itself_is_not_an_opening():
    f = Facts(session(), ("amy",), {"amy": pre()})
    for reported in (STARTED + M / 2, READY + planner.OPEN_MARGIN / 2):  # the start's own reports
        started = {"amy": Server(active=True, started=STARTED, last_activity=reported)}
        assert users(run(T0 + 20 * M, f, started), "stop") == ["amy"]


def test_a_server_first_seen_ready_is_noted_once_and_counts_as_opened_only_after():
    f = Facts(session(), ("amy", "bob"), {"amy": pre(ready=None), "bob": pre(ready=None)})
    servers = {"amy": Server(active=True, started=STARTED, last_activity=T0),
               "bob": Server(active=True, pending=True, started=STARTED, last_activity=STARTED)}
    p = run(T0 - 1 * M, f, servers)
    assert users(p, "ready") == ["amy"] and p.opened == []  # bob is still starting
    assert run(T0 - 1 * M, Facts(session(), ("amy",), {"amy": pre()}), servers).ready == []


def test_a_server_the_student_started_or_restarted_is_never_stopped():
    own = Facts(session(), ("bob",), {})
    restarted = Facts(session(), ("amy",), {"amy": pre()})
    servers = {"bob": Server(active=True, started=T0 - 15 * M, last_activity=T0 - 15 * M),
               "amy": Server(active=True, started=T0 + 1 * M, last_activity=T0 + 1 * M)}
    assert run(T0 + 30 * M, [own, restarted], servers).stop == []


def test_a_pre_start_that_never_became_ready_is_recorded_as_failed():
    f = Facts(session(), ("amy", "bob"), {"amy": pre(ready=None), "bob": pre()})
    p = run(T0 + 1 * M, f, {})  # both servers gone; bob's had been ready: he stopped it himself
    assert users(p, "lost") == ["amy"] and p.stop == [] and p.start == []


def test_a_cancelled_session_stops_its_unopened_servers_at_once():
    f = Facts(session(cancelled=True), ("amy", "bob"), {"amy": pre(), "bob": pre()})
    servers = {"amy": Server(active=True, started=STARTED, last_activity=STARTED),
               "bob": Server(active=True, started=STARTED, last_activity=T0 - 2 * M)}
    assert users(run(T0 - 5 * M, f, servers), "stop") == ["amy"]


def test_an_overlapping_session_keeps_the_server_it_would_start():
    first = Facts(session(1), ("amy",), {"amy": pre()})
    second = Facts(session(2, starts=T0 + 30 * M), ("amy",))
    servers = {"amy": Server(active=True, started=STARTED, last_activity=STARTED)}
    assert run(T0 + 21 * M, [first, second], servers).stop == []  # second's window opens at T0+20
    assert run(T0 + 21 * M, [first], servers).stop == [(1, "amy")]


# --- the store: checks and records ------------------------------------------------------------

def course(templates=("t1", "t2")) -> Course:
    ts = tuple(Template(t, "c1", t, "", "img", 0, 1.0, 2**30, 2**26) for t in templates)
    return Course("c1", "Course one", "", None, ts)


NOW = T0 - 60 * M


@pytest.mark.parametrize("at", ["tomorrow", "2026-11-27T09:00", "2026-11-27T09:00Z; DROP", "2026-13-40T09:00Z",
                                "2026-11-27T09:00Z\n", " 2026-11-27T09:00Z",
                                "2026-11-27T08:00Z", "2028-11-27T09:00Z", 5, None])
def test_a_bad_start_is_refused_with_a_sentence(at):
    with pytest.raises(store.SessionError) as e:
        store.check_request(course(), at, 60, None, None, NOW)
    assert e.value.status == 400 and str(e.value)


@pytest.mark.parametrize("minutes,lead", [(29, 10), (721, 10), ("ninety", 10), (True, 10), (60, 121), (60, -1),
                                          (60, 2.5)])
def test_a_bad_duration_or_lead_is_refused(minutes, lead):
    with pytest.raises(store.SessionError) as e:
        store.check_request(course(), "2026-11-27T09:00Z", minutes, lead, None, NOW)
    assert "minutes" in str(e.value)


def test_the_template_defaults_to_the_courses_first_and_must_be_the_courses():
    r = store.check_request(course(), "2026-11-27T17:00+08:00", 60, None, None, NOW)
    assert (r.template, r.starts_at, r.lead_minutes) == ("t1", T0, store.DEFAULT_LEAD)
    with pytest.raises(store.SessionError, match="t1, t2"):
        store.check_request(course(), "2026-11-27T09:00Z", 60, 5, "other", NOW)
    with pytest.raises(store.SessionError, match="no template"):
        store.check_request(course(()), "2026-11-27T09:00Z", 60, 5, None, NOW)


def test_the_pages_local_time_becomes_utc():
    assert store.parse_time(local_to_iso("2026-11-27T17:00", "480")) == T0
    assert store.parse_time(local_to_iso("2026-11-27T04:00", "-300")) == T0
    assert store.parse_time(local_to_iso("2026-11-27T09:00", "")) == T0
    with pytest.raises(store.SessionError):
        local_to_iso("<script>", "0")


def test_the_clock_file_moves_time_for_tests_only(tmp_path):
    f = tmp_path / "now"
    f.write_text("2026-11-27T09:30:00Z")
    assert store.now({store.NOW_FILE_ENV: str(f)}) == T0 + 30 * M
    assert abs(store.now({}) - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_schedule_list_cancel_and_records(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'gh.sqlite'}")
    req = store.check_request(course(), "2026-11-27T09:00Z", 60, 5, "t2", NOW)
    made = store.schedule(db, req, "prof", NOW)
    assert (made["template"], made["lead_minutes"], made["cancelled"]) == ("t2", 5, False)
    rows, records = store.live_sessions(db, T0 - 6 * M)
    assert rows == [] and records == {}
    rows, records = store.live_sessions(db, T0 - 5 * M)
    assert [r.id for r in rows] == [made["id"]]
    store.record(db, made["id"], "amy", planner.PRE_STARTED, STARTED)
    store.record(db, made["id"], "amy", planner.OPENED)
    _, records = store.live_sessions(db, T0)
    assert records[made["id"]]["amy"] == Record(planner.OPENED, STARTED)
    [listed] = store.list_sessions(db, {"c1"}, T0)
    assert listed["counts"][planner.OPENED] == 1 and listed["students"][0]["user"] == "amy"
    assert store.cancel(db, made["id"], "prof")["cancelled"] is True
    later = store.check_request(course(), "2026-11-28T09:00Z", 60, 5, None, NOW)
    second = store.schedule(db, later, "prof", NOW)
    with db() as s:
        row = s.scalars(select(ClassSession).where(ClassSession.id == second["id"])).one()
    earlier, opened = store.previous_session(db, row)
    assert earlier is None and opened == set()  # the first was cancelled: it is not "the last session"
    with pytest.raises(store.SessionError) as e:
        store.cancel(db, 999, "prof")
    assert e.value.status == 404


def test_the_loops_settings_are_bounded_with_a_sentence():
    from hub_ext.sessions.loop import read_setting

    assert read_setting("GOLDENHUB_SESSIONS_RATE", {}) == 5
    assert read_setting("GOLDENHUB_SESSIONS_EVERY", {"GOLDENHUB_SESSIONS_EVERY": "1"}) == 1
    for bad in ("0", "101", "-3", "five", "1e3"):
        with pytest.raises(ValueError, match="allowed: a whole number from 1 to 100"):
            read_setting("GOLDENHUB_SESSIONS_RATE", {"GOLDENHUB_SESSIONS_RATE": bad})


def test_the_hubs_server_model_is_read_as_the_planner_needs_it():
    from hub_ext.sessions.loop import server_of

    user = {"servers": {"": {"ready": False, "pending": "spawn", "started": "2026-11-27T08:51:00.123Z",
                             "last_activity": None}}}
    assert server_of(user) == Server(active=True, pending=True, started=STARTED + timedelta(milliseconds=123))
    assert server_of({"servers": {}}) is None and server_of({"servers": {"named": {"ready": True}}}) is None
