"""Configuration appliers for jupyterhub_config.py: update_*(c, settings), TLJH style.

Settings come from environment variables (GOLDENHUB_*) over built-in defaults, so the
same config serves the platform, the tests and the benchmarks. jupyterhub_config.py runs
the setup steps with effects first, each an idempotent ensure_*: ensure_state (a private
state directory, generated secrets, the database URL in a file) and ensure_network (the
students' Docker network, whose gateway the hub listens on); what they find goes into the
Settings. Then the appliers, update_*(c, settings), only write configuration: no Docker, no
files, no environment, so each is tested on a plain traitlets Config. Last,
check_spawner_config refuses DockerSpawner settings that GoldenSpawner does not use.

Secrets rule: a database URL (it may hold a password) and generated passwords live in 0600
files in a 0700 state directory and reach the service by file (GOLDENHUB_DB_URL_FILE), never
through a service's environment, which JupyterHub stores in its database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hub_ext import contract, i18n, paths
from hub_ext.credentials import ensure_secrets, write_private
from hub_ext.usage import culling_config
from hub_ext.ssh import config as ssh_config
from spawner import swarm_config

DB_URL_FILE = "goldenhub-db-url"  # in the state directory, 0600
SETTINGS_FILE = "goldenhub.yaml"  # in the state directory: the admin's choices (login method, LMS)
SERVICE_PASSED_ON = ("DOCKER_HOST", contract.HELPER_IMAGE_ENV, "GOLDENHUB_IMAGE_PREFIXES", "GOLDENHUB_DATASET_ROOTS",
                     "PIP_CERT", "GOLDENHUB_SESSIONS_EVERY", "GOLDENHUB_SESSIONS_RATE", "GOLDENHUB_SESSIONS_NOW_FILE",
                     "GOLDENHUB_BACKEND", "GOLDENHUB_SWARM_DOCKER_HOST")  # a publish pre-pulls on the swarm's nodes

# How people log in (GOLDENHUB_AUTH, else `auth:` in state/goldenhub.yaml, else local):
# local: accounts from rosters, each sets a password at first login (hub_ext.accounts.local);
# lti:   launches from the LMS, LTI 1.3 (hub_ext.accounts.lti);
# demo:  one shared class password, any username (only `goldenhub up`'s first run chooses it).
AUTH_MODES = ("local", "lti", "demo")
LTI_KEYS = ("issuer", "client_id", "authorize_url", "jwks_url", "username_key")


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
    auth: str = "local"  # one of AUTH_MODES
    lti: dict[str, str] = field(default_factory=dict)  # LTI_KEYS: the LMS platform's registration
    min_password_length: int = 8  # local accounts
    # The platform's default language (GOLDENHUB_LANGUAGE, else `language:` in
    # state/goldenhub.yaml): en or zh_CN. A browser's own choice or Accept-Language wins.
    language: str = "en"
    # HTTPS on the hub's public address: certificate and key files (GOLDENHUB_SSL_CERT and
    # GOLDENHUB_SSL_KEY, else ssl_cert/ssl_key in state/goldenhub.yaml); both or neither.
    ssl_cert: str = ""
    ssl_key: str = ""
    # Idle culling (hub_ext.usage.culling_config): how often the culler and the keeper look
    # (GOLDENHUB_CULL_EVERY, seconds), how long before a cull the student is warned
    # (GOLDENHUB_CULL_WARN_MINUTES), the GPU utilisation in percent that counts as busy
    # (GOLDENHUB_BUSY_UTILISATION), a JSON file of fed GPU readings instead of NVML
    # (GOLDENHUB_GPU_LOAD_FILE), and, for tests only, the seconds in a timeout's "minute"
    # (GOLDENHUB_CULL_UNIT_SECONDS, 60 in production).
    cull_every: int = 60
    warn_minutes: int = 10
    busy_utilisation: int = 10
    gpu_load_file: str = ""
    cull_unit_seconds: int = 60
    # The service's Prometheus metrics readable without a token (GOLDENHUB_METRICS_PUBLIC=1,
    # else `metrics_public: true` in state/goldenhub.yaml); default: the metrics scope needed.
    metrics_public: bool = False
    # Where publishes push course images (GOLDENHUB_REGISTRY, else `registry:` in
    # state/goldenhub.yaml): host[:port][/path], e.g. 127.0.0.1:5000. Empty: publishing is off
    # and says how to turn it on. Keep this many last published versions per course for
    # rollback whatever their age (GOLDENHUB_PUBLISH_KEEP / `publish_keep:`).
    registry: str = ""
    publish_keep: int = 5
    # Seconds between fetches of a course repository's mirror, which students' starts merge
    # from (GOLDENHUB_COURSEWARE_MIRROR_INTERVAL / `courseware_mirror_interval:`): 60 makes a
    # burst cost one fetch; 0 fetches at every start; negative turns the mirror off.
    courseware_mirror_interval: float = 60.0
    # SSH and SFTP into one's own environment (hub_ext.ssh.config): `ssh: {enabled, port}`,
    # GOLDENHUB_SSH=off, GOLDENHUB_SSH_PORT; what of the environment its service gets.
    ssh_enabled: bool = True
    ssh_port: int = 8022
    ssh_env: dict[str, str] = field(default_factory=dict)
    # The backend (GOLDENHUB_BACKEND / `backend:`): docker (one host) or swarm (a Docker Swarm
    # cluster), and the swarm's keys (GOLDENHUB_SWARM_* / `swarm:`): spawner/swarm_config.py.
    backend: str = "docker"
    swarm: dict[str, str] = field(default_factory=dict)
    # Passed on to the service from the hub's environment (Docker's address, the helper
    # image, the image and dataset rules), as from_env found them.
    service_env: dict[str, str] = field(default_factory=dict)
    # Found by the setup steps: the generated passwords (ensure_state) and the students'
    # network gateway, where the hub listens (ensure_network).
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # never in a log or a test report
    gateway: str = ""

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
        s.service_env = {k: env[k] for k in SERVICE_PASSED_ON if k in env}
        file = read_settings_file(s.state_dir)
        s.auth = env.get("GOLDENHUB_AUTH") or file.get("auth") or s.auth
        if s.auth not in AUTH_MODES:
            raise ValueError(f"auth is {s.auth!r} (GOLDENHUB_AUTH or {s.state_dir / SETTINGS_FILE}); "
                             f"allowed: {', '.join(AUTH_MODES)}")
        lti = file.get("lti") if isinstance(file.get("lti"), dict) else {}
        s.lti = {k: str(env.get(f"GOLDENHUB_LTI_{k.upper()}") or lti.get(k) or "") for k in LTI_KEYS}
        s.min_password_length = int(env.get("GOLDENHUB_MIN_PASSWORD_LENGTH") or file.get("min_password_length")
                                    or s.min_password_length)
        s.language = str(env.get("GOLDENHUB_LANGUAGE") or file.get("language") or s.language)
        if i18n.normalize(s.language) is None:
            raise ValueError(f"language is {s.language!r} (GOLDENHUB_LANGUAGE or {s.state_dir / SETTINGS_FILE}); "
                             f"allowed: {', '.join(i18n.LANGUAGES)}")
        s.language = i18n.normalize(s.language)
        s.ssl_cert = str(env.get("GOLDENHUB_SSL_CERT") or file.get("ssl_cert") or "")
        s.ssl_key = str(env.get("GOLDENHUB_SSL_KEY") or file.get("ssl_key") or "")
        check_tls(s)
        culling_config.read_culling(s, env)
        ssh_config.read_ssh(s, env, file)
        swarm_config.read_swarm(s, env, file)
        public = env.get("GOLDENHUB_METRICS_PUBLIC") or file.get("metrics_public") or False
        s.metrics_public = str(public).strip().lower() in ("1", "true", "yes")
        s.registry = str(env.get("GOLDENHUB_REGISTRY") or file.get("registry") or "").strip()
        keep = env.get("GOLDENHUB_PUBLISH_KEEP") or file.get("publish_keep") or s.publish_keep
        try:
            s.publish_keep = int(keep)
        except (TypeError, ValueError):
            raise ValueError(f"publish_keep is {keep!r} (GOLDENHUB_PUBLISH_KEEP or {s.state_dir / SETTINGS_FILE}); "
                             "give a whole number of versions, at least 1") from None
        if s.publish_keep < 1:
            raise ValueError(f"publish_keep is {s.publish_keep}; keep at least 1 published version per course")
        s.courseware_mirror_interval = read_mirror_interval(env, file, s)
        return s


def read_mirror_interval(env, file: dict, s: Settings) -> float:
    raw = env.get("GOLDENHUB_COURSEWARE_MIRROR_INTERVAL")
    if raw is None or raw == "":
        raw = file.get("courseware_mirror_interval", s.courseware_mirror_interval)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")) or value > 86400:
        raise ValueError(f"courseware_mirror_interval is {raw!r} (GOLDENHUB_COURSEWARE_MIRROR_INTERVAL or "
                         f"{s.state_dir / SETTINGS_FILE}); give seconds between fetches, 0..86400 "
                         "(0: fetch at every start), or -1 to turn the mirror off")
    return value


def check_tls(s: Settings) -> None:
    """Refuse (ValueError, one sentence) a half or unreadable HTTPS setting, and a bind URL
    whose scheme does not match it: the hub must never serve plain HTTP where HTTPS was
    asked for, nor claim https:// without a certificate."""
    where = f"GOLDENHUB_SSL_CERT/GOLDENHUB_SSL_KEY or ssl_cert/ssl_key in {s.state_dir / SETTINGS_FILE}"
    if bool(s.ssl_cert) != bool(s.ssl_key):
        raise ValueError(f"HTTPS needs both a certificate and a key file ({where}); only one is set")
    for what, name in (("certificate", s.ssl_cert), ("key", s.ssl_key)):
        if name and not (os.path.isfile(name) and os.access(name, os.R_OK)):
            problem = "cannot be read by this user" if os.path.isfile(name) else "does not exist"
            raise ValueError(f"the HTTPS {what} file {name} {problem}; fix the path ({where}) or make one with "
                             "`goldenhub tls self-signed` for a trial")
    https = s.bind_url.startswith("https://")
    if s.ssl_cert and not https:
        raise ValueError(f"a certificate is set but GOLDENHUB_BIND_URL is {s.bind_url}: "
                         "use https://ADDRESS:PORT (e.g. https://0.0.0.0:443)")
    if https and not s.ssl_cert:
        raise ValueError(f"GOLDENHUB_BIND_URL is {s.bind_url} but no certificate is set ({where}); "
                         "behind a reverse proxy that ends HTTPS, bind the hub to http://127.0.0.1:PORT")


def read_settings_file(state_dir: Path) -> dict:
    """The admin's settings in state/goldenhub.yaml ({} when there is none); a file that is
    not a YAML mapping stops the start with a sentence naming it."""
    import yaml

    path = state_dir / SETTINGS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"{path} cannot be read ({e}); fix or remove it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a YAML mapping such as `auth: local`")
    return data


def ensure_state(s: Settings) -> dict[str, str]:
    """Make the state directory private and its secrets present; returns the secrets
    (and keeps them in s.secrets for update_auth).

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
    secrets = s.secrets = ensure_secrets(s.state_dir)
    if s.db_url_file is None and s.db_url != Settings.default_db_url(s.state_dir):
        s.db_url_file = s.state_dir / DB_URL_FILE
        write_private(s.db_url_file, s.db_url + "\n")
    elif s.db_url_file is None:
        (s.state_dir / DB_URL_FILE).unlink(missing_ok=True)  # back on the default: no stale URL
    return secrets


def ensure_network(s: Settings) -> str:
    """Create the students' Docker network if missing; its gateway (kept in s.gateway) is
    the host as containers see it, where the hub listens."""
    import docker

    from spawner.network import ensure_network as ensure_docker_network

    s.gateway = ensure_docker_network(docker.from_env(), s.network)
    return s.gateway


def update_hub(c, s: Settings) -> None:
    c.JupyterHub.bind_url = s.bind_url
    c.JupyterHub.db_url = f"sqlite:///{s.state_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(s.state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(s.state_dir / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(s.state_dir / "jupyterhub-proxy.pid")
    # The proxy's API stays on loopback: students must never reach it.
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.JupyterHub.cleanup_servers = False  # a hub restart leaves students' servers running
    if s.ssl_cert:  # HTTPS on the public address (from_env checked both files are readable)
        c.JupyterHub.ssl_cert = s.ssl_cert
        c.JupyterHub.ssl_key = s.ssl_key


def update_auth(c, s: Settings) -> None:
    """The login method the settings chose (AUTH_MODES)."""
    if not s.secrets.get("student_password") or not s.secrets.get("admin_password"):
        raise RuntimeError("Settings hold no generated passwords: call ensure_state(settings) before the "
                           "appliers (jupyterhub_config.py does)")
    c.Authenticator.admin_users = set(s.admin_users)
    c.JupyterHub.template_vars.update({"goldenhub_auth": s.auth})
    if s.auth == "local":
        from hub_ext.accounts.local import update_local

        update_local(c, s)
    elif s.auth == "lti":
        from hub_ext.accounts.lti import update_lti

        update_lti(c, s)
    else:
        update_demo(c, s)


def update_demo(c, s: Settings) -> None:
    """Demo mode: JupyterHub's shared-password authenticator with the generated passwords;
    any username with the class password (the login page says so)."""
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = s.secrets["student_password"]
    c.SharedPasswordAuthenticator.admin_password = s.secrets["admin_password"]
    c.Authenticator.allow_all = True


def update_spawner(c, s: Settings) -> None:
    if not s.gateway:
        raise RuntimeError("Settings hold no network gateway: call ensure_network(settings) before the "
                           "appliers (jupyterhub_config.py does)")
    gateway = s.gateway
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
    c.GoldenSpawner.courseware_mirror_interval = s.courseware_mirror_interval
    # Admission is GoldenSpawner's queue (concurrent_starts); the hub's own limit only
    # guards against runaway load, far above a class.
    c.JupyterHub.concurrent_spawn_limit = 1000
    if s.backend == "swarm":
        swarm_config.update_swarm(c, s)


def update_branding(c, s: Settings) -> None:
    """Hub pages show the current logo and favicon (uploads apply without a restart)."""
    from hub_ext.branding.handlers import make_handlers, template_versions
    from hub_ext.branding.store import TEMPLATES_DIR

    c.JupyterHub.template_paths.prepend([str(TEMPLATES_DIR)])
    c.JupyterHub.extra_handlers.extend(make_handlers(s.state_dir))
    c.JupyterHub.template_vars.update({"goldenhub_branding": template_versions(s.state_dir)})


def update_i18n(c, s: Settings) -> None:
    """The hub's pages in the visitor's language (hub_ext.i18n.hub): the per-request language
    transform, gettext in the hub's templates, the nav bar's Course admin link, the default."""
    from hub_ext.i18n.hub import course_admin_var, make_transforms

    i18n.set_default(s.language)
    hub = c.JupyterHub
    options = dict(hub.jinja_environment_options) if "jinja_environment_options" in hub else {}
    extensions = list(options.get("extensions", []))
    for extension in ("hub_ext.i18n.jinja.GoldenhubI18n", "hub_ext.i18n.hub.HubFilters"):
        if extension not in extensions:
            extensions.append(extension)
    options["extensions"] = extensions
    c.JupyterHub.jinja_environment_options = options
    settings = dict(hub.tornado_settings) if "tornado_settings" in hub else {}
    settings["transforms"] = make_transforms(settings)
    c.JupyterHub.tornado_settings = settings
    c.JupyterHub.template_vars.update({"goldenhub_course_admin": course_admin_var,
                                       "goldenhub_default_language": s.language})


GOLDENHUB_SCOPES = {
    "custom:goldenhub:templates": {"description": "Create, edit and roll back environment templates."},
    "custom:goldenhub:reset": {"description": "Reset students' environments and manage their backups; "
                               "filter with !group=<course group> for a course's instructors."},
    "custom:goldenhub:branding": {"description": "Upload the platform's logo and favicon."},
    "custom:goldenhub:enrol": {"description": "Change a course's enrolment (roster import, unenrol) and close "
                               "its term; filter with !group=course:<course id> for one course."},
    "custom:goldenhub:accounts": {"description": "Reset the passwords of local accounts (admins only: never "
                                  "filtered, since a password reset hands over the whole account)."},
    "custom:goldenhub:publish": {"description": "Publish a course's golden image, roll it back and restart idle "
                                 "servers on it; filter with !group=course:<course id> for one course."},
    "custom:goldenhub:metrics": {"description": "Read the platform's Prometheus metrics at "
                                 "/services/goldenhub/metrics (give a scraper a token with only this scope)."},
}


def update_service(c, s: Settings) -> None:
    """The goldenhub service (API and pages) under /services/goldenhub/, and its roles."""
    import sys

    env = {
        "GOLDENHUB_STATE_DIR": str(s.state_dir),
        "GOLDENHUB_COURSES_DIR": str(s.courses_dir),
        "GOLDENHUB_PREFIX": s.name_prefix,
        "GOLDENHUB_AUTH": s.auth,
        "GOLDENHUB_LANGUAGE": s.language,
        "GOLDENHUB_METRICS_PUBLIC": "1" if s.metrics_public else "0",
        "GOLDENHUB_REGISTRY": s.registry,
        "GOLDENHUB_PUBLISH_KEEP": str(s.publish_keep),
    }
    if s.db_url_file:  # by file: never the URL itself, which may hold a password
        env["GOLDENHUB_DB_URL_FILE"] = str(s.db_url_file)
    env.update(s.service_env)
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
         # admin:users and admin:groups: a roster creates accounts and course groups;
         # custom:goldenhub:accounts: the hub's password-reset endpoint answers the service.
         "scopes": ["list:users", "read:users", "read:groups", "admin:servers", "admin:server_state",
                    "admin:users", "admin:groups", "custom:goldenhub:accounts"]},
        {"name": "goldenhub-admin", "users": list(s.admin_users), "scopes": list(GOLDENHUB_SCOPES)},
    ]


def apply_all(c, s: Settings) -> Settings:
    """Every applier, in order, on settings the setup steps (ensure_state, ensure_network) filled."""
    update_hub(c, s)
    update_auth(c, s)
    update_spawner(c, s)
    update_branding(c, s)
    update_i18n(c, s)
    update_service(c, s)
    from hub_ext.usage.warnings_hub import update_warnings

    update_warnings(c, s)  # students' warnings before a stop: hub home page, JupyterLab
    culling_config.update_culling(c, s)
    ssh_config.update_ssh(c, s)
    return s


# DockerSpawner (and Spawner) settings that GoldenSpawner does not use, with the reason: its
# create_object builds the container from the template alone (spawner/container.py), and
# its names come from the contract. Refused at hub start rather than silently ignored.
TEMPLATE_SETS = ("environment templates set the image, CPU, memory, GPUs and mounts "
                 "(courses/*.yaml, or templates edited on the service's admin page)")
NAMES_FROM_PREFIX = "container and volume names come from GoldenSpawner.name_prefix"
IGNORED_SPAWNER_SETTINGS = {
    "image": TEMPLATE_SETS, "container_image": TEMPLATE_SETS,
    "allowed_images": TEMPLATE_SETS, "image_whitelist": TEMPLATE_SETS,
    "volumes": TEMPLATE_SETS, "read_only_volumes": TEMPLATE_SETS, "mounts": TEMPLATE_SETS,
    "format_volume_name": TEMPLATE_SETS,
    "mem_limit": TEMPLATE_SETS, "cpu_limit": TEMPLATE_SETS,
    "mem_guarantee": TEMPLATE_SETS, "cpu_guarantee": TEMPLATE_SETS,
    "extra_host_config": TEMPLATE_SETS, "extra_create_kwargs": TEMPLATE_SETS, "links": TEMPLATE_SETS,
    "name_template": NAMES_FROM_PREFIX, "prefix": NAMES_FROM_PREFIX,
    "container_name_template": NAMES_FROM_PREFIX, "container_prefix": NAMES_FROM_PREFIX,
}
SPAWNER_SECTIONS = ("Spawner", "DockerSpawner", "GoldenSpawner", "SwarmSpawner", "GoldenSwarmSpawner")


def refused_spawner_settings(c) -> list[str]:
    """One sentence per configured setting that GoldenSpawner would ignore (none when the
    configuration switched to another spawner, as the stock side of the benchmark does)."""
    spawner = c["JupyterHub"].get("spawner_class") if "JupyterHub" in c else None
    name = spawner if isinstance(spawner, str) else getattr(spawner, "__name__", "")
    if name not in ("golden", "goldenhub-swarm") and not name.endswith(("GoldenSpawner", "GoldenSwarmSpawner")):
        return []
    found = []
    for section in SPAWNER_SECTIONS:
        if section not in c:  # (reading c.X would create the section)
            continue
        for name in sorted(set(c[section]) & set(IGNORED_SPAWNER_SETTINGS)):
            found.append(f"c.{section}.{name} is not used by goldenhub: {IGNORED_SPAWNER_SETTINGS[name]}. "
                         "Remove it from the hub's configuration.")
    return found


def check_spawner_config(c) -> None:
    """Stop the hub's start (jupyterhub_config.py calls this last) on a setting it would ignore."""
    refused = refused_spawner_settings(c)
    if refused:
        raise SystemExit("goldenhub refuses to start:\n" + "\n".join(refused))
