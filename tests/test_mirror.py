"""The hub's courseware mirror with a real hub, real containers and a real git daemon that
counts what it serves: a burst of starts costs one fetch; a student's edits still win and
clashing files are renamed through the mirror; a remote that is down still serves the
mirrored materials, with a warning that says how old they are."""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hub_ext import samples
from hub_ext.courseware.mirror import refresh_mirror
from hub_ext.courseware.rules import mirror_name
from tests.helpers import HUB_PORT, PREFIX, CountingGitRemote, WorkingCopy, copy_courses, hub_running

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data" / "lab-courseware"
REPO = "mirrorlab"


@pytest.fixture(scope="module")
def remote(tmp_path_factory, gateway):
    root = tmp_path_factory.mktemp("mirror-remote")
    samples.ensure_repo_from_dir(DATA, root / f"{REPO}.git")
    r = CountingGitRemote(root, gateway, HUB_PORT + 1420)
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def mirror_hub(tmp_path_factory, sample_services, remote, gateway):
    tmp = tmp_path_factory.mktemp("mirror")
    courses = copy_courses(tmp / "courses")
    (courses / f"{REPO}.yaml").write_text(textwrap.dedent(f"""\
        id: {REPO}
        title: Mirror lab
        access: everyone
        templates:
          - id: {REPO}-cpu
            title: Mirror lab (CPU)
            image: goldenhub/course-intro-python:latest
            gpus: 0
            cpu: 1
            memory: 512M
            courseware:
              repo: {remote.url_from_container(REPO)}
              target: lab
        """))
    # An hour between fetches: within this module only a publish (its hook) refreshes the mirror.
    extra = "c.GoldenSpawner.courseware_mirror_interval = 3600\n"
    with hub_running(tmp / "state", courses, HUB_PORT + 170, f"{PREFIX}mi", extra_config=extra) as hub:
        hub.state = tmp / "state"
        yield hub


def _sync_log(hub, user: str) -> str:
    """The container's log and its courseware sync log, for a failure's message."""
    return hub.container(user).logs().decode(errors="replace")[-2000:] + hub.exec(user, "cat /tmp/goldenhub-sync.log")[1]


def _spawn_all(hub, users: list[str]) -> None:
    errors: list[BaseException] = []

    def one(user):
        try:
            hub.spawn(user, {"template": f"{REPO}-cpu"})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_three_students_starting_together_cost_the_remote_one_fetch(mirror_hub, remote):
    users = ["mira", "milo", "maya"]
    _spawn_all(mirror_hub, users)
    try:
        for user in users:
            assert mirror_hub.exec(user, "cat ~/lab/hello.py")[0] == 0, _sync_log(mirror_hub, user)  # materials
        assert remote.fetches(REPO) == 1
        mount = mirror_hub.container("mira").attrs["Mounts"]
        mirrored = [m for m in mount if m["Destination"] == "/srv/goldenhub-courseware.git"]
        assert len(mirrored) == 1 and mirrored[0]["RW"] is False
        assert mirrored[0]["Source"].endswith(mirror_name(remote.url_from_container(REPO)))
    finally:
        for user in users:
            mirror_hub.stop(user)


def test_student_edits_win_and_clashing_files_are_renamed_through_the_mirror(mirror_hub, remote, gateway, tmp_path):
    user = "mira"
    mirror_hub.spawn(user, {"template": f"{REPO}-cpu"})
    assert mirror_hub.exec(user, "cd ~/lab && printf 'print(\"mine\")\\n' > hello.py && echo notes > solutions.md")[0] == 0
    mirror_hub.stop(user)

    instructor = WorkingCopy(tmp_path / "instructor")
    subprocess.run(["git", "clone", "-q", str(remote.root / f"{REPO}.git"), str(instructor.path)], check=True)
    instructor.commit_and_push({"hello.py": 'print("hello")\nprint("instructor added this line")\n',
                                "week3.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n',
                                "solutions.md": "official solutions\n"}, "Week 3")
    before = remote.fetches(REPO)
    refresh_mirror(remote.url_from_container(REPO), mirror_hub.state, gateway)  # what a publish does
    assert remote.fetches(REPO) == before + 1

    mirror_hub.spawn(user)
    try:
        assert remote.fetches(REPO) == before + 1  # the start merged from the mirror, not the remote
        assert mirror_hub.exec(user, "cat ~/lab/hello.py")[1] == 'print("mine")\n'  # the student's edit wins
        assert mirror_hub.exec(user, "test -f ~/lab/week3.ipynb")[0] == 0  # new material arrives
        listing = mirror_hub.exec(user, "ls ~/lab")[1].split()
        renamed = [f for f in listing if f.startswith("solutions_") and f.endswith(".md")]
        assert renamed and mirror_hub.exec(user, f"cat ~/lab/{renamed[0]}")[1] == "notes\n"
        assert mirror_hub.exec(user, "cat ~/lab/solutions.md")[1] == "official solutions\n"
    finally:
        mirror_hub.stop(user)


def test_remote_down_a_new_student_gets_the_mirrored_files_and_their_age(mirror_hub, remote, gateway):
    refresh_mirror(remote.url_from_container(REPO), mirror_hub.state, gateway)  # a good fetch, then the remote stops
    # Twelve minutes pass since the last good fetch, and the interval since the last try:
    # the record's clock is moved back, as if the hub had been running.
    record_path = mirror_hub.state / "courseware" / (mirror_name(remote.url_from_container(REPO)) + ".json")
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "fetched": time.time() - 12 * 60 - 1,
                                       "tried": time.time() - 12 * 60 - 3600}))
    remote.stop()
    try:
        response, events = mirror_hub.spawn_with_progress("newcomer", {"template": f"{REPO}-cpu"})
        messages = [e["message"] for e in events]
        assert events[-1].get("ready"), messages
        assert ("Warning: course materials as of 12 minutes ago: the course's git server did not answer"
                in messages), messages
        assert mirror_hub.exec("newcomer", "cat ~/lab/hello.py")[0] == 0  # the mirrored materials
        note = mirror_hub.exec("newcomer", "cat ~/COURSEWARE-NOT-UPDATED.txt")[1]
        assert "12 minutes ago" in note and "untouched" in note
    finally:
        mirror_hub.stop("newcomer")
        remote.start()
