"""Environment templates over the REST API: list, show, create, edit, roll back,
disable/enable and delete templates made at runtime; list deleted ones with their revisions.

Rules: changes and the full record (every field, revisions with authors and diffs, who
manages it) need the scope custom:goldenhub:templates. Without it a user sees only the
templates their groups may start, and only what a student needs to choose one; another
group's template is "no such template". Credentials in repository URLs are masked in
everything returned (a revision stored before such URLs were refused may hold one).
"""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext.catalog import store
from hub_ext.catalog.usage_rules import quota_data
from hub_ext.i18n import _
from hub_ext.service.authz import Action
from hub_ext.service.base import APIHandler, Refusal, int_value, str_field
from hub_ext.service.masking import mask_credentials


def template_dict(t, managed_by: str, disabled: bool = False) -> dict:
    """The full listing entry, for holders of the templates scope."""
    return {"id": t.id, "course": t.course, "title": t.title, "image": t.image, "gpus": t.gpus, "cpu": t.cpu,
            "memory": t.memory, "shm_size": t.shm_size, "groups": list(t.groups),
            "idle_timeout": t.idle_timeout, "quota": quota_data(t.quota),
            "managed_by": managed_by, "disabled": disabled}


def student_dict(t) -> dict:
    """What a student needs to choose an environment: no host paths, repositories, groups
    or history."""
    return {"id": t.id, "course": t.course, "title": t.title, "description": t.description,
            "image": t.image, "gpus": t.gpus, "cpu": t.cpu, "memory": t.memory, "shm_size": t.shm_size,
            "idle_timeout": t.idle_timeout, "quota": quota_data(t.quota)}


class TemplatesAPIHandler(APIHandler):
    @property
    def may_curate(self) -> bool:
        return self.rules.may_now(Action.TEMPLATES)

    def require_templates_scope(self):
        self.rules.require_now(Action.TEMPLATES)

    async def startable(self) -> dict:
        """The templates this user's groups may start, by id (as the spawner offers them)."""
        model = await self.ctx.hub.user(self.username) or {}
        catalog = await asyncio.to_thread(self.ctx.catalog)
        return {t.id: t for t in catalog.templates_for(set(model.get("groups", [])))}

    async def run(self, change, *args, **kwargs):
        """Apply a store change in a session, in a thread (files and the database); a
        refusal becomes an error answer."""
        def in_session():
            with self.ctx.db() as session:
                return change(session, self.ctx.file_catalog(), *args, **kwargs)

        try:
            return await asyncio.to_thread(in_session)
        except store.StoreError as e:
            raise Refusal(e.status, str(e), problems=e.problems) from None


class TemplatesHandler(TemplatesAPIHandler):
    async def get(self):
        if not self.may_curate:
            templates = await self.startable()
            return self.write_json({"templates": [student_dict(t) for t in templates.values()]})
        catalog = await asyncio.to_thread(self.ctx.catalog)
        items = [template_dict(t, catalog.managed_by[t.id]) for t in catalog.templates.values()]
        items += [template_dict(t, "api", disabled=True) for t in catalog.disabled.values()]
        self.write_json(mask_credentials({"templates": items, "conflicts": catalog.conflicts}))

    async def post(self):
        self.require_templates_scope()
        body = self.json_body()
        course = str_field(body, "course", required=True)
        title = str_field(body, "course_title", "")
        comment = str_field(body, "comment", "")
        record = await self.run(store.create, course, title, body.get("template"), self.username, self.ctx.policy,
                                comment)
        self.write_json({"id": record.id, "revision": record.current}, 201)


class TemplateHandler(TemplatesAPIHandler):
    async def get(self, tid: str):
        if not self.may_curate:
            template = (await self.startable()).get(tid)
            if template is None:
                raise web.HTTPError(404, "%s", _("There is no template %(id)s.", id=tid[:64]))
            return self.write_json(student_dict(template))

        def show(session, files):
            record = store.get(session, files, tid)
            return {"id": tid, "course": record.course, "revision": record.current, "disabled": record.disabled,
                    "template": store.current_data(session, record),
                    "revisions": [r.to_dict() for r in store.revisions(session, tid)]}
        self.write_json(mask_credentials(await self.run(show)))

    async def patch(self, tid: str):
        self.require_templates_scope()
        body = self.json_body()
        comment = str_field(body, "comment", "")
        record = await self.run(store.update, tid, body.get("template"), self.username, self.ctx.policy, comment)
        self.write_json({"id": tid, "revision": record.current})

    async def delete(self, tid: str):
        self.require_templates_scope()
        if self.get_argument("confirm", "") != tid:
            raise web.HTTPError(400, "%s", _("Nothing was deleted: deleting a template needs ?confirm=%(id)s.",
                                             id=tid))
        await self.run(store.delete, tid)
        self.write_json({"id": tid, "deleted": True})


class TemplateActionHandler(TemplatesAPIHandler):
    async def post(self, tid: str, action: str):
        self.require_templates_scope()
        body = self.json_body()
        if action == "rollback":
            revision = int_value("revision", body.get("revision"), 1, 10**9)
            record = await self.run(store.rollback, tid, revision, self.username, self.ctx.policy)
        elif action in ("disable", "enable"):
            record = await self.run(store.set_disabled, tid, action == "disable")
        else:
            raise web.HTTPError(404, "%s", _("There is no action %(action)s; allowed: rollback, disable, enable.",
                                             action=action[:40]))
        self.write_json({"id": tid, "revision": record.current, "disabled": record.disabled})


class DeletedTemplatesHandler(TemplatesAPIHandler):
    """GET: deleted templates with every revision kept (who, when, comment, diff, the whole
    template), for holders of the templates scope."""

    async def get(self):
        self.require_templates_scope()
        deleted = await self.run(lambda session, files: store.deleted_with_revisions(session))
        self.write_json(mask_credentials({"deleted": deleted}))


def handlers(prefix: str) -> list:
    return [
        (prefix + r"api/deleted-templates", DeletedTemplatesHandler),
        (prefix + r"api/templates", TemplatesHandler),
        (prefix + r"api/templates/([a-z0-9-]+)", TemplateHandler),
        (prefix + r"api/templates/([a-z0-9-]+)/(\w+)", TemplateActionHandler),
    ]
