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
from hub_ext.hubconfig import Settings

STOP_WAIT = 60.0  # seconds a part gets to stop on SIGTERM (the hub stops its service and proxy) before SIGKILL
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


HUB = Part("hub", "jupyterhub.pid", "jupyterhub")
PROXY = Part("proxy", "jupyterhub-proxy.pid", "configurable-http-proxy")
SERVICE = Part("goldenhub service", "goldenhub-service.pid", "hub_ext.service")
GIT = Part("sample git server", "git/git-daemon.pid", "git-daemon")
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
    done = "removed" if clean else "found"
    if pid is None:
        why = f"{done} the unreadable pid file {path}"
    elif procstat.alive(pid):
        why = f"{done} the stale pid file {path}: pid {pid} is another program, left running"
    else:
        why = f"{done} the stale pid file {path}: pid {pid} is not running"
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
    return f"{count} student server{'' if count == 1 else 's'}"


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as e:
        sys.exit(f"goldenhub: {e}")


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
        raise RuntimeError(f"the servers of {', '.join(sorted(set(stopping)))} did not stop within "
                           f"{SERVER_STOP_WAIT:.0f} s; see `goldenhub servers list`")


def stop_servers(s: Settings, token: str | None) -> str:
    """Stop every student's server through the hub; returns what it did (RuntimeError: why not)."""
    from hub_ext.hubclient import HubAPIError

    count = running_servers(s.name_prefix)
    if count == 0:
        return "no student servers were running"
    if not token:
        raise RuntimeError("--stop-servers needs an admin's API token: make one at "
                           f"{s.bind_url}/hub/token and set JUPYTERHUB_API_TOKEN (or pass --token)")
    try:
        asyncio.run(_stop_servers(local_url(s.bind_url) + "/hub/api", token))
    except HubAPIError as e:
        raise RuntimeError(f"the hub refused to stop the servers ({e}); is the token an admin's?") from None
    return f"stopped {servers(count)} through the hub; their homes are kept"


def down(args: argparse.Namespace) -> int:
    s = settings()
    said: list[str] = []
    hub_pid, why = find(HUB, s.state_dir)
    said += [why] if why else []
    if args.stop_servers:
        if hub_pid is None and running_servers(s.name_prefix):
            print("goldenhub down: the hub is not running, so students' servers cannot be stopped through it; "
                  "start it (`goldenhub up --detach`) and run `goldenhub down --stop-servers` again. "
                  "Nothing was stopped.", file=sys.stderr)
            return 1
        try:
            said.append(stop_servers(s, args.token or os.environ.get("JUPYTERHUB_API_TOKEN")))
        except RuntimeError as e:
            print(f"goldenhub down: {e}. Nothing was stopped.", file=sys.stderr)
            return 1
    found = {part: find(part, s.state_dir) for part in (PROXY, SERVICE)}
    if hub_pid is not None:
        said.append(f"stopped the hub (pid {hub_pid})" if stop_pid(hub_pid)
                    else f"the hub (pid {hub_pid}) did not stop, even on SIGKILL")
    for part, (pid, why) in found.items():
        said += [why] if why else []
        if pid is None:
            continue
        if not procstat.alive(pid):
            said.append(f"the {part.name} (pid {pid}) stopped with the hub")
        else:  # left behind (a hub killed hard does not stop its children)
            said.append(f"stopped the {part.name} (pid {pid}) left behind by the hub" if stop_pid(pid, 10)
                        else f"the {part.name} (pid {pid}) did not stop, even on SIGKILL")
        (s.state_dir / part.pid_file).unlink(missing_ok=True)
    git_pid, why = find(GIT, s.state_dir)
    said += [why] if why else []
    if git_pid is not None:
        said.append(f"stopped the sample git server (pid {git_pid})" if stop_pid(git_pid, 10)
                    else f"the sample git server (pid {git_pid}) did not stop, even on SIGKILL")
        (s.state_dir / GIT.pid_file).unlink(missing_ok=True)
    if not args.stop_servers:
        count = running_servers(s.name_prefix)
        if count:
            said.append(f"{servers(count)} {'keeps' if count == 1 else 'keep'} running "
                        "(`goldenhub down --stop-servers` stops them)")
    if not any(line.startswith("stopped") or line.endswith("with the hub") for line in said):
        said.append(f"nothing of goldenhub was running (state directory {s.state_dir})")
    print("\n".join(said))
    return 1 if any("did not stop" in line for line in said) else 0


# --- status ----------------------------------------------------------------------------------------

def status(args: argparse.Namespace) -> int:
    import docker

    s = settings()
    url = local_url(s.bind_url)
    lines = []
    pids = {part: find(part, s.state_dir, clean=False)[0] for part in PARTS}  # status changes nothing
    hub = pids[HUB]
    if hub is None:
        lines.append("hub:                not running (`goldenhub up --detach` starts it)")
    else:
        state = "answering" if answers(f"{url}/hub/api") else "NOT answering (see jupyterhub.log)"
        lines.append(f"hub:                running (pid {hub}), {state} at {s.bind_url}")
    lines.append(f"proxy:              running (pid {pids[PROXY]})" if pids[PROXY] else "proxy:              not running")
    if pids[SERVICE] is None:
        lines.append("goldenhub service:  not running")
    else:
        health = "healthy" if answers(f"{url}/services/goldenhub/api/health") else "NOT answering api/health"
        lines.append(f"goldenhub service:  running (pid {pids[SERVICE]}), {health}")
    git_port = os.environ.get("GOLDENHUB_GIT_PORT") or str(samples.GIT_PORT)
    if pids[GIT]:
        lines.append(f"sample git server:  running (pid {pids[GIT]}, port {git_port})")
    elif git_port.isdigit() and len(git_port) < 6 and samples.port_open("127.0.0.1", int(git_port)):
        lines.append(f"sample git server:  not this state directory's; port {git_port} is served by another process")
    else:
        lines.append("sample git server:  not running")
    try:
        version = docker.from_env().version().get("Version", "?")
        lines.append(f"Docker:             reachable (version {version})")
    except docker.errors.DockerException as e:
        lines.append(f"Docker:             NOT reachable ({e.__class__.__name__}); students' servers cannot start")
    count = running_servers(s.name_prefix)
    lines.append(f"student servers:    {'unknown (Docker not reachable)' if count is None else count} running")
    lines.append(f"state directory:    {s.state_dir}")
    print("\n".join(lines))
    return 0 if hub is not None else DOWN_EXIT


def add_parser(commands) -> None:
    p = commands.add_parser("down", help="stop the hub, proxy, goldenhub service and sample git server")
    p.add_argument("--stop-servers", action="store_true",
                   help="also stop every student's server (through the hub, first; homes are kept)")
    p.add_argument("--token", help="an admin's API token for --stop-servers (default: $JUPYTERHUB_API_TOKEN)")
    p.set_defaults(run=down)
    p = commands.add_parser("status", help="what runs: hub, proxy, service, git server, Docker, student servers "
                                           "(exit 0: the hub runs, 3: it does not)")
    p.set_defaults(run=status)
    ops_files.add_parsers(commands)
