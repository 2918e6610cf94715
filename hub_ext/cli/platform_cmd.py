"""`goldenhub up`: prepare the sample courses' git server and datasets, then run the hub.

Rule for the login method: the first `goldenhub up` on a machine (no state/goldenhub.yaml and
no GOLDENHUB_AUTH) writes state/goldenhub.yaml (0600) with `auth: demo`, so a first try needs
no accounts; the file says how to switch to local accounts or the LMS. Every later start
keeps what the file says. A hub started without `goldenhub up` (`jupyterhub -f
jupyterhub_config.py`) and no file uses local accounts (Settings' default).

Rule for what `up` prints: the URL and the login information come LAST, in a box, after all
build and prepare output (in the foreground, right before the hub's own log; with --detach,
once the hub answers). One hub per state directory: `up` refuses while its hub runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import docker

from hub_ext import paths, samples
from hub_ext.cli import ops_cmd
from hub_ext.catalog.model import CatalogError, load_catalog
from hub_ext.credentials import ensure_secrets
from hub_ext.cli.language import pad, text_width
from hub_ext.hubconfig import SETTINGS_FILE, Settings
from hub_ext.i18n import _
from spawner.network import ensure_network


def prepare(s: Settings) -> str:
    """Everything the hub needs before it starts; returns the student network's gateway."""
    # GOLDENHUB_GIT_PORT moves the sample git server (the sample courses' repo URLs name the
    # default port, so only a second platform on one machine, or a test, sets it).
    port = os.environ.get("GOLDENHUB_GIT_PORT") or str(samples.GIT_PORT)
    if not (port.isdigit() and len(port) < 6 and 0 < int(port) < 65536):
        sys.exit(_("GOLDENHUB_GIT_PORT is %(value)s: it must be a port number (1-65535)", value=repr(port[:20])))
    client = docker.from_env()
    gateway = ensure_network(client, s.network)
    for name in samples.ensure_courseware_repos():
        print(_("created sample courseware repository %(name)s.git", name=name))
    for name in samples.ensure_datasets():
        print(_("installed the sample dataset %(path)s", path=samples.DATASETS_DIR / name))
    if samples.ensure_git_daemon(["127.0.0.1", gateway], port=int(port)):
        print(_("git server for sample courseware listening on %(address)s", address=f"{gateway}:{port}"))
    try:
        catalog = load_catalog(s.courses_dir)
    except CatalogError as e:
        sys.exit(_("The course catalog has errors:") + f"\n{e}")
    missing = []
    for t in catalog.templates.values():
        try:
            client.images.get(t.image)
        except docker.errors.ImageNotFound:
            missing.append(t.image)
    if missing:
        print(_("warning: images not built yet: %(images)s (run `goldenhub images build`)", images=", ".join(missing)))
    return gateway


FIRST_RUN_SETTINGS = """\
# goldenhub's settings, written by the first `goldenhub up`. Restart the hub after a change.
#
# auth: how people log in.
#   demo  - one class password, any username: for trying goldenhub, NOT for real classes
#           (anyone with the password can log in as anyone).
#   local - accounts from rosters (`goldenhub enrol`); each student chooses a password at
#           their first login; the admin logs in with the password in secrets.yaml.
#   lti   - students arrive from the LMS (LTI 1.3); fill in the lti: section below.
auth: demo
# min_password_length: 8        # local accounts
# lti:                          # auth: lti (see the README's LMS section)
#   issuer: https://lms.example.edu
#   client_id: goldenhub
#   authorize_url: https://lms.example.edu/mod/lti/auth.php
#   jwks_url: https://lms.example.edu/mod/lti/certs.php
# HTTPS (with GOLDENHUB_BIND_URL=https://0.0.0.0:443; `goldenhub tls self-signed` makes a trial pair):
# ssl_cert: /etc/goldenhub/tls/goldenhub.crt
# ssl_key: /etc/goldenhub/tls/goldenhub.key
# registry: where `goldenhub images publish` and the instructor's Images page push course
#   images (host[:port][/path]); .ci/setup runs Debian's docker-registry on 127.0.0.1:5000.
#   Remove the line to turn publishing off.
registry: 127.0.0.1:5000
# publish_keep: 5               # published versions kept for rollback by `goldenhub images prune`
"""


def ensure_first_run_settings(state_dir: Path, env=os.environ) -> bool:
    """On the first run (no settings file and no GOLDENHUB_AUTH) write the settings file
    choosing demo mode; returns whether it did. An existing file is never overwritten."""
    if env.get("GOLDENHUB_AUTH"):
        return False
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(state_dir / SETTINGS_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(FIRST_RUN_SETTINGS)
    return True


def login_help(s: Settings, secrets: dict[str, str]) -> str:
    """What `goldenhub up` prints about logging in, for the chosen login method."""
    admins = ", ".join(s.admin_users)
    settings_file = s.state_dir / SETTINGS_FILE
    admin = _("  admin:    user %(admins)s, password in %(file)s (admin_password)", admins=admins,
              file=s.state_dir / "secrets.yaml")
    if s.auth == "demo":
        return (_("  Demo mode: students log in under any name with the class password %(password)s",
                  password=secrets["student_password"]) + "\n" + admin + "\n" +
                _("  WARNING: anyone with the class password can log in as anyone. Not for real classes: set\n"
                  "  `auth: local` (rosters, a password per student) or `auth: lti` (the LMS) in %(file)s\n"
                  "  and restart.", file=settings_file))
    if s.auth == "local":
        return (_("  Local accounts: students in an imported roster log in; each chooses a password at the first login\n"
                  "  (at least %(length)d characters). Import a roster with `goldenhub enrol`.",
                  length=s.min_password_length) + "\n" +
                _("%(admin)s; change it at %(url)s", admin=admin, url=f"{s.bind_url}/hub/auth/change-password"))
    return (_("  LMS (LTI 1.3): students arrive from the LMS (%(issuer)s); the tool's configuration is at %(url)s",
              issuer=s.lti.get("issuer") or _("issuer not set"), url=f"{s.bind_url}/hub/lti13/config") + "\n" + admin)


UP_WAIT = 120.0  # seconds `up --detach` waits for the hub to answer


def box(lines: list[str]) -> str:
    """The lines framed, so that the URL and passwords stand out from the output above."""
    width = max(text_width(line) for line in lines)
    return "\n".join(["+" + "-" * (width + 2) + "+", *(f"| {pad(line, width)} |" for line in lines),
                      "+" + "-" * (width + 2) + "+"])


def login_box(s: Settings, secrets: dict[str, str], running: bool) -> str:
    head = (_("goldenhub is running at %(url)s (login: %(auth)s)", url=s.bind_url, auth=s.auth) if running else
            _("goldenhub is starting at %(url)s (login: %(auth)s)", url=s.bind_url, auth=s.auth))
    return box([head, *login_help(s, secrets).splitlines()])


def start_detached(s: Settings, command: list[str]) -> tuple[int | None, str]:
    """Start the hub in a new session, its output appended to <state>/jupyterhub.log; wait
    (bounded) until it answers. Returns (pid, "") or (None, a sentence with the log's end)."""
    log_path = s.state_dir / "jupyterhub.log"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start = os.lseek(fd, 0, os.SEEK_END)
    with os.fdopen(fd, "ab") as log:
        hub = subprocess.Popen(command, cwd=s.state_dir, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = ops_cmd.local_url(s.bind_url)
    deadline = time.monotonic() + UP_WAIT
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            return None, (_("the hub exited (code %(code)s) while starting.", code=hub.returncode) + "\n"
                          + log_tail(log_path, start))
        if ops_cmd.answers(f"{url}/hub/api", timeout=2):
            while time.monotonic() < deadline and not ops_cmd.answers(f"{url}/services/goldenhub/api/health", 2):
                time.sleep(0.5)  # the hub answers first; its service follows
            return hub.pid, ""
        time.sleep(0.5)
    return None, (_("the hub (pid %(pid)d) did not answer at %(url)s within %(seconds)d s; it is left running "
                    "(`goldenhub status`, `goldenhub down`).", pid=hub.pid, url=s.bind_url, seconds=UP_WAIT)
                  + "\n" + log_tail(log_path, start))


def log_tail(path: Path, start: int, lines: int = 20) -> str:
    with path.open("rb") as f:
        f.seek(start)
        tail = f.read().decode(errors="replace").splitlines()[-lines:]
    return _("Last lines of %(file)s:", file=path) + "\n" + "\n".join(f"  {line}" for line in tail)


def up(args: argparse.Namespace) -> int:
    created = ensure_first_run_settings(paths.state_dir())
    try:
        s = Settings.from_env()
    except ValueError as e:
        sys.exit(f"goldenhub up: {e}")
    running = ops_cmd.running_hub(s.state_dir)
    if running:
        sys.exit("goldenhub up: " + _("a hub of %(state)s already runs (pid %(pid)d) at %(url)s; `goldenhub status` "
                                      "shows it, `goldenhub down` stops it.", state=s.state_dir, pid=running,
                                      url=s.bind_url))
    prepare(s)
    secrets = ensure_secrets(s.state_dir)
    if created:
        print(_("first run: wrote %(file)s choosing demo mode (it says how to switch)",
                file=s.state_dir / SETTINGS_FILE))
    config = str(paths.REPO_ROOT / "jupyterhub_config.py")
    jupyterhub = os.path.join(os.path.dirname(sys.executable), "jupyterhub")
    if args.detach:
        print(_("starting the hub in the background ..."), flush=True)
        pid, problem = start_detached(s, [jupyterhub, "-f", config])
        if pid is None:
            print(f"goldenhub up: {problem}", file=sys.stderr)
            return 1
        print(_("goldenhub runs in the background (pid %(pid)d); log: %(log)s; `goldenhub status` shows it, "
                "`goldenhub down` stops it.", pid=pid, log=s.state_dir / "jupyterhub.log"))
        print(login_box(s, secrets, running=True), flush=True)
        return 0
    print(login_box(s, secrets, running=False), flush=True)
    os.chdir(s.state_dir)
    os.execv(jupyterhub, [jupyterhub, "-f", config])
    return 0


def prepare_only(args: argparse.Namespace) -> int:
    prepare(Settings.from_env())
    return 0


def add_parser(commands) -> None:
    p = commands.add_parser("up", help=_("start the platform (hub, proxy, sample courseware server)"))
    p.add_argument("--detach", action="store_true",
                   help=_("run the hub in the background (log: <state>/jupyterhub.log); return once it answers"))
    p.set_defaults(run=up)
    p = commands.add_parser("prepare", help=_("create the network, sample repos, datasets and git server; do not "
                                              "start the hub"))
    p.set_defaults(run=prepare_only)
