"""The SSH service's settings and its registration as a hub service.

Rules: on by default, port 8022, on the host of the hub's public address (GOLDENHUB_BIND_URL:
0.0.0.0 stays all interfaces, 127.0.0.1 stays loopback). `ssh: {enabled: false}` in
state/goldenhub.yaml or GOLDENHUB_SSH=off turns it off: no service, nothing listens.
GOLDENHUB_SSH_PORT (else `ssh: {port: N}`) moves it.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

DEFAULT_PORT = 8022
OFF = ("0", "off", "false", "no")
ON = ("1", "on", "true", "yes")
# Passed on to the SSH service from the hub's environment when set (Docker's address, limits).
PASSED_ON = ("DOCKER_HOST", "GOLDENHUB_SSH_IDLE_SECONDS", "GOLDENHUB_SSH_START_SECONDS")


def read_ssh(s, env, file: dict) -> None:
    """Fill s.ssh_enabled and s.ssh_port; a wrong value stops the hub with what is allowed."""
    where = f"GOLDENHUB_SSH/GOLDENHUB_SSH_PORT or ssh: in {s.state_dir}/goldenhub.yaml"
    section = file.get("ssh") or {}
    if not isinstance(section, dict):
        raise ValueError(f"ssh is {section!r} ({where}); write it as ssh: {{enabled: true, port: {DEFAULT_PORT}}}")
    enabled = env.get("GOLDENHUB_SSH")
    if enabled is None:
        enabled = section.get("enabled", True)
    text = str(enabled).strip().lower()
    if text not in OFF + ON:
        raise ValueError(f"ssh enabled is {enabled!r} ({where}); allowed: on or off")
    s.ssh_enabled = text in ON
    port = env.get("GOLDENHUB_SSH_PORT") or section.get("port") or DEFAULT_PORT
    try:
        s.ssh_port = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"ssh port is {port!r} ({where}); give a port number from 1 to 65535") from None
    if not 1 <= s.ssh_port <= 65535:
        raise ValueError(f"ssh port is {s.ssh_port} ({where}); give a port number from 1 to 65535")
    s.ssh_env = {k: env[k] for k in PASSED_ON if k in env}


def make_service_env(s) -> dict[str, str]:
    """What the SSH service needs: where to listen, the hub's public address (for terminals),
    the state dir (host key), the container names' prefix, the default language."""
    url = urlsplit(s.bind_url)
    host = url.hostname or "0.0.0.0"
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    port = f":{url.port}" if url.port else ""
    out = {
        "GOLDENHUB_SSH_HOST": host,
        "GOLDENHUB_SSH_PORT": str(s.ssh_port),
        "GOLDENHUB_SSH_HUB_URL": f"{url.scheme}://{local}{port}",
        "GOLDENHUB_STATE_DIR": str(s.state_dir),
        "GOLDENHUB_PREFIX": s.name_prefix,
        "GOLDENHUB_LANGUAGE": s.language,
    }
    out.update(s.ssh_env)
    return out


def update_ssh(c, s) -> None:
    """The ssh service (no URL: it answers on its own port, not through the proxy). It needs no
    scopes of its own: everything it does, it does with the connecting user's token."""
    if not s.ssh_enabled:
        return
    services = list(c.JupyterHub.services)
    services.append({"name": "ssh", "command": [sys.executable, "-m", "hub_ext.ssh"],
                     "environment": make_service_env(s)})
    c.JupyterHub.services = services
