"""The template editor pages: a new template from an example with comments or from a copy
of any template the admin may see; editing a template made here, with field help and every
problem of the text at once; read-only views of course-file templates and of deleted
templates' revisions.

Rules: all of it needs the templates scope (hub_ext.service.authz Action.TEMPLATES), as the
API does. A course-file template is read-only here: its page shows the file's name, never
the server's path to it. A deleted template is not brought back in place: a new template
(the same id is allowed) starts from one of its revisions and goes through the editor's
checks like any other. Files and the database are read in a thread.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import yaml
from tornado import web

from hub_ext.catalog import fields, store
from hub_ext.i18n import _
from hub_ext.service.admin_pages import AdminHandler
from hub_ext.service.authz import Action
from hub_ext.service.base import int_value
from hub_ext.service.masking import mask_credentials

EXAMPLE = "example"
MAX_YAML = 100_000  # characters of template text accepted; a template is far shorter


def problem_items(problems: list[str]) -> list[dict]:
    """The checker's lines ("template: template.memory: got 'lots'; allowed: ...") as
    {field, message, allowed} for the page: the field as written in the YAML, and what the
    field help says is allowed, in the page's language."""
    helps = {f.name: f for f in (fields.COURSE_HELP, *fields.FIELDS)}
    items = []
    for line in problems:
        line = line.removeprefix("template: ")
        where, sep, message = line.partition(": ")
        if not sep or " " in where:
            where, message = "", line
        where = where.removeprefix("template.").removeprefix("template")
        found = helps.get(re.sub(r"\[[0-9]+\]", "[]", where))
        items.append({"field": where, "message": message, "allowed": _(found.allowed) if found else ""})
    return items


def yaml_problem(e: yaml.YAMLError) -> dict:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark:
        return {"field": "", "message": _("Not valid YAML at line %(line)d, column %(column)d: %(problem)s",
                                          line=mark.line + 1, column=mark.column + 1, problem=problem)}
    return {"field": "", "message": _("Not valid YAML: %(problem)s", problem=problem)}


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def file_template_data(template) -> dict:
    """A course-file template's entry as the file writes it (the catalog has just read and
    validated this file: template.source is its path)."""
    try:
        course = yaml.safe_load(Path(template.source).read_text(encoding="utf-8"))
        return next(t for t in course["templates"] if isinstance(t, dict) and t.get("id") == template.id)
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration):  # changed since the catalog read it
        raise store.StoreError(409, _("The course file %(file)s changed while it was read; reload the page.",
                                      file=store.file_label(template.source))) from None


def copy_id(tid: str) -> str:
    return f"{tid[:35].rstrip('-')}-copy"


class TemplatePages(AdminHandler):
    def require_templates(self) -> None:
        self.require(Action.TEMPLATES)

    def render_page(self, name: str, **values) -> None:
        """Under the admin pages' sub-navigation, at Templates."""
        super().render_page(name, admin_nav=True, admin_here="admin#templates", **values)

    def sources(self, catalog) -> list[dict]:
        """What a new template may start from: every template the admin sees, by kind."""
        kinds = {"file": _("course file"), "api": _("made here")}
        items = [{"id": t.id, "course": t.course, "kind": kinds[catalog.managed_by[t.id]]}
                 for t in catalog.templates.values()]
        items += [{"id": t.id, "course": t.course, "kind": _("disabled")} for t in catalog.disabled.values()]
        return items

    async def render_editor(self, tid: str, text: str, course: str, problems: list[dict] | None = None,
                            source: str = EXAMPLE, revisions: list | None = None, disabled: bool = False) -> None:
        catalog = await asyncio.to_thread(self.ctx.catalog)
        if problems:
            self.set_status(400)
        self.render_page("template_edit.html", tid=tid, text=mask_credentials(text), course=course,
                         problems=mask_credentials(problems or []), sources=self.sources(catalog), source=source,
                         revisions=revisions or [], disabled=disabled, help=fields.help_rows())


class TemplateEditPage(TemplatePages):
    """GET: the editor (new, or a template made here) or a course-file template's view;
    POST: save, roll back, disable/enable, delete."""

    @web.authenticated
    async def get(self, tid: str):
        self.require_templates()
        if tid == "new":
            return await self.new()
        catalog = await asyncio.to_thread(self.ctx.catalog)
        if catalog.managed_by.get(tid) == "file":
            return await self.view_file_template(catalog.templates[tid])
        await self.show(tid)

    async def new(self) -> None:
        source = self.get_argument("from", EXAMPLE)[:64]  # ids are at most 40 characters
        deleted = self.get_argument("deleted", "")[:64]

        def load() -> tuple[str, str]:  # (text, course)
            if deleted:
                number = int_value("revision", self.get_argument("revision", ""), 1, 10**9)
                with self.ctx.db() as session:
                    record = session.get(store.TemplateRecord, deleted)
                    if record is None or not record.deleted:
                        raise store.StoreError(404, _("No deleted template %(id)s", id=deleted))
                    return dump(store.revision_data(session, deleted, number)), record.course
            if source == EXAMPLE:
                return fields.example_yaml(), ""
            catalog = self.ctx.catalog()
            template = catalog.templates.get(source) or catalog.disabled.get(source)
            if template is None:
                raise store.StoreError(404, _("There is no template %(id)s.", id=source))
            if catalog.managed_by.get(source) == "file":
                data = file_template_data(template)
            else:
                with self.ctx.db() as session:
                    data = store.current_data(session, store.get(session, self.ctx.file_catalog(), source))
            return dump({**data, "id": copy_id(source)}), template.course

        try:
            text, course = await asyncio.to_thread(load)
        except store.StoreError as e:
            raise web.HTTPError(e.status, "%s", str(e)) from None
        await self.render_editor("new", text, course, source=source)

    async def view_file_template(self, template) -> None:
        try:
            data = await asyncio.to_thread(file_template_data, template)
        except store.StoreError as e:
            raise web.HTTPError(e.status, "%s", str(e)) from None
        self.render_page("template_view.html", template=template, text=mask_credentials(dump(data)),
                         file=store.file_label(template.source))

    async def show(self, tid: str, text: str | None = None, problems: list[dict] | None = None) -> None:
        def load():
            with self.ctx.db() as session:
                record = store.get(session, self.ctx.file_catalog(), tid)
                revisions = [mask_credentials(r.to_dict()) for r in store.revisions(session, tid)]
                current = text if text is not None else store.template_yaml(store.current_data(session, record))
                return revisions, record.course, record.disabled, current

        try:
            revisions, course, disabled, text = await asyncio.to_thread(load)
        except store.StoreError as e:
            raise web.HTTPError(e.status, "%s", str(e)) from None
        await self.render_editor(tid, text, course, problems, revisions=revisions, disabled=disabled)

    @web.authenticated
    async def post(self, tid: str):
        self.require_templates()
        text = self.get_body_argument("yaml", "", strip=False)  # the text is kept as typed
        course = self.get_body_argument("course", "").strip()
        rollback_to = self.get_body_argument("rollback", "")
        state = self.get_body_argument("state", "")
        comment = self.get_body_argument("comment", "")
        if state == "delete" and self.get_body_argument("confirm", "") != tid:
            return await self.show(tid, None, [{"field": "", "message": _("Not deleted: type %(id)s to confirm",
                                                                          id=tid)}])
        number = int_value("rollback", rollback_to, 1, 10**9) if rollback_to else 0
        if not rollback_to and not state:
            problems = self.read_problems(text)
            if problems:
                return await self.answer_problems(tid, text, course, problems)

        def change() -> str:  # files and the database, in a thread; the message to go back with
            nonlocal tid
            with self.ctx.db() as session:
                files = self.ctx.file_catalog()
                if state == "disable":
                    store.set_disabled(session, files, tid, True)
                    return _("Template %(id)s disabled", id=tid)
                if state == "enable":
                    store.set_disabled(session, files, tid, False)
                    return _("Template %(id)s enabled", id=tid)
                if state == "delete":
                    store.delete(session, files, tid)
                    return _("Template %(id)s deleted; its revisions are kept under Deleted templates", id=tid)
                if rollback_to:
                    store.rollback(session, files, tid, number, self.username, self.ctx.policy)
                    return _("Template %(id)s rolled back to revision %(number)d", id=tid, number=number)
                data = yaml.safe_load(text)
                if tid == "new":
                    tid = store.create(session, files, course, course, data, self.username, self.ctx.policy,
                                       comment).id
                else:
                    store.update(session, files, tid, data, self.username, self.ctx.policy, comment,
                                 replace_all=True)
            return _("Saved template %(id)s", id=tid)

        try:
            message = await asyncio.to_thread(change)
        except store.StoreError as e:
            if rollback_to or state:
                raise web.HTTPError(e.status, "%s", str(e)) from None
            return await self.answer_problems(tid, text, course, problem_items(e.problems) or
                                              [{"field": "", "message": str(e)}])
        self.back(message, "#templates")

    def read_problems(self, text: str) -> list[dict]:
        """What makes the text unreadable before the checker can look at it: too long, not
        YAML, not a mapping, no course for a new template."""
        problems = []
        if len(text) > MAX_YAML:
            return [{"field": "", "message": _("The text is %(size)d characters long; a template may be at most "
                                               "%(max)d.", size=len(text), max=MAX_YAML)}]
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            return [yaml_problem(e)]
        if not isinstance(data, dict):
            problems.append({"field": "", "message": _("The text must be a template: field names with values, "
                                                       "one per line (start from the example).")})
        return problems

    async def answer_problems(self, tid: str, text: str, course: str, problems: list[dict]) -> None:
        if tid == "new":
            await self.render_editor(tid, text, course, problems, source=self.get_body_argument("from", EXAMPLE)[:40])
        else:
            await self.show(tid, text, problems)


class DeletedTemplatesPage(TemplatePages):
    """Deleted templates with every revision (author, time, comment, diff and the whole
    template), each one a start for a new template."""

    @web.authenticated
    async def get(self):
        self.require_templates()

        def load() -> list[dict]:
            with self.ctx.db() as session:
                deleted = store.deleted_with_revisions(session)
            for d in deleted:
                for r in d["revisions"]:
                    r["yaml"] = dump(r.pop("template"))
            return deleted

        deleted = await asyncio.to_thread(load)
        self.render_page("template_deleted.html", deleted=mask_credentials(deleted))


def handlers(prefix: str) -> list:
    return [
        (prefix + r"admin/templates/([a-z0-9-]+)", TemplateEditPage),
        (prefix + r"admin/deleted-templates", DeletedTemplatesPage),
    ]
