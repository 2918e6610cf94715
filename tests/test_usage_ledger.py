"""GPU-time accounting, pure, with one clock: exact to the second across a restart (nothing
changes), a killed container (Docker's stop time), a removed one (last seen), and periods."""

from datetime import datetime, timedelta, timezone

import pytest

from hub_ext.usage.ledger import Holder, Session, gpu_hours, period_start, reconcile

T0 = datetime(2026, 11, 26, 9, 0, 0, tzinfo=timezone.utc)  # a Thursday


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def holder(cid="c1", gpus=("0",), start=0, finished=None, user="maya") -> Holder:
    return Holder(cid, user, "deep-learning", "deep-learning-gpu", gpus, at(start),
                  at(finished) if finished is not None else None)


def apply(ledger: dict, changes) -> dict:
    for s in (*changes.opened, *changes.closed, *changes.seen):
        ledger[s.container_id] = s
    return ledger


def open_of(ledger: dict) -> list[Session]:
    return [s for s in ledger.values() if s.ended_at is None]


def test_a_session_opens_at_dockers_start_time_and_closes_at_its_stop_time():
    ledger = apply({}, reconcile([], [holder(start=5)], at(60)))
    assert ledger["c1"].started_at == at(5) and ledger["c1"].ended_at is None
    # a restart of the hub or service: the container still runs; nothing is lost or doubled
    ledger = apply(ledger, reconcile(open_of(ledger), [holder(start=5)], at(3600)))
    assert len(ledger) == 1 and ledger["c1"].last_seen == at(3600)
    # killed: Docker's FinishedAt is the end, to the second
    ledger = apply(ledger, reconcile(open_of(ledger), [holder(start=5, finished=7205)], at(7300)))
    assert ledger["c1"].ended_at == at(7205)
    assert gpu_hours(list(ledger.values()), "maya", "deep-learning", T0, at(9000)) == pytest.approx(2.0)


def test_two_gpus_count_twice_and_open_sessions_count_up_to_now():
    ledger = apply({}, reconcile([], [holder(gpus=("0", "1"))], at(0)))
    assert gpu_hours(list(ledger.values()), "maya", "deep-learning", T0, at(1800)) == pytest.approx(1.0)


def test_a_removed_container_closes_at_the_last_time_it_was_seen():
    ledger = apply({}, reconcile([], [holder()], at(0)))
    ledger = apply(ledger, reconcile(open_of(ledger), [holder()], at(600)))
    ledger = apply(ledger, reconcile(open_of(ledger), [], at(660)))
    assert ledger["c1"].ended_at == at(600)


def test_a_container_started_and_stopped_between_two_looks_is_still_counted():
    ledger = apply({}, reconcile([], [holder(start=10, finished=370)], at(400)))
    assert ledger["c1"].ended_at == at(370)
    assert gpu_hours(list(ledger.values()), "maya", "deep-learning", T0, at(400)) == pytest.approx(0.1)


def test_a_cpu_container_is_not_a_gpu_session():
    assert reconcile([], [holder(gpus=())], at(0)).opened == ()


def test_periods_cut_sessions_and_other_students_do_not_count():
    sessions = list(apply({}, reconcile([], [holder(start=-3600), holder("c2", user="lin")], at(0))).values())
    assert gpu_hours(sessions, "maya", "deep-learning", T0, at(3600)) == pytest.approx(1.0)
    monday = period_start("week", at(0))
    assert monday == datetime(2026, 11, 23, tzinfo=timezone.utc)
    assert period_start("term", at(0), at(-86400)) == at(-86400)
    with pytest.raises(ValueError, match="allowed: term, week"):
        period_start("month", at(0))
