"""The service never blocks its event loop: its Docker and database calls run in threads.

The service talks to Docker through a socket that holds every request two seconds before
passing it on (SlowDocker). A Docker call made on the event loop would then hold the loop
for at least that long, and every other request with it. With 300 home volumes and 300
backups present, the admin page loads while a probe asks the service's health endpoint
every 50 ms: no probe may wait as long as one such Docker call, let alone the whole page.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest
import requests

from hub_ext import contract
from tests.helpers import HUB_PORT, PREFIX, hub_running, user_token

pytestmark = pytest.mark.integration

DELAY = 2.0  # seconds each Docker request is held
HOMES = BACKUPS = 300
COURSE = "intro-python"
HEALTH = "/services/goldenhub/api/health"


class SlowDocker:
    """A unix socket in front of Docker's that holds each chunk a client sends for `delay`
    seconds before passing it on (answers pass at once)."""

    def __init__(self, path: Path, delay: float):
        self.path, self.delay = path, delay
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        assert host.startswith("unix://"), f"SlowDocker stands in front of a unix socket, not {host}"
        self.upstream = host[len("unix://"):]
        self.server = socket.socket(socket.AF_UNIX)

    def __enter__(self) -> str:
        self.server.bind(str(self.path))
        self.server.listen(128)
        threading.Thread(target=self._accept, daemon=True).start()
        return f"unix://{self.path}"

    def __exit__(self, *exc) -> None:
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX)
            up.connect(self.upstream)
            threading.Thread(target=self._pipe, args=(conn, up, self.delay), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, conn, 0), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while data := src.recv(65536):
                time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def environment(**values: str):
    """os.environ with these values for the duration (the hub and its service inherit them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def slow_hub(tmp_path_factory, courses_dir):
    state = tmp_path_factory.mktemp("loop-hub")
    with SlowDocker(state / "slow-docker.sock", DELAY) as slow_host, contextlib.ExitStack() as running:
        with environment(DOCKER_HOST=slow_host):  # the hub and its service get the slow socket
            hub = running.enter_context(hub_running(state / "hub", courses_dir, HUB_PORT + 80, f"{PREFIX}lp"))
        yield hub  # stopped and cleaned up with Docker's own socket


@pytest.fixture(scope="module")
def homes_and_backups(slow_hub):
    """300 students, each with a home and a verified backup of it (empty labelled volumes,
    made directly)."""
    r = slow_hub.request("POST", "/users", json={"usernames": [f"lp{i:03d}" for i in range(HOMES)]})
    assert r.status_code == 201, r.text
    client = docker.from_env()  # Docker's own socket: the fixture is not what is measured
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def make(i: int) -> None:
        user = f"lp{i:03d}"
        home = contract.home_volume_name(slow_hub.prefix, user, COURSE)
        labels = {contract.LABEL_USER: user, contract.LABEL_COURSE: COURSE}
        client.volumes.create(home, labels=labels)
        when = created + timedelta(seconds=i)
        client.volumes.create(contract.backup_volume_name(home, when), labels={
            **labels, contract.LABEL_KIND: contract.KIND_BACKUP, contract.LABEL_BACKUP_OF: home,
            contract.LABEL_CREATED: when.isoformat()})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(HOMES)))


def test_the_admin_page_never_holds_the_event_loop(slow_hub, homes_and_backups):
    admin = user_token(slow_hub, "admin", note="event loop test")
    assert requests.get(slow_hub.url + HEALTH, timeout=30).json() == {"ok": True}  # no login needed

    probes: list[float] = []
    statuses: set[int] = set()
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            started = time.monotonic()
            r = requests.get(slow_hub.url + HEALTH, timeout=300)
            probes.append(time.monotonic() - started)
            statuses.add(r.status_code)
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    started = time.monotonic()
    page = requests.get(f"{slow_hub.url}/services/goldenhub/admin", headers={"Authorization": f"token {admin}"},
                        timeout=600)
    page_load = time.monotonic() - started
    done.set()
    prober.join(310)
    assert page.status_code == 200, page.text[-2000:]
    assert statuses == {200}
    assert page.text.count('data-user="lp') >= HOMES  # the page did list them (rows and backups)
    worst = max(probes)
    print(f"admin page: {page_load:.2f} s with each Docker request held {DELAY:.1f} s; "
          f"{len(probes)} health probes, worst {worst * 1000:.0f} ms, "
          f"median {sorted(probes)[len(probes) // 2] * 1000:.0f} ms")
    assert worst < page_load, "a health probe waited for the whole admin page: the page held the event loop"
    assert worst < DELAY, (f"a health probe waited {worst:.2f} s, as long as one Docker call "
                           f"({DELAY:.1f} s): a Docker call ran on the event loop")
