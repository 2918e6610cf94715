"""GPU-hour quotas without a hub, on a real SQLite database and one injectable clock: the
ledger written and read back across a service restart and a killed container, exact to the
second; week and term periods; grants (audited, bounded); what the student reads (picker
words, refusal, stop) and when a running server is warned or stopped; the catalog fields."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from hub_ext import i18n
from hub_ext.catalog import usage_rules
from hub_ext.catalog.model import CatalogError, parse_template
from hub_ext.catalog.usage_rules import Quota
from hub_ext.service.db import AuditEntry, UsageGrant, open_database
from hub_ext.service.templates_api import student_dict
from hub_ext.usage import ledger, quotas, records
from hub_ext.usage.ledger_loop import LedgerLoop, docker_time
from spawner.form import make_options_form

T0 = datetime(2026, 11, 26, 9, 0, 0, tzinfo=timezone.utc)  # a Thursday
COURSE, TEMPLATE = "deep-learning", "deep-learning-gpu"
TERM = Quota(20.0, "term")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'q.sqlite'}"


@pytest.fixture
def db(url):
    return open_database(url)


def holder(cid="c1", gpus=("0",), start=0, finished=None, user="maya") -> ledger.Holder:
    return ledger.Holder(cid, user, COURSE, TEMPLATE, gpus, at(start), at(finished) if finished is not None else None)


def look(db, holders, now, reasons=None):
    """One pass of the ledger loop's bookkeeping: read the open rows, reconcile, write."""
    changes = ledger.reconcile(list(records.open_sessions(db)), holders, now)
    records.write_changes(db, changes, reasons or {})
    return changes


def test_two_gpus_across_a_service_restart_and_a_kill_count_to_the_second(url, db):
    look(db, [holder(gpus=("0", "1"), start=5)], at(60))
    assert records.used_hours(db, "maya", COURSE, "term", None, at(3605)) == pytest.approx(2.0)
    # the service restarts: a new process, the same database; the container still runs
    db2 = open_database(url)
    look(db2, [holder(gpus=("0", "1"), start=5)], at(3600))
    # killed at 7205 s (Docker's FinishedAt), seen at 7300 s: counted up to 7205 s, never after
    look(db2, [holder(gpus=("0", "1"), start=5, finished=7205)], at(7300), {"c1": "crash"})
    [s] = records.sessions(db2, course=COURSE)
    assert (s.started_at, s.ended_at, s.end_reason) == (at(5), at(7205), "crash")
    assert records.used_hours(db2, "maya", COURSE, "term", None, at(99999)) == 4.0  # 2 GPUs x 7200 s


def test_a_container_removed_unseen_closes_at_its_last_look_and_is_never_counted_twice(db):
    look(db, [holder(start=0)], at(30))
    look(db, [holder(start=0)], at(60))
    look(db, [], at(90), {"c1": "gone"})  # removed with no event left: last seen at 60 s
    look(db, [holder(start=0, finished=75)], at(120))  # its die event turns up late: already closed
    [s] = records.sessions(db)
    assert (s.ended_at, s.end_reason) == (at(60), "gone")
    assert records.used_hours(db, "maya", COURSE, "term", None, at(500)) == pytest.approx(60 / 3600)


def test_a_session_that_started_and_ended_between_two_looks_is_recorded_whole(db):
    look(db, [holder(cid="short", start=10, finished=40)], at(60), {"short": "stop"})
    [s] = records.sessions(db, user="maya")
    assert (s.started_at, s.ended_at, s.end_reason) == (at(10), at(40), "stop")


def test_week_counts_from_monday_and_renews_the_next_monday(db):
    monday = datetime(2026, 11, 23, tzinfo=timezone.utc)
    look(db, [holder(cid="last-week", start=-4 * 86400, finished=-4 * 86400 + 7200)], at(0), {"last-week": "stop"})
    look(db, [holder(cid="this-week", start=-3600, finished=0)], at(0), {"this-week": "stop"})
    st = records.standing(db, "maya", COURSE, Quota(1.5, "week"), at(60))
    assert (st.period_start, st.renews_at, st.used, st.over) == (monday, monday + timedelta(days=7), 1.0, False)
    assert records.used_hours(db, "maya", COURSE, "term", None, at(60)) == 3.0


def test_term_counts_from_the_last_term_close_and_a_session_across_it_only_after(db):
    look(db, [holder(start=0)], at(30))
    with db() as s:
        s.add(AuditEntry(at=at(1800), actor="prof", action="term-close", target_user="", course=COURSE, result="ok"))
        s.add(AuditEntry(at=at(3000), actor="prof", action="term-close", target_user="", course="other", result="ok"))
        s.commit()
    assert records.term_start(db, COURSE) == at(1800)
    st = records.standing(db, "maya", COURSE, TERM, at(3600))
    assert st.used == pytest.approx(0.5) and st.renews_at is None


def test_term_start_without_a_close_is_the_courses_first_session(db):
    assert records.term_start(db, COURSE) is None
    look(db, [holder(cid="a", start=100, user="li"), holder(cid="b", start=50)], at(200))
    assert records.term_start(db, COURSE) == at(50)


def test_a_grant_raises_the_allowance_for_its_period_only_and_is_audited(db):
    look(db, [holder(start=0, finished=3 * 3600)], at(3 * 3600), {"c1": "stop"})
    week = Quota(2.0, "week")
    assert records.standing(db, "maya", COURSE, week, at(4 * 3600)).over
    records.grant(db, "maya", COURSE, 1.5, "prof", "project deadline", now=at(4 * 3600))
    st = records.standing(db, "maya", COURSE, week, at(4 * 3600))
    assert (st.allowed, st.over, st.left) == (3.5, False, 0.5)
    # next week the grant no longer counts; the hours used no longer either
    assert records.standing(db, "maya", COURSE, week, at(8 * 86400)).allowed == 2.0
    with db() as s:
        row = s.scalar(select(AuditEntry).where(AuditEntry.action == "grant"))
    assert (row.actor, row.target_user, row.course, row.result) == ("prof", "maya", COURSE, "ok")
    assert "1.5 extra hours: project deadline" == row.detail_text
    assert records.grants(db, COURSE)[0]["hours"] == 1.5


@pytest.mark.parametrize("hours", [0, -1, True, "5", float("nan"), float("inf"), 100001, None])
def test_a_bad_grant_is_refused_with_a_sentence_and_writes_nothing(db, hours):
    with pytest.raises(records.GrantError, match="above 0 and at most 100000"):
        records.grant(db, "maya", COURSE, hours, "prof")
    with pytest.raises(records.GrantError, match="at most 500 characters"):
        records.grant(db, "maya", COURSE, 1, "prof", "x" * 501)
    with db() as s:
        assert s.scalars(select(UsageGrant)).all() == [] and s.scalars(select(AuditEntry)).all() == []


def test_end_reasons_come_from_audit_then_exit_code(db):
    ctx = SimpleNamespace(db=db)
    loop = LedgerLoop(ctx, "gh", clock=lambda: at(0))
    with db() as s:
        s.add(AuditEntry(at=at(130), actor="quota", action="quota-stop", target_user="maya", course=COURSE, result="ok"))
        s.add(AuditEntry(at=at(100), actor="idle-culler", action="cull", target_user="li", course=COURSE, result="ok"))
        s.commit()
    ended = [ledger.Session(c, u, COURSE, TEMPLATE, ("0",), at(0), at(120), at(120)) for c, u in
             [("q", "maya"), ("c", "li"), ("crash", "ann"), ("stop", "bo"), ("killed", "cy"), ("gone", "di")]]
    facts = {"crash": {"exit": 1, "asked": False}, "stop": {"exit": 0, "asked": True},
             "killed": {"exit": 137, "asked": True}, "gone": {"exit": None, "asked": False}}
    assert loop._reasons(ended, facts) == {"q": "quota", "c": "cull", "crash": "crash", "stop": "stop",
                                           "killed": "stop", "gone": "gone"}


def test_dockers_nanosecond_times_are_read_to_the_microsecond():
    assert docker_time("2026-11-26T09:00:05.123456789Z") == at(5.123456)
    assert docker_time("2026-11-26T10:00:05+01:00") == at(5)
    assert docker_time("0001-01-01T00:00:00Z") is None and docker_time("garbage\n") is None


def standing(used, quota=20.0, granted=0.0, period="term"):
    start = datetime(2026, 11, 23, tzinfo=timezone.utc)
    return records.Standing(used, quota, granted, period, start,
                            start + timedelta(days=7) if period == "week" else None)


def test_running_servers_are_warned_before_the_quota_runs_out_then_stopped():
    now = at(0)
    run = lambda name, used, rate=1: quotas.Running(name, "", COURSE, TEMPLATE, rate, standing(used))  # noqa: E731
    p = quotas.plan([run("far", 19.0), run("near", 19.9), run("two-gpus", 19.0, rate=2), run("over", 20.0)], now, 10)
    assert [r.user for r in p.clear] == ["far", "two-gpus"]  # an hour (half an hour on 2 GPUs) left: not yet
    assert [r.user for r in p.stop] == ["over"]
    warned = {r.user: round((due - now).total_seconds()) for r, due in p.warn}
    assert warned == {"near": 360}  # 6 minutes left
    p2 = quotas.plan([run("two-gpus", 19.9, rate=2)], now, 10)
    assert round((p2.warn[0][1] - now).total_seconds()) == 180  # two GPUs use the hours twice as fast


def test_the_refusal_names_the_quota_the_use_and_what_to_do_in_both_languages():
    term = quotas.refusal(standing(20.25, granted=0), 1, "PyTorch (1 GPU)", "Deep Learning")
    assert term == ("PyTorch (1 GPU) cannot start: you have used 20.2 of your 20 GPU-hours in Deep Learning this "
                    "term. Ask your instructor for more hours.")
    week = quotas.refusal(standing(5, quota=5, period="week"), 1, "PyTorch", "Deep Learning")
    assert "5 of your 5 GPU-hours" in week and "this week" in week and "renew" in week and "2026-11-30" in week
    token = i18n.use("zh_CN")
    try:
        zh = quotas.refusal(standing(20, granted=0), 1, "PyTorch", "深度学习")
        words = quotas.picker_words(standing(12.5), 1)
    finally:
        i18n._current.reset(token)
    assert "20" in zh and "教师" in zh and "GPU 小时" in zh
    assert words == "已用 12.5 / 20 GPU 小时"


def test_the_picker_shows_the_hours_used_beside_a_quotad_template():
    t = parse_template({"id": "dl", "title": "PyTorch", "image": "goldenhub/x:1", "gpus": 1, "cpu": 1,
                        "memory": "1G", "quota": {"gpu_hours": 20}}, "t", COURSE)
    html = make_options_form([t], usage={"dl": quotas.picker_words(standing(12.5), 1)})
    assert "12.5 of 20 GPU-hours used" in html
    assert quotas.picker_words(standing(3, quota=10), 0) == "3 of 10 server-hours used"


def test_catalog_fields_defaults_and_their_api_form():
    base = {"id": "t", "title": "T", "image": "goldenhub/x:1", "cpu": 1, "memory": "1G"}
    gpu = parse_template({**base, "gpus": 1}, "t", COURSE)
    cpu = parse_template({**base, "gpus": 0}, "t", COURSE)
    assert (gpu.idle_timeout, cpu.idle_timeout, gpu.quota) == (60, 240, None)
    t = parse_template({**base, "gpus": 1, "idle_timeout": 0, "quota": {"gpu_hours": 2.5, "period": "week"}},
                       "t", COURSE)
    assert (t.idle_timeout, t.quota) == (0, Quota(2.5, "week"))
    assert student_dict(t)["quota"] == {"gpu_hours": 2.5, "period": "week"} and student_dict(t)["idle_timeout"] == 0


@pytest.mark.parametrize("field, value, words", [
    ("idle_timeout", -1, "whole minutes from 0 (never culled) to 10080"),
    ("idle_timeout", 10081, "whole minutes from 0"),
    ("idle_timeout", True, "whole minutes from 0"),
    ("idle_timeout", "60", "whole minutes from 0"),
    ("quota", 20, "a mapping with gpu_hours and period"),
    ("quota", {"gpu_hours": 0}, "gpu_hours: got 0; allowed: a number of hours above 0"),
    ("quota", {"gpu_hours": True}, "gpu_hours: got True"),
    ("quota", {"gpu_hours": 100001}, "at most 100000"),
    ("quota", {"gpu_hours": 20, "period": "month"}, "period: got 'month'; allowed: term"),
    ("quota", {"gpu_hours": 20, "hours": 1}, "unknown field hours"),
])
def test_bad_catalog_fields_name_the_field_and_what_is_allowed(field, value, words):
    data = {"id": "t", "title": "T", "image": "goldenhub/x:1", "gpus": 1, "cpu": 1, "memory": "1G", field: value}
    with pytest.raises(CatalogError) as e:
        parse_template(data, "course.yaml", COURSE)
    assert f"course.yaml: template.{field}: " in str(e.value) and words in str(e.value)
    assert usage_rules.MAX_IDLE_MINUTES == 10080
