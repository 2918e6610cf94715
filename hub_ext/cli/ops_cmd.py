"""Operating the platform: `goldenhub down`, `status`, `install-service` and `tls self-signed`.

Rules:
- Every running part is found through its pid file in the state directory (the hub's
  jupyterhub.pid, the proxy's jupyterhub-proxy.pid, the service's goldenhub-service.pid, the
  sample git server's git/git-daemon.pid), and a pid counts as ours only when its command
  line is that part's program (and, for the git server, this state directory's repos). A pid
  file naming a dead process or another program is stale: removed and reported, and the
  process it names is never signalled.
- `down` stops the hub, which stops its proxy and service; `down` then checks both are gone
  and stops a leftover itself. Students' servers keep running unless --stop-servers, which
  stops them through the hub's API first (their homes are volumes and stay).
- `status` exits 0 when the hub runs and 3 when it does not, as `systemctl status` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from hub_ext import contract, procstat, samples
from hub_ext.cli import ops_files
from hub_ext.cli.language import pad, text_width
from hub_ext.hubconfig import Settings
from hub_ext.i18n import N_, _, ngettext

# Seconds a part gets to stop on SIGTERM before SIGKILL. The hub stops its managed services one
# by one, JupyterHub giving each up to 20 s (SIGINT 10, SIGTERM 5, SIGKILL 5): with three (the
# goldenhub service, the idle culler, SSH) a loaded machine can need 60 s before the proxy's turn.
STOP_WAIT = 90.0
SERVER_STOP_WAIT = 180.0  # seconds for students' servers to stop through the hub
DOWN_EXIT = 3  # `status` when the hub is not running (systemctl's "not running")


@dataclass(frozen=True)
class Part:
    name: str
    pid_file: str  # relative to the state directory
    program: str  # a word of the command line that marks the part's program

    def owns(self, pid: int, state_dir: Path) -> bool:
        argv = cmdline(pid)
        if not argv:
            return False
        if self.program == "git-daemon":  # only the git server of this state directory's repos
            return (any(os.path.basename(a) == "git-daemon" for a in argv[:2])
                    and f"--base-path={state_dir / 'git'}" in argv)
        if self.program == "hub_ext.service":
            return "hub_ext.service" in argv
        return any(os.path.basename(a) == self.program for a in argv[:3])


HUB = Part(N_("hub"), "jupyterhub.pid", "jupyterhub")
PROXY = Part(N_("proxy"), "jupyterhub-proxy.pid", "configurable-http-proxy")
SERVICE = Part(N_("goldenhub service"), "goldenhub-service.pid", "hub_ext.service")
GIT = Part(N_("sample git server"), "git/git-daemon.pid", "git-daemon")
PARTS = (HUB, PROXY, SERVICE, GIT)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def read_pid(path: Path) -> int | None:
    """The pid a pid file names (the first word: the service's file also names its hub)."""
    try:
        words = path.read_text().split()
        return int(words[0]) if words and len(words[0]) < 12 else None
    except (OSError, ValueError):
        return None


def find(part: Part, state_dir: Path, clean: bool = True) -> tuple[int | None, str]:
    """(pid, "") for a running part; (None, why) for a stale pid file (removed when `clean`);
    (None, "") when there is none."""
    path = state_dir / part.pid_file
    if not path.exists():
        return None, ""
    pid = read_pid(path)
    if pid and procstat.alive(pid) and part.owns(pid, state_dir):
        return pid, ""
    if pid is None:
        why = (_("removed the unreadable pid file %(file)s", file=path) if clean else
               _("found the unreadable pid file %(file)s", file=path))
    elif procstat.alive(pid):
        why = (_("removed the stale pid file %(file)s: pid %(pid)d is another program, left running",
                 file=path, pid=pid) if clean else
               _("found the stale pid file %(file)s: pid %(pid)d is another program, left running", file=path, pid=pid))
    else:
        why = (_("removed the stale pid file %(file)s: pid %(pid)d is not running", file=path, pid=pid) if clean else
               _("found the stale pid file %(file)s: pid %(pid)d is not running", file=path, pid=pid))
    if clean:
        path.unlink(missing_ok=True)
    return None, why


def running_hub(state_dir: Path) -> int | None:
    """The pid of this state directory's running hub (a stale pid file is removed)."""
    return find(HUB, state_dir)[0]


def stop_pid(pid: int, wait: float = STOP_WAIT) -> bool:
    """SIGTERM, then SIGKILL after `wait`; True when the process is gone."""
    for sig, bound in ((signal.SIGTERM, wait), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if not procstat.alive(pid):
                return True
            time.sleep(0.2)
    return not procstat.alive(pid)


def local_url(bind_url: str) -> str:
    """The bind URL as reached from this machine (a wildcard address becomes loopback)."""
    parts = urlsplit(bind_url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def answers(url: str, timeout: float = 5.0) -> bool:
    """Whether GET url answers 200. Certificates are not checked: this asks our own hub on
    this machine whether it is up, and a trial's self-signed certificate must not hide it."""
    import requests
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    try:
        return requests.get(url, timeout=timeout, verify=False).status_code == 200
    except requests.RequestException:
        return False


def running_servers(prefix: str) -> int | None:
    """Students' running containers of this platform (None when Docker cannot be reached)."""
    import docker

    try:
        found = docker.from_env().containers.list(filters={"label": contract.LABEL_USER, "name": f"{prefix}-"})
    except docker.errors.DockerException:
        return None
    return sum(1 for c in found if c.name.startswith(f"{prefix}-"))


def servers(count: int) -> str:
    return ngettext("%(num)d student server", "%(num)d student servers", count)


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as e:
        sys.exit(_("goldenhub: %(problem)s", problem=e))


# --- down ------------------------------------------------------------------------------------------

async def _stop_servers(api_url: str, token: str) -> None:
    from hub_ext.hubclient import HubAPI

    hub = HubAPI(api_url, token)
    stopping = []
    for user in await hub.items("/users?state=active"):
        for server in user.get("servers") or {}:
            name = quote(user["name"], safe="")
            path = f"/users/{name}/servers/{quote(server, safe='')}" if server else f"/users/{name}/server"
            await hub.request("DELETE", path)
            stopping.append(user["name"])
    deadline = time.monotonic() + SERVER_STOP_WAIT
    while stopping and time.monotonic() < deadline:
        active = {u["name"] for u in await hub.items("/users?state=active") if u.get("servers")}
        stopping = [name for name in stopping if name in active]
        await asyncio.sleep(1)
    if stopping:
        raise RuntimeError(_("the servers of %(users)s did not stop within %(seconds)d s; see `goldenhub servers list`",
                             users=", ".join(sorted(set(stopping))), seconds=SERVER_STOP_WAIT))


def stop_servers(s: Settings, token: str | None) -> str:
    """Stop every student's server through the hub; returns what it did (RuntimeError: why not)."""
    from hub_ext.hubclient import HubAPIError

    count = running_servers(s.name_prefix)
    if count == 0:
        return _("no student servers were running")
    if not token:
        raise RuntimeError(_("--stop-servers needs an admin's API token: make one at %(url)s and set "
                             "JUPYTERHUB_API_TOKEN (or pass --token)", url=f"{s.bind_url}/hub/token"))
    try:
        asyncio.run(_stop_servers(local_url(s.bind_url) + "/hub/api", token))
    except HubAPIError as e:
        raise RuntimeError(_("the hub refused to stop the servers (%(problem)s); is the token an admin's?",
                             problem=e)) from None
    return _("stopped %(servers)s through the hub; their homes are kept", servers=servers(count))


def down(args: argparse.Namespace) -> int:
    s = settings()
    said: list[str] = []
    hub_pid, why = find(HUB, s.state_dir)
    said += [why] if why else []
    stopped_servers = False
    if args.stop_servers:
        if hub_pid is None and running_servers(s.name_prefix):
            print("goldenhub down: " + _("the hub is not running, so students' servers cannot be stopped through "
                                         "it; start it (`goldenhub up --detach`) and run `goldenhub down "
                                         "--stop-servers` again. Nothing was stopped."), file=sys.stderr)
            return 1
        try:
            said.append(stop_servers(s, args.token or os.environ.get("JUPYTERHUB_API_TOKEN")))
            stopped_servers = said[-1] != _("no student servers were running")
        except RuntimeError as e:
            print("goldenhub down: " + _("%(problem)s. Nothing was stopped.", problem=e), file=sys.stderr)
            return 1
    found = {part: find(part, s.state_dir) for part in (PROXY, SERVICE)}
    stopped, failed = stopped_servers, False
    if hub_pid is not None:
        if stop_pid(hub_pid):
            said.append(_("stopped the hub (pid %(pid)d)", pid=hub_pid))
            stopped = True
        else:
            said.append(_("the hub (pid %(pid)d) did not stop, even on SIGKILL", pid=hub_pid))
            failed = True
    for part, (pid, why) in found.items():
        said += [why] if why else []
        if pid is None:
            continue
        if not procstat.alive(pid):
            said.append(_("the %(part)s (pid %(pid)d) stopped with the hub", part=_(part.name), pid=pid))
            stopped = True
        elif stop_pid(pid, 10):  # left behind (a hub killed hard does not stop its children)
            said.append(_("stopped the %(part)s (pid %(pid)d) left behind by the hub", part=_(part.name), pid=pid))
            stopped = True
        else:
            said.append(_("the %(part)s (pid %(pid)d) did not stop, even on SIGKILL", part=_(part.name), pid=pid))
            failed = True
        (s.state_dir / part.pid_file).unlink(missing_ok=True)
    git_pid, why = find(GIT, s.state_dir)
    said += [why] if why else []
    if git_pid is not None:
        if stop_pid(git_pid, 10):
            said.append(_("stopped the sample git server (pid %(pid)d)", pid=git_pid))
            stopped = True
        else:
            said.append(_("the sample git server (pid %(pid)d) did not stop, even on SIGKILL", pid=git_pid))
            failed = True
        (s.state_dir / GIT.pid_file).unlink(missing_ok=True)
    if not args.stop_servers:
        count = running_servers(s.name_prefix)
        if count:
            said.append(ngettext("%(num)d student server keeps running (`goldenhub down --stop-servers` stops it)",
                                 "%(num)d student servers keep running (`goldenhub down --stop-servers` stops them)",
                                 count))
    if not stopped:
        said.append(_("nothing of goldenhub was running (state directory %(state)s)", state=s.state_dir))
    print("\n".join(said))
    return 1 if failed else 0


# --- status ----------------------------------------------------------------------------------------

def status(args: argparse.Namespace) -> int:
    import docker

    s = settings()
    url = local_url(s.bind_url)
    rows = []
    pids = {part: find(part, s.state_dir, clean=False)[0] for part in PARTS}  # status changes nothing
    hub = pids[HUB]
    if hub is None:
        rows.append((_("hub:"), _("not running (`goldenhub up --detach` starts it)")))
    elif answers(f"{url}/hub/api"):
        rows.append((_("hub:"), _("running (pid %(pid)d), answering at %(url)s", pid=hub, url=s.bind_url)))
    else:
        rows.append((_("hub:"), _("running (pid %(pid)d), NOT answering at %(url)s (see jupyterhub.log)", pid=hub,
                                  url=s.bind_url)))
    rows.append((_("proxy:"), _("running (pid %(pid)d)", pid=pids[PROXY]) if pids[PROXY] else _("not running")))
    if pids[SERVICE] is None:
        rows.append((_("goldenhub service:"), _("not running")))
    elif answers(f"{url}/services/goldenhub/api/health"):
        rows.append((_("goldenhub service:"), _("running (pid %(pid)d), healthy", pid=pids[SERVICE])))
    else:
        rows.append((_("goldenhub service:"), _("running (pid %(pid)d), NOT answering api/health", pid=pids[SERVICE])))
    git_port = os.environ.get("GOLDENHUB_GIT_PORT") or str(samples.GIT_PORT)
    if pids[GIT]:
        rows.append((_("sample git server:"), _("running (pid %(pid)d, port %(port)s)", pid=pids[GIT], port=git_port)))
    elif git_port.isdigit() and len(git_port) < 6 and samples.port_open("127.0.0.1", int(git_port)):
        rows.append((_("sample git server:"), _("not this state directory's; port %(port)s is served by another "
                                                "process", port=git_port)))
    else:
        rows.append((_("sample git server:"), _("not running")))
    try:
        version = docker.from_env().version().get("Version", "?")
        rows.append((_("Docker:"), _("reachable (version %(version)s)", version=version)))
    except docker.errors.DockerException as e:
        rows.append((_("Docker:"), _("NOT reachable (%(error)s); students' servers cannot start",
                                     error=e.__class__.__name__)))
    count = running_servers(s.name_prefix)
    rows.append((_("student servers:"), _("unknown (Docker not reachable)") if count is None else
                 _("%(num)d running", num=count)))
    rows.append((_("state directory:"), str(s.state_dir)))
    width = max(text_width(label) for label, _value in rows) + 2
    print("\n".join(pad(label, width) + value for label, value in rows))
    return 0 if hub is not None else DOWN_EXIT


def add_parser(commands) -> None:
    p = commands.add_parser("down", help=_("stop the hub, proxy, goldenhub service and sample git server"))
    p.add_argument("--stop-servers", action="store_true",
                   help=_("also stop every student's server (through the hub, first; homes are kept)"))
    p.add_argument("--token", help=_("an admin's API token for --stop-servers (default: $JUPYTERHUB_API_TOKEN)"))
    p.set_defaults(run=down)
    p = commands.add_parser("status", help=_("what runs: hub, proxy, service, git server, Docker, student servers "
                                             "(exit 0: the hub runs, 3: it does not)"))
    p.set_defaults(run=status)
    ops_files.add_parsers(commands)
