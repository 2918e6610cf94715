"""GoldenSwarmSpawner: goldenhub's templates on a Docker Swarm cluster. dockerspawner's
SwarmSpawner underneath (the service, its task, remove on stop), GoldenSpawner's lifecycle on
top (the picker, quotas, the start queue, progress, stop reasons, resets), and the service spec
from spawner/swarm.py (the same template and ServerContext as the Docker backend).

Rules (what differs from GoldenSpawner, and why):
- The hub talks to the swarm's manager (GoldenSwarmSpawner.client_kwargs base_url, from
  GOLDENHUB_SWARM_DOCKER_HOST); nodes pull images from the registry themselves (publish
  pre-pulls them on every node), so the hub pulls nothing.
- GPUs: Swarm assigns them (generic resources); the hub only refuses at once when the cluster
  has too few free ones (ClusterGPUs, read from the nodes and tasks before a start and for the
  picker) and shows the ids Swarm assigned.
- Homes pinned: the node of a home's first start is recorded in state (home volume → node id
  and hostname); later starts are constrained to it, and refused with one sentence when that
  node is down or gone, so nothing starts elsewhere with an empty home. Homes on NFS: no pin.
- A server is the task its start saw running (its id in state): a server whose task ended or
  whose node is down counts as stopped (its service is removed; the student is told at the
  next start); the task never restarts by itself, and a replacement Swarm might make elsewhere
  is never adopted. A stop waits, bounded, until the task's container is gone (remove_timeout).
- Branding and JupyterLab's warnings: Swarm configs mounted read-only where the Docker backend
  copies them (no copy into a task before it starts); a failure is logged, never fatal.
- Every wait is bounded: placement (placement_timeout) and the server's answer (http_timeout).
"""

from __future__ import annotations

import asyncio
import time
from pprint import pformat

import docker.errors
from dockerspawner import SwarmSpawner
from traitlets import Bool, Dict, Float, Unicode, default, validate

from hub_ext import paths
from hub_ext.branding import container as branding_container
from hub_ext.catalog.model import Template
from hub_ext.i18n import _, ngettext
from hub_ext.homes.markers import reset_in_progress
from hub_ext.usage import lab_warnings
from spawner import container, swarm
from spawner.exits import explain_exit, local
from spawner.golden import GoldenSpawner, StartFailed, _explain_docker_error

STATE_HOME_NODES = "swarm_home_nodes"  # {home volume: {"id": node id, "name": hostname}}
STATE_TASK = "swarm_task"  # the running server's task id
WAITING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}


class GoldenSwarmSpawner(GoldenSpawner, SwarmSpawner):
    """Starts the course environment a student picked as a Swarm service."""

    homes_mode = Unicode("pinned", config=True,
                         help="Where homes live: 'pinned' (a volume on the node of the first start; later starts "
                              "go there) or 'nfs' (under homes_nfs_root, any node). Default pinned.")
    homes_nfs_root = Unicode("", config=True,
                             help="With homes_mode nfs: nfs://server/export/path holding one directory per home "
                                  "(named like the home volume, owned by uid 1000), e.g. nfs://10.0.0.5/homes.")
    gpu_kind = Unicode(swarm.GPU_KIND, config=True,
                       help="The generic resource kind the nodes advertise for GPUs (dockerd's "
                            "node-generic-resources), default NVIDIA-GPU.")
    connect = Unicode("node", config=True,
                      help="How the hub reaches a server: 'ingress' (published port on the routing mesh, at "
                           "server_address), 'node' (port published on the task's node, at that node's "
                           "address, the default: it needs no IPVS), 'network' (the service's name on swarm_network).")
    server_address = Unicode("", config=True,
                             help="connect ingress: the address of any node as the hub reaches it, e.g. 10.0.0.2; "
                                  "default host_ip (127.0.0.1: the hub runs on a node).")
    swarm_network = Unicode("", config=True,
                            help="connect network: an attachable overlay network the hub is attached to.")
    reserve_fraction = Float(0.0, config=True,
                             help="CPU and memory reservations = the template's limits x this (0 to 1); default 0: "
                                  "none, nodes may be oversubscribed as on one Docker host.")
    placement_timeout = Float(180, config=True,
                              help="Seconds a service's task may wait for a node (and its image pull) before the "
                                   "start is refused, default 180.")
    remove_timeout = Float(60, config=True,
                           help="Seconds a stop waits for the removed service's container to go (its "
                                "stop grace period included), default 60.")
    remove = Bool(True, config=True,
                  help="Always true on Swarm: a stopped server's service is removed (its home volume stays). "
                       "A trait here because GoldenSpawner's configuration sets it (SwarmSpawner's is a constant).")

    @validate("remove")
    def _always_remove(self, proposal):
        if not proposal.value:
            self.log.warning("remove = False is ignored on Swarm: a stopped server's service is always removed")
        return True

    home_nodes = Dict()
    task_id = Unicode("")

    _cluster_gpus = swarm.ClusterGPUs()

    @default("pull_policy")
    def _default_pull_policy(self):
        return "skip"  # each node pulls from the registry; publish pre-pulls on every node

    @default("object_name")
    def _object_name_default(self):
        return swarm.service_name(self.container_name)

    def settings(self) -> swarm.SwarmSettings:
        return swarm.SwarmSettings(homes=self.homes_mode, homes_nfs_root=self.homes_nfs_root, gpu_kind=self.gpu_kind,
                                   connect=self.connect, network=self.swarm_network,
                                   reserve_fraction=self.reserve_fraction)

    # --- GPUs: the whole cluster -----------------------------------------------------------

    @property
    def allocator(self) -> swarm.ClusterGPUs:
        return GoldenSwarmSpawner._cluster_gpus

    async def refresh_cluster_gpus(self) -> swarm.ClusterGPUs:
        """Read the nodes and the running tasks (in the executor); a manager that does not answer
        keeps the last reading (logged)."""
        try:
            nodes = await self.docker("nodes")
            tasks = await self.docker("tasks", filters={"desired-state": "running"})
            GoldenSwarmSpawner._cluster_gpus = swarm.ClusterGPUs.from_cluster(nodes, tasks, self.gpu_kind)
        except Exception as e:
            self.log.warning("Could not read the swarm's GPUs: %s", e)
        return self.allocator

    async def _render_options_form(self, spawner=None) -> str:
        await self.refresh_cluster_gpus()
        return await super()._render_options_form(spawner)

    async def check_quota(self, template: Template) -> None:
        # Runs right before take_gpus in GoldenSpawner.start: the cluster's free GPUs are read here.
        await super().check_quota(template)
        # A home pinned to a node that is down is the true reason a start cannot go on, even
        # when every GPU is taken too: say that one (create_object checks the pin again).
        await self.pinned_node(template, self.home_volume_for(template.course))
        if template.gpus:
            await self.refresh_cluster_gpus()

    async def pull_image(self, image):
        return  # the node that runs the task pulls it

    # --- homes -------------------------------------------------------------------------------

    async def ensure_home_volume(self, template: Template) -> str:
        """The home's name; the node creates the volume (labelled) at the first start."""
        volume = self.home_volume_for(template.course)
        if reset_in_progress(paths.state_dir(), volume):
            raise StartFailed(_("Your %(course)s environment is being reset right now; start it again in a "
                                "minute.", course=local(self._course_title(template))), "reset")
        return volume

    async def pinned_node(self, template: Template, volume: str) -> str:
        """The node id a pinned home is on ('' before its first start); refuses when it is down."""
        pin = self.home_nodes.get(volume) if self.homes_mode == "pinned" else None
        if not pin:
            return ""
        try:
            node = await self.docker("inspect_node", pin["id"])
        except docker.errors.NotFound:
            node = {}
        if not swarm.node_is_up(node):
            self.log.error("Home %s of %s is on node %s (%s), which is down or gone", volume, self._log_name,
                           pin.get("name"), pin["id"])
            raise StartFailed(swarm.node_down_sentence(pin.get("name") or pin["id"],
                                                       local(self._course_title(template))), "other")
        return pin["id"]

    # --- create and wait ---------------------------------------------------------------------

    async def create_object(self):
        template = await self._resolve_datasets()
        volume = await self.ensure_home_volume(template)
        node_id = await self.pinned_node(template, volume)
        ctx = container.ServerContext(
            user=self.user.name, server=self.name, container_name=self.container_name, home_volume=volume,
            network=self.swarm_network, hub_env=self.get_env(), command=await self.get_command(), port=self.port,
            host_gateway=self.host_gateway, pids_limit=self.pids_limit, sync_timeout=self.courseware_sync_timeout,
            volume_prefix=self.name_prefix)
        spec = swarm.make_service_spec(template, ctx, self.settings(), node_id, await self._config_refs())
        try:
            return await self.docker("create_service", task_template=spec["TaskTemplate"], name=spec["Name"],
                                     labels=spec["Labels"], mode=spec["Mode"], endpoint_spec=spec["EndpointSpec"])
        except Exception as e:
            self.log.error("Swarm could not create the service of %s: %s", self._log_name, e)
            raise StartFailed(_explain_docker_error(e, template), "docker") from None

    async def _config_refs(self) -> tuple[dict, ...]:
        """Branding and JupyterLab's warnings as configs (created once per content); none on failure."""
        try:
            files = await asyncio.to_thread(self._config_files)
            wanted = {swarm.config_name(self.name_prefix, p, d): d for p, d in files.items()}
            for _attempt in range(2):  # a start made the same config meanwhile (409): list again
                listed = await self.docker("configs", filters={"name": self.name_prefix})
                ids = {c["Spec"]["Name"]: c["ID"] for c in listed if c["Spec"]["Name"] in wanted}
                try:
                    for name, data in wanted.items():
                        if name not in ids:
                            ids[name] = (await self.docker("create_config", name, data,
                                                           labels={"goldenhub.kind": "branding"}))["ID"]
                    break
                except docker.errors.APIError as e:
                    if e.status_code != 409:
                        raise
            return swarm.make_config_refs(files, ids, self.name_prefix)
        except Exception as e:
            self.log.warning("Branding not given to the service of %s (stock logo shown): %s", self._log_name, e)
            return ()

    def _config_files(self) -> dict[str, bytes]:
        from hub_ext import i18n

        b_parent = branding_container.CONTAINER_DIR.rsplit("/", 1)[0]
        l_parent = lab_warnings.CONTAINER_DIR.rsplit("/", 1)[0]
        archive = branding_container.make_branding_archive(paths.state_dir(), language=i18n.current())
        return {**swarm.files_of_archive(archive, b_parent),
                **swarm.files_of_archive(lab_warnings.make_lab_archive(), l_parent)}

    async def start_object(self):
        """Wait, bounded, until the task runs; then record it, a pinned home's node and the GPUs Swarm gave.
        A task Swarm cannot place ("no suitable node") is refused at once, with why."""
        started = time.monotonic()
        self.log.info("goldenhub-phase branded %s %.6f", self.container_name, time.time())  # benchmarks/phases.py
        while True:
            task = await self.get_task()
            status = (task or {}).get("Status") or {}
            state = status.get("State", "")
            if state == "running":
                break
            # No task while the service exists: Swarm has not made it yet (bounded below).
            if (task is None and not self.object_id) or state in ENDED:
                self.log.error("Task of %s did not run: %s", self._log_name, pformat(status))
                error = str(status.get("Err", ""))
                if swarm.home_unreachable(error, self.homes.get(self._start_template.course, ""), self.settings()):
                    raise StartFailed(swarm.home_unreachable_sentence(), "docker")
                raise StartFailed(_explain_docker_error(RuntimeError(error), self._start_template), "docker")
            unplaced = "no suitable node" in f"{status.get('Err', '')} {status.get('Message', '')}"
            if unplaced or time.monotonic() - started > self.placement_timeout:
                self.log.error("Task of %s not placed (%s after %.0f s): %s %s", self._log_name, state,
                               time.monotonic() - started, status.get("Message"), status.get("Err"))
                raise StartFailed(self._unplaced_sentence(status), "other")
            await asyncio.sleep(0.5)
        self.task_id = task["ID"]
        self.gpu_ids = list(swarm.assigned_gpus(task, self.gpu_kind))
        if self.gpu_ids:
            self._progress.emit(ngettext("GPU %(ids)s assigned to you", "GPUs %(ids)s assigned to you",
                                         len(self.gpu_ids), ids=", ".join(self.gpu_ids)), 55)
        volume = self.homes.get(self._start_template.course)
        if self.homes_mode == "pinned" and volume and volume not in self.home_nodes:
            node = await self.docker("inspect_node", task["NodeID"])
            self.home_nodes = {**self.home_nodes, volume: {"id": task["NodeID"], "name": swarm.node_label(node)}}

    def _unplaced_sentence(self, status: dict) -> str:
        template = self._start_template
        if template and template.gpus and "insufficient resources" in str(status.get("Err", "")):
            return ngettext("No node of the cluster has %(num)d free GPU right now; your files are kept. Try again "
                            "later, or start an environment without a GPU.",
                            "No node of the cluster has %(num)d free GPUs right now; your files are kept. Try again "
                            "later, or start an environment without a GPU.", template.gpus)
        return _("No node of the cluster can take your environment right now (all are busy or down); your files "
                 "are kept. Try again later.")

    async def own_task(self) -> dict | None:
        """This start's task (recorded when it ran); a replacement Swarm made after a node was lost is
        not this server: the hub's address points at the lost one."""
        if not self.task_id:
            return await self.get_task()
        try:
            return await self.docker("inspect_task", self.task_id)
        except docker.errors.NotFound:
            return None

    async def get_ip_and_port(self):
        if self.connect == "network":
            return self.object_name, self.port
        if self.connect == "node":
            task = await self.own_task()
            node = await self.docker("inspect_node", task["NodeID"])
            ports = ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []
            port = next(p["PublishedPort"] for p in ports if p.get("TargetPort") == self.port)
            return node["Status"]["Addr"], port
        service = await self.get_object()
        port = next(p["PublishedPort"] for p in (service.get("Endpoint") or {}).get("Ports") or []
                    if p.get("TargetPort") == self.port)
        return self.server_address or self.host_ip, port

    async def remove_object(self):
        """Remove the service (its task's container goes with it; the home volume stays), and wait,
        bounded, until that container is gone from the engine the hub talks to: as on the Docker
        backend, a stopped server no longer holds its home (a reset or backup may follow at once).
        Containers on other nodes cannot be seen from here; Swarm removes them as it does these."""
        if not self.object_id:
            return
        service_id = self.object_id
        try:
            await self.docker("remove_service", service_id)
        except docker.errors.NotFound:
            self.log.debug("Service %s of %s was already removed", service_id[:7], self._log_name)
        label = {"label": f"com.docker.swarm.service.id={service_id}"}
        deadline = time.monotonic() + self.remove_timeout
        while await self.docker("containers", all=True, filters=label):
            if time.monotonic() > deadline:
                self.log.warning("The container of removed service %s (%s) is still there after %ss",
                                 service_id[:7], self._log_name, self.remove_timeout)
                break
            await asyncio.sleep(0.5)

    # --- logs, poll ----------------------------------------------------------------------------

    def _service_log(self, tail="all") -> str:
        chunks = self.client.service_logs(self.object_id, stdout=True, stderr=tail != "all", tail=tail, is_tty=False)
        return b"".join(chunks).decode(errors="replace")

    async def _relay_container_messages(self, seen: int) -> int:
        try:
            text = await asyncio.get_running_loop().run_in_executor(self.executor, self._service_log)
        except Exception:
            return seen
        return self._relay_log_lines(text, seen)

    async def _last_log_line(self) -> str:
        try:
            text = (await asyncio.get_running_loop().run_in_executor(self.executor, self._service_log, 5)).strip()
        except Exception:
            return "no log"
        return text.splitlines()[-1] if text else "no log"

    async def poll(self):
        """None while this start's task runs on a node that is up; else stopped: the service goes
        (the home stays) and the student is told why at the next start."""
        if not self.object_id and not await self.get_object():
            return 0
        task = await self.own_task()
        status = (task or {}).get("Status") or {}
        state = status.get("State", "")
        node_up = True
        if task and task.get("NodeID"):
            try:
                node_up = swarm.node_is_up(await self.docker("inspect_node", task["NodeID"]))
            except docker.errors.NotFound:
                node_up = False
        alive = task and node_up and task.get("DesiredState") == "running"
        if alive and (state == "running" or (state in WAITING and self._spawn_pending)):
            return None
        if not self._spawn_pending:
            template = self._start_template or self._find_template(self.template_id)
            if template and task and not node_up:
                self.stop_reason = _("Your %(course)s environment stopped because the node it ran on went down. "
                                     "Your files are kept.", course=local(self._course_title(template)))
            elif template and task:
                code = ((status.get("ContainerStatus") or {}).get("ExitCode")) or 0
                self.stop_reason = explain_exit({"ExitCode": code}, self._course_title(template),
                                                template.memory) or self.stop_reason
            self.log.warning("Server %s found stopped (task %s, node up: %s)", self._log_name, state or "gone", node_up)
            self.gpu_ids = []
            await self.remove_object()
            self.object_id = self.task_id = ""
        return 0 if task is None else f"task {state or 'gone'}, node {'up' if node_up else 'down'}"

    # --- state -------------------------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        if self.home_nodes:
            state[STATE_HOME_NODES] = dict(self.home_nodes)
        if self.task_id and self.object_id:
            state[STATE_TASK] = self.task_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.home_nodes = dict(state.get(STATE_HOME_NODES, {}))
        self.task_id = state.get(STATE_TASK, "")

    def clear_state(self):
        super().clear_state()
        self.task_id = ""
