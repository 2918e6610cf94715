"""GoldenKubeSpawner: goldenhub's templates on Kubernetes through jupyterhub-kubespawner (the
`k8s` extra). KubeSpawner keeps the lifecycle (create, watch, stop, events); this class only
chooses the template and hands KubeSpawner the manifests spawner/k8s.py builds from the same
template and ServerContext as the Docker backend. Validated against the Kubernetes schemas
(tests/test_k8s_units.py), not run against a cluster here.

Rules:
- A student picks among the templates their groups allow (the same catalog and form as
  GoldenSpawner); any other id is refused with the list of valid ones.
- One home PVC per student per course, named from hub_ext.contract like the Docker volume;
  the pod is named like the Docker container. Both through spawner.k8s.kube_name.
- The students' NetworkPolicy is ensured (created if missing) before the first pod.
- KubeSpawner's own image/resource/volume settings are not used: the template decides.
"""

from __future__ import annotations

import json

from kubespawner import KubeSpawner
from tornado import web
from traitlets import Float, Int, List, Unicode, default

from hub_ext import contract, paths
from hub_ext.catalog.model import Template
from hub_ext.catalog.store import load_full_catalog
from hub_ext.i18n import _
from spawner import k8s
from spawner.container import ServerContext
from spawner.form import make_options_form, options_from_form


class _Json:
    """What kubernetes_asyncio's ApiClient.deserialize reads: a response with .data."""

    def __init__(self, manifest: dict):
        self.data = json.dumps(manifest)


class GoldenKubeSpawner(KubeSpawner):
    courses_dir = Unicode(config=True, help="Directory of course YAML files, e.g. /srv/goldenhub/courses.")
    catalog_db_url = Unicode("", config=True, help="The service's database, for templates made on its pages.")
    name_prefix = Unicode("goldenhub", config=True, help="Prefix of pod and PVC names, e.g. goldenhub.")
    home_size = Unicode("10Gi", config=True, help="Size of each student's home PVC per course, e.g. 10Gi.")
    storage_class = Unicode("", config=True, help="StorageClass of homes; empty: the cluster's default.")
    request_fraction = Float(1.0, config=True, help="Requests = limits x this (0 < f <= 1); 1: guaranteed.")
    extra_egress_cidrs = List(Unicode(), config=True,
                              help="CIDRs student pods may reach besides the hub and DNS, e.g. ['10.0.0.5/32'].")
    hub_api_port = Int(8081, config=True, help="The hub pod's API port students' pods may reach (z2jh: 8081).")
    courseware_sync_timeout = Int(90, config=True, help="Seconds the courseware pull may take at a start.")

    @default("courses_dir")
    def _default_courses_dir(self):
        return str(paths.courses_dir())

    def settings(self) -> k8s.KubeSettings:
        return k8s.KubeSettings(namespace=self.namespace, storage_class=self.storage_class, home_size=self.home_size,
                                request_fraction=self.request_fraction, hub_port=self.hub_api_port,
                                extra_egress_cidrs=tuple(self.extra_egress_cidrs))

    def allowed_templates(self) -> list[Template]:
        catalog = load_full_catalog(self.courses_dir, self.catalog_db_url or None)
        return catalog.templates_for({g.name for g in self.user.groups})

    @default("options_form")
    def _default_options_form(self):
        return lambda spawner: make_options_form(spawner.allowed_templates(),
                                                 spawner.user_options.get(contract.OPTION_TEMPLATE))

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_from_form

    async def load_user_options(self):
        await super().load_user_options()
        allowed = {t.id: t for t in self.allowed_templates()}
        chosen = (self.user_options or {}).get(contract.OPTION_TEMPLATE, "")
        if chosen not in allowed:
            raise web.HTTPError(400, _("No such environment: %(given)s. Options include: %(options)s",
                                       given=str(chosen)[:80], options=", ".join(sorted(allowed)) or _("none")))
        self._template = allowed[chosen]
        self.pod_name = k8s.kube_name(contract.container_name(self.name_prefix, self.user.name, self.name))
        self.pvc_name = k8s.kube_name(contract.home_volume_name(self.name_prefix, self.user.name,
                                                                self._template.course))
        self.storage_pvc_ensure = True
        self._pvc_exists = False  # each course has its own home: KubeSpawner treats 409 as "exists"

    def server_context(self) -> ServerContext:
        return ServerContext(
            user=self.user.name, server=self.name,
            container_name=contract.container_name(self.name_prefix, self.user.name, self.name),
            home_volume=contract.home_volume_name(self.name_prefix, self.user.name, self._template.course),
            network="", hub_env=self.get_env(), command=[*(self.cmd or ["jupyterhub-singleuser"]), *self.get_args()],
            port=self.port, sync_timeout=self.courseware_sync_timeout, volume_prefix=self.name_prefix)

    def _model(self, manifest: dict, kind: str):
        return self.api.api_client.deserialize(_Json(manifest), kind)

    def get_pvc_manifest(self):
        return self._model(k8s.make_pvc(self._template, self.server_context(), self.settings()),
                           "V1PersistentVolumeClaim")

    async def _start(self):
        await self.ensure_network_policy()  # before the first pod of the namespace can run
        return await super()._start()

    async def get_pod_manifest(self):
        return self._model(k8s.make_pod(self._template, self.server_context(), self.settings()), "V1Pod")

    async def ensure_network_policy(self) -> None:
        from kubernetes_asyncio.client import NetworkingV1Api
        from kubernetes_asyncio.client.rest import ApiException

        policy = k8s.make_network_policy(self.settings(), self.port)
        try:
            await NetworkingV1Api(self.api.api_client).create_namespaced_network_policy(self.namespace, policy)
        except ApiException as e:
            if e.status != 409:  # 409: it exists already
                raise
