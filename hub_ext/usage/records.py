"""The ledger in the service database: sessions written by the ledger loop, hours used in a
quota period, extra hours granted, and where a student stands against a template's quota.

Rules:
- Usage is counted per student and course: every metered session of the course's templates
  (GPU-hours; a CPU template with a quota adds server-hours, its session's gpus being "cpu").
- A period's start: week → Monday 00:00 UTC; term → the course's last term close (audit
  action "term-close"), else the course's first recorded session (hub_ext.usage.ledger).
- Grants count in the period they were given in: allowed = quota + grants since the period
  started. A grant is audited (action "grant").
- One clock: every function takes `now`; nothing here reads the time itself except grant's
  default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DBSession, sessionmaker

from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred
from hub_ext.catalog.usage_rules import MAX_QUOTA_HOURS, Quota
from hub_ext.service.db import AuditEntry, UsageGrant, UsageSession, as_utc, utcnow
from hub_ext.usage import ledger

TERM_CLOSE = "term-close"  # hub_ext.homes.term.AUDIT_ACTION (not imported: that pulls in Docker)
GRANT = "grant"
CPU_MARK = "cpu"  # the gpus of a metered CPU server's session: one server-hour per hour
MAX_REASON = 500


class GrantError(ValueError):
    """A grant that cannot be made; str() is the sentence to show."""


@dataclass(frozen=True)
class RecordedSession(ledger.Session):
    end_reason: str = ""  # stop | cull | quota | crash | gone | "" while open
    id: int = 0


@dataclass(frozen=True)
class Standing:
    """Where one student stands against one template's quota now."""

    used: float  # hours used in the period
    quota: float  # the template's hours per period
    granted: float  # extra hours granted in the period
    period: str
    period_start: datetime
    renews_at: datetime | None  # the next period's start (week); None for a term

    @property
    def allowed(self) -> float:
        return self.quota + self.granted

    @property
    def left(self) -> float:
        return max(0.0, self.allowed - self.used)

    @property
    def over(self) -> bool:
        return self.used >= self.allowed


def to_session(row: UsageSession) -> RecordedSession:
    return RecordedSession(row.container_id, row.username, row.course, row.template,
                           tuple(g for g in row.gpus.split(",") if g), as_utc(row.started_at),
                           as_utc(row.last_seen), as_utc(row.ended_at) if row.ended_at else None,
                           row.end_reason or "", row.id)


def term_start(db: sessionmaker, course: str) -> datetime | None:
    """The start of the course's current term: its last term close, else its first session."""
    with db() as s:
        closed = s.scalar(select(func.max(AuditEntry.at)).where(
            AuditEntry.action == TERM_CLOSE, AuditEntry.course == course, AuditEntry.result.in_(("ok", "partial"))))
        if closed is not None:
            return as_utc(closed)
        first = s.scalar(select(func.min(UsageSession.started_at)).where(UsageSession.course == course))
        return as_utc(first) if first is not None else None


def _sessions_since(s: DBSession, user: str, course: str, start: datetime) -> list[RecordedSession]:
    rows = s.scalars(select(UsageSession).where(
        UsageSession.username == user, UsageSession.course == course,
        (UsageSession.ended_at.is_(None)) | (UsageSession.ended_at > start)))
    return [to_session(r) for r in rows]


def used_hours(db: sessionmaker, user: str, course: str, period: str, term_start: datetime | None,
               now: datetime) -> float:
    """Hours `user` used in `course` in the period containing `now`."""
    start = ledger.period_start(period, now, term_start)
    with db() as s:
        return ledger.gpu_hours(_sessions_since(s, user, course, start), user, course, start, now)


def granted_hours(db: sessionmaker, user: str, course: str, since: datetime) -> float:
    """Extra hours granted to `user` in `course` since `since`."""
    with db() as s:
        total = s.scalar(select(func.sum(UsageGrant.hours)).where(
            UsageGrant.username == user, UsageGrant.course == course, UsageGrant.at >= since))
    return float(total or 0.0)


def standing(db: sessionmaker, user: str, course: str, quota: Quota, now: datetime) -> Standing:
    """Used, quota and granted hours of `user` in `course` for this quota's period."""
    term = term_start(db, course) if quota.period == "term" else None
    start = ledger.period_start(quota.period, now, term)
    used = used_hours(db, user, course, quota.period, term, now)
    granted = granted_hours(db, user, course, start)
    renews = start + timedelta(days=7) if quota.period == "week" else None
    return Standing(used, quota.gpu_hours, granted, quota.period, start, renews)


def check_grant(hours, reason) -> tuple[float, str]:
    """Clean hours and reason, or GrantError with what is allowed."""
    if (not isinstance(hours, (int, float)) or isinstance(hours, bool) or not math.isfinite(hours)
            or not 0 < hours <= MAX_QUOTA_HOURS):
        raise GrantError(f"hours must be a number above 0 and at most {MAX_QUOTA_HOURS}, e.g. 5 or 2.5")
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise GrantError(f"reason must be text of at most {MAX_REASON} characters")
    return float(hours), reason.strip()


def grant(db: sessionmaker, user: str, course: str, hours, by: str, reason: str = "",
          now: datetime | None = None) -> dict:
    """Give `user` extra hours in `course` for the current period; audited (action "grant")."""
    hours, reason = check_grant(hours, reason)
    at = now or utcnow()
    with db() as s:
        row = UsageGrant(username=user, course=course, hours=hours, at=at, granted_by=by, reason=reason)
        s.add(row)
        detail = (deferred(N_("%(hours)s extra hours: %(reason)s"), hours=f"{hours:g}", reason=reason) if reason
                  else deferred(N_("%(hours)s extra hours"), hours=f"{hours:g}"))
        s.add(AuditEntry(at=at, actor=by, action=GRANT, target_user=user, course=course, result="ok", detail=detail))
        s.commit()
        return grant_dict(row)


def grant_dict(row: UsageGrant) -> dict:
    return {"id": row.id, "user": row.username, "course": row.course, "hours": row.hours,
            "at": as_utc(row.at).isoformat(), "granted_by": row.granted_by, "reason": row.reason}


def grants(db: sessionmaker, course: str | None = None, user: str | None = None) -> list[dict]:
    query = select(UsageGrant).order_by(UsageGrant.at)
    if course is not None:
        query = query.where(UsageGrant.course == course)
    if user is not None:
        query = query.where(UsageGrant.username == user)
    with db() as s:
        return [grant_dict(r) for r in s.scalars(query)]


def sessions(db: sessionmaker, course: str | None = None, user: str | None = None) -> list[RecordedSession]:
    """Recorded sessions, oldest first (open ones have ended_at None)."""
    query = select(UsageSession).order_by(UsageSession.started_at, UsageSession.id)
    if course is not None:
        query = query.where(UsageSession.course == course)
    if user is not None:
        query = query.where(UsageSession.username == user)
    with db() as s:
        return [to_session(r) for r in s.scalars(query)]


def open_sessions(db: sessionmaker) -> list[RecordedSession]:
    with db() as s:
        return [to_session(r) for r in s.scalars(select(UsageSession).where(UsageSession.ended_at.is_(None)))]


def write_changes(db: sessionmaker, changes: ledger.Changes, reasons: dict[str, str]) -> None:
    """Write a reconcile's result: new rows for opened sessions, ends and last_seen for others.
    reasons: container id → end_reason of each closed (or opened-and-closed) session."""
    with db() as s:
        for x in changes.opened:
            if s.scalar(select(UsageSession.id).where(UsageSession.container_id == x.container_id)) is not None:
                continue  # recorded already (closed earlier): never counted twice
            s.add(UsageSession(container_id=x.container_id, username=x.user, course=x.course, template=x.template,
                               gpus=",".join(x.gpus), started_at=x.started_at, last_seen=x.last_seen,
                               ended_at=x.ended_at, end_reason=reasons.get(x.container_id, "") if x.ended_at else ""))
        for x in (*changes.closed, *changes.seen):
            row = s.scalar(select(UsageSession).where(UsageSession.container_id == x.container_id))
            if row is None:
                continue
            row.last_seen = x.last_seen
            if x.ended_at is not None:
                row.ended_at = x.ended_at
                row.end_reason = reasons.get(x.container_id, "stop")
        s.commit()
