"""End of term over the REST API and its confirmation page.

What a close does is hub_ext.homes.term; here: who may ask (authz: Action.CLOSE_TERM for
the course: admins, and the course's own staff), the typed confirmation, and the answers.
Rules: the course id comes from the path (contract's [a-z0-9-]); the body is only
{"confirm": "<course id>", "export": true|false}; a wrong or missing confirmation is a 400
and nothing changes; an export goes to <state>/exports/<course>-<UTC date time>/, never to a
path from a request.
"""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext import contract
from hub_ext.homes import term
from hub_ext.i18n import N_, _
from hub_ext.service.authz import Action
from hub_ext.service.base import APIHandler, bool_field, str_field
from hub_ext.service.pages import PageHandler

COURSE = r"([a-z0-9-]{1,40})"
WHAT_HAPPENS = N_("Every student's home in %(course)s moves to a dated backup (restore it from Backups); "
                  "servers stop; students are unenrolled; nothing is deleted.")


def confirmation_needed(course: str) -> str:
    return _("Closing the term of %(course)s needs the course id typed as confirmation: send "
             "{\"confirm\": \"%(course)s\"}; nothing was changed.", course=course)


async def authorize_close(handler, course: str):
    """The course, if the caller may close its term; else 403 (audited) or 404."""
    if not handler.rules.may_for_course(Action.CLOSE_TERM, course):
        await asyncio.to_thread(handler.ctx.audit, handler.username, term.AUDIT_ACTION, "", course, "refused",
                                "missing scope")
        handler.rules.require_for_course(Action.CLOSE_TERM, course)  # raises the 403 sentence
    catalog = await asyncio.to_thread(handler.ctx.catalog)
    if course not in catalog.courses:
        raise web.HTTPError(404, "%s", _("There is no course %(course)s. Courses: %(courses)s.", course=course,
                                         courses=", ".join(sorted(catalog.courses))))
    return catalog.courses[course]


def export_parent(handler):
    return handler.ctx.homes.state_dir / term.EXPORTS_DIR


class TermCloseHandler(APIHandler):
    async def post(self, course: str):
        await authorize_close(self, course)
        body = self.json_body()
        unknown = set(body) - {"confirm", "export"}
        if unknown:
            raise web.HTTPError(400, "%s", _("Unknown fields: %(fields)s; allowed: confirm, export.",
                                             fields=", ".join(sorted(unknown))[:200]))
        if str_field(body, "confirm") != course:
            raise web.HTTPError(400, "%s", confirmation_needed(course))
        export = bool_field(body, "export")
        result = await term.close_term(self.ctx.homes, self.ctx.db, self.username, course,
                                       export_parent(self) if export else None)
        self.write_json(result)


class TermClosePage(PageHandler):
    """GET: what a close will do, with its numbers, and the typed confirmation; POST: close."""

    @web.authenticated
    async def get(self, course: str):
        self.render_page("term_close.html", **await self.facts(course))

    @web.authenticated
    async def post(self, course: str):
        facts = await self.facts(course)
        if self.get_body_argument("confirm", "") != course:
            self.set_status(400)
            return self.render_page("term_close.html", **{
                **facts, "error": _("Not closed: type the course id %(course)s to confirm. Nothing was changed.",
                                    course=course)})
        export = self.get_body_argument("export", "") == "yes"
        result = await term.close_term(self.ctx.homes, self.ctx.db, self.username, course,
                                       export_parent(self) if export else None)
        self.render_page("term_close.html", **{**facts, "result": result})

    async def facts(self, course: str) -> dict:
        info = await authorize_close(self, course)
        students = await self.ctx.hub.group_members(contract.course_group(course))
        staff = await self.ctx.hub.group_members(contract.staff_group(course))
        homes = await asyncio.to_thread(self.ctx.homes.home_volumes, course=course)
        return {"course": info, "students": sorted(students), "staff": sorted(staff), "homes": len(homes),
                "what_happens": _(WHAT_HAPPENS, course=course), "error": "", "result": None}


def handlers(prefix: str) -> list:
    return [
        (prefix + rf"api/courses/{COURSE}/term-close", TermCloseHandler),
        (prefix + rf"admin/courses/{COURSE}/close", TermClosePage),
    ]
