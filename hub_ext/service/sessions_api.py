"""Class sessions over the REST API: POST api/sessions {course, at, minutes, template?, lead?}
schedules one (201); GET api/sessions?course=C lists a course's sessions not yet ended, with
what each did per student; GET api/sessions/<id> one session; DELETE api/sessions/<id> cancels
it (its unopened pre-started servers are stopped at the next pass).

Rules: every call needs ENROL for the session's course (authz: the enrol scope unfiltered or
filtered to the course's student group; the course's instructors and TAs hold it, admins
too): scheduling starts that course's students' servers, which is what an instructor already
manages. The course must exist; the fields are checked by hub_ext.sessions.store (one checker
for the API, the page and the CLI). Scheduling and cancelling are audited. A refusal is a
400/403/404 sentence and nothing is written.
"""

from __future__ import annotations

import asyncio
import re

from tornado import web

from hub_ext import contract
from hub_ext.i18n import _
from hub_ext.service.authz import ENROL_SCOPE, Action
from hub_ext.service.base import APIHandler
from hub_ext.sessions import store

FIELDS = {"course", "at", "minutes", "template", "lead"}


def refusal(course: str) -> str:
    return _("You may not schedule class sessions of %(course)s: that needs the scope %(scope)s for the group "
             "%(group)s (its instructors and TAs have it)", course=course, scope=ENROL_SCOPE,
             group=contract.course_group(course))


async def course_for(handler, course_id) -> object:
    """The catalog's course, when the caller may schedule its sessions; 400/403/404 otherwise."""
    if not isinstance(course_id, str) or not course_id or len(course_id) > 64:
        raise web.HTTPError(400, "%s", _("\"course\" is required: a course id."))
    catalog = await asyncio.to_thread(handler.ctx.catalog)
    course = catalog.courses.get(course_id)
    if course is None:
        raise web.HTTPError(404, "%s", _("There is no course %(course)s.", course=repr(course_id[:64])))
    if not handler.rules.may_for_course(Action.ENROL, course_id):
        raise web.HTTPError(403, "%s", refusal(course_id))
    return course


async def schedule(handler, body: dict) -> dict:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise web.HTTPError(400, "%s", _("Unknown fields: %(fields)s; allowed: %(allowed)s.",
                                         fields=", ".join(unknown)[:200], allowed=", ".join(sorted(FIELDS))))
    course = await course_for(handler, body.get("course"))
    template = body.get("template")
    if template is not None and not isinstance(template, str):
        raise web.HTTPError(400, "%s", _("\"template\" must be a template id."))
    when = await asyncio.to_thread(store.now)
    req = store.check_request(course, body.get("at"), body.get("minutes"), body.get("lead"), template, when)
    made = await asyncio.to_thread(store.schedule, handler.ctx.db, req, handler.username, when)
    await asyncio.to_thread(handler.ctx.audit, handler.username, "session-schedule", "", course.id, "ok",
                            f"session {made['id']}: {made['starts_at']}, {made['minutes']} min, {made['template']}")
    return made


async def session_for(handler, session_id: str):
    if not re.fullmatch(r"[0-9]{1,9}", session_id):
        raise web.HTTPError(404, "%s", _("There is no class session %(id)s.", id=repr(session_id[:20])))
    row = await asyncio.to_thread(store.get, handler.ctx.db, int(session_id))
    if not handler.rules.may_for_course(Action.ENROL, row.course):
        raise web.HTTPError(403, "%s", refusal(row.course))
    return row


async def cancel(handler, session_id: str) -> dict:
    row = await session_for(handler, session_id)
    done = await asyncio.to_thread(store.cancel, handler.ctx.db, row.id, handler.username)
    await asyncio.to_thread(handler.ctx.audit, handler.username, "session-cancel", "", row.course, "ok",
                            f"session {row.id}")
    return done


async def course_sessions(handler, course_id: str) -> list[dict]:
    course = await course_for(handler, course_id)
    when = await asyncio.to_thread(store.now)
    return await asyncio.to_thread(store.list_sessions, handler.ctx.db, {course.id}, when)


class SessionsHandler(APIHandler):
    async def get(self):
        course = self.get_query_argument("course", "")
        self.write_json({"course": course, "sessions": await course_sessions(self, course)})

    async def post(self):
        self.write_json(await schedule(self, self.json_body()), 201)


class SessionHandler(APIHandler):
    async def get(self, session_id: str):
        row = await session_for(self, session_id)
        found = await asyncio.to_thread(store.list_sessions, self.ctx.db, {row.course}, store.as_utc(row.starts_at))
        self.write_json(next(s for s in found if s["id"] == row.id))

    async def delete(self, session_id: str):
        self.write_json(await cancel(self, session_id))


def handlers(prefix: str) -> list:
    return [(prefix + r"api/sessions", SessionsHandler), (prefix + r"api/sessions/([^/]+)", SessionHandler)]
