"""The course page (admin/courses/<course>): its people (role, server, last activity), the
homes of people no longer enrolled, a roster upload (dry run first, by default), a "Reset
password" button per person with local accounts, and a link to close the term.

It asks what the API asks (hub_ext.service.enrolment_api and authz): seeing the page needs
ENROL for the course or the reset scope for some of its students; uploading needs ENROL.
A dry run shows the plan with a button that applies the same file (sent back with the form,
checked again, never trusted from the first look).
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import quote

from tornado import web
from tornado.escape import url_escape

from hub_ext.accounts.roster import MAX_BYTES, MAX_ROWS
from hub_ext.i18n import _
from hub_ext.service.accounts_api import PasswordResetHandler, auth_mode
from hub_ext.service.authz import Action
from hub_ext.service.base import Refusal, error_detail, error_message
from hub_ext.service.enrolment_api import RosterUpload, known_course, require_people, run_import, visible_people
from hub_ext.service.pages import PageHandler, page_html


class CoursePageBase(PageHandler):
    async def show(self, course_id: str, result: dict | None = None, problems: list[str] | None = None,
                   message: str = "", roster_b64: str = "", sync: bool = False) -> None:
        course = await require_people(self, course_id)
        people = await visible_people(self, course_id)
        for p in people["people"]:
            p["path"] = quote(p["username"], safe="")
        self.render_page(
            "course.html", course=course, people=people["people"], homes=people["homes_not_enrolled"],
            result=result, problems=problems or [], message=message, roster_b64=roster_b64, sync=sync,
            max_mb=MAX_BYTES // 2**20, max_rows=MAX_ROWS,
            can={"enrol": self.rules.may_for_course(Action.ENROL, course_id),
                 "close": self.rules.may_for_course(Action.CLOSE_TERM, course_id),
                 "publish": self.rules.may_for_course(Action.PUBLISH, course_id),
                 "password": auth_mode() == "local" and self.rules.may_now(Action.ACCOUNTS)})


class CoursePage(CoursePageBase):
    @web.authenticated
    async def get(self, course_id: str):
        await self.show(course_id, message=self.get_argument("message", "")[:500])


@web.stream_request_body
class CourseRosterPage(RosterUpload, CoursePageBase):
    """The upload form: a file (or, from a dry run's "Apply" button, the same file sent back
    base64-encoded), "dry_run" and "sync" checkboxes."""

    async def post(self, course_id: str):
        self.parse_form()
        await self.identify()
        if self.current_user is None:
            raise web.HTTPError(403, "%s", _("Log in to the hub to import a roster."))
        await known_course(self, course_id)
        self.rules.require_for_course(Action.ENROL, course_id)
        data = self.form_file("roster")
        if data is None and self.get_body_argument("roster_b64", ""):
            try:
                data = base64.b64decode(self.get_body_argument("roster_b64"), validate=True)
            except (binascii.Error, ValueError):
                data = None
        dry_run = self.get_body_argument("dry_run", "") in ("1", "on")
        sync = self.get_body_argument("sync", "") in ("1", "on")
        if not data:
            return await self.show(course_id, problems=[_("Choose a roster file (CSV) to upload.")], sync=sync)
        try:
            result = await run_import(self, course_id, data, dry_run, sync)
        except Refusal as e:
            self.set_status(400)
            return await self.show(course_id, problems=e.details["problems"], message=e.get_message(),
                                   sync=sync)
        changes = result["enrol"] or result["role_changes"] or result["detail_changes"] or result["unenrol"]
        again = base64.b64encode(data).decode() if dry_run and changes else ""
        await self.show(course_id, result=result, roster_b64=again, sync=sync)


class PasswordResetPage(PasswordResetHandler):
    """The course page's "Reset password" button: the API's own handler (its rule, the hub's
    reset and the audit entry, hub_ext.service.accounts_api), answering as a page: back to the
    course page with its sentence, or an error page."""

    def write_json(self, data, status: int = 200) -> None:
        course = self.get_body_argument("course", "")
        back = f"admin/courses/{course}" if re.fullmatch(r"[a-z0-9-]{1,64}", course) else "admin"
        self.redirect(f"{self.settings['prefix']}{back}?message={url_escape(data.get('message', ''))}")

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.finish(page_html(self, "error.html", status=status_code,
                              message=error_message(exc, status_code, self._reason),
                              detail=error_detail(exc)))  # only staff reach this handler's errors


def handlers(prefix: str) -> list:
    return [
        (prefix + r"admin/courses/([a-z0-9-]+)", CoursePage),
        (prefix + r"admin/courses/([a-z0-9-]+)/roster", CourseRosterPage),
        (prefix + r"admin/accounts/([^/]+)/password-reset", PasswordResetPage),
    ]
