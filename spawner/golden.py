"""GoldenSpawner: the async lifecycle of a student's container (start, stop, state).

What goes into the container is decided by spawner/container.py from the template;
this module only resolves the template, prepares names and talks to Docker.
"""

from __future__ import annotations

from dockerspawner import DockerSpawner
from tornado import web
from traitlets import Dict, Int, Unicode, default

from hub_ext import paths
from hub_ext.catalog import Catalog, CatalogError, Template, load_catalog
from spawner import container, names
from spawner.form import make_options_form, options_from_form


class GoldenSpawner(DockerSpawner):
    """Starts the course environment a student picked, from the course catalog."""

    courses_dir = Unicode(
        config=True,
        help="Directory of course YAML files (default: courses/ of the goldenhub checkout). "
        "Read at every spawn, so edits apply to the next start without a hub restart.",
    )

    @default("courses_dir")
    def _default_courses_dir(self):
        return str(paths.courses_dir())

    name_prefix = Unicode(
        "goldenhub",
        config=True,
        help="Prefix of container and volume names, e.g. 'goldenhub' → goldenhub-alice.",
    )
    host_gateway = Unicode(
        "",
        config=True,
        help="The host's address on the student network, given to containers as "
        "host.docker.internal (e.g. 172.30.0.1). Empty: no such alias.",
    )
    pids_limit = Int(1024, config=True, help="Most processes a student container may run (default 1024).")
    courseware_sync_timeout = Int(
        90, config=True, help="Seconds the courseware pull may take before the server starts without it."
    )

    # Recorded in state: course id → home volume name. Never cleared by stop, so a
    # later change of naming rules cannot detach an existing home.
    homes = Dict()
    template_id = Unicode("")

    @default("options_form")
    def _default_options_form(self):
        return self._render_options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return GoldenSpawner._apply_template_choice

    @default("name_template")
    def _default_name_template(self):
        return "{prefix}-{username}--{servername}"

    def load_catalog(self) -> Catalog:
        try:
            return load_catalog(self.courses_dir)
        except CatalogError as e:
            self.log.error("Course catalog %s has errors:\n%s", self.courses_dir, e)
            raise web.HTTPError(503, "The course catalog has errors; an administrator has been told.")

    def allowed_templates(self) -> list[Template]:
        groups = {g.name for g in self.user.groups}
        return self.load_catalog().templates_for(groups)

    def _render_options_form(self, spawner=None) -> str:
        return make_options_form(self.allowed_templates(), self.user_options.get("template"))

    def _apply_template_choice(self, user_options: dict) -> None:
        """Accept exactly one option, a template id this user may use; refuse the rest."""
        allowed = self.allowed_templates()
        choices = ", ".join(t.id for t in allowed) or "none (ask your instructor)"
        extra = sorted(set(user_options) - {"template"})
        if extra:
            raise web.HTTPError(
                400, f"Only an environment template may be chosen, not {', '.join(extra)}. Templates: {choices}"
            )
        wanted = user_options.get("template")
        if not wanted and len(allowed) == 1:
            wanted = allowed[0].id
        match = [t for t in allowed if t.id == wanted]
        if not isinstance(wanted, str) or not match:
            raise web.HTTPError(400, f"No such environment template: {wanted!r}. Options include: {choices}")
        template = match[0]
        self.template_id = template.id
        self.image = template.image
        self.default_url = template.default_url

    @property
    def template(self) -> Template:
        template = self.load_catalog().templates.get(self.template_id)
        if template is None:
            raise web.HTTPError(400, f"The environment template {self.template_id!r} no longer exists.")
        return template

    def _render_templates(self, obj, ns=None):
        ns = dict(ns or self.template_namespace(), prefix=self.name_prefix)
        return super()._render_templates(obj, ns)

    @property
    def container_name(self):
        return names.container_name(self.name_prefix, self.user.name, self.name)

    @default("object_name")
    def _object_name_default(self):
        return self.container_name

    def home_volume_for(self, course: str) -> str:
        if course not in self.homes:
            self.homes = {**self.homes, course: names.home_volume_name(self.name_prefix, self.user.name, course)}
        return self.homes[course]

    async def ensure_home_volume(self, template: Template) -> str:
        volume = self.home_volume_for(template.course)
        labels = {"goldenhub.user": self.user.name, "goldenhub.course": template.course}
        try:
            await self.docker("inspect_volume", volume)
        except Exception:
            await self.docker("create_volume", name=volume, labels=labels)
        return volume

    async def create_object(self):
        template = self.template
        ctx = container.ServerContext(
            user=self.user.name,
            server=self.name,
            container_name=self.container_name,
            home_volume=await self.ensure_home_volume(template),
            network=self.network_name,
            hub_env=self.get_env(),
            command=await self.get_command(),
            port=self.port,
            host_gateway=self.host_gateway,
            pids_limit=self.pids_limit,
            sync_timeout=self.courseware_sync_timeout,
        )
        args = container.make_create_args(template, ctx)
        args["host_config"] = self.client.create_host_config(**args["host_config"])
        return await self.docker("create_container", **args)

    async def pull_image(self, image):
        try:
            await super().pull_image(image)
        except Exception as e:
            self.log.error("Image %s for template %s could not be found or pulled: %s", image, self.template_id, e)
            raise web.HTTPError(
                500, f"The course image {image} is not available on this server; an administrator must build "
                "or publish it (goldenhub images build)."
            ) from None

    async def start(self):
        self.object_name = self.container_name
        return await super().start()

    def get_state(self):
        state = super().get_state()
        if self.homes:
            state["homes"] = dict(self.homes)
        if self.template_id:
            state["template"] = self.template_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.homes = dict(state.get("homes", {}))
        self.template_id = state.get("template", self.template_id)
