"""Test helpers shared by the test modules (never imported from one test module into
another): a real jupyterhub process and its REST API, the goldenhub service's API, the
`goldenhub` command line, real git remotes, Docker volumes read from inside containers,
tiny real images, and the test PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

from hub_ext import contract, procstat
from hub_ext.paths import REPO_ROOT

WAIT_SPAWN = 240  # seconds; a bound on every wait, with a message when it runs out

# Overridable so that two test runs on one machine do not share ports or containers.
PREFIX = os.environ.get("GOLDENHUB_TEST_PREFIX", "ghtest")
HUB_PORT = int(os.environ.get("GOLDENHUB_TEST_PORT", "18000"))

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

    def enrol(self, name: str, course: str, staff: bool = False) -> None:
        """Put the user in the course's student (or staff) hub group, as a roster would."""
        from hub_ext import contract

        self.ensure_user(name)
        group = contract.staff_group(course) if staff else contract.course_group(course)
        self.request("POST", f"/groups/{group}")  # 201, or 409 when it exists
        self.request("POST", f"/groups/{group}/users", json={"users": [name]}).raise_for_status()

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

    def secrets(self) -> dict:
        """The generated secrets of this hub (class and admin passwords among them)."""
        import yaml

        return yaml.safe_load((self.state_dir / "secrets.yaml").read_text())

    def student_password(self) -> str:
        return self.secrets()["student_password"]

    def admin_password(self) -> str:
        return self.secrets()["admin_password"]

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
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        kill_leftovers(self.state_dir)


def kill_leftovers(state_dir: Path) -> None:
    """A hub killed before its cleanup leaves its proxy and managed services running, on ports
    the next hub of the same ports needs: end the hub's own kinds of process (proxy, services,
    culler) that still run with this hub's GOLDENHUB_STATE_DIR, which they inherited."""
    marker = f"GOLDENHUB_STATE_DIR={state_dir}".encode()
    kinds = (b"configurable-http-proxy", b"hub_ext.", b"jupyterhub_idle_culler", b"jupyterhub")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if any(k in cmdline for k in kinds) and marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def start_hub(state_dir: Path, courses_dir: Path, port: int, prefix: str, token: str,
              extra_config: str = "", env: dict[str, str] | None = None) -> Hub:
    """A real jupyterhub with this checkout's jupyterhub_config.py; `env` is added to the
    environment of the hub (and so of its service) only."""
    env_overrides = env
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
        GOLDENHUB_SSH_PORT=str(port + 27),  # own SSH port: +27 is in no other test hub's base..base+4
        GOLDENHUB_PREFIX=prefix,
        GOLDENHUB_EXTRA_CONFIG=str(config),
        GOLDENHUB_AUTH="demo",  # most tests log in many names with the class password; others set env
    )
    env.update(env_overrides or {})
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
def hub_running(state_dir: Path, courses_dir: Path, port: int, prefix: str, extra_config: str = "",
                env: dict[str, str] | None = None):
    """A hub of its own for the duration: started on a clean prefix; at the end every
    server stopped, the hub terminated and the prefix's containers and volumes removed."""
    import secrets

    remove_docker_objects(prefix)
    hub = start_hub(state_dir, courses_dir, port, prefix, secrets.token_hex(16), extra_config=extra_config, env=env)
    try:
        yield hub
    finally:
        tear_down(hub, prefix)


def tear_down(hub: Hub, prefix: str, tolerate_unanswered: bool = False) -> None:
    """Ask the hub to stop every server, terminate it, remove the prefix's containers and
    volumes. A hub that no longer answers raises, unless `tolerate_unanswered` (benchmarks
    tearing down after a failure), which goes on to terminate and remove."""
    try:
        for user in hub.request("GET", "/users").json():
            if user.get("servers"):
                hub.request("DELETE", f"/users/{user['name']}/server")
    except (requests.RequestException, ValueError):
        if not tolerate_unanswered:
            raise
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
    path.write_text(f"id: {course_id}\ntitle: {course_id}\naccess: everyone\ntemplates:\n" + textwrap.indent(textwrap.dedent(template), "  "))
    try:
        yield
    finally:
        path.unlink()


def enrolled_only_course(courses_dir: Path, course: str, title: str = "",
                         image: str = "goldenhub/course-intro-python:latest") -> None:
    """A course file whose one CPU template is for the course's enrolled members only
    (access: enrolled, the default): `<course>-cpu`."""
    (courses_dir / f"{course}.yaml").write_text(textwrap.dedent(f"""\
        id: {course}
        title: {title or f"Course {course}"}
        templates:
          - id: {course}-cpu
            title: {course} (CPU)
            image: {image}
            gpus: 0
            cpu: 1
            memory: 512M
        """))


def copy_courses(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in (REPO_ROOT / "courses").glob("*.yaml"):
        shutil.copy(f, dest / f.name)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_pid(hub: Hub) -> int:
    """The goldenhub service process started by this hub (found in /proc, not trusted from a file)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hub_ext.service" in cmdline and procstat.parent_of(int(entry)) == hub.process.pid:
            return int(entry)
    raise AssertionError(f"no goldenhub service process of hub pid {hub.process.pid}")


# --- the `goldenhub` command line -------------------------------------------------------------


def goldenhub(*args: str, env: dict[str, str | None] | None = None, stdin: str = "",
              timeout: float = 600, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """Run the real command line as an admin at a terminal does: `env` adds to (a None value
    removes from) this process's environment; `stdin` is all it can read (never a terminal,
    so a prompt cannot hang a test). Its output is printed, so that a failing test shows it;
    a traceback is never what an admin should see."""
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    result = subprocess.run([sys.executable, "-m", "hub_ext.cli", *args], cwd=cwd, env=environment, input=stdin,
                            capture_output=True, text=True, timeout=timeout)
    print(f"$ goldenhub {' '.join(args)} -> {result.returncode}", result.stdout[-20000:], result.stderr[-5000:],
          sep="\n")
    assert "Traceback" not in result.stderr, result.stderr
    return result


# --- the goldenhub service's REST API ---------------------------------------------------------


class ServiceClient:
    """The service's API under /services/goldenhub/api, with a token (or none)."""

    def __init__(self, hub: Hub, token: str | None = None):
        self.base = f"{hub.url}/services/goldenhub/api"
        self.headers = {"Authorization": f"token {token}"} if token else {}

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.base + path, headers={**self.headers, **kwargs.pop("headers", {})},
                                timeout=300, **kwargs)


def user_token(hub: Hub, name: str, note: str = "test", scopes: list[str] | None = None) -> str:
    """A new API token of `name` (created as a user if needed), with all of the user's
    scopes or only `scopes`."""
    hub.ensure_user(name)
    r = hub.request("POST", f"/users/{name}/tokens", json={"note": note, **({"scopes": scopes} if scopes else {})})
    assert r.status_code == 201, r.text
    return r.json()["token"]


# A template that admins create at runtime through the API.
RUNTIME_TEMPLATE = {"id": "rt-cpu", "title": "Runtime CPU", "image": "goldenhub/course-intro-python:latest",
                    "gpus": 0, "cpu": 1, "memory": "512M",
                    "datasets": [{"name": "iris", "source": "/srv/goldenhub/datasets/iris"}]}


# --- Docker volumes, read and written from inside containers -----------------------------------

HELPER = "goldenhub/os-base:bookworm"  # the offline base image: sh, find, sha256sum
RESET_USER, RESET_COURSE = "alice", "intro-python"  # the `home` fixture's

# Written and removed by Jupyter and git themselves at start/stop/pull, not the student's.
NOT_STUDENT_FILES = ("./.local/share/jupyter/runtime/", "./lab/.git/")

# Files of a student's home: normal, hidden, nested, a symlink, a private file of uid 1000.
SMALL_HOME = r"""
cd /h
echo 'my notes' > notes.txt
echo secret > .hidden
mkdir -p .config/app work/sub
echo '{"theme": "dark"}' > .config/app/settings.json
printf 'print(1)\n' > work/sub/a.py
ln -s work/sub/a.py link-to-a
echo 'private key' > private.key
chown -R 1000:100 /h
chmod 0600 private.key
touch -d '2020-02-02 02:02:02' notes.txt
"""
# Independent of resets' own manifest: every path's type/mode/owner/size/mtime/link target
# (directory sizes left out) and every regular file's sha256.
MANIFEST = r"""cd /h && { find . -type d -printf 'd %m %U:%G %T@ %p\n'; \
find . ! -type d -printf '%y %m %U:%G %s %T@ %p -> %l\n'; } | sort && \
find . -type f -exec sha256sum {} + | sort -k2"""


def volume_files(volume: str) -> str:
    """sha256 and path of every file in a volume, read from inside a container."""
    out = docker.from_env().containers.run(
        HELPER, ["sh", "-c", "cd /v && find . -type f | sort | xargs -r sha256sum"],
        volumes={volume: {"bind": "/v", "mode": "ro"}}, remove=True)
    return "".join(line + "\n" for line in out.decode().splitlines()
                   if not line.split("  ", 1)[-1].startswith(NOT_STUDENT_FILES))


def run_in_volumes(client, script: str, volumes: dict[str, str], image: str = HELPER, mode: str = "rw") -> str:
    """Run a root shell script with volumes mounted (name → path); its stdout, or fail."""
    container = client.containers.run(
        image, entrypoint=["sh", "-c", script], user="0:0", network_mode="none", detach=True,
        volumes={v: {"bind": path, "mode": mode} for v, path in volumes.items()})
    try:
        code = container.wait(timeout=180)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
        assert code == 0, f"{script!r} exited {code}: {container.logs().decode()[-2000:]}"
        return out
    finally:
        container.remove(force=True)


def manifest(client, volume: str) -> str:
    return run_in_volumes(client, MANIFEST, {volume: "/h"}, mode="ro")


def volumes_of(client, prefix: str) -> set[str]:
    return {v.name for v in client.volumes.list(filters={"name": prefix}) if v.name.startswith(prefix)}


def volume_exists(client, volume: str) -> bool:
    return volume in {v.name for v in client.volumes.list(filters={"name": volume})}


# --- tiny real images, made here ---------------------------------------------------------------


def make_png(width: int = 3, height: int = 2, rgb=(200, 30, 90)) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def make_jpeg(width: int = 8, height: int = 8) -> bytes:
    """The marker structure of a baseline JPEG: SOI, APP0, SOF0, SOS, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00" + b"\x12\x34"
    return b"\xff\xd8" + app0 + sof0 + sos + b"\xff\xd9"


# --- the test PostgreSQL ----------------------------------------------------------------------

PG_PASSWORD_FILE = Path("/var/lib/goldenhub-test/postgres-password")  # one per machine, made by .ci/setup
PG_SERVER = "127.0.0.1:5432"
PG_ROLE = "goldenhub_test"
PG_NOT_RUNNING = (f"PostgreSQL for the tests is not reachable at {PG_SERVER} as {PG_ROLE}: run `bash .ci/setup`, "
                  "which starts it and creates the role and /var/lib/goldenhub-test/postgres-password")


def postgres_database(name: str):
    """A fresh database on the test cluster: its URL and a function that drops it. Without
    the cluster the test fails (never skips), saying how to start it."""
    import pytest
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    if not PG_PASSWORD_FILE.is_file():
        pytest.fail(f"{PG_NOT_RUNNING} ({PG_PASSWORD_FILE} is missing)", pytrace=False)
    base = f"postgresql+psycopg://{PG_ROLE}:{PG_PASSWORD_FILE.read_text().strip()}@{PG_SERVER}/"
    maintenance = create_engine(base + PG_ROLE, isolation_level="AUTOCOMMIT")
    problem = None
    try:
        with maintenance.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as e:
        problem = str(e.orig).strip()
    if problem:
        pytest.fail(f"{PG_NOT_RUNNING} ({problem})", pytrace=False)

    def drop():
        with maintenance.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        maintenance.dispose()

    return base + name, drop


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may be left unreaped by a minimal init)."""
    return procstat.alive(pid)


def browser_login(browser, hub: Hub, name: str, password: str, **context):
    """A new browser context (Playwright's new_context options: locale, headers, time zone)
    logged in through the hub's login form; returns its page."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}, **context).new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state()
    return page


def png_pixels(data: bytes) -> list[list[tuple[int, ...]]]:
    """Rows of pixel tuples of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's
    screenshots are), for tests that look at what a page painted."""
    pos, chunks = 8, {}
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.setdefault(kind, []).append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    assert depth == 8 and colour in (2, 6) and not interlace, "only 8-bit RGB/RGBA, not interlaced"
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(b"".join(chunks[b"IDAT"])), width * bpp, [], bytes(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = bytes(line)
        rows.append([tuple(line[x * bpp:(x + 1) * bpp]) for x in range(width)])
    return rows


# --- publishing (tests/test_publish*.py) -------------------------------------------------------


def make_notebook(*sources: str) -> str:
    """A Jupyter notebook (nbformat 4) whose code cells are `sources`, in order."""
    import json

    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s}
             for s in sources]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                   "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


def push_branch(bare: Path, branch: str, files: dict[str, str], message: str = "change") -> str:
    """Commit `files` (path → text; parents made) on top of main and push it as `branch` of the
    bare repo `bare` (created with these files on main if missing); returns the commit."""
    import tempfile

    from hub_ext import samples

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        if not bare.exists():
            work.mkdir()
            for name, text in files.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_text(text)
            samples.ensure_repo_from_dir(work, bare, message)
            branch_ref = "main"
        else:
            subprocess.run(["git", "clone", "-q", "-b", "main", str(bare), str(work)], check=True)
            for name, text in files.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_text(text)
            git = ["git", "-C", str(work), "-c", "user.name=Instructor", "-c", "user.email=i@example.org"]
            subprocess.run([*git, "add", "-A"], check=True)
            subprocess.run([*git, "commit", "-qm", message], check=True)
            subprocess.run([*git, "push", "-qf", "origin", f"HEAD:{branch}"], check=True)
            branch_ref = branch
        return subprocess.run(["git", "-C", str(bare), "rev-parse", branch_ref], check=True, capture_output=True,
                              text=True).stdout.strip()


def publish_course_yaml(course: str, repo_url: str) -> str:
    """A CPU course on the scipy framework whose one template uses the course's own image."""
    return textwrap.dedent(f"""\
        id: {course}
        title: Publish test {course}
        framework: scipy
        access: everyone
        templates:
          - id: {course}-cpu
            title: Publish test (CPU)
            image: goldenhub/course-{course}:latest
            gpus: 0
            cpu: 1
            memory: 512M
            courseware:
              repo: {repo_url}
              target: work
        """)


def remove_course_images(course: str) -> None:
    """Every local image tag of course `course`'s own image (built, pushed or pulled)."""
    client = docker.from_env()
    for image in client.images.list():
        for tag in image.tags:
            if tag.split("@")[0].rsplit(":", 1)[0].endswith(f"/course-{course}"):
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, force=True)


class CountingGitRemote(GitRemote):
    """A GitRemote whose daemon logs every request, so a test counts the fetches it served."""

    def start(self) -> None:
        self.log_path = self.root / "daemon.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--verbose",
                 f"--base-path={self.root}", f"--listen={self.listen}", f"--port={self.port}", str(self.root)],
                stdout=subprocess.DEVNULL, stderr=log,
            )
        from hub_ext.samples import port_open

        wait_for(lambda: port_open(self.listen, self.port), 20, "git daemon listening")

    def url(self, repo: str) -> str:
        return f"git://{self.listen}:{self.port}/{repo}.git"

    def fetches(self, repo: str) -> int:
        """Clones and fetches served so far of `repo` (the daemon's upload-pack requests)."""
        return self.log_path.read_text(errors="replace").count(f"Request upload-pack for '/{repo}.git'")
