"""The start page's picker and the template choice, for GoldenSpawner: which templates a
student may start (the catalog and their groups), why one cannot start now (GPUs, quota, an
image built without its framework), and the one option a start accepts.

Rules: course files are read in a thread where a page or a start reads them (the hub's
event loop keeps answering during a class start); the student's groups are read on the loop,
where the hub's database session lives. A refusal is a start_refusal: one sentence naming
what was wrong and what is allowed.
"""

from __future__ import annotations

import asyncio

import docker.errors

from hub_ext import contract
from hub_ext.catalog.model import Catalog, CatalogError, Template
from hub_ext.catalog.store import load_full_catalog
from hub_ext.i18n import _, ngettext
from hub_ext.i18n.deferred import told
from hub_ext.images import status as image_status
from spawner import quota_check
from spawner.exits import listing, start_refusal
from spawner.form import make_options_form


class TemplatePicker:
    """Mixed into GoldenSpawner (uses its traits: courses_dir, catalog_db_url, user, allocator...)."""

    def load_catalog(self) -> Catalog:
        try:
            return load_full_catalog(self.courses_dir, self.catalog_db_url or None, tuple(self.courseware_schemes))
        except CatalogError as e:
            self.log.error("Course catalog %s has errors:\n%s", self.courses_dir, e)
            raise start_refusal(503, _("The course catalog has errors, so no environment can start right now; "
                                       "an administrator has been told. Try again later."))

    def allowed_templates(self) -> list[Template]:
        groups = {g.name for g in self.user.groups}
        return self.load_catalog().templates_for(groups)

    def gpu_availability(self, template: Template) -> str:
        """Why this template cannot start now ('' when it can)."""
        if not template.gpus:
            return ""
        allocator = self.allocator
        if allocator.total == 0:
            return _("This server has no GPU.")
        if template.gpus > allocator.total:
            return _("Needs %(needed)d GPUs; this server has only %(total)d.", needed=template.gpus,
                     total=allocator.total)
        if allocator.free_count(template.gpu_sharing) < template.gpus:
            return ngettext("The only GPU is in use.", "All %(num)d GPUs are in use.", allocator.total)
        return ""

    async def _render_options_form(self, spawner=None) -> str:
        # The course files are read once per page, in a thread (the hub's loop keeps answering);
        # the groups on the loop, where the hub's database session lives.
        groups = {g.name for g in self.user.groups}
        catalog = await asyncio.to_thread(self.load_catalog)
        templates = catalog.templates_for(groups)
        allocator = self.allocator
        gpus = {t.id: (allocator.free_count(t.gpu_sharing), allocator.total)
                for t in templates if t.gpus and allocator.total}
        blocked = {t.id: self.gpu_availability(t) for t in templates}
        usage, over = await self.quota_words(templates, catalog)
        blocked = {**blocked, **over}
        return make_options_form(templates, self.user_options.get(contract.OPTION_TEMPLATE), gpus, blocked,
                                 told(self.stop_reason), await self.framework_notes(templates, catalog), usage)

    async def quota_words(self, templates: list[Template],
                          catalog: Catalog | None = None) -> tuple[dict[str, str], dict[str, str]]:
        """The picker's quota words and over-quota blocks (one database read, in a thread;
        a database that does not answer costs the words, never the form)."""
        try:
            found = await asyncio.to_thread(quota_check.standings, self.catalog_db_url, self.user.name, templates)
        except Exception as e:
            self.log.warning("Could not read GPU-hour usage of %s: %s", self.user.name, e)
            return {}, {}
        titles = {cid: c.title for cid, c in (catalog or self.load_catalog()).courses.items()}
        return quota_check.picker_words(templates, found, titles)

    async def check_quota(self, template: Template) -> None:
        """Refuse a start over the template's quota at once, before any GPU is taken."""
        if template.quota is None:
            return
        try:
            found = await asyncio.to_thread(quota_check.standings, self.catalog_db_url, self.user.name, [template])
        except Exception as e:  # the service's loop still stops a server over quota
            self.log.error("Could not read GPU-hour usage of %s; starting without the quota check: %s",
                           self.user.name, e)
            return
        quota_check.refuse_over_quota(template, self._course_title(template), found.get(template.id))

    async def framework_notes(self, templates: list[Template], catalog: Catalog | None = None) -> dict[str, str]:
        """Template id → a note for the student when its image was built without its course's
        framework (rules: hub_ext.images.status). Labels are read in the executor and kept a
        little while; an engine that does not answer costs the notes, never the form."""
        courses = (catalog or self.load_catalog()).courses
        notes = {}
        for t in templates:
            course = courses.get(t.course)
            try:
                labels = await self._image_labels.get(t.image, self._read_image_labels)
            except Exception as e:
                self.log.warning("Could not read the labels of image %s: %s", t.image, e)
                continue
            note = image_status.make_image_status(t.course, t.id, course.framework if course else None,
                                                  t.image, labels).student_note
            if note:
                notes[t.id] = note
        return notes

    async def _read_image_labels(self, image: str) -> dict | None:
        try:
            return image_status.labels_from_inspect(await self.docker("inspect_image", image))
        except docker.errors.NotFound:
            return None

    async def _apply_template_choice(self, user_options: dict) -> None:
        """Accept exactly one option, a template id this user may use; refuse the rest.
        The course files are read in a thread: at a class start many of these run at once,
        and the hub's event loop must keep answering (the groups are read on the loop: the
        hub's database session belongs to it)."""
        groups = {g.name for g in self.user.groups}
        allowed = (await asyncio.to_thread(self.load_catalog)).templates_for(groups)
        choices = listing([t.id for t in allowed]) or _("none (ask your instructor)")
        extra = sorted(set(user_options) - {contract.OPTION_TEMPLATE})
        if extra:
            raise start_refusal(400, _("Only an environment template may be chosen, not %(options)s. Templates: "
                                       "%(choices)s", options=", ".join(extra)[:200], choices=choices))
        wanted = user_options.get(contract.OPTION_TEMPLATE)
        if not wanted and len(allowed) == 1:
            wanted = allowed[0].id
        match = [t for t in allowed if t.id == wanted]
        if not isinstance(wanted, str) or not match:
            raise start_refusal(400, _("No such environment template: %(wanted)s. Options include: %(choices)s",
                                       wanted=repr(wanted)[:80], choices=choices))
        template = match[0]
        self.template_id = template.id
        self.image = template.image
        self.default_url = template.default_url

    @property
    def template(self) -> Template:
        template = self.load_catalog().templates.get(self.template_id)
        if template is None:
            raise start_refusal(400, _("The environment %(template)s no longer exists; choose another one on "
                                       "the start page.", template=self.template_id))
        return template
