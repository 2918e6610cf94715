"""Environment templates over the REST API: list (all, with who manages each), create,
edit, roll back, disable/enable and delete templates made at runtime. Needs the scope
custom:goldenhub:templates, except listing."""

from __future__ import annotations

from tornado import web

from hub_ext import templates_store as store
from hub_ext.service.base import TEMPLATES_SCOPE, APIHandler


def template_dict(t, managed_by: str, disabled: bool = False) -> dict:
    return {"id": t.id, "course": t.course, "title": t.title, "image": t.image, "gpus": t.gpus, "cpu": t.cpu,
            "memory": t.memory, "shm_size": t.shm_size, "groups": list(t.groups),
            "managed_by": managed_by, "disabled": disabled}


class TemplatesAPIHandler(APIHandler):
    def require_templates_scope(self):
        if TEMPLATES_SCOPE not in self.scopes:
            raise web.HTTPError(403, f"Changing templates needs the scope {TEMPLATES_SCOPE}")

    def run(self, change, *args, **kwargs):
        """Apply a store change in a session, turning refusals into JSON errors."""
        with self.ctx.db() as session:
            try:
                return change(session, self.ctx.file_catalog(), *args, **kwargs)
            except store.StoreError as e:
                self.set_status(e.status)
                self.write_json({"status": e.status, "message": str(e), "problems": e.problems}, e.status)
                return None


class TemplatesHandler(TemplatesAPIHandler):
    def get(self):
        catalog = self.ctx.catalog()
        items = [template_dict(t, catalog.managed_by[t.id]) for t in catalog.templates.values()]
        items += [template_dict(t, "api", disabled=True) for t in catalog.disabled.values()]
        self.write_json({"templates": items, "conflicts": catalog.conflicts})

    def post(self):
        self.require_templates_scope()
        body = self.json_body()
        record = self.run(store.create, body.get("course"), body.get("course_title", ""), body.get("template"),
                          self.username, self.ctx.policy, body.get("comment", ""))
        if record is not None:
            self.write_json({"id": record.id, "revision": record.current}, 201)


class TemplateHandler(TemplatesAPIHandler):
    def get(self, tid: str):
        def show(session, files):
            record = store.get(session, files, tid)
            return {"id": tid, "course": record.course, "revision": record.current, "disabled": record.disabled,
                    "template": store.current_data(session, record),
                    "revisions": [r.to_dict() for r in store.revisions(session, tid)]}
        result = self.run(show)
        if result is not None:
            self.write_json(result)

    def patch(self, tid: str):
        self.require_templates_scope()
        body = self.json_body()
        record = self.run(store.update, tid, body.get("template"), self.username, self.ctx.policy,
                          body.get("comment", ""))
        if record is not None:
            self.write_json({"id": tid, "revision": record.current})

    def delete(self, tid: str):
        self.require_templates_scope()
        if self.get_argument("confirm", "") != tid:
            raise web.HTTPError(400, f"Deleting a template needs ?confirm={tid}")
        if self.run(store.delete, tid) is None and self._status_code == 200:
            self.write_json({"id": tid, "deleted": True})


class TemplateActionHandler(TemplatesAPIHandler):
    def post(self, tid: str, action: str):
        self.require_templates_scope()
        body = self.json_body()
        if action == "rollback":
            record = self.run(store.rollback, tid, body.get("revision"), self.username, self.ctx.policy)
        elif action in ("disable", "enable"):
            record = self.run(store.set_disabled, tid, action == "disable")
        else:
            raise web.HTTPError(404, f"No such action: {action}; allowed: rollback, disable, enable")
        if record is not None:
            self.write_json({"id": tid, "revision": record.current, "disabled": record.disabled})


def handlers(prefix: str) -> list:
    return [
        (prefix + r"api/templates", TemplatesHandler),
        (prefix + r"api/templates/([a-z0-9-]+)", TemplateHandler),
        (prefix + r"api/templates/([a-z0-9-]+)/(\w+)", TemplateActionHandler),
    ]
