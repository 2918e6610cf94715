"""Usage pages: GPU time per student of a course (used this period, quota, extra hours
granted, sessions, last activity, current server), GPU-hours by day as an SVG chart, CSV
exports and the form that grants extra hours; an overview of every course the caller may see.

Rules:
- A course's usage (page, chart, CSV, grant) needs the per-course rule of the course's staff
  pages and of the grants API: ENROL for the course (authz: its instructors and TAs, and
  admins). Anyone else gets 403 with the sentence saying what is needed; nothing is shown.
  The overview lists only the courses the caller may see; with none it is a 403.
- The period is the course's quota period: that of its first template with a quota (week:
  since Monday 00:00 UTC; term: since the course's last term close), else the term. Hours
  are GPU-hours (server-hours for a metered CPU template), shown with one decimal.
- The students shown: the course's student group and everyone with a recorded session.
- CSV: `?rows=students` (default) or `?rows=sessions`; a header row; any cell that starts with
  = + - @ (a spreadsheet formula) is prefixed with '; sent as an attachment.
- The grant form posts hours and a reason (XSRF-checked, confirmed by static/confirm.js);
  records.grant checks and audits it; a bad value is a 400 with the sentence and no grant.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup
from tornado import web

from hub_ext import contract
from hub_ext.i18n import _
from hub_ext.i18n.format import iso
from hub_ext.service.authz import Action
from hub_ext.service.db import utcnow
from hub_ext.service.grants_api import NAME_RE, refusal
from hub_ext.service.pages import PageHandler
from hub_ext.usage import chart, ledger, records

CHART_DAYS = 14  # the chart's days: the last two weeks, today included
FORMULA_START = ("=", "+", "-", "@")


@dataclass
class Period:
    name: str  # term | week
    start: datetime
    quota: float | None  # hours per student, None when no template of the course is metered


def course_period(db, course, now: datetime) -> Period:
    """Blocking: the course's quota period (see the module rules)."""
    quota = next((t.quota for t in course.templates if getattr(t, "quota", None)), None)
    name = quota.period if quota else "term"
    term = records.term_start(db, course.id) if name == "term" else None
    return Period(name, ledger.period_start(name, now, term), quota.gpu_hours if quota else None)


def usage_rows(db, course, students: set[str], now: datetime) -> tuple[Period, list[dict], list]:
    """Blocking: the period, one row per student (sorted by name) and every recorded session."""
    period = course_period(db, course, now)
    sessions = records.sessions(db, course.id)
    rows = []
    for user in sorted(students | {s.user for s in sessions}):
        mine = [s for s in sessions if s.user == user]
        in_period = [s for s in mine if s.ended_at is None or s.ended_at > period.start]
        granted = records.granted_hours(db, user, course.id, period.start)
        rows.append({"username": user, "used": ledger.gpu_hours(mine, user, course.id, period.start, now),
                     "quota": period.quota, "granted": granted, "sessions": len(in_period),
                     "sessions_total": len(mine), "open": any(s.ended_at is None for s in mine)})
    return period, rows, sessions


def csv_cell(value) -> str:
    """A CSV cell that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([[csv_cell(c) for c in row] for row in rows])
    return out.getvalue()


class UsageBase(PageHandler):
    async def course(self, course_id: str):
        catalog = await asyncio.to_thread(self.ctx.catalog)
        if course_id not in catalog.courses:
            raise web.HTTPError(404, "%s", _("There is no course %(course)s.", course=repr(course_id[:64])))
        if not self.rules.may_for_course(Action.ENROL, course_id):
            raise web.HTTPError(403, "%s", _("You may not see the usage of %(course)s.", course=course_id) + " "
                                + refusal(course_id))
        return catalog.courses[course_id]

    async def gather(self, course) -> dict:
        now = utcnow()
        users, students = await asyncio.gather(
            self.ctx.hub.users(), self.ctx.hub.group_members(contract.course_group(course.id)))
        period, rows, sessions = await asyncio.to_thread(usage_rows, self.ctx.db, course, set(students), now)
        models = {u["name"]: u for u in users}
        for row in rows:
            model = models.get(row["username"], {})
            server = (model.get("servers") or {}).get("") or {}
            row["last_activity"] = model.get("last_activity") or ""
            row["server"] = (contract.requested_template_of(server) or "?") if server.get("ready") else ""
            row["pending"] = bool(server.get("pending"))
        today = now.date()
        days = chart.daily_hours(sessions, today - timedelta(days=CHART_DAYS - 1), today, now)
        return {"course": course, "period": period, "rows": rows, "sessions": sessions, "days": days, "now": now}


class CourseUsagePage(UsageBase):
    @web.authenticated
    async def get(self, course_id: str):
        await self.show(await self.course(course_id))

    async def show(self, course, flash=None, status: int = 200):
        data = await self.gather(course)
        title = _("GPU-hours by day in %(course)s", course=course.title)
        self.set_status(status)
        self.render_page("usage_course.html", **data, flash=flash or [], hours=chart.hours_text,
                         svg=Markup(chart.make_svg(data["days"], title)), chart_title=title)


class GrantPage(CourseUsagePage):
    @web.authenticated
    async def post(self, course_id: str):
        course = await self.course(course_id)
        user = self.get_body_argument("user", "")[:300]
        text = self.get_body_argument("hours", "").strip()[:30]
        reason = self.get_body_argument("reason", "")
        try:
            hours = float(text)
        except ValueError:
            hours = None
        problem = ""
        if not NAME_RE.fullmatch(user) or await self.ctx.hub.user(user) is None:
            problem = _("There is no user %(user)s on this hub; nothing was granted.", user=repr(user[:64]))
        else:
            try:
                records.check_grant(hours, reason)
            except records.GrantError:
                problem = _("Nothing was granted: hours must be a number above 0 and at most 100000 (e.g. 5 or 2.5), "
                            "and the reason at most 500 characters.")
        if problem:
            return await self.show(course, flash={"kind": "danger", "text": problem}, status=400)
        await asyncio.to_thread(records.grant, self.ctx.db, user, course.id, hours, self.username, reason)
        await self.show(course, flash={"kind": "success", "text": _(
            "%(name)s has %(hours)s extra GPU-hours in %(course)s for this period.",
            name=user, hours=chart.hours_text(hours), course=course.id)})


class UsageCSV(UsageBase):
    @web.authenticated
    async def get(self, course_id: str):
        course = await self.course(course_id)
        kind = self.get_query_argument("rows", "students")
        if kind not in ("students", "sessions"):
            raise web.HTTPError(400, "%s", _("rows must be students or sessions."))
        data = await self.gather(course)
        if kind == "students":
            header = ["username", "period", "period_start", "used_hours", "quota_hours", "granted_hours",
                      "sessions", "last_activity", "server"]
            rows = [[r["username"], data["period"].name, iso(data["period"].start), chart.hours_text(r["used"]),
                     "" if r["quota"] is None else chart.hours_text(r["quota"]), chart.hours_text(r["granted"]),
                     r["sessions"], r["last_activity"], r["server"]] for r in data["rows"]]
        else:
            header = ["username", "template", "gpus", "started_at", "ended_at", "end_reason", "gpu_hours"]
            now = data["now"]
            rows = [[s.user, s.template, ",".join(s.gpus), iso(s.started_at), iso(s.ended_at) if s.ended_at else "",
                     s.end_reason, chart.hours_text(s.gpu_seconds(s.started_at, now) / 3600)]
                    for s in data["sessions"]]
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition",
                        f'attachment; filename="usage-{course.id}-{kind}-{data["now"]:%Y%m%d}.csv"')
        self.finish(csv_text(header, rows))


class UsageOverview(UsageBase):
    @web.authenticated
    async def get(self):
        catalog = await asyncio.to_thread(self.ctx.catalog)
        mine = [c for c in sorted(catalog.courses) if self.rules.may_for_course(Action.ENROL, c)]
        if not mine:
            raise web.HTTPError(403, "%s", _("You may see the usage of no course: that needs a course's "
                                             "instructor or TA role, or an administrator's."))
        courses = []
        for course_id in mine:
            data = await self.gather(catalog.courses[course_id])
            courses.append({"course": data["course"], "period": data["period"],
                            "used": sum(r["used"] for r in data["rows"]),
                            "students": sum(1 for r in data["rows"] if r["used"] > 0),
                            "running": sum(1 for r in data["rows"] if r["open"])})
        self.render_page("usage_overview.html", courses=courses, hours=chart.hours_text)


def handlers(prefix: str) -> list:
    return [
        (prefix + r"admin/usage", UsageOverview),
        (prefix + r"admin/courses/([a-z0-9-]+)/usage", CourseUsagePage),
        (prefix + r"admin/courses/([a-z0-9-]+)/usage/grant", GrantPage),
        (prefix + r"admin/courses/([a-z0-9-]+)/usage\.csv", UsageCSV),
    ]
