"""Idle culling in the hub's configuration: jupyterhub-idle-culler as a hub-managed service
with per-template timeouts (its cull_arbiter_hook, hub_ext.usage.cull_hook), and the settings
the goldenhub service's keeper (hub_ext.usage.keeper_loop) runs with.

Rules:
- The culler's own --timeout is only the fallback for a server whose template is unknown:
  DEFAULT_IDLE_MINUTES. Each template's idle_timeout decides (0: never culled).
- The culler's role has exactly what it uses: list and read users and servers (with their
  activity) and stop servers; it never culls users. The goldenhub service posts activity for
  servers busy on their GPUs, so its role gains users:activity.
- Settings come from the environment (read_culling, called by Settings.from_env); they reach
  the culler and the service in their environment, so both read the same values.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hub_ext.usage.keeper import DEFAULT_IDLE_MINUTES

CONFIG_FILE = Path(__file__).with_name("idle_culler_config.py")
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
# name -> (Settings field, lowest value allowed, highest)
CULLING_ENV = {
    "GOLDENHUB_CULL_EVERY": ("cull_every", 1, 86400),
    "GOLDENHUB_CULL_WARN_MINUTES": ("warn_minutes", 0, 1440),
    "GOLDENHUB_BUSY_UTILISATION": ("busy_utilisation", 1, 100),
    "GOLDENHUB_CULL_UNIT_SECONDS": ("cull_unit_seconds", 1, 3600),
}


def read_culling(s, env) -> None:
    """The culling settings from the environment over the defaults; a value out of range
    stops the start with a sentence naming it and what is allowed."""
    for name, (attr, low, high) in CULLING_ENV.items():
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"{name} is {raw!r}; allowed: a whole number from {low} to {high}")
        setattr(s, attr, value)
    s.gpu_load_file = env.get("GOLDENHUB_GPU_LOAD_FILE", s.gpu_load_file)


def culling_env(s) -> dict[str, str]:
    env = {name: str(getattr(s, attr)) for name, (attr, _low, _high) in CULLING_ENV.items()}
    if s.gpu_load_file:
        env["GOLDENHUB_GPU_LOAD_FILE"] = s.gpu_load_file
    return env


def update_culling(c, s) -> None:
    """The idle-culler service and its role; the culling settings in the goldenhub service's
    environment and users:activity in its role (update_service made both)."""
    services = list(c.JupyterHub.services)
    goldenhub = next(svc for svc in services if svc["name"] == "goldenhub")
    goldenhub["environment"] = {**goldenhub["environment"], **culling_env(s)}
    services.append({
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={DEFAULT_IDLE_MINUTES * s.cull_unit_seconds}",
                    f"--cull-every={s.cull_every}", f"--config={CONFIG_FILE}"],
        # the goldenhub service's environment: the hook reads the same catalog and state
        "environment": dict(goldenhub["environment"]),
    })
    c.JupyterHub.services = services
    roles = list(c.JupyterHub.load_roles)
    for role in roles:
        if role.get("name") == "goldenhub-service" and "users:activity" not in role["scopes"]:
            role["scopes"] = [*role["scopes"], "users:activity"]
    roles.append({"name": "idle-culler", "services": ["idle-culler"], "scopes": list(CULLER_SCOPES)})
    c.JupyterHub.load_roles = roles
