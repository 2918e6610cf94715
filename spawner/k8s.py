"""How a template becomes a Kubernetes pod: pure functions from the SAME template and
ServerContext as spawner/container.make_create_args to plain manifests (dicts): the pod, the
student's home PVC and the NetworkPolicy of student pods. No cluster calls here
(spawner/kube.py creates them through KubeSpawner); tests validate the dicts against the
Kubernetes OpenAPI schemas.

Rules, the Docker builder's in Kubernetes words:
- uid 1000, gid 100 (jovyan:users), fsGroup 100 so the home PVC is writable; runAsNonRoot;
  no privilege escalation, every capability dropped, seccomp RuntimeDefault; not privileged.
- memory and CPU limits from the template; requests = limits x KubeSettings.request_fraction
  (1.0: guaranteed, nothing oversubscribed). /dev/shm is an emptyDir of medium Memory with the
  template's shm_size as sizeLimit (it counts against the memory limit, as in Docker).
- GPUs are `nvidia.com/gpu: N` limits: the device plugin picks and exposes exactly those and
  sets NVIDIA_VISIBLE_DEVICES itself, so the pod does not; without GPUs it stays "void".
- Volumes: the home PVC, each declared dataset read-only (hostPath for a host path, `nfs:` for
  an nfs:// source), /dev/shm. No other host path; the hub's courseware mirror is a host path
  of the hub's machine, so on Kubernetes the pod pulls courseware from its remote.
- No service account token (automountServiceAccountToken false), no service links.
- What Kubernetes cannot express in a pod: a pids limit (it is the kubelet's podPidsLimit, a
  node setting: set it to ServerContext.pids_limit), swap (nodes run without swap unless the
  admin enables it; Docker's memswap_limit = memory has no pod field), Docker's
  no-new-privileges is allowPrivilegeEscalation false.
- Names: Docker names from hub_ext.contract, lower-cased and '_' written '-z' (kube_name):
  contract escapes have upper case only in '-XX' escapes and '-z' never occurs in them, so
  the mapping stays injective and the result is a valid DNS-1123 subdomain.
- Labels carry the contract label names with kube-safe values (kube_label); the exact user,
  server, home and GPU count are annotations under the same names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from hub_ext import contract
from hub_ext.catalog import nfs
from hub_ext.catalog.model import HOME, Template
from spawner.container import STARTUP_SCRIPT, ServerContext, make_environment

GPU_RESOURCE = "nvidia.com/gpu"
UID, GID = 1000, 100
COMPONENT = "singleuser-server"  # the z2jh chart's component label of user pods
HUB_PORT = 8081
SHM = "dshm"
HOME_VOLUME = "home"


@dataclass(frozen=True)
class KubeSettings:
    """What a site chooses about its cluster (the Docker backend has no such choices)."""

    namespace: str = "goldenhub"
    storage_class: str = ""  # "" → the cluster's default StorageClass
    home_size: str = "10Gi"
    home_access_mode: str = "ReadWriteOnce"
    request_fraction: float = 1.0  # requests = limits x this (0 < f <= 1)
    hub_port: int = HUB_PORT
    extra_egress_cidrs: tuple[str, ...] = ()  # e.g. the courseware git server; nothing else by default


def kube_name(docker_name: str) -> str:
    """A contract (Docker) name as a Kubernetes object name (see the module's rules)."""
    return docker_name.lower().replace("_", "-z")


def kube_label(text: str) -> str:
    """A label value (<= 63 characters, starting and ending with a letter or digit) for any
    user, server or id: its contract escape as kube_name; one starting with '-' gets 'z.'
    in front ('.' occurs in no escape, so no other value can become the same)."""
    value = kube_name(contract.escape_part(text))
    return f"z.{value}" if value.startswith("-") else value


def _quantity(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:g}"


def make_resources(template: Template, settings: KubeSettings) -> dict:
    limits = {"memory": str(template.memory), "cpu": _quantity(template.cpu)}
    f = settings.request_fraction
    requests = {"memory": str(max(1, int(template.memory * f))), "cpu": f"{max(1, int(template.cpu * f * 1000))}m"}
    if template.gpus:
        limits[GPU_RESOURCE] = str(template.gpus)  # extended resources: request = limit, set by the scheduler
        requests[GPU_RESOURCE] = str(template.gpus)
    return {"limits": limits, "requests": requests}


def _dataset_volume(index: int, source: str) -> dict:
    name = f"dataset-{index}"
    if nfs.is_nfs(source):
        return nfs.kube_volume(name, nfs.parse(source))
    return {"name": name, "hostPath": {"path": source}}


def make_volumes(template: Template, ctx: ServerContext) -> tuple[list[dict], list[dict]]:
    """(pod volumes, container volumeMounts): the home, each dataset read-only, /dev/shm."""
    volumes = [{"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": kube_name(ctx.home_volume)}}]
    mounts = [{"name": HOME_VOLUME, "mountPath": HOME}]
    for i, d in enumerate(template.datasets):
        volume = _dataset_volume(i, d.source)
        volumes.append(volume)
        mounts.append({"name": volume["name"], "mountPath": d.target, "readOnly": True})
    volumes.append({"name": SHM, "emptyDir": {"medium": "Memory", "sizeLimit": str(template.shm_size)}})
    mounts.append({"name": SHM, "mountPath": "/dev/shm"})
    return volumes, mounts


def make_metadata(template: Template, ctx: ServerContext, name: str, settings: KubeSettings) -> dict:
    labels = {
        "component": COMPONENT,
        contract.LABEL_USER: kube_label(ctx.user),
        contract.LABEL_SERVER: kube_label(ctx.server),
        contract.LABEL_COURSE: template.course,
        contract.LABEL_TEMPLATE: template.id,
    }
    annotations = {
        contract.LABEL_USER: ctx.user,
        contract.LABEL_SERVER: ctx.server,
        contract.LABEL_HOME_VOLUME: kube_name(ctx.home_volume),
        contract.LABEL_GPUS: str(template.gpus),  # a count: the device plugin chooses the devices
        **ctx.extra_labels,
    }
    return {"name": name, "namespace": settings.namespace, "labels": labels, "annotations": annotations}


def make_pod(template: Template, ctx: ServerContext, settings: KubeSettings = KubeSettings()) -> dict:
    """The student's pod manifest."""
    kube_ctx = replace(ctx, courseware_mirror="", courseware_stale="", gpu_ids=())
    env = make_environment(template, kube_ctx)
    if template.gpus:
        env.pop("NVIDIA_VISIBLE_DEVICES")  # the device plugin sets exactly the allocated devices
    volumes, mounts = make_volumes(template, ctx)
    container = {
        "name": "notebook",
        "image": template.image,
        "command": ["sh", "-c", STARTUP_SCRIPT, "goldenhub-start"],
        "args": list(ctx.command),
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "ports": [{"name": "notebook-port", "containerPort": ctx.port, "protocol": "TCP"}],
        "workingDir": HOME,
        "resources": make_resources(template, settings),
        "securityContext": {
            "runAsUser": UID,
            "runAsGroup": GID,
            "runAsNonRoot": True,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    spec = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "OnFailure",
        "securityContext": {
            "runAsUser": UID,
            "runAsGroup": GID,
            "fsGroup": GID,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": make_metadata(template, ctx, kube_name(ctx.container_name),
                                                                         settings), "spec": spec}


def make_pvc(template: Template, ctx: ServerContext, settings: KubeSettings = KubeSettings()) -> dict:
    """One home per student per course, named like the Docker home volume (kube_name)."""
    spec = {"accessModes": [settings.home_access_mode], "resources": {"requests": {"storage": settings.home_size}}}
    if settings.storage_class:
        spec["storageClassName"] = settings.storage_class
    metadata = {
        "name": kube_name(ctx.home_volume),
        "namespace": settings.namespace,
        "labels": {contract.LABEL_USER: kube_label(ctx.user), contract.LABEL_COURSE: template.course},
        "annotations": {contract.LABEL_USER: ctx.user, contract.LABEL_COURSE: template.course},
    }
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def make_network_policy(settings: KubeSettings = KubeSettings(), port: int = 8888) -> dict:
    """Student pods (component singleuser-server, one policy for all of them): in, only the
    proxy to the server's port; out, only the hub's API and the cluster DNS (plus the CIDRs a
    site adds, such as its git server). So no student pod reaches another, or anything else."""
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    egress = [
        {"to": [{"podSelector": {"matchLabels": {"component": "hub"}}}],
         "ports": [{"protocol": "TCP", "port": settings.hub_port}]},
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": dns_ports},
    ]
    if settings.extra_egress_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in settings.extra_egress_cidrs]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "goldenhub-students", "namespace": settings.namespace},
        "spec": {
            "podSelector": {"matchLabels": {"component": COMPONENT}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"component": "proxy"}}}],
                         "ports": [{"protocol": "TCP", "port": port}]}],
            "egress": egress,
        },
    }


_CIDR = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}/\d{1,2}")


def check_settings(settings: KubeSettings) -> list[str]:
    """What is wrong with a site's Kubernetes settings, one sentence each."""
    problems = []
    if not 0 < settings.request_fraction <= 1:
        problems.append(f"request_fraction: got {settings.request_fraction}; allowed: a number above 0, at most 1")
    if not re.fullmatch(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?", settings.namespace):
        problems.append(f"namespace: got {settings.namespace!r}; allowed: a DNS label such as goldenhub")
    if not re.fullmatch(r"[1-9][0-9]{0,5}(?:Mi|Gi|Ti)", settings.home_size):
        problems.append(f"home_size: got {settings.home_size!r}; allowed: a size such as 10Gi or 500Mi")
    problems += [f"extra_egress_cidrs: got {c!r}; allowed: an IPv4 CIDR such as 10.0.0.5/32"
                 for c in settings.extra_egress_cidrs if not _CIDR.fullmatch(c)]
    return problems
