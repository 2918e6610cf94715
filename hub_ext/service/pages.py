"""The service's pages: a student's own environments (with self-reset after a confirmation
step) and their backups; the admin pages (admin_pages.py) build on PageHandler. What a page
offers is decided by hub_ext.service.authz, as for the API."""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext import contract
from hub_ext.service.authz import Action
from hub_ext.service.base import BaseHandler, error_message

MAX_REASON = 1000  # characters of a stop reason shown; the spawner's sentences are far shorter


class PageHandler(BaseHandler):
    def render_page(self, name: str, **values) -> None:
        template = self.settings["templates"].get_template(name)
        self.finish(template.render(prefix=self.settings["prefix"], user=self.username,
                                    xsrf_form_html=self.xsrf_form_html(), is_admin=self.rules.may_open_admin(),
                                    **values))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = error_message(exc, status_code, self._reason)
        template = self.settings["templates"].get_template("error.html")
        self.finish(template.render(prefix=self.settings["prefix"], status=status_code, message=message))


class HomePage(PageHandler):
    @web.authenticated
    async def get(self):
        model = await self.ctx.hub.user(self.username) or {}
        groups = set(model.get("groups", []))
        catalog = await asyncio.to_thread(self.ctx.catalog)
        courses = {t.course for t in catalog.templates_for(groups)}
        server = model.get("servers", {}).get("")
        self.render_page("home.html", courses=[catalog.courses[c] for c in sorted(courses)],
                         server=server, stop_reason=stop_reason(server),
                         backups=await asyncio.to_thread(self.ctx.homes.backups, user=self.username))


def stop_reason(server: dict | None) -> str:
    """Why the student's stopped server stopped, as the spawner keeps it in its state
    (contract.STATE_STOP_REASON; the service may read server state): shown until the next
    start, which clears it. Nothing while the server runs or starts."""
    if not server or server.get("ready") or server.get("pending"):
        return ""
    reason = (server.get("state") or {}).get(contract.STATE_STOP_REASON, "")
    return reason[:MAX_REASON] if isinstance(reason, str) else ""


class ResetPage(PageHandler):
    @web.authenticated
    async def get(self):
        course = await self._course()
        self.render_page("confirm_reset.html", course=course)

    @web.authenticated
    async def post(self):
        course = await self._course()
        if self.get_body_argument("confirm", "") != course.id:
            raise web.HTTPError(400, f"Type the course id {course.id} to confirm the reset")
        await self.rules.require(Action.RESET, self.username, course.id)  # oneself: always
        result = await self.ctx.homes.reset(self.username, self.username, course.id)
        self.render_page("reset_done.html", course=course, result=result)

    async def _course(self):
        course_id = self.get_argument("course", "")
        catalog = await asyncio.to_thread(self.ctx.catalog)
        if course_id not in catalog.courses:
            raise web.HTTPError(404, f"No such course: {course_id}")
        return catalog.courses[course_id]


def handlers(prefix: str) -> list:
    return [(prefix + r"?", HomePage), (prefix + r"reset", ResetPage)]
