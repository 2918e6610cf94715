"""Configuration appliers for jupyterhub_config.py: update_*(c, settings), TLJH style.

Settings come from environment variables (GOLDENHUB_*) over built-in defaults, so the
same config serves the platform, the tests and the benchmarks. The appliers only write
configuration; ensure_state() is the one setup step with effects on disk (a private state
directory, generated secrets, the database URL in a file), called first by jupyterhub_config.py.

Secrets rule: a database URL (it may hold a password) and generated passwords live in 0600
files in a 0700 state directory and reach the service by file (GOLDENHUB_DB_URL_FILE), never
through a service's environment, which JupyterHub stores in its database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hub_ext import contract, paths
from hub_ext.credentials import SECRETS_FILE, ensure_secrets, write_private

DB_URL_FILE = "goldenhub-db-url"  # in the state directory, 0600


@dataclass
class Settings:
    state_dir: Path = field(default_factory=paths.state_dir)
    courses_dir: Path = field(default_factory=paths.courses_dir)
    bind_url: str = "http://127.0.0.1:8000"
    hub_port: int = 8081
    proxy_api_port: int = 8001
    service_port: int = 8090
    db_url: str = ""  # the goldenhub service's database; default: SQLite in the state directory
    db_url_file: Path | None = None  # where the service reads db_url from (None: the default SQLite)
    network: str = "goldenhub"
    name_prefix: str = "goldenhub"
    admin_users: tuple[str, ...] = ("admin",)

    @staticmethod
    def default_db_url(state_dir: Path) -> str:
        return f"sqlite:///{state_dir / 'goldenhub.sqlite'}"

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        s = cls()
        s.bind_url = env.get("GOLDENHUB_BIND_URL", s.bind_url)
        s.hub_port = int(env.get("GOLDENHUB_HUB_PORT", s.hub_port))
        s.proxy_api_port = int(env.get("GOLDENHUB_PROXY_API_PORT", s.proxy_api_port))
        s.service_port = int(env.get("GOLDENHUB_SERVICE_PORT", s.service_port))
        if env.get("GOLDENHUB_DB_URL_FILE"):
            s.db_url_file = Path(env["GOLDENHUB_DB_URL_FILE"])
            try:
                s.db_url = s.db_url_file.read_text().strip()
            except OSError as e:
                raise ValueError(f"GOLDENHUB_DB_URL_FILE={s.db_url_file} cannot be read ({e.strerror}); "
                                 "it must name a file holding the database URL") from None
        s.db_url = s.db_url or env.get("GOLDENHUB_DB_URL") or cls.default_db_url(s.state_dir)
        s.network = env.get("GOLDENHUB_NETWORK", s.network)
        s.name_prefix = env.get("GOLDENHUB_PREFIX", s.name_prefix)
        if env.get("GOLDENHUB_ADMIN_USERS"):
            s.admin_users = tuple(u.strip() for u in env["GOLDENHUB_ADMIN_USERS"].split(",") if u.strip())
        return s


def ensure_state(s: Settings) -> dict[str, str]:
    """Make the state directory private and its secrets present; returns the secrets.

    This process (the hub, and every process it starts: the proxy, the service) creates
    files readable by their owner only (umask 077); the state directory is 0700 and the
    files already in it lose any group/other access. A database URL given in the
    environment is written to a 0600 file that the service is pointed at.
    """
    os.umask(0o077)
    s.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(s.state_dir, 0o700)
    for entry in os.scandir(s.state_dir):
        if entry.is_file(follow_symlinks=False):
            mode = entry.stat(follow_symlinks=False).st_mode
            if mode & 0o077:
                os.chmod(entry.path, mode & 0o700)
    secrets = ensure_secrets(s.state_dir)
    if s.db_url_file is None and s.db_url != Settings.default_db_url(s.state_dir):
        s.db_url_file = s.state_dir / DB_URL_FILE
        write_private(s.db_url_file, s.db_url + "\n")
    elif s.db_url_file is None:
        (s.state_dir / DB_URL_FILE).unlink(missing_ok=True)  # back on the default: no stale URL
    return secrets


def update_hub(c, s: Settings) -> None:
    c.JupyterHub.bind_url = s.bind_url
    c.JupyterHub.db_url = f"sqlite:///{s.state_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(s.state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(s.state_dir / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(s.state_dir / "jupyterhub-proxy.pid")
    # The proxy's API stays on loopback: students must never reach it.
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.JupyterHub.cleanup_servers = False  # a hub restart leaves students' servers running


def update_auth(c, s: Settings) -> None:
    """First-run login: JupyterHub's shared-password authenticator with the generated passwords."""
    import yaml

    path = s.state_dir / SECRETS_FILE
    secrets = yaml.safe_load(path.read_text()) if path.is_file() else None
    if not isinstance(secrets, dict) or not secrets.get("student_password") or not secrets.get("admin_password"):
        raise RuntimeError(f"{path} has no generated passwords: call ensure_state(settings) before the appliers "
                           "(jupyterhub_config.py does)")
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = secrets["student_password"]
    c.SharedPasswordAuthenticator.admin_password = secrets["admin_password"]
    c.Authenticator.admin_users = set(s.admin_users)
    c.Authenticator.allow_all = True


def update_spawner(c, s: Settings) -> None:
    import docker

    from spawner.network import ensure_network

    gateway = ensure_network(docker.from_env(), s.network)
    # The hub listens on the student network's gateway: containers reach its API there,
    # and the proxy (on the host) too.
    c.JupyterHub.hub_ip = gateway
    c.JupyterHub.hub_port = s.hub_port
    c.JupyterHub.spawner_class = "golden"
    c.GoldenSpawner.courses_dir = str(s.courses_dir)
    c.GoldenSpawner.catalog_db_url = s.db_url
    c.GoldenSpawner.name_prefix = s.name_prefix
    c.GoldenSpawner.network_name = s.network
    c.GoldenSpawner.use_internal_ip = True
    c.GoldenSpawner.host_gateway = gateway
    c.GoldenSpawner.remove = True  # containers are disposable; homes live in volumes
    c.GoldenSpawner.http_timeout = 180  # courseware sync runs before the server answers
    # Admission is GoldenSpawner's queue (concurrent_starts); the hub's own limit only
    # guards against runaway load, far above a class.
    c.JupyterHub.concurrent_spawn_limit = 1000


def update_branding(c, s: Settings) -> None:
    """Hub pages show the current logo and favicon (uploads apply without a restart)."""
    from hub_ext.branding.handlers import make_handlers, template_versions
    from hub_ext.branding.store import TEMPLATES_DIR

    c.JupyterHub.template_paths.prepend([str(TEMPLATES_DIR)])
    c.JupyterHub.extra_handlers.extend(make_handlers(s.state_dir))
    c.JupyterHub.template_vars.update({"goldenhub_branding": template_versions(s.state_dir)})


GOLDENHUB_SCOPES = {
    "custom:goldenhub:templates": {"description": "Create, edit and roll back environment templates."},
    "custom:goldenhub:reset": {"description": "Reset students' environments and manage their backups; "
                               "filter with !group=<course group> for a course's instructors."},
    "custom:goldenhub:branding": {"description": "Upload the platform's logo and favicon."},
}


def update_service(c, s: Settings) -> None:
    """The goldenhub service (API and pages) under /services/goldenhub/, and its roles."""
    import sys

    env = {
        "GOLDENHUB_STATE_DIR": str(s.state_dir),
        "GOLDENHUB_COURSES_DIR": str(s.courses_dir),
        "GOLDENHUB_PREFIX": s.name_prefix,
    }
    if s.db_url_file:  # by file: never the URL itself, which may hold a password
        env["GOLDENHUB_DB_URL_FILE"] = str(s.db_url_file)
    passed_on = ("DOCKER_HOST", contract.HELPER_IMAGE_ENV, "GOLDENHUB_IMAGE_PREFIXES", "GOLDENHUB_DATASET_ROOTS")
    env.update({k: v for k, v in os.environ.items() if k in passed_on})
    c.JupyterHub.services = [{
        "name": "goldenhub",
        "url": f"http://127.0.0.1:{s.service_port}",  # loopback: only the proxy reaches it
        "command": [sys.executable, "-m", "hub_ext.service"],
        "environment": env,
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": list(GOLDENHUB_SCOPES),
    }]
    c.JupyterHub.custom_scopes = GOLDENHUB_SCOPES
    c.JupyterHub.load_roles = [
        # Every user may open the service (their own environments, self-reset).
        {"name": "user", "scopes": ["self", "access:services!service=goldenhub"]},
        {"name": "goldenhub-service", "services": ["goldenhub"],
         "scopes": ["list:users", "read:users", "read:groups", "admin:servers", "admin:server_state"]},
        {"name": "goldenhub-admin", "users": list(s.admin_users), "scopes": list(GOLDENHUB_SCOPES)},
    ]


def apply_all(c, s: Settings | None = None) -> Settings:
    """Every applier, in order; the state must have been prepared (ensure_state) first."""
    s = s or Settings.from_env()
    update_hub(c, s)
    update_auth(c, s)
    update_spawner(c, s)
    update_branding(c, s)
    update_service(c, s)
    return s
