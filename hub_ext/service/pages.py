"""The service's pages: a student's own environments (with self-reset after a confirmation
step) and, for holders of the reset scope, the backups and the audit log."""

from __future__ import annotations

from tornado import web

from hub_ext.service.base import RESET_SCOPE, BaseHandler, error_message


class PageHandler(BaseHandler):
    def render_page(self, name: str, **values) -> None:
        template = self.settings["templates"].get_template(name)
        self.finish(template.render(prefix=self.settings["prefix"], user=self.username,
                                    xsrf_form_html=self.xsrf_form_html(), is_admin=RESET_SCOPE in self.scopes,
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
        courses = {t.course for t in self.ctx.catalog().templates_for(groups)}
        catalog = self.ctx.catalog()
        self.render_page("home.html", courses=[catalog.courses[c] for c in sorted(courses)],
                         server=model.get("servers", {}).get(""),
                         backups=self.ctx.homes.backups(user=self.username))


class ResetPage(PageHandler):
    @web.authenticated
    def get(self):
        course = self._course()
        self.render_page("confirm_reset.html", course=course)

    @web.authenticated
    async def post(self):
        course = self._course()
        if self.get_body_argument("confirm", "") != course.id:
            raise web.HTTPError(400, f"Type the course id {course.id} to confirm the reset")
        result = await self.ctx.homes.reset(self.username, self.username, course.id)
        self.render_page("reset_done.html", course=course, result=result)

    def _course(self):
        course_id = self.get_argument("course", "")
        catalog = self.ctx.catalog()
        if course_id not in catalog.courses:
            raise web.HTTPError(404, f"No such course: {course_id}")
        return catalog.courses[course_id]


def handlers(prefix: str) -> list:
    return [(prefix + r"?", HomePage), (prefix + r"reset", ResetPage)]
