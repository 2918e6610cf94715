"""Admin pages: per course its students (server status, GPUs, image version, last activity)
with stop / reset / reset-all; the list of templates (the editor: template_pages.py); branding
uploads; backups and the audit log. Each section and each row shows what
hub_ext.service.authz allows this caller, the rule the API asks too: an instructor whose
reset scope is filtered to their course's group sees and acts on that course's students and
their backups, and nothing of other courses."""

from __future__ import annotations

import asyncio

from tornado import web
from tornado.escape import url_escape
from tornado.log import app_log

from hub_ext import contract
from hub_ext.branding import store as branding
from hub_ext.catalog.model import ACCESS_EVERYONE
from hub_ext.i18n import _, ngettext
from hub_ext.images import status as image_status
from hub_ext.homes.stop_notes import stop_with_reason
from hub_ext.paths import state_dir
from hub_ext.service.authz import Action, refusal
from hub_ext.service.branding_api import ImageUpload
from hub_ext.service.db import AuditEntry
from hub_ext.service.pages import PageHandler
from hub_ext.service.resets_api import authorize_reset, partition_reset_targets


class AdminHandler(PageHandler):
    def require(self, action: Action) -> None:
        self.rules.require_now(action, what="This page")

    def back(self, message: str, anchor: str = "") -> None:
        self.redirect(f"{self.settings['prefix']}admin?message={url_escape(message)}{anchor}")


def _framework_marks(client, courses) -> dict[str, list]:
    """Course id → the statuses of its images that are missing or lack its framework
    (hub_ext.images.status); none when the engine does not answer (logged)."""
    try:
        found = image_status.check_courses(courses, lambda ref: image_status.read_labels(client.api, ref))
    except Exception as e:
        app_log.warning("Could not check the course images' frameworks: %s", e)
        return {}
    marks: dict[str, list] = {}
    for s in found:
        if s.degraded:
            marks.setdefault(s.course, []).append(s)
    return marks


def _image_version(client, container_name: str) -> str:
    try:
        container = client.containers.get(container_name)
        labels = container.image.labels or {}
        return labels.get("org.opencontainers.image.version") or container.image.short_id
    except Exception:
        return ""


def is_listed_student(user: dict, course, with_homes: set[str]) -> bool:
    """Who the admin page lists as a course's student (besides anyone whose server of the
    course is running): its members (a group of the course: its students', its staff's, or
    one a template of it names); in a course open to everyone, which has no members, those
    with a home in it. Never someone who only asked for a template of the course and was
    refused (their stopped server still names it)."""
    if course.groups & set(user.get("groups") or ()):
        return True
    return course.access == ACCESS_EVERYONE and user["name"] in with_homes


class AdminPage(AdminHandler):
    @web.authenticated
    async def get(self):
        self.rules.require_admin()
        rules = self.rules
        catalog = await asyncio.to_thread(self.ctx.catalog)
        courses = {cid: c for cid, c in catalog.courses.items()
                   if rules.may_for_course(Action.ENROL, cid) or await rules.may_reset_some_in(cid)}
        users = await self.ctx.hub.users() if courses else []
        rows: dict[str, list[dict]] = {cid: [] for cid in courses}
        homes = {cid: await asyncio.to_thread(self.ctx.homes.users_with_homes, cid) for cid in courses}
        for u in users:
            server = u.get("servers", {}).get("") or {}
            template = catalog.templates.get(contract.template_of(server))
            running = bool(server.get("ready") or server.get("pending"))
            for cid in courses:
                here = bool(template and template.course == cid and running)
                if here or is_listed_student(u, courses[cid], homes[cid]):
                    if not await rules.may(Action.RESET, u["name"], cid):
                        continue
                    name = contract.container_of(server)
                    rows[cid].append({
                        "name": u["name"], "status": (server.get("pending") or "running") if here else "stopped",
                        "template": template.id if here else "", "gpus": ", ".join(contract.gpus_of(server)) if here else "",
                        "image": await asyncio.to_thread(_image_version, self.ctx.docker, name) if here and name else "",
                        "last_activity": u.get("last_activity") or "",
                    })
        backups, manageable = [], set()
        if rules.manages_students():
            every = await asyncio.to_thread(self.ctx.homes.backups)
            backups = await rules.only_allowed(Action.SEE_BACKUP, every, lambda b: (b.user, b.course))
            manageable = {b.volume for b in await rules.only_allowed(Action.MANAGE_BACKUP, backups,
                                                                    lambda b: (b.user, b.course))}
        audit = await asyncio.to_thread(self.recent_audit) if rules.may_now(Action.READ_AUDIT) else None
        marks = await asyncio.to_thread(_framework_marks, self.ctx.docker, courses.values())
        self.render_page("admin.html", courses=courses, rows=rows, catalog=catalog, audit=audit, marks=marks,
                         backups=backups, manageable=manageable,
                         usage_courses={c for c in courses if rules.may_for_course(Action.ENROL, c)},
                         publish_courses={c for c in courses if rules.may_for_course(Action.PUBLISH, c)},
                         message=self.get_argument("message", ""),
                         can={"reset": bool(courses),
                              "backups": rules.manages_students(),
                              "templates": rules.may_now(Action.TEMPLATES),
                              "branding": rules.may_now(Action.BRANDING)},
                         logo=branding.describe(state_dir(), "logo"),
                         favicon=branding.describe(state_dir(), "favicon"))

    def recent_audit(self) -> list:
        with self.ctx.db() as s:
            return s.query(AuditEntry).order_by(AuditEntry.id.desc()).limit(50).all()


class AdminActionPage(AdminHandler):
    """POSTed forms: stop, reset, reset-all (after a confirmation naming whom)."""

    @web.authenticated
    async def get(self, action: str):
        self.rules.require_manager("This page")
        if action != "reset-all":
            raise web.HTTPError(404)
        course = self.get_argument("course")
        courses = (await asyncio.to_thread(self.ctx.catalog)).courses
        if course not in courses:
            raise web.HTTPError(404, "%s", _("There is no course %(course)s. Courses: %(courses)s.",
                                             course=course[:64], courses=", ".join(courses)))
        if not await self.rules.may_reset_some_in(course):
            raise web.HTTPError(403, refusal(Action.RESET, course=course))
        with_homes = sorted(await asyncio.to_thread(self.ctx.homes.users_with_homes, course))
        students = await self.rules.only_allowed(Action.RESET, with_homes, lambda name: (name, course))
        self.render_page("confirm_reset_all.html", course=courses[course], students=students)

    @web.authenticated
    async def post(self, action: str):
        course = self.get_body_argument("course", "")
        if course not in (await asyncio.to_thread(self.ctx.catalog)).courses:
            raise web.HTTPError(400, "%s", _("There is no course %(course)s; nothing was changed.",
                                             course=course[:64]))
        if action == "stop":
            user = self.get_body_argument("user")
            await authorize_reset(self, [user], course)
            await stop_with_reason(self.ctx.hub, state_dir(), user)
            await asyncio.to_thread(self.ctx.audit, self.username, "stop", user, course, "ok")
            return self.back(_("%(user)s's server was stopped; their files are kept, and they will see why on "
                               "their next visit.", user=user))
        if action == "reset":
            targets = [self.get_body_argument("user")]
        elif action == "reset-all":
            if self.get_body_argument("confirm", "") != course:
                raise web.HTTPError(400, "%s", _("Nothing was reset: type the course id %(course)s to confirm "
                                                 "resetting every student.", course=course))
            targets = sorted(await asyncio.to_thread(self.ctx.homes.users_with_homes, course))
        else:
            raise web.HTTPError(404, "%s", _("There is no action %(action)s.", action=action[:40]))
        if action == "reset-all":  # those this admin may reset; the others are listed
            targets, refused = await partition_reset_targets(self, targets, course)
        else:
            targets, refused = await authorize_reset(self, targets, course), []
        results = await self.ctx.homes.reset_many(self.username, targets, course)
        failed = [r for r in results if r["result"] != "ok"]
        done = ngettext("%(num)d of %(total)d home of %(course)s was reset; the old files are in backups "
                        "you can restore below.",
                        "%(num)d of %(total)d homes of %(course)s were reset; the old files are in backups you "
                        "can restore below.", len(results) - len(failed), total=len(results), course=course)
        failures = _("Failed: %(list)s.", list=", ".join(f"{r['user']} ({r['message']})" for r in failed)) \
            if failed else ""
        others = _("Not yours to reset: %(list)s.", list=", ".join(r["user"] for r in refused)) if refused else ""
        self.back(" ".join(p for p in (done, failures, others) if p))


class BackupActionPage(AdminHandler):
    @web.authenticated
    async def post(self, action: str):
        self.rules.require_manager("Restoring or deleting backups")
        name = self.get_body_argument("backup", "")
        backup = await asyncio.to_thread(self.ctx.homes.find_backup, name)
        if backup is None:
            raise web.HTTPError(404, "%s", _("There is no backup %(name)s; it may have been deleted already.",
                                             name=name[:200]))
        await self.rules.require(Action.MANAGE_BACKUP, backup.user, backup.course)
        if action == "restore":
            result = await self.ctx.homes.restore(self.username, backup)
        elif self.get_body_argument("confirm", "") != name:
            return self.back(_("Nothing was deleted: type the backup's name (%(name)s) to confirm.", name=name))
        else:
            result = await self.ctx.homes.delete_backup(self.username, backup)
        self.back(result["message"] if result["result"] == "ok"
                  else _("Nothing was changed: %(reason)s", reason=result["message"]))


@web.stream_request_body
class BrandingUploadPage(ImageUpload, AdminHandler):
    """The upload form: streamed like the API's (an oversized file gets a sentence), so the
    caller is identified after the form, with its _xsrf field, has arrived."""

    async def post(self, kind: str):
        self.parse_form()
        await self.identify()
        if self.current_user is None:
            raise web.HTTPError(403, "%s", _("Log in to the hub to upload branding."))
        self.require(Action.BRANDING)
        if kind not in ("logo", "favicon"):
            raise web.HTTPError(404)
        files = self.request.files.get("file") or []
        if not files:
            return self.back(f"Choose a {kind} file to upload", "#branding")
        try:
            branding.store_branding(state_dir(), kind, files[0]["body"])
        except branding.BrandingError as e:
            return self.back(f"The {kind} was not changed: {e}", "#branding")
        await asyncio.to_thread(self.ctx.audit, self.username, f"upload-{kind}", "", "", "ok",
                                files[0].get("filename", ""))
        self.back(f"The new {kind} is live on every page and in every JupyterLab started from now on", "#branding")


def handlers(prefix: str) -> list:
    return [
        (prefix + r"admin", AdminPage),
        (prefix + r"admin/(stop|reset|reset-all)", AdminActionPage),
        (prefix + r"admin/(restore|delete-backup)", BackupActionPage),
        (prefix + r"admin/branding/(\w+)", BrandingUploadPage),
    ]
