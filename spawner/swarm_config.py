"""The backend setting and the Docker Swarm keys, for hub_ext.hubconfig (TLJH-style: read_swarm
fills Settings from the environment and state/goldenhub.yaml; update_swarm only writes config).

    backend: swarm            # GOLDENHUB_BACKEND: docker (default) or swarm
    swarm:
      docker_host: tcp://10.0.0.2:2375   # GOLDENHUB_SWARM_DOCKER_HOST: the manager's Docker URL
                                         #   (default: the hub's own engine, DOCKER_HOST or the socket)
      homes: pinned                      # GOLDENHUB_SWARM_HOMES: pinned (default) or nfs
      homes_nfs_root: nfs://10.0.0.5/homes   # GOLDENHUB_SWARM_HOMES_NFS_ROOT (homes: nfs)
      gpu_kind: NVIDIA-GPU               # GOLDENHUB_SWARM_GPU_KIND
      connect: node                      # GOLDENHUB_SWARM_CONNECT: node (default), ingress or network
      server_address: 10.0.0.2           # GOLDENHUB_SWARM_SERVER_ADDRESS (connect: ingress)
      network: goldenhub-overlay         # GOLDENHUB_SWARM_NETWORK (connect: network)
      hub_ip: 10.0.0.1                   # GOLDENHUB_SWARM_HUB_IP: where tasks reach the hub's API
                                         #   (default: the students' network gateway, as on Docker)
      reserve_fraction: 0                # GOLDENHUB_SWARM_RESERVE_FRACTION

Every value is checked at hub start (spawner.swarm.check_settings) with a sentence naming the
key, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import asdict

from spawner.swarm import SwarmSettings, check_settings

BACKENDS = ("docker", "swarm")
KEYS = ("docker_host", "homes", "homes_nfs_root", "gpu_kind", "connect", "server_address", "network", "hub_ip",
        "reserve_fraction")


def read_swarm(s, env, file: dict) -> None:
    """s.backend and s.swarm (a dict of KEYS) from GOLDENHUB_* over the file's keys; ValueError names what is wrong."""
    s.backend = str(env.get("GOLDENHUB_BACKEND") or file.get("backend") or "docker").strip()
    if s.backend not in BACKENDS:
        raise ValueError(f"backend is {s.backend[:40]!r} (GOLDENHUB_BACKEND or goldenhub.yaml); "
                         f"allowed: {', '.join(BACKENDS)}")
    section = file.get("swarm") if isinstance(file.get("swarm"), dict) else {}
    found = {k: str(env.get(f"GOLDENHUB_SWARM_{k.upper()}") or section.get(k) or "").strip() for k in KEYS}
    s.swarm = {k: v for k, v in found.items() if v}
    if s.backend == "swarm":
        problems = check_settings(swarm_settings(s))
        if problems:
            raise ValueError("swarm settings (GOLDENHUB_SWARM_* or the swarm: section of goldenhub.yaml): "
                             + "; ".join(problems))


def swarm_settings(s) -> SwarmSettings:
    defaults = asdict(SwarmSettings())
    try:
        fraction = float(s.swarm.get("reserve_fraction") or 0)
    except ValueError:
        fraction = -1.0  # check_settings names it
    return SwarmSettings(homes=s.swarm.get("homes") or defaults["homes"],
                         homes_nfs_root=s.swarm.get("homes_nfs_root", ""),
                         gpu_kind=s.swarm.get("gpu_kind") or defaults["gpu_kind"],
                         connect=s.swarm.get("connect") or defaults["connect"],
                         network=s.swarm.get("network", ""), reserve_fraction=fraction)


def update_swarm(c, s) -> None:
    """The swarm backend's spawner (after update_spawner wrote GoldenSpawner's settings, which
    GoldenSwarmSpawner inherits)."""
    settings = swarm_settings(s)
    c.JupyterHub.spawner_class = "goldenhub-swarm"
    if s.swarm.get("docker_host"):
        c.GoldenSwarmSpawner.client_kwargs = {"base_url": s.swarm["docker_host"]}
    c.GoldenSwarmSpawner.homes_mode = settings.homes
    c.GoldenSwarmSpawner.homes_nfs_root = settings.homes_nfs_root
    c.GoldenSwarmSpawner.gpu_kind = settings.gpu_kind
    c.GoldenSwarmSpawner.connect = settings.connect
    c.GoldenSwarmSpawner.swarm_network = settings.network
    c.GoldenSwarmSpawner.server_address = s.swarm.get("server_address", "")
    c.GoldenSwarmSpawner.reserve_fraction = settings.reserve_fraction
    c.GoldenSwarmSpawner.use_internal_ip = False  # get_ip_and_port follows `connect`
    if s.swarm.get("hub_ip"):
        c.JupyterHub.hub_ip = s.swarm["hub_ip"]
        c.GoldenSwarmSpawner.host_gateway = s.swarm["hub_ip"]
