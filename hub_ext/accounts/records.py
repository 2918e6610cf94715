"""The enrolment rows and their audit entries, written the same way by every path that
changes enrolment: a roster import (the service), an LMS launch (the hub) and a term close.

Rule: access is hub group membership (contract.course_group / staff_group); the caller
changes the groups and records here what changed, each row in one transaction with its audit
entry. A roster import changes the groups first (a re-import completes the rows); an LMS
launch records first and changes the groups only once the row is stored, so a failed write
grants no access.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub_ext import contract
from hub_ext.service.db import AuditEntry, Enrolment, utcnow

SOURCES = ("roster", "lti", "admin")


def upsert_enrolment(session: Session, course: str, username: str, role: str, actor: str, source: str,
                     display_name: str = "", email: str = "") -> str:
    """Record `username` in `course` with `role`; returns what changed: "enrolled",
    "role changed", "details changed" or "unchanged". Enrolments and role changes are
    audited (action "enrol" / "role"), with who did it. Does not commit."""
    if role not in contract.ROLES:
        raise ValueError(f"role {role!r}: allowed {', '.join(contract.ROLES)}")
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: allowed {', '.join(SOURCES)}")
    row = session.scalars(select(Enrolment).where(Enrolment.course == course, Enrolment.username == username)).first()
    if row is None:
        session.add(Enrolment(course=course, username=username, role=role, display_name=display_name, email=email,
                              source=source, updated_at=utcnow(), updated_by=actor))
        session.add(AuditEntry(actor=actor, action="enrol", target_user=username, course=course, result="ok",
                               detail=f"enrolled as {role} ({source})"))
        return "enrolled"
    change = "unchanged"
    if row.role != role:
        session.add(AuditEntry(actor=actor, action="role", target_user=username, course=course, result="ok",
                               detail=f"role {row.role} -> {role} ({source})"))
        row.role, change = role, "role changed"
    if (display_name and row.display_name != display_name) or (email and row.email != email):
        row.display_name = display_name or row.display_name
        row.email = email or row.email
        change = change if change != "unchanged" else "details changed"
    if change != "unchanged":
        row.source, row.updated_at, row.updated_by = source, utcnow(), actor
    return change


def remove_enrolment(session: Session, course: str, username: str, actor: str, why: str) -> bool:
    """Forget `username`'s enrolment in `course` (audited as "unenrol" with the reason);
    their home is never touched here. Returns whether there was one. Does not commit."""
    row = session.scalars(select(Enrolment).where(Enrolment.course == course, Enrolment.username == username)).first()
    if row is not None:
        session.delete(row)
    session.add(AuditEntry(actor=actor, action="unenrol", target_user=username, course=course, result="ok",
                           detail=why))
    return row is not None


def enrolments_of(session: Session, course: str) -> dict[str, Enrolment]:
    """The recorded enrolments of a course, by username."""
    return {e.username: e for e in session.scalars(select(Enrolment).where(Enrolment.course == course))}
