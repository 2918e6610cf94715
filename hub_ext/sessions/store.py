"""Class sessions in the service's database: schedule (checked), list, cancel, and the
per-student records the loop writes. Every function blocks: callers on an event loop run it
in a thread.

Input rules (one checker for the API, the page and the CLI, which calls the API):
- start: ISO 8601 with a time zone ("2026-11-27T09:00Z", "...+08:00"); a time without a zone
  is refused (the page sends its local time with the browser's offset). Stored as UTC. It must
  lie after now and at most MAX_AHEAD_DAYS ahead.
- minutes: a whole number from MIN_MINUTES to MAX_MINUTES; lead: 0 to MAX_LEAD (default 10).
- template: one of the course's templates; none given: the course's first template.
- at most MAX_UPCOMING sessions of a course not yet ended and not cancelled.
A refused request writes nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from hub_ext.i18n import _
from hub_ext.service.db import ClassSession, ClassSessionStudent, as_utc, utcnow
from hub_ext.sessions import planner

MIN_MINUTES, MAX_MINUTES = 30, 720
DEFAULT_LEAD, MAX_LEAD = 10, 120
MAX_AHEAD_DAYS = 366
MAX_UPCOMING = 100
# A time made to pass, for tests only: when GOLDENHUB_SESSIONS_NOW_FILE names a file, its ISO
# time is "now" for the sessions (schedule checks and the loop); unset in production.
NOW_FILE_ENV = "GOLDENHUB_SESSIONS_NOW_FILE"
ISO_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})")


class SessionError(ValueError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def now(env=os.environ) -> datetime:
    """The sessions' clock: the test file's time when GOLDENHUB_SESSIONS_NOW_FILE is set, else UTC now."""
    path = env.get(NOW_FILE_ENV)
    if not path:
        return utcnow()
    text = Path(path).read_text()[:64].strip()
    return parse_time(text)


def parse_time(text: str) -> datetime:
    if not isinstance(text, str) or not ISO_RE.fullmatch(text):  # whole: no spaces or newlines around
        raise SessionError(400, _("The start must be a date and time with its time zone, e.g. "
                                  "2026-11-27T09:00Z or 2026-11-27T17:00+08:00; got %(value)s.",
                                  value=repr(str(text)[:40])))
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SessionError(400, _("%(value)s is not a real date and time.", value=repr(text[:40]))) from None
    return when.astimezone(timezone.utc)


def check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,6}", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SessionError(400, _("%(name)s must be a whole number of minutes from %(low)d to %(high)d; got "
                                  "%(value)s.", name=name, low=low, high=high, value=f"{value!r:.40}"))
    return value


def pick_template(course, template: str | None) -> str:
    ids = [t.id for t in course.templates]
    if not ids:
        raise SessionError(400, _("%(course)s has no template to start.", course=course.id))
    if template in (None, ""):
        return ids[0]
    if template not in ids:
        raise SessionError(400, _("%(course)s has no template %(template)s; its templates: %(choices)s.",
                                  course=course.id, template=repr(str(template)[:40]), choices=", ".join(ids)))
    return template


@dataclass(frozen=True)
class Request:
    course: str
    template: str
    starts_at: datetime
    minutes: int
    lead_minutes: int


def check_request(course, at, minutes, lead, template, when: datetime) -> Request:
    """The checked session (see the module's rules) for a course of the catalog."""
    starts_at = parse_time(at)
    if starts_at <= when:
        raise SessionError(400, _("The start %(start)s has passed; choose a time in the future.",
                                  start=starts_at.strftime("%Y-%m-%d %H:%M UTC")))
    if starts_at > when + timedelta(days=MAX_AHEAD_DAYS):
        raise SessionError(400, _("The start may be at most %(days)d days ahead.", days=MAX_AHEAD_DAYS))
    return Request(course.id, pick_template(course, template), starts_at,
                   check_int("minutes", minutes, MIN_MINUTES, MAX_MINUTES),
                   check_int("lead", DEFAULT_LEAD if lead in (None, "") else lead, 0, MAX_LEAD))


def to_dict(row: ClassSession, records: list[ClassSessionStudent] | None = None) -> dict:
    starts = as_utc(row.starts_at)
    out = {"id": row.id, "course": row.course, "template": row.template, "starts_at": starts.isoformat(),
           "ends_at": (starts + timedelta(minutes=row.minutes)).isoformat(), "minutes": row.minutes,
           "lead_minutes": row.lead_minutes, "created_by": row.created_by,
           "cancelled": row.cancelled_at is not None, "cancelled_by": row.cancelled_by}
    if records is not None:
        out["students"] = [{"user": r.username, "state": r.state, "detail": r.detail,
                            "at": as_utc(r.updated_at).isoformat(),
                            "ready_at": as_utc(r.ready_seen).isoformat() if r.ready_seen else None}
                           for r in sorted(records, key=lambda r: r.username)]
        out["counts"] = {state: sum(1 for r in records if r.state == state) for state in planner.STATES}
    return out


def schedule(db, req: Request, actor: str, when: datetime) -> dict:
    with db() as s:
        upcoming = s.scalars(select(ClassSession).where(
            ClassSession.course == req.course, ClassSession.cancelled_at.is_(None))).all()
        live = [r for r in upcoming if as_utc(r.starts_at) + timedelta(minutes=r.minutes) > when]
        if len(live) >= MAX_UPCOMING:
            raise SessionError(400, _("%(course)s already has %(num)d sessions ahead; cancel one first.",
                                      course=req.course, num=len(live)))
        row = ClassSession(course=req.course, template=req.template, starts_at=req.starts_at, minutes=req.minutes,
                           lead_minutes=req.lead_minutes, created_by=actor, created_at=utcnow())
        s.add(row)
        s.commit()
        return to_dict(row, [])


def get(db, session_id: int) -> ClassSession:
    with db() as s:
        row = s.get(ClassSession, session_id)
    if row is None:
        raise SessionError(404, _("There is no class session %(id)s.", id=session_id))
    return row


def list_sessions(db, courses: set[str] | None, since: datetime) -> list[dict]:
    """Sessions (with their students' records) ending after `since`, of these courses (None: all)."""
    with db() as s:
        rows = s.scalars(select(ClassSession).order_by(ClassSession.starts_at, ClassSession.id)).all()
        rows = [r for r in rows if (courses is None or r.course in courses)
                and as_utc(r.starts_at) + timedelta(minutes=r.minutes) > since]
        records = s.scalars(select(ClassSessionStudent).where(
            ClassSessionStudent.session_id.in_([r.id for r in rows]))).all() if rows else []
    by_session: dict[int, list] = {}
    for r in records:
        by_session.setdefault(r.session_id, []).append(r)
    return [to_dict(r, by_session.get(r.id, [])) for r in rows]


def cancel(db, session_id: int, actor: str) -> dict:
    with db() as s:
        row = s.get(ClassSession, session_id)
        if row is None:
            raise SessionError(404, _("There is no class session %(id)s.", id=session_id))
        if row.cancelled_at is None:
            row.cancelled_at, row.cancelled_by = utcnow(), actor
            s.commit()
        return to_dict(row)


# --- the loop's side ------------------------------------------------------------------------

def live_sessions(db, when: datetime) -> tuple[list[ClassSession], dict[int, dict[str, planner.Record]]]:
    """Sessions the loop still acts on (pre-start window opened, not ended; cancelled ones
    until their end, for their stops) and their records."""
    with db() as s:
        rows = [r for r in s.scalars(select(ClassSession)).all()
                if as_utc(r.starts_at) - timedelta(minutes=r.lead_minutes) <= when
                < as_utc(r.starts_at) + timedelta(minutes=r.minutes)]
        recs = s.scalars(select(ClassSessionStudent).where(
            ClassSessionStudent.session_id.in_([r.id for r in rows]))).all() if rows else []
    records: dict[int, dict[str, planner.Record]] = {r.id: {} for r in rows}
    for r in recs:
        records[r.session_id][r.username] = planner.Record(
            r.state, as_utc(r.server_started) if r.server_started else None,
            as_utc(r.ready_seen) if r.ready_seen else None)
    return rows, records


def previous_session(db, row: ClassSession) -> tuple[ClassSession | None, set[str]]:
    """The course's last session before this one (not cancelled) and who opened a server in it."""
    with db() as s:
        earlier = s.scalars(select(ClassSession).where(
            ClassSession.course == row.course, ClassSession.cancelled_at.is_(None),
            ClassSession.starts_at < row.starts_at).order_by(ClassSession.starts_at.desc()).limit(1)).first()
        if earlier is None:
            return None, set()
        opened = s.scalars(select(ClassSessionStudent.username).where(
            ClassSessionStudent.session_id == earlier.id, ClassSessionStudent.state == planner.OPENED)).all()
    return earlier, set(opened)


def record(db, session_id: int, user: str, state: str, server_started: datetime | None = None,
           detail: str = "", ready_seen: datetime | None = None) -> None:
    with db() as s:
        row = s.scalars(select(ClassSessionStudent).where(
            ClassSessionStudent.session_id == session_id, ClassSessionStudent.username == user)).first()
        if row is None:
            row = ClassSessionStudent(session_id=session_id, username=user)
            s.add(row)
        row.state, row.detail, row.updated_at = state, detail[:1000], utcnow()
        if server_started is not None:
            row.server_started = server_started
        if ready_seen is not None:
            row.ready_seen = ready_seen
        s.commit()
