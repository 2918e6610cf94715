"""The service's pages: a student's own environments (with self-reset after a confirmation
step) and their backups; the admin pages (admin_pages.py) build on PageHandler. What a page
offers is decided by hub_ext.service.authz, as for the API."""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext import contract
from hub_ext.service.authz import Action
from hub_ext.i18n import _
from hub_ext.i18n.deferred import told
from hub_ext.i18n.format import when_text
from hub_ext.service import templating
from hub_ext.service.base import CSP, BaseHandler, error_detail, error_message
from hub_ext.usage import warnings

ERROR_PAGE = "error.html"
MAX_REASON = 1000  # characters of a stop reason shown; the spawner's sentences are far shorter


def page_html(handler: BaseHandler, name: str, **values) -> str:
    """A service page for this request: the template `name` inside the hub's page.html
    (hub_ext.service.templating), with the CSP header whose script nonce is this response's
    own. For any handler of the service (an API handler answering as a page too)."""
    nonce = templating.new_nonce()
    handler.set_header("Content-Security-Policy", page_csp(nonce))
    handler.set_header("Content-Type", "text/html; charset=utf-8")
    scopes = set(handler.scopes)
    if (handler.current_user or {}).get("admin"):
        scopes.add("admin-ui")  # the hub's admins see its Admin link here too
    rules = handler.rules if handler.current_user else None
    staff = bool(rules and rules.may_open_admin())
    # An error page has no form: it carries no XSRF token (a token is a credential, and an
    # error page may be shown, copied or reported anywhere).
    forms = name != ERROR_PAGE
    context = templating.page_values(
        username=handler.username, scopes=scopes, service_prefix=handler.settings["prefix"],
        xsrf_token=handler.xsrf_token.decode("ascii") if forms else "", nonce=nonce)
    context.update(xsrf_form_html=handler.xsrf_form_html() if forms else "", is_admin=staff,
                   goldenhub_course_admin=staff,
                   admin_links=admin_links(rules) if staff else [],
                   admin_here="admin" if handler.request.path.startswith(handler.settings["prefix"] + "admin") else "")
    context.update(values)
    return handler.settings["templates"].get_template(name).render(**context)


class PageHandler(BaseHandler):
    """A page of the service: the hub's page.html around it, errors as pages too."""

    def page_html(self, name: str, **values) -> str:
        return page_html(self, name, **values)

    def render_page(self, name: str, **values) -> None:
        self.finish(page_html(self, name, **values))

    def sees_details(self) -> bool:
        """Whether this caller is shown an error's `detail` (admins and course staff: anyone
        who may open the admin page); students never are."""
        return bool(self.current_user) and self.rules.may_open_admin()

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.finish(page_html(self, ERROR_PAGE, status=status_code,
                              message=error_message(exc, status_code, self._reason),
                              detail=error_detail(exc) if self.sees_details() else ""))


class NotFoundPage(PageHandler):
    """Any path of the service that no page or API has: a 404 page with the nav bar."""

    async def prepare(self):
        await super().prepare()
        raise web.HTTPError(404)


def page_csp(nonce: str) -> str:
    """The service's CSP with the stock page's inline script allowed by this nonce only."""
    return CSP.replace("script-src 'self'", f"script-src 'self' 'nonce-{nonce}'")


def admin_links(rules) -> list[tuple[str, str]]:
    """The admin pages' sub-navigation, the sections this caller may see: (path under the
    service prefix, label)."""
    links = [("admin", _("Overview"))]
    if rules.may_now(Action.TEMPLATES):
        links.append(("admin#templates", _("Templates")))
    if rules.may_now(Action.BRANDING):
        links.append(("admin#branding", _("Branding")))
    if rules.manages_students():
        links.append(("admin#backups", _("Backups")))
    if rules.may_now(Action.READ_AUDIT):
        links.append(("admin#audit", _("Audit log")))
    return links


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
                         notices=await asyncio.to_thread(warnings.items, self.ctx.db, self.username),
                         backups=await asyncio.to_thread(self.ctx.homes.backups, user=self.username))


def stop_reason(server: dict | None) -> str:
    """Why the student's stopped server stopped, as the spawner keeps it in its state
    (contract.STATE_STOP_REASON; the service may read server state): shown until the next
    start, which clears it. Nothing while the server runs or starts."""
    if not server or server.get("ready") or server.get("pending"):
        return ""
    reason = (server.get("state") or {}).get(contract.STATE_STOP_REASON, "")
    return told(reason)[:MAX_REASON] if isinstance(reason, str) else ""


class ResetPage(PageHandler):
    @web.authenticated
    async def get(self):
        course = await self._course()
        self.render_page("confirm_reset.html", course=course)

    @web.authenticated
    async def post(self):
        course = await self._course()
        if self.get_body_argument("confirm", "") != course.id:
            self.set_status(400)  # the confirmation page again, with what to type; nothing changed
            return self.render_page("confirm_reset.html", course=course, error=_(
                "Nothing was reset: to confirm, type the course id %(id)s exactly as shown.", id=course.id))
        await self.rules.require(Action.RESET, self.username, course.id)  # oneself: always
        result = await self.ctx.homes.reset(self.username, self.username, course.id)
        self.render_page("reset_done.html", course=course, result={**result, "message": reset_words(result)},
                         detail=result["message"] if self.sees_details() else "")

    async def _course(self):
        course_id = self.get_argument("course", "")
        catalog = await asyncio.to_thread(self.ctx.catalog)
        if course_id not in catalog.courses:
            raise web.HTTPError(404, _("There is no course %(id)s; open your environments page and choose a "
                                       "course there.", id=course_id[:64]))
        return catalog.courses[course_id]


def reset_words(result: dict) -> str:
    """What a student is told after resetting their own home: where the old files went and how
    to get them back, in their words (no volume name; the audit log and `detail` keep it)."""
    if result["result"] != "ok":
        return _("Your environment was not reset and nothing was lost; try again in a few minutes, and if it "
                 "fails again, tell your instructor.")
    if not result.get("backup"):
        return _("Your environment was reset. There were no files to keep yet; your next start is fresh.")
    return _("Your environment was reset and your next start is fresh. Your old files are kept in a backup made "
             "at %(time)s; it is listed under Backups on your environments page, and your instructor can "
             "restore it for you.", time=when_text(result.get("backup_created")))


def handlers(prefix: str) -> list:
    return [(prefix + r"?", HomePage), (prefix + r"reset", ResetPage)]
