"""Shared fixtures: one real jupyterhub (with the sample courses plus a test course whose
courseware lives on a real git remote) for the integration and browser tests."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import textwrap
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest

from hub_ext import contract
from hub_ext import samples
from spawner.network import ensure_network
from tests.helpers import (CHROMIUM, CHROMIUM_ARGS, HUB_PORT, PREFIX, RESET_COURSE, RESET_USER, GitRemote,
                           copy_courses, free_port, hub_running, postgres_database, remove_docker_objects,
                           wait_for)

TEST_GIT_PORT = HUB_PORT + 1418


def pytest_collection_modifyitems(items):
    """Tests that restart the Docker daemon run last, so they cannot disturb the others."""
    items.sort(key=lambda item: item.get_closest_marker("docker_restart") is not None)


@pytest.fixture(autouse=True)
def fresh_hub_process():
    """Every test starts as a freshly started hub process would: GoldenSpawner's hub-wide GPU
    allocators and start queues (class-level, shared by all spawners of one hub) are empty
    before it and emptied after it, so no test sees another's GPUs or queued starts."""
    from spawner import GoldenSpawner

    GoldenSpawner._allocators.clear()
    GoldenSpawner._admissions.clear()
    yield
    GoldenSpawner._allocators.clear()
    GoldenSpawner._admissions.clear()


@pytest.fixture(scope="session")
def gateway() -> str:
    return ensure_network(docker.from_env(), "goldenhub")


@pytest.fixture(scope="session")
def sample_services(gateway):
    """The sample courses' git server and datasets, exactly as `goldenhub up` prepares them."""
    samples.ensure_courseware_repos()
    samples.ensure_datasets()
    samples.ensure_git_daemon(["127.0.0.1", gateway])


@pytest.fixture(scope="session")
def lab_remote(tmp_path_factory, gateway):
    """A course repo that the tests push to, like an instructor would."""
    root = tmp_path_factory.mktemp("git-remote")
    samples.ensure_repo_from_dir(Path(__file__).parent / "data" / "lab-courseware", root / "lab.git")
    remote = GitRemote(root, gateway, TEST_GIT_PORT)
    remote.start()
    yield remote
    remote.stop()


@pytest.fixture(scope="session")
def lab_dataset(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("datasets") / "numbers"
    data.mkdir()
    (data / "numbers.csv").write_text("n\n1\n2\n3\n")
    return data


@pytest.fixture(scope="session")
def courses_dir(tmp_path_factory, sample_services, lab_remote, lab_dataset) -> Path:
    """The sample courses plus the test course `lab` (courseware on lab_remote)."""
    courses = copy_courses(tmp_path_factory.mktemp("courses"))
    (courses / "lab.yaml").write_text(textwrap.dedent(f"""\
        id: lab
        title: Test lab
        framework: scipy
        access: everyone
        templates:
          - id: lab-cpu
            title: Lab (CPU)
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
            datasets:
              - name: numbers
                source: {lab_dataset}
            courseware:
              repo: {lab_remote.url_from_container('lab')}
              target: lab
        """))
    return courses


@pytest.fixture(scope="session")
def hub(tmp_path_factory, courses_dir):
    courses = courses_dir
    # Two declared GPUs: this host has no driver, so GPU starts get as far as Docker.
    (courses / "sec.yaml").write_text(textwrap.dedent("""\
        id: sec
        title: Security course, for its group only
        templates:
          - id: sec-cpu
            title: Security (CPU)
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
            groups: [sec-students]
        """))
    extra = (
        # Two declared GPUs: this host has no driver, so GPU starts get as far as Docker.
        "c.GoldenSpawner.gpu_inventory = ['GPU-test-0', 'GPU-test-1']\n"
        # Tests push courseware and restart at once: the mirror is fetched at every start.
        "c.GoldenSpawner.courseware_mirror_interval = 0\n"
        # The instructor of course sec may reset only members of its group.
        "c.JupyterHub.load_roles.append({'name': 'sec-instructor', 'users': ['sec-teacher'],"
        " 'scopes': ['custom:goldenhub:reset!group=sec-students']})\n"
    )
    with hub_running(tmp_path_factory.mktemp("hub-state"), courses, HUB_PORT, PREFIX, extra_config=extra) as hub:
        yield hub


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory, sample_services):
    """A hub with local accounts (auth: local) and the sample courses, shared by the tests
    of first-use passwords, password resets and roster-made accounts."""
    tmp = tmp_path_factory.mktemp("local")
    with hub_running(tmp / "state", copy_courses(tmp / "courses"), HUB_PORT + 100, f"{PREFIX}l",
                     env={"GOLDENHUB_AUTH": "local"}) as hub:
        yield hub


# --- Docker volumes of the reset tests ------------------------------------------------------


@pytest.fixture
def client():
    return docker.from_env()


@pytest.fixture
def prefix():
    """A fresh name prefix for one test's volumes, removed afterwards."""
    prefix = f"{PREFIX}rs{secrets.token_hex(3)}"
    yield prefix
    remove_docker_objects(prefix)


@pytest.fixture
def home(client, prefix):
    """An empty home volume of RESET_USER in RESET_COURSE, labelled as the spawner labels it."""
    name = contract.home_volume_name(prefix, RESET_USER, RESET_COURSE)
    client.volumes.create(name=name, labels={"goldenhub.user": RESET_USER, "goldenhub.course": RESET_COURSE})
    return name


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on a free loopback port (Docker allows loopback registries without TLS)."""
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is not installed (apt-get install docker-registry; .ci/setup does)"
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
        f"http:\n  addr: {address}\n"
    )
    # Its log goes to a file: the registry writes a line per request, and a pipe nobody reads
    # fills up and stops it in the middle of a push.
    log_path = tmp_path / "registry.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)

    def up():
        if proc.poll() is not None:
            raise RuntimeError(log_path.read_text(errors="replace")[-2000:])
        return urllib.request.urlopen(f"http://{address}/v2/", timeout=2).status == 200

    try:
        wait_for(up, 30, f"docker-registry answering on {address}", interval=0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path):
    """The service database's URL on each engine it supports: a fresh SQLite file, or a fresh
    database on the test PostgreSQL, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'goldenhub.sqlite'}"
        return
    database_url, drop = postgres_database(f"goldenhub_test_{uuid.uuid4().hex[:12]}")
    try:
        yield database_url
    finally:
        drop()
