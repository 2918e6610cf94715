"""How a template becomes a Docker Swarm service: pure functions from the SAME template and
ServerContext as spawner/container.make_create_args to the Engine API's service spec (plain
dicts, API 1.41: docker.io 20.10). No Docker calls here (spawner/golden_swarm.py creates the
service through dockerspawner's SwarmSpawner); tests compare dicts.

Rules, the Docker builder's in Swarm words:
- uid 1000, every capability dropped (ContainerSpec.CapabilityDrop), memory, CPU and pids
  limits (Resources.Limits), /dev/shm a tmpfs of the template's shm_size, datasets read-only
  (host path: a bind that must exist on every node; nfs://: a local-driver volume of type nfs),
  one home per student per course, nothing else from a host, no Docker socket.
- GPUs: N GPUs reserve N of the generic resource kind NVIDIA-GPU (Reservations.GenericResources);
  Swarm picks a node that advertises enough free ones (dockerd's `node-generic-resources`) and
  gives the task exactly those ids in DOCKER_RESOURCE_NVIDIA-GPU. The nvidia runtime
  (`swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"` in its config.toml, default runtime nvidia)
  exposes exactly those devices; the startup prelude sets NVIDIA_VISIBLE_DEVICES from the same
  variable. Without GPUs, and on a node whose runtime lacks that setting, it stays "void":
  never "all".
- Homes (SwarmSettings.homes): "pinned" (default) is a plain named volume on the node the
  first start ran on; later starts carry `node.id==<that node>` (recorded in spawner state), so
  a home is never silently recreated empty elsewhere. "nfs": the home is a local-driver volume
  of type nfs under the homes root (<root>/<home volume name>, read-write), so any node serves it.
- The task never restarts by itself (RestartPolicy none): a server that died is stopped, as on
  the Docker backend, and the student is told why at the next start.
- How the hub reaches the server (SwarmSettings.connect): "node" (default) publishes the port
  in host mode on the node that runs the task, Docker choosing a free port; the hub connects to
  that node's address (its Status.Addr) and that port. "ingress" publishes it on the routing
  mesh (any node's address); it needs IPVS in the nodes' kernel, which some hosts lack.
  "network" publishes nothing and attaches the task to an attachable overlay network the hub is
  on (the service's name): only for a hub that runs as a swarm service or container itself.
- What Swarm's API 1.41 cannot express, compared with the Docker backend: no-new-privileges
  (Privileges has no such field before API 1.46; uid 1000 with an empty capability bounding set
  is what holds), swap (no MemorySwap: a node's swap is the admin's setting), device requests
  (GPUs come through generic resources and the nvidia runtime instead), the hub's courseware
  mirror (a host path of the hub's machine: tasks pull courseware from its remote) and a
  pre-start copy into the container (branding and JupyterLab's warnings come as Swarm configs:
  make_config_files).
- Names: the service is the contract's container name when it is a valid Swarm name (a DNS
  label, at most 63 characters), else its first 50 characters and a digest (service_name).
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from dataclasses import dataclass, replace

from hub_ext import contract
from hub_ext.catalog import nfs
from hub_ext.catalog.model import HOME, Template
from hub_ext.i18n import _
from spawner.container import STARTUP_SCRIPT, ServerContext, make_environment
from spawner.container import make_labels as docker_labels
from spawner.gpus import NoFreeGPU

GPU_KIND = "NVIDIA-GPU"
HOMES_MODES = ("pinned", "nfs")
CONNECT_MODES = ("ingress", "node", "network")
NANO = 10**9
SHM_TARGET = "/dev/shm"
HOME_NFS_OPTIONS = f"nfsvers={nfs.NFS_VERSION},soft,timeo={nfs.TIMEO},retrans={nfs.RETRANS}"
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*")
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def gpu_prelude(kind: str = GPU_KIND) -> str:
    """Shell run before STARTUP_SCRIPT: NVIDIA_VISIBLE_DEVICES from Swarm's assignment (a
    variable whose name has a '-' in it: sh does not import it, so it is read from the shell's
    own /proc environ)."""
    return (f"gpus=$(tr '\\0' '\\n' < /proc/$$/environ | sed -n 's/^DOCKER_RESOURCE_{kind}=//p' | head -n 1)\n"
            'if [ -n "$gpus" ]; then export NVIDIA_VISIBLE_DEVICES="$gpus"; fi\n'
            "unset gpus\n")


@dataclass(frozen=True)
class SwarmSettings:
    """What a site chooses about its swarm (hub_ext.hubconfig reads them, spawner/swarm_config.py)."""

    homes: str = "pinned"  # HOMES_MODES
    homes_nfs_root: str = ""  # nfs://server/export/path holding one directory per home (homes: nfs)
    gpu_kind: str = GPU_KIND  # the generic resource kind nodes advertise
    connect: str = "node"  # CONNECT_MODES
    network: str = ""  # connect: network: an attachable overlay network the hub is attached to
    reserve_fraction: float = 0.0  # reservations = limits x this (0: none, nodes may be oversubscribed)


def check_settings(settings: SwarmSettings) -> list[str]:
    """What is wrong with a site's swarm settings, one sentence each."""
    problems = []
    if settings.homes not in HOMES_MODES:
        problems.append(f"homes: got {settings.homes!r}; allowed: {', '.join(HOMES_MODES)}")
    if settings.homes == "nfs":
        try:
            nfs.parse(settings.homes_nfs_root)
        except nfs.NfsError:
            problems.append(f"homes_nfs_root: got {settings.homes_nfs_root[:200]!r}; allowed: "
                            "nfs://server/export/path (needed with homes: nfs)")
    if settings.connect not in CONNECT_MODES:
        problems.append(f"connect: got {settings.connect!r}; allowed: {', '.join(CONNECT_MODES)}")
    if settings.connect == "network" and not _SERVICE_NAME.fullmatch(settings.network or "-"):
        problems.append(f"network: got {settings.network[:80]!r}; allowed: the name of an attachable overlay "
                        "network the hub is attached to (needed with connect: network)")
    if not _KIND.fullmatch(settings.gpu_kind):
        problems.append(f"gpu_kind: got {settings.gpu_kind[:80]!r}; allowed: a resource kind such as {GPU_KIND}")
    if not 0 <= settings.reserve_fraction <= 1:
        problems.append(f"reserve_fraction: got {settings.reserve_fraction}; allowed: a number from 0 to 1")
    return problems


def service_name(container_name: str) -> str:
    """A valid Swarm service name (a DNS label, at most 63 characters) for a contract name."""
    if len(container_name) <= 63 and _SERVICE_NAME.fullmatch(container_name):
        return container_name
    digest = hashlib.sha256(container_name.encode()).hexdigest()[:12]
    head = re.sub(r"[^A-Za-z0-9_-]", "-", container_name[:50]).rstrip("-_") or "goldenhub"
    return f"{head}-{digest}"


def home_mount(ctx: ServerContext, labels: dict[str, str], settings: SwarmSettings) -> dict:
    """The student's home: a named volume on the node (pinned), or on the NFS homes root."""
    mount = {"Type": "volume", "Source": ctx.home_volume, "Target": HOME, "VolumeOptions": {"Labels": labels}}
    if settings.homes == "nfs":
        root = nfs.parse(settings.homes_nfs_root)
        mount["VolumeOptions"]["DriverConfig"] = {"Name": "local", "Options": {
            "type": "nfs", "o": f"addr={root.server},rw,{HOME_NFS_OPTIONS}",
            "device": f":{root.path}/{ctx.home_volume}"}}
        mount["VolumeOptions"]["NoCopy"] = True  # the image's skeleton never lands on a shared home
    return mount


def make_mounts(template: Template, ctx: ServerContext, settings: SwarmSettings) -> list[dict]:
    """The home, each dataset read-only, /dev/shm. Nothing else (no hub path, no socket)."""
    home_labels = {contract.LABEL_USER: ctx.user, contract.LABEL_COURSE: template.course}
    mounts = [home_mount(ctx, home_labels, settings)]
    for d in template.datasets:
        if nfs.is_nfs(d.source):
            args = nfs.docker_volume_args(ctx.volume_prefix, nfs.parse(d.source))
            mounts.append({"Type": "volume", "Source": args["name"], "Target": d.target, "ReadOnly": True,
                           "VolumeOptions": {"NoCopy": True, "Labels": args["labels"],
                                             "DriverConfig": {"Name": "local", "Options": args["driver_opts"]}}})
        else:
            mounts.append({"Type": "bind", "Source": d.source, "Target": d.target, "ReadOnly": True})
    mounts.append({"Type": "tmpfs", "Target": SHM_TARGET,
                   "TmpfsOptions": {"SizeBytes": template.shm_size, "Mode": 0o1777}})
    return mounts


def make_labels(template: Template, ctx: ServerContext) -> dict[str, str]:
    """The contract's labels, as on Docker; goldenhub.gpus is empty: Swarm assigns GPUs when it places the task."""
    return docker_labels(template, replace(ctx, gpu_ids=()))


def make_resources(template: Template, ctx: ServerContext, settings: SwarmSettings) -> dict:
    limits = {"NanoCPUs": int(template.cpu * NANO), "MemoryBytes": template.memory, "Pids": ctx.pids_limit}
    reservations: dict = {}
    if settings.reserve_fraction:
        reservations = {"NanoCPUs": int(template.cpu * NANO * settings.reserve_fraction),
                        "MemoryBytes": int(template.memory * settings.reserve_fraction)}
    if template.gpus:
        reservations["GenericResources"] = [{"DiscreteResourceSpec": {"Kind": settings.gpu_kind,
                                                                      "Value": template.gpus}}]
    return {"Limits": limits, "Reservations": reservations}


def make_endpoint(ctx: ServerContext, settings: SwarmSettings) -> dict:
    """node: a host-mode port on the task's node, chosen by Docker (read back from the task);
    ingress: the routing mesh (needs IPVS in the nodes' kernel); network: no port. Only ingress
    uses a virtual IP (IPVS); the others resolve the service's name to its task (dnsrr)."""
    if settings.connect == "network":
        return {"Mode": "dnsrr"}
    if settings.connect == "node":
        return {"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": ctx.port, "PublishMode": "host"}]}
    return {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": ctx.port, "PublishMode": "ingress"}]}


def make_service_spec(template: Template, ctx: ServerContext, settings: SwarmSettings = SwarmSettings(),
                      node_id: str = "", configs: tuple[dict, ...] = ()) -> dict:
    """The service's spec (the body of POST /services/create). node_id: the node holding a
    pinned home; configs: ConfigReferences (make_config_refs) to mount."""
    swarm_ctx = replace(ctx, courseware_mirror="", courseware_stale="", gpu_ids=())
    env = make_environment(template, swarm_ctx)
    labels = make_labels(template, ctx)
    container = {
        "Image": template.image,
        "Labels": labels,
        "Command": ["sh", "-c", gpu_prelude(settings.gpu_kind) + STARTUP_SCRIPT, "goldenhub-start"],
        "Args": list(ctx.command),
        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "Dir": HOME,
        "User": "1000",
        "CapabilityDrop": ["ALL"],
        "Mounts": make_mounts(template, ctx, settings),
        "Configs": list(configs),
    }
    if ctx.host_gateway:
        container["Hosts"] = [f"{ctx.host_gateway} host.docker.internal"]
    task = {
        "ContainerSpec": container,
        "Resources": make_resources(template, ctx, settings),
        "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
        "Placement": {"Constraints": [f"node.id=={node_id}"] if node_id else []},
    }
    if settings.connect == "network":
        task["Networks"] = [{"Target": settings.network}]
    return {
        "Name": service_name(ctx.container_name),
        "Labels": labels,
        "TaskTemplate": task,
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": make_endpoint(ctx, settings),
    }


# --- branding and JupyterLab's warnings as Swarm configs ------------------------------------

def files_of_archive(archive: bytes, parent: str) -> dict[str, bytes]:
    """The regular files of a tar made to be extracted in `parent` (hub_ext.branding.container,
    hub_ext.usage.lab_warnings), by their absolute path in the container."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[f"{parent.rstrip('/')}/{member.name}"] = tar.extractfile(member).read()
    return files


def config_name(prefix: str, path: str, data: bytes) -> str:
    """Configs are immutable: one per content (and path), named by its digest; a changed logo is a new config."""
    digest = hashlib.sha256(path.encode() + b"\0" + data).hexdigest()[:24]
    return f"{prefix}-cfg-{digest}"


def make_config_refs(files: dict[str, bytes], ids: dict[str, str], prefix: str) -> tuple[dict, ...]:
    """ConfigReferences mounting each file read-only (root-owned, 0444) at its path; ids: config name → id."""
    refs = []
    for path, data in sorted(files.items()):
        name = config_name(prefix, path, data)
        refs.append({"ConfigID": ids[name], "ConfigName": name,
                     "File": {"Name": path, "UID": "0", "GID": "0", "Mode": 0o444}})
    return tuple(refs)


# --- the cluster as the hub sees it ----------------------------------------------------------

def node_is_up(node: dict) -> bool:
    return (node.get("Status") or {}).get("State") == "ready" and \
        (node.get("Spec") or {}).get("Availability", "active") == "active"


def node_label(node: dict) -> str:
    """A node as an admin names it: its hostname, else its id."""
    return ((node.get("Description") or {}).get("Hostname") or node.get("ID", ""))[:80]


def node_gpus(node: dict, kind: str = GPU_KIND) -> int:
    """How many of `kind` a node advertises (named ones, e.g. NVIDIA-GPU=GPU-…, or a count)."""
    total = 0
    for r in ((node.get("Description") or {}).get("Resources") or {}).get("GenericResources") or []:
        named, discrete = r.get("NamedResourceSpec"), r.get("DiscreteResourceSpec")
        if named and named.get("Kind") == kind:
            total += 1
        elif discrete and discrete.get("Kind") == kind:
            total += int(discrete.get("Value", 0))
    return total


def assigned_gpus(task: dict, kind: str = GPU_KIND) -> tuple[str, ...]:
    """The ids Swarm gave a task (what DOCKER_RESOURCE_<kind> holds): the engine's JSON names
    them GenericResources (the API reference says AssignedGenericResources; both are read)."""
    ids = []
    for r in (task.get("GenericResources") or []) + (task.get("AssignedGenericResources") or []):
        named, discrete = r.get("NamedResourceSpec"), r.get("DiscreteResourceSpec")
        if named and named.get("Kind") == kind:
            ids.append(str(named.get("Value", "")))
        elif discrete and discrete.get("Kind") == kind:
            ids.extend(str(i) for i in range(int(discrete.get("Value", 0))))
    return tuple(ids)


def task_holds_resources(task: dict) -> bool:
    """A task that Swarm counts as holding its reservations (desired running, not yet ended)."""
    state = (task.get("Status") or {}).get("State", "")
    return task.get("DesiredState") == "running" and state not in (
        "complete", "failed", "shutdown", "rejected", "orphaned", "remove")


@dataclass(frozen=True)
class ClusterGPUs:
    """The picker's "N of M free" for the whole cluster: M advertised by the nodes that are up,
    N = M minus the GPUs assigned to tasks that hold them. Same questions as GPUAllocator;
    Swarm, not the hub, assigns them, so allocate/release hand out nothing."""

    total: int = 0
    used: int = 0

    @classmethod
    def from_cluster(cls, nodes: list[dict], tasks: list[dict], kind: str = GPU_KIND) -> "ClusterGPUs":
        up = {n.get("ID") for n in nodes if node_is_up(n)}
        total = sum(node_gpus(n, kind) for n in nodes if n.get("ID") in up)
        used = sum(len(assigned_gpus(t, kind)) for t in tasks if t.get("NodeID") in up and task_holds_resources(t))
        return cls(total, min(used, total))

    def free_count(self, shared: bool = False) -> int:
        return self.total - self.used  # Swarm's generic resources are never shared

    def allocate(self, owner: str, count: int, shared: bool = False) -> list[str]:
        """Refuse at once when the cluster has too few free (GoldenSpawner.take_gpus words it); Swarm assigns."""
        if count > self.free_count():
            raise NoFreeGPU(count, self.total, self.free_count())
        return []

    def release(self, owner: str) -> list[str]:
        return []

    def reserve(self, owner: str, ids: list[str], shared: bool = False) -> list[str]:
        return []

    def held_by(self, owner: str) -> list[str]:
        return []


def home_unreachable(error_text: str, home_volume: str, settings: SwarmSettings) -> bool:
    """Whether a task's error is the NFS mount of its home failing (homes: nfs)."""
    if settings.homes != "nfs" or "mount" not in error_text.lower():
        return False
    return home_volume in error_text or f":{nfs.parse(settings.homes_nfs_root).path}/{home_volume}" in error_text


def home_unreachable_sentence() -> str:
    """What the student reads when their home's NFS server cannot be mounted (the hub log has the detail)."""
    return _("The file server holding your home is unreachable, so your environment cannot start; an "
             "administrator has been told. Try again later.")


def node_down_sentence(node: str, course: str) -> str:
    """What a student with a pinned home on a node that is down reads (nothing starts elsewhere)."""
    return _("Your files for %(course)s are on node %(node)s, which is down, so your environment cannot start "
             "anywhere else; ask your administrator to bring that node back.", course=course, node=node)
