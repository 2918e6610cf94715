"""Enrolment through the hub: apply a roster to a course, and list a course's people.

What a roster means is hub_ext.accounts.roster (pure); here it meets the hub's REST API
(hub_ext.hubclient) and the service database (hub_ext.accounts.records). Rules:

- Access is hub group membership: students in contract.course_group(c), instructors and TAs
  in contract.staff_group(c), never both. The groups change first, then the rows and their
  audit entries are written in one transaction; a hub failure half-way leaves rows that a
  second import (idempotent) completes.
- Batched for whole classes: one POST /users for every new account, one request per group
  change, one transaction for the rows.
- New accounts are plain hub users: with local accounts their owner sets a password at first
  login; with the LMS they are the same name a launch logs in.
- Unenrolling (sync) takes someone out of both groups and forgets their row; it never
  deletes the hub user, and their homes stay until an admin archives them.
- One import per course at a time (in this service process), so two uploads never interleave.
- Database and Docker calls are blocking: they run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from hub_ext import contract
from hub_ext.accounts import records
from hub_ext.accounts.roster import Plan, Recorded, Roster, current_role, make_plan, plan_dict
from hub_ext.service.db import AuditEntry

log = logging.getLogger("goldenhub.service")
_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


@dataclass
class CourseState:
    """The hub's and the database's view of one course's enrolment."""

    users: dict[str, dict]          # every hub user's model, by name
    students: set[str]
    staff: set[str]
    rows: dict[str, object]         # Enrolment rows, by username


async def course_state(hub, db, course: str) -> CourseState:
    def rows():
        with db() as session:
            return records.enrolments_of(session, course)

    users, students, staff, found = await asyncio.gather(
        hub.users(), hub.group_members(contract.course_group(course)),
        hub.group_members(contract.staff_group(course)), asyncio.to_thread(rows))
    return CourseState({u["name"]: u for u in users}, set(students), set(staff), found)


def _recorded(rows: dict) -> dict[str, Recorded]:
    return {name: Recorded(r.role, r.display_name or "", r.email or "") for name, r in rows.items()}


async def import_roster(hub, db, course: str, roster: Roster, actor: str, *, dry_run: bool = False,
                        sync: bool = False) -> dict:
    """Plan, and unless `dry_run` apply, `roster` to `course` as `actor`; the result dict
    (roster.plan_dict). RosterError when a name clashes with an existing user by case."""
    async with _locks[course]:
        started = time.monotonic()
        state = await course_state(hub, db, course)
        plan = make_plan(course, roster, set(state.users), state.students, state.staff,
                         _recorded(state.rows), sync=sync, actor=actor)
        if dry_run or plan.changes == 0:
            return plan_dict(plan, roster, dry_run, sync, applied=False)
        read = time.monotonic()
        await _change_groups(hub, course, plan, state)
        changed = time.monotonic()
        await asyncio.to_thread(_record, db, course, plan, roster, actor, sync)
        log.info("Roster of %s applied by %s: %d people, %d changes, %d new accounts; read %.2f s, hub %.2f s, "
                 "records %.2f s", course, actor, len(roster.people), plan.changes, len(plan.accounts_to_create),
                 read - started, changed - read, time.monotonic() - changed)
        return plan_dict(plan, roster, dry_run, sync, applied=True)


async def _change_groups(hub, course: str, plan: Plan, state: CourseState) -> None:
    students_group, staff_group = contract.course_group(course), contract.staff_group(course)
    await hub.create_users(plan.accounts_to_create)
    wanted = [*plan.enrol, *(p for p, _ in plan.role_changes), *plan.detail_changes]
    to_students = sorted({p.username for p in wanted if p.role not in contract.STAFF_ROLES} - state.students)
    to_staff = sorted({p.username for p in wanted if p.role in contract.STAFF_ROLES} - state.staff)
    out_of_students = {p.username for p in wanted if p.role in contract.STAFF_ROLES} & state.students
    out_of_staff = {p.username for p in wanted if p.role not in contract.STAFF_ROLES} & state.staff
    gone = {name for name, _ in plan.unenrol}
    await hub.add_to_group(students_group, to_students)
    await hub.add_to_group(staff_group, to_staff)
    await hub.remove_from_group(students_group, sorted((out_of_students | gone) & state.students))
    await hub.remove_from_group(staff_group, sorted((out_of_staff | gone) & state.staff))


def _record(db, course: str, plan: Plan, roster: Roster, actor: str, sync: bool) -> None:
    with db() as session:
        for p in [*plan.enrol, *(p for p, _ in plan.role_changes), *plan.detail_changes]:
            records.upsert_enrolment(session, course, p.username, p.role, actor, "roster", p.display_name, p.email)
        for name, _ in plan.unenrol:
            records.remove_enrolment(session, course, name, actor,
                                     "not in the roster applied with sync; the account and its homes are kept")
        session.add(AuditEntry(actor=actor, action="roster", target_user="", course=course, result="ok",
                               detail=plan_dict(plan, roster, False, sync, applied=True)["summary"][:1000]))
        session.commit()


# --- the people of a course ------------------------------------------------------------------

def server_status(model: dict) -> str:
    server = (model.get("servers") or {}).get("") or {}
    if server.get("pending"):
        return f"{server['pending']} pending"
    return "running" if server.get("ready") else "stopped"


async def people_of(hub, db, course: str, homes_of_course) -> dict:
    """Everyone enrolled in `course` (either group), joined with their rows and hub models,
    and the homes of the course whose owner is not enrolled. `homes_of_course()` (blocking)
    gives {username: [home volume names]}."""
    state = await course_state(hub, db, course)
    homes = await asyncio.to_thread(homes_of_course)
    rows = _recorded(state.rows)
    people = []
    for name in sorted(state.students | state.staff):
        row, model = state.rows.get(name), state.users.get(name, {})
        people.append({
            "username": name,
            "display_name": getattr(row, "display_name", "") or "",
            "email": getattr(row, "email", "") or "",
            "role": current_role(name, state.students, state.staff, rows),
            "source": getattr(row, "source", "") or "hub group",
            "server": server_status(model),
            "last_activity": model.get("last_activity") or "never logged in",
        })
    enrolled = state.students | state.staff
    not_enrolled = [{"username": user, "volumes": sorted(volumes)}
                    for user, volumes in sorted(homes.items()) if user not in enrolled]
    return {"course": course, "people": people, "homes_not_enrolled": not_enrolled}

