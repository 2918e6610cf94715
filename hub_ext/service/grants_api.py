"""Extra GPU-hours over the REST API: POST api/usage/grants {course, user, hours, reason}
gives one student more hours in one course for the current quota period (records.grant,
audited "grant"); GET api/usage/grants?course=C lists a course's grants.

Rules: both need the course's per-course rule that lets instructors manage it (authz:
ENROL for the course: the enrol scope unfiltered or filtered to the course's student
group, which its instructors and TAs hold; admins hold it unfiltered). The course must
exist; the user must be a hub user; hours a number above 0 and at most 100000; reason at
most 500 characters. Anything else is a 400/403/404 sentence and nothing is written.
"""

from __future__ import annotations

import asyncio
import re

from tornado import web

from hub_ext import contract
from hub_ext.i18n import _
from hub_ext.service.authz import ENROL_SCOPE, Action
from hub_ext.service.base import APIHandler, str_field
from hub_ext.usage import records

NAME_RE = re.compile(r"[^\x00-\x1f\x7f/]{1,255}")  # a hub user name: no control characters or slashes


def refusal(course: str) -> str:
    return _("You may not grant hours in %(course)s: that needs the scope %(scope)s for the group %(group)s "
             "(its instructors and TAs have it)", course=course, scope=ENROL_SCOPE,
             group=contract.course_group(course))


class GrantsHandler(APIHandler):
    async def course(self, course: str | None) -> str:
        if not course or len(course) > 64:
            raise web.HTTPError(400, "%s", _("\"course\" is required: a course id."))
        catalog = await asyncio.to_thread(self.ctx.catalog)
        if course not in catalog.courses:
            raise web.HTTPError(404, "%s", _("There is no course %(course)s.", course=repr(course[:64])))
        if not self.rules.may_for_course(Action.ENROL, course):
            raise web.HTTPError(403, "%s", refusal(course))
        return course

    async def get(self):
        course = await self.course(self.get_query_argument("course", ""))
        found = await asyncio.to_thread(records.grants, self.ctx.db, course)
        self.write_json({"course": course, "grants": found})

    async def post(self):
        body = self.json_body()
        unknown = sorted(set(body) - {"course", "user", "hours", "reason"})
        if unknown:
            raise web.HTTPError(400, "%s", _("Unknown fields: %(fields)s; allowed: course, user, hours, reason.",
                                             fields=", ".join(unknown)[:200]))
        course = await self.course(str_field(body, "course", required=True))
        user = str_field(body, "user", required=True)
        if not NAME_RE.fullmatch(user):
            raise web.HTTPError(400, "%s", _("\"user\" must be a hub user name: 1 to 255 characters without control "
                                             "characters or slashes."))
        reason = str_field(body, "reason", "")
        try:
            records.check_grant(body.get("hours"), reason)
        except records.GrantError:
            raise web.HTTPError(400, "%s", _("\"hours\" must be a number above 0 and at most 100000 (e.g. 5 or 2.5), "
                                             "and \"reason\" text of at most 500 characters.")) from None
        if await self.ctx.hub.user(user) is None:
            raise web.HTTPError(404, "%s", _("There is no user %(user)s on this hub.", user=repr(user[:64])))
        grant = await asyncio.to_thread(records.grant, self.ctx.db, user, course, body["hours"], self.username, reason)
        self.write_json(grant, 201)


def handlers(prefix: str) -> list:
    return [(prefix + r"api/usage/grants", GrantsHandler)]
