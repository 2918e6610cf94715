"""Test helpers: a real jupyterhub process, its REST API, and real git remotes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

from hub_ext import contract
from hub_ext.paths import REPO_ROOT

WAIT_SPAWN = 240  # seconds; a bound on every wait, with a message when it runs out

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "artifacts"  # screenshots kept by CI
# Without these flags Chromium keeps trying to reach Google's services from a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def wait_for(check, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as e:  # the thing may not be up yet
            result, last = None, e
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s (last error: {last})")


@dataclass
class Hub:
    url: str
    token: str
    state_dir: Path
    prefix: str
    process: subprocess.Popen
    log_path: Path

    @property
    def api(self) -> str:
        return f"{self.url}/hub/api"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 60)
        return requests.request(method, self.api + path, headers=headers, **kwargs)

    def ensure_user(self, name: str) -> None:
        r = self.request("GET", f"/users/{name}")
        if r.status_code == 404:
            self.request("POST", f"/users/{name}").raise_for_status()

    def server(self, name: str, server: str = "") -> dict | None:
        r = self.request("GET", f"/users/{name}")
        r.raise_for_status()
        return r.json().get("servers", {}).get(server)

    def start(self, name: str, options: dict | None = None) -> requests.Response:
        self.ensure_user(name)
        return self.request("POST", f"/users/{name}/server", json=options or {})

    def spawn(self, name: str, options: dict | None = None) -> dict:
        """Start a server and wait until it is ready; fails with the hub log on error."""
        r = self.start(name, options)
        assert r.status_code in (201, 202), f"spawn refused: {r.status_code} {r.text}"
        return self.wait_ready(name)

    def wait_ready(self, name: str) -> dict:
        try:
            return wait_for(lambda: (s := self.server(name)) and s.get("ready") and s, WAIT_SPAWN,
                            f"server of {name} becoming ready", interval=1)
        except TimeoutError:
            print(self.log_tail(), file=sys.stderr)
            raise

    def progress_events(self, name: str, timeout: float = WAIT_SPAWN) -> list[dict]:
        """The spawn's progress stream (server-sent events) until it ends."""
        import json

        events = []
        with self.request("GET", f"/users/{name}/server/progress", stream=True,
                          timeout=(10, timeout)) as r:
            if r.status_code != 200:
                return [{"failed": True, "message": r.text}]
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    events.append(event)
                    if event.get("ready") or event.get("failed"):
                        break
        return events

    def spawn_with_progress(self, name: str, options: dict | None = None) -> tuple[requests.Response, list[dict]]:
        """Start a server and read its whole progress stream, as the spawn page does."""
        import threading

        self.ensure_user(name)
        response: list[requests.Response] = []
        poster = threading.Thread(target=lambda: response.append(self.start(name, options)))
        poster.start()
        deadline = time.monotonic() + 60
        events: list[dict] = []
        while time.monotonic() < deadline:
            events = self.progress_events(name)
            not_yet = len(events) == 1 and events[0].get("failed") and (
                "is not starting" in events[0]["message"] or '"status": 404' in events[0]["message"])
            if not not_yet:
                break
            time.sleep(0.05)
        poster.join(120)
        return response[0], events

    def wait_spawn_failure(self, name: str) -> str:
        events = self.progress_events(name)
        assert events and events[-1].get("failed"), f"spawn did not fail: {events}"
        return events[-1]["message"]

    def student_password(self) -> str:
        import yaml

        return yaml.safe_load((self.state_dir / "secrets.yaml").read_text())["student_password"]

    def login(self, name: str) -> requests.Session:
        """A browser-like session of a student logged in with the class password."""
        session = requests.Session()
        page = session.get(f"{self.url}/hub/login", timeout=30)
        xsrf = session.cookies.get("_xsrf", "")
        r = session.post(f"{self.url}/hub/login", timeout=30, data={
            "username": name, "password": self.student_password(), "_xsrf": xsrf}, allow_redirects=True)
        assert r.status_code == 200 and page.status_code == 200, r.text[:500]
        return session

    def options_form(self, name: str) -> str:
        r = self.login(name).get(f"{self.url}/hub/spawn", timeout=30)
        r.raise_for_status()
        return r.text

    def stop(self, name: str) -> None:
        r = self.request("DELETE", f"/users/{name}/server")
        assert r.status_code in (202, 204, 400, 404), r.text
        wait_for(lambda: self.server(name) is None, 120, f"server of {name} stopping", interval=1)

    def container(self, name: str):
        return docker.from_env().containers.get(contract.container_name(self.prefix, name))

    def exec(self, name: str, command: str) -> tuple[int, str]:
        code, out = self.container(name).exec_run(["sh", "-c", command])
        return code, out.decode(errors="replace")

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_hub(state_dir: Path, courses_dir: Path, port: int, prefix: str, token: str,
              extra_config: str = "") -> Hub:
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "test_config.py"
    config.write_text(
        "c.JupyterHub.services.append({'name': 'goldenhub-tests', 'api_token': %r})\n"
        "c.JupyterHub.load_roles.append({'name': 'goldenhub-tests', 'services': ['goldenhub-tests'],"
        " 'scopes': ['admin:users', 'admin:servers', 'access:servers', 'list:users', 'tokens',"
        " 'access:services', 'admin:groups']})\n" % token
        + extra_config
    )
    env = dict(
        os.environ,
        GOLDENHUB_STATE_DIR=str(state_dir),
        GOLDENHUB_COURSES_DIR=str(courses_dir),
        GOLDENHUB_BIND_URL=f"http://127.0.0.1:{port}",
        GOLDENHUB_HUB_PORT=str(port + 1),
        GOLDENHUB_PROXY_API_PORT=str(port + 2),
        GOLDENHUB_SERVICE_PORT=str(port + 3),
        GOLDENHUB_PREFIX=prefix,
        GOLDENHUB_EXTRA_CONFIG=str(config),
    )
    log_path = state_dir / "jupyterhub.log"
    jupyterhub = Path(sys.executable).parent / "jupyterhub"
    process = subprocess.Popen(
        [str(jupyterhub), "-f", str(REPO_ROOT / "jupyterhub_config.py")],
        cwd=state_dir, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )
    hub = Hub(f"http://127.0.0.1:{port}", token, state_dir, prefix, process, log_path)

    def up():
        if process.poll() is not None:
            raise RuntimeError(f"jupyterhub exited with {process.returncode}:\n{hub.log_tail()}")
        return hub.request("GET", "/").status_code == 200

    try:
        wait_for(up, 90, "jupyterhub answering")
    except Exception:
        hub.terminate()
        raise
    return hub


@contextlib.contextmanager
def hub_running(state_dir: Path, courses_dir: Path, port: int, prefix: str, extra_config: str = ""):
    """A hub of its own for the duration: started on a clean prefix; at the end every
    server stopped, the hub terminated and the prefix's containers and volumes removed."""
    import secrets

    remove_docker_objects(prefix)
    hub = start_hub(state_dir, courses_dir, port, prefix, secrets.token_hex(16), extra_config=extra_config)
    try:
        yield hub
    finally:
        for user in hub.request("GET", "/users").json():
            if user.get("servers"):
                hub.request("DELETE", f"/users/{user['name']}/server")
        hub.terminate()
        remove_docker_objects(prefix)


def remove_docker_objects(prefix: str) -> None:
    client = docker.from_env()
    for c in client.containers.list(all=True, filters={"name": f"{prefix}-"}):
        if c.name.startswith(prefix + "-"):
            c.remove(force=True)
    for v in client.volumes.list(filters={"name": f"{prefix}-"}):
        if v.name.startswith(prefix + "-"):
            v.remove(force=True)


class GitRemote:
    """A real git remote: a bare repo served by `git daemon` (with push enabled)."""

    def __init__(self, root: Path, listen: str, port: int):
        self.root, self.listen, self.port = root, listen, port
        root.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
             f"--base-path={self.root}", f"--listen={self.listen}", f"--port={self.port}", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        from hub_ext.samples import port_open

        wait_for(lambda: port_open(self.listen, self.port), 20, "git daemon listening")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def url_from_container(self, repo: str) -> str:
        return f"git://host.docker.internal:{self.port}/{repo}.git"

    def clone(self, repo: str, dest: Path) -> "WorkingCopy":
        subprocess.run(["git", "clone", "-q", str(self.root / f"{repo}.git"), str(dest)], check=True)
        return WorkingCopy(dest)


class WorkingCopy:
    """An instructor's clone of a courseware repo."""

    def __init__(self, path: Path):
        self.path = path

    def commit_and_push(self, files: dict[str, str], message: str) -> None:
        for name, text in files.items():
            (self.path / name).write_text(text)
        git = ["git", "-C", str(self.path), "-c", "user.name=Instructor", "-c", "user.email=i@example.org"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", message], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)


@contextlib.contextmanager
def extra_course(courses_dir: Path, course_id: str, template: str):
    """A course file present for the duration of a test (the spawner reads the catalog
    at every spawn, so no hub restart is needed)."""
    path = courses_dir / f"{course_id}.yaml"
    path.write_text(f"id: {course_id}\ntitle: {course_id}\ntemplates:\n" + textwrap.indent(textwrap.dedent(template), "  "))
    try:
        yield
    finally:
        path.unlink()


def copy_courses(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in (REPO_ROOT / "courses").glob("*.yaml"):
        shutil.copy(f, dest / f.name)
    return dest
