"""The class sessions page of a course (admin/courses/<c>/sessions): a form to schedule one
(start in the browser's local time, duration, template, lead) and the sessions not yet ended
with what each did per student (pre-started, opened, stopped unopened, failed) and a Cancel
button.

Rules: as the API (hub_ext.service.sessions_api), whose functions the forms call: ENROL for
the course or a 403 page with the refusal sentence; the forms are XSRF-checked; Cancel asks
first (static/confirm.js). The local time comes with the browser's offset (static/sessions.js
fills tz_offset, minutes east of UTC; without it the time is read as UTC).
"""

from __future__ import annotations

import re

from tornado import web

from hub_ext.i18n import N_, _
from hub_ext.i18n.format import when_text
from hub_ext.service import sessions_api
from hub_ext.service.pages import PageHandler
from hub_ext.sessions import planner, store

LOCAL_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
STATE_WORDS = {planner.PRE_STARTED: N_("pre-started"), planner.OPENED: N_("opened"),
               planner.STOPPED_UNOPENED: N_("stopped, not opened"), planner.FAILED: N_("start failed")}


def local_to_iso(local: str, offset: str) -> str:
    """The form's local time and offset as ISO 8601 with its zone (checked again by the store)."""
    if not LOCAL_RE.fullmatch(local):
        raise store.SessionError(400, _("Choose the date and time the class starts."))
    minutes = int(offset) if re.fullmatch(r"-?[0-9]{1,3}", offset or "") else 0
    minutes = max(-840, min(840, minutes))
    sign = "+" if minutes >= 0 else "-"
    return f"{local}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class SessionsPage(PageHandler):
    @web.authenticated
    async def get(self, course_id: str):
        await self.show(course_id)

    async def show(self, course_id: str, flash: dict | None = None, status: int = 200, form: dict | None = None):
        course = await sessions_api.course_for(self, course_id)
        sessions = await sessions_api.course_sessions(self, course_id)
        for s in sessions:
            s["start_text"] = when_text(s["starts_at"])
        self.set_status(status)
        self.render_page("sessions.html", course=course, sessions=sessions, flash=flash or [], form=form or {},
                         states={k: _(v) for k, v in STATE_WORDS.items()}, lead_default=store.DEFAULT_LEAD,
                         min_minutes=store.MIN_MINUTES, max_minutes=store.MAX_MINUTES, max_lead=store.MAX_LEAD)


class SchedulePage(SessionsPage):
    @web.authenticated
    async def post(self, course_id: str):
        form = {k: self.get_body_argument(k, "")[:100] for k in ("at_local", "tz_offset", "minutes", "template", "lead")}
        try:
            at = local_to_iso(form["at_local"], form["tz_offset"])
            made = await sessions_api.schedule(self, {
                "course": course_id, "at": at, "minutes": form["minutes"], "lead": form["lead"],
                "template": form["template"] or None})
        except store.SessionError as e:
            if e.status != 400:
                raise
            return await self.show(course_id, flash={"kind": "danger", "text": str(e)}, status=400, form=form)
        await self.show(course_id, flash={"kind": "success", "text": _(
            "Session %(id)d scheduled: the students' servers start %(lead)d minutes before it.",
            id=made["id"], lead=made["lead_minutes"])})


class CancelPage(SessionsPage):
    @web.authenticated
    async def post(self, course_id: str, session_id: str):
        await sessions_api.course_for(self, course_id)
        done = await sessions_api.cancel(self, session_id)
        await self.show(course_id, flash={"kind": "success", "text": _(
            "Session %(id)d cancelled: no more servers start for it; those it started that nobody opened stop.",
            id=done["id"])})


def handlers(prefix: str) -> list:
    base = prefix + r"admin/courses/([a-z0-9-]+)/sessions"
    return [(base, SessionsPage), (base + r"/schedule", SchedulePage), (base + r"/([0-9]{1,9})/cancel", CancelPage)]
