"""`goldenhub k8s values`: a values file for the Zero to JupyterHub chart (pinned: CHART_VERSION)
from the platform's Settings, and update_kube(c), what the chart's hub.extraConfig runs.

Rules:
- The hub image is the admin's to build (JupyterHub with goldenhub and its `k8s` extra
  installed, the course files under COURSES_DIR); the values only name it (--hub-image).
- The hub runs GoldenKubeSpawner (spawner/kube.py): pods, homes and the students'
  NetworkPolicy come from spawner/k8s.py; the chart's own user storage is off (storage
  type none) and its user NetworkPolicy allows DNS only, so the two policies agree.
- The goldenhub service runs in the hub pod under hub.services; it listens on the pod's IP
  (GOLDENHUB_POD_IP from the downward API), on a port the hub Service and the hub
  NetworkPolicy open to the proxy.
- Scopes and roles are hubconfig's (GOLDENHUB_SCOPES, update_service's roles), as
  hub.config.JupyterHub.custom_scopes and hub.loadRoles: one definition for both backends.
- Every generated key path is one the chart documents (tests/data/z2jh-values-keys.txt).
"""

from __future__ import annotations

import os
import sys

from hub_ext import hubconfig
from hub_ext.hubconfig import Settings

CHART_VERSION = "4.4.0"
COURSES_DIR = "/srv/goldenhub/courses"
STATE_DIR = "/srv/jupyterhub/goldenhub"  # on the hub's PVC (the chart's hub.db volume)
EXTRA_CONFIG = """\
# goldenhub: the platform's hub configuration (hub_ext/k8s/values.py, update_kube)
from hub_ext.k8s.values import update_kube
update_kube(c)
"""


def _roles(s: Settings) -> dict[str, dict]:
    """update_service's roles, keyed by name as the chart wants them."""
    from traitlets.config import Config

    c = Config()
    hubconfig.update_service(c, s)
    return {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in c.JupyterHub.load_roles}


def _service(s: Settings) -> dict:
    from traitlets.config import Config

    c = Config()
    hubconfig.update_service(c, s)
    service = dict(c.JupyterHub.services[0])
    service.pop("name")
    service["url"] = f"http://hub:{s.service_port}"  # replaced by the pod's own address in update_kube
    service["command"] = ["python3", "-m", "hub_ext.service"]
    service["environment"] = {**service["environment"], "GOLDENHUB_STATE_DIR": STATE_DIR,
                              "GOLDENHUB_COURSES_DIR": COURSES_DIR}
    service["environment"].pop("GOLDENHUB_DB_URL_FILE", None)
    return service


def make_values(s: Settings, hub_image: str, hub_tag: str, namespace: str = "goldenhub",
                storage_class: str = "", home_size: str = "10Gi") -> dict:
    """The chart's values for this platform."""
    spawner = {"namespace": namespace, "name_prefix": s.name_prefix, "courses_dir": COURSES_DIR,
               "home_size": home_size, "storage_class": storage_class}
    return {
        "hub": {
            "image": {"name": hub_image, "tag": hub_tag},
            "config": {
                "JupyterHub": {"spawner_class": "goldenhub-kube", "admin_users": list(s.admin_users),
                               "custom_scopes": hubconfig.GOLDENHUB_SCOPES},
                "GoldenKubeSpawner": spawner,
            },
            "extraConfig": {"goldenhub": EXTRA_CONFIG},
            "extraEnv": {
                "GOLDENHUB_STATE_DIR": STATE_DIR,
                "GOLDENHUB_COURSES_DIR": COURSES_DIR,
                "GOLDENHUB_LANGUAGE": s.language,
                "GOLDENHUB_SERVICE_PORT": str(s.service_port),
                "GOLDENHUB_POD_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            },
            "services": {"goldenhub": _service(s)},
            "loadRoles": _roles(s),
            "service": {"extraPorts": [{"name": "goldenhub", "port": s.service_port,
                                        "targetPort": s.service_port}]},
            "networkPolicy": {"allowedIngressPorts": [s.service_port]},
        },
        "singleuser": {
            "cmd": "jupyterhub-singleuser",
            "uid": 1000,
            "fsGid": 100,
            "storage": {"type": "none"},
            "networkPolicy": {
                "enabled": True,
                "egressAllowRules": {"cloudMetadataServer": False, "dnsPortsCloudMetadataServer": False,
                                     "dnsPortsKubeSystemNamespace": True, "dnsPortsPrivateIPs": False,
                                     "nonPrivateIPs": False, "privateIPs": False},
            },
        },
        "scheduling": {"userScheduler": {"enabled": True}},
        "cull": {"enabled": False},  # goldenhub's own culler (hub_ext.usage) decides idleness
    }


def key_paths(values: dict, prefix: str = "") -> list[str]:
    """Every leaf key path of a values mapping ("hub.image.name"); lists are leaves."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            paths += key_paths(value, path)
        else:
            paths.append(path)
    return paths


def documented(path: str, keys: set[str]) -> bool:
    """Whether the chart documents `path`: listed itself, or below a key listed as "X.*"
    (a mapping the chart passes on as it is, such as hub.services or hub.extraEnv)."""
    parts = path.split(".")
    return path in keys or any(".".join(parts[:i]) + ".*" in keys for i in range(1, len(parts)))


def update_kube(c) -> None:
    """What hub.extraConfig runs in the hub pod: the service's address (this pod's IP), and
    the service's database path on the hub's volume. The chart has set the rest."""
    os.makedirs(os.environ.get("GOLDENHUB_STATE_DIR", STATE_DIR), mode=0o700, exist_ok=True)
    pod_ip = os.environ.get("GOLDENHUB_POD_IP", "127.0.0.1")
    port = os.environ.get("GOLDENHUB_SERVICE_PORT", "8090")
    for service in c.JupyterHub.services:
        if service.get("name") == "goldenhub":
            service["url"] = f"http://{pod_ip}:{port}"
            service["command"] = [sys.executable, "-m", "hub_ext.service"]
