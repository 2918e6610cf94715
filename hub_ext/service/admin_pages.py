"""Admin pages: per course its students (server status, GPUs, image version, last activity)
with stop / reset / reset-all; templates (list, create, edit as YAML, roll back); branding
uploads; backups and the audit log. Each section and each row shows what
hub_ext.service.authz allows this caller, the rule the API asks too: an instructor whose
reset scope is filtered to their course's group sees and acts on that course's students and
their backups, and nothing of other courses."""

from __future__ import annotations

import asyncio

import yaml
from tornado import web
from tornado.escape import url_escape
from tornado.log import app_log

from hub_ext import contract
from hub_ext.branding import store as branding
from hub_ext.catalog import store
from hub_ext.images import status as image_status
from hub_ext.homes.stop_notes import stop_with_reason
from hub_ext.paths import state_dir
from hub_ext.service.authz import Action, refusal
from hub_ext.service.base import int_value
from hub_ext.service.branding_api import ImageUpload
from hub_ext.service.db import AuditEntry
from hub_ext.service.masking import mask_credentials
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
                if u["name"] in homes[cid] or (template and template.course == cid):
                    if not await rules.may(Action.RESET, u["name"], cid):
                        continue
                    here = bool(template and template.course == cid and running)
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
            raise web.HTTPError(404, f"No such course: {course}. Courses: {', '.join(courses)}")
        if not await self.rules.may_reset_some_in(course):
            raise web.HTTPError(403, refusal(Action.RESET, course=course))
        with_homes = sorted(await asyncio.to_thread(self.ctx.homes.users_with_homes, course))
        students = await self.rules.only_allowed(Action.RESET, with_homes, lambda name: (name, course))
        self.render_page("confirm_reset_all.html", course=courses[course], students=students)

    @web.authenticated
    async def post(self, action: str):
        course = self.get_body_argument("course", "")
        if course not in (await asyncio.to_thread(self.ctx.catalog)).courses:
            raise web.HTTPError(400, f"No such course: {course}")
        if action == "stop":
            user = self.get_body_argument("user")
            await authorize_reset(self, [user], course)
            await stop_with_reason(self.ctx.hub, state_dir(), user)
            await asyncio.to_thread(self.ctx.audit, self.username, "stop", user, course, "ok")
            return self.back(f"Stopped {user}'s server")
        if action == "reset":
            targets = [self.get_body_argument("user")]
        elif action == "reset-all":
            if self.get_body_argument("confirm", "") != course:
                raise web.HTTPError(400, f"Type the course id {course} to confirm resetting every student")
            targets = sorted(await asyncio.to_thread(self.ctx.homes.users_with_homes, course))
        else:
            raise web.HTTPError(404, f"No such action: {action}")
        if action == "reset-all":  # those this admin may reset; the others are listed
            targets, refused = await partition_reset_targets(self, targets, course)
        else:
            targets, refused = await authorize_reset(self, targets, course), []
        results = await self.ctx.homes.reset_many(self.username, targets, course)
        failed = [r for r in results if r["result"] != "ok"]
        self.back(f"Reset {len(results) - len(failed)} of {len(results)} in {course}"
                  + (f"; failed: {', '.join(r['user'] + ' (' + r['message'] + ')' for r in failed)}" if failed else "")
                  + (f"; not yours to reset: {', '.join(r['user'] for r in refused)}" if refused else ""))


class BackupActionPage(AdminHandler):
    @web.authenticated
    async def post(self, action: str):
        self.rules.require_manager("Restoring or deleting backups")
        name = self.get_body_argument("backup", "")
        backup = await asyncio.to_thread(self.ctx.homes.find_backup, name)
        if backup is None:
            raise web.HTTPError(404, f"No such backup: {name}")
        await self.rules.require(Action.MANAGE_BACKUP, backup.user, backup.course)
        if action == "restore":
            result = await self.ctx.homes.restore(self.username, backup)
        elif self.get_body_argument("confirm", "") != name:
            return self.back(f"Not deleted: type the backup's name ({name}) to confirm")
        else:
            result = await self.ctx.homes.delete_backup(self.username, backup)
        self.back(result["message"] if result["result"] == "ok" else f"Failed: {result['message']}")


class TemplateEditPage(AdminHandler):
    """A template as YAML: create (id 'new') or edit, with its revisions to roll back to."""

    @web.authenticated
    async def get(self, tid: str):
        self.require(Action.TEMPLATES)
        await self.show(tid)

    async def show(self, tid: str, text: str | None = None, error: str = "", course: str = "") -> None:
        def load():  # files and the database, in a thread
            revisions, record, current = [], None, text
            with self.ctx.db() as session:
                if tid != "new":
                    record = store.get(session, self.ctx.file_catalog(), tid)
                    revisions = [mask_credentials(r.to_dict()) for r in store.revisions(session, tid)]
                    current = current if current is not None else store.template_yaml(
                        store.current_data(session, record))
            return revisions, record, current

        try:
            revisions, record, text = await asyncio.to_thread(load)
        except store.StoreError as e:
            raise web.HTTPError(e.status, str(e))
        text = mask_credentials(text or "")
        self.render_page("template_edit.html", tid=tid, text=text, error=mask_credentials(error),
                         revisions=revisions, course=course or (record.course if record else ""),
                         disabled=bool(record and record.disabled))

    @web.authenticated
    async def post(self, tid: str):
        self.require(Action.TEMPLATES)
        text = self.get_body_argument("yaml", "")
        course = self.get_body_argument("course", "")
        rollback_to = self.get_body_argument("rollback", "")
        state = self.get_body_argument("state", "")
        comment = self.get_body_argument("comment", "")
        if state == "delete" and self.get_body_argument("confirm", "") != tid:
            return await self.show(tid, None, f"Not deleted: type {tid} to confirm")
        number = int_value("rollback", rollback_to, 1, 10**9) if rollback_to else 0

        def change() -> str:  # files and the database, in a thread; the message to go back with
            nonlocal tid
            with self.ctx.db() as session:
                files = self.ctx.file_catalog()
                if state in ("enable", "disable"):
                    store.set_disabled(session, files, tid, state == "disable")
                    return f"Template {tid} {state}d"
                if state == "delete":
                    store.delete(session, files, tid)
                    return f"Template {tid} deleted (its revisions are kept)"
                if rollback_to:
                    store.rollback(session, files, tid, number, self.username, self.ctx.policy)
                else:
                    data = yaml.safe_load(text)
                    if tid == "new":
                        tid = store.create(session, files, course, course, data, self.username, self.ctx.policy).id
                    else:
                        store.update(session, files, tid, data, self.username, self.ctx.policy, comment)
            return f"Saved template {tid}"

        try:
            message = await asyncio.to_thread(change)
        except yaml.YAMLError as e:
            return await self.show(tid, text, f"Not valid YAML: {e}", course)
        except store.StoreError as e:
            return await self.show(tid, text, str(e), course)
        self.back(message, "#templates")


@web.stream_request_body
class BrandingUploadPage(ImageUpload, AdminHandler):
    """The upload form: streamed like the API's (an oversized file gets a sentence), so the
    caller is identified after the form, with its _xsrf field, has arrived."""

    async def post(self, kind: str):
        self.parse_form()
        await self.identify()
        if self.current_user is None:
            raise web.HTTPError(403, "Log in to the hub to upload branding")
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
        (prefix + r"admin/templates/([a-z0-9-]+)", TemplateEditPage),
        (prefix + r"admin/branding/(\w+)", BrandingUploadPage),
    ]
