"""Publishing that goes wrong, with real parts: the real `goldenhub images publish` building
with the real Docker engine, smoke-testing in a real container, pushing to a real registry
(Debian's docker-registry) or to a port where nothing listens, the courseware on a real git
daemon. Each bad input stops the publish with the sentence an instructor needs (pip's ERROR
line, postBuild's exit status, the notebook and the cell), the run is failed at its step with
its log kept, and the course's pin — what students start on — is unchanged."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import docker
import pytest

from hub_ext.images import versions
from hub_ext.service.db import open_database
from spawner.network import ensure_network
from tests.helpers import (PREFIX, GitRemote, free_port, goldenhub, make_notebook, publish_course_yaml, push_branch,
                           remove_course_images, remove_docker_objects, wait_for)

pytestmark = pytest.mark.integration

COURSE = f"{PREFIX}pbf"
GOOD = make_notebook("x = 6 * 7", "print(x)")
SEEDED = "127.0.0.1:1/goldenhub/course-%s@sha256:%s" % (COURSE, "c" * 64)


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A courses dir with the course and its environment/, its courseware on a git daemon with
    branches holding each bad input, and a database whose pin is a (seeded) version 1."""
    tmp = tmp_path_factory.mktemp("publish-faults")
    gateway = ensure_network(docker.from_env(), "goldenhub")
    remote = GitRemote(tmp / "git", gateway, free_port())
    bare = tmp / "git" / f"{COURSE}.git"
    push_branch(bare, "main", {"intro.ipynb": GOOD, "binder/requirements.txt": "numpy\n"})
    push_branch(bare, "missing-package", {"binder/requirements.txt": "nosuchpkg-goldenhub==1.0\n"})
    push_branch(bare, "postbuild-fails", {"binder/postBuild": "#!/bin/sh\necho preparing\nexit 3\n"})
    push_branch(bare, "no-server", {"binder/postBuild": "#!/bin/sh\nset -e\npip uninstall -y jupyter-server\n"})
    push_branch(bare, "slow", {"lessons/slow.ipynb": make_notebook("import time", "time.sleep(600)")})
    push_branch(bare, "raises", {"lessons/broken.ipynb": make_notebook(
        "import math", "raise ValueError('broken on purpose')", "print('never')")})
    remote.start()
    courses, state = tmp / "courses", tmp / "state"
    courses.mkdir()
    state.mkdir()
    (courses / f"{COURSE}.yaml").write_text(publish_course_yaml(COURSE, remote.url_from_container(COURSE)))
    (courses / COURSE / "environment").mkdir(parents=True)
    (courses / COURSE / "environment" / "requirements.txt").write_text("numpy\n")
    factory = open_database(f"sqlite:///{state / 'goldenhub.sqlite'}")
    with factory() as s:
        seeded = versions.record_version(s, COURSE, reference=SEEDED, image_id="sha256:" + "c" * 64, actor="prof")
        versions.pin(s, COURSE, seeded, "publish", "prof")
        s.commit()
    env = {"GOLDENHUB_STATE_DIR": str(state), "GOLDENHUB_COURSES_DIR": str(courses), "GOLDENHUB_DB_URL": None,
           "GOLDENHUB_DB_URL_FILE": None, "GOLDENHUB_PREFIX": f"{PREFIX}pbf", "GOLDENHUB_LANGUAGE": "en"}
    try:
        yield env, factory, state
    finally:
        remote.stop()
        remove_docker_objects(f"{PREFIX}pbf")
        remove_course_images(COURSE)


def failed_publish(place, registry: str, *args: str) -> tuple[subprocess.CompletedProcess, object, str]:
    """Run a publish that must fail; returns its result, its run and its log, having checked
    what every failure must leave: exit 1, one error line, the pin unchanged."""
    env, factory, state = place
    r = goldenhub("images", "publish", COURSE, *args, env={**env, "GOLDENHUB_REGISTRY": registry})
    assert r.returncode == 1, r.stdout[-3000:]
    assert "goldenhub images publish: error: " in r.stderr and "Traceback" not in r.stderr
    with factory() as s:
        run = versions.runs(s, COURSE, limit=1)[0]
        assert versions.current_pins(s, [COURSE])[COURSE].reference == SEEDED  # students start on it still
        assert [v.number for v in versions.versions(s, COURSE)] == [1]
    assert run.state == "failed" and run.message in r.stderr
    log = (state / "publish" / f"{run.id}.log").read_text()
    assert run.log_path == str(state / "publish" / f"{run.id}.log") and run.message in log
    return r, run, log


def test_a_requirement_that_does_not_exist_fails_the_build_with_pips_line(place, registry):
    r, run, log = failed_publish(place, registry, "--ref", "missing-package")
    assert run.step == "build"
    assert "No matching distribution found for nosuchpkg-goldenhub==1.0" in r.stderr
    assert "building the course layer of" in r.stderr
    assert "Step 1/5: build the course image" in log and "Step 2/5" not in log


def test_a_postbuild_that_exits_3_fails_the_build_naming_its_status(place, registry):
    r, run, log = failed_publish(place, registry, "--ref", "postbuild-fails")
    assert run.step == "build"
    assert "postBuild exited with status 3" in r.stderr
    assert "preparing" in log  # postBuild's own output is in the kept log


def test_an_image_whose_server_cannot_start_fails_the_smoke_test(place, registry):
    r, run, log = failed_publish(place, registry, "--ref", "no-server")
    assert run.step == "smoke"
    assert f"the smoke test of template {COURSE}-cpu failed: the Jupyter server in" in r.stderr
    assert "did not start" in r.stderr


def test_a_notebook_that_raises_fails_the_smoke_test_naming_notebook_and_cell(place, registry):
    r, run, log = failed_publish(place, registry, "--ref", "raises")
    assert run.step == "smoke"
    assert "lessons/broken.ipynb" in r.stderr and "ValueError: broken on purpose" in r.stderr
    assert "cell 2" in r.stderr


def test_registry_down_fails_the_push_and_keeps_the_built_image(place):
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    r, run, log = failed_publish(place, down)
    assert run.step == "push"
    assert f"pushing to {down} failed: " in r.stderr
    assert "publish again to retry (the build comes from the cache)" in r.stderr
    kept = re.search(r"the built image is kept as (\S+): publish again", r.stderr).group(1)
    assert kept.startswith(f"goldenhub/course-{COURSE}:")
    docker.from_env().images.get(kept)  # still there for the retry


def test_two_publishes_at_once_the_second_is_refused_naming_the_first_and_a_killed_one_frees_the_course(
        place, registry):
    """The first publish is held in its smoke test by a slow notebook; the second is refused
    naming it; SIGTERM to the first ends it as failed (log kept, smoke container removed) and
    frees the course for the next publish."""
    env, factory, state = place
    environment = {**os.environ, **{k: v for k, v in env.items() if v is not None}, "GOLDENHUB_REGISTRY": registry}
    for name in ("GOLDENHUB_DB_URL", "GOLDENHUB_DB_URL_FILE"):
        environment.pop(name, None)
    first = subprocess.Popen([sys.executable, "-m", "hub_ext.cli", "images", "publish", COURSE, "--ref", "slow"],
                             env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def in_smoke():
            with factory() as s:
                runs = versions.runs(s, COURSE, limit=1)
            return runs and runs[0].state == "running" and runs[0].step == "smoke" and runs[0]

        run = wait_for(in_smoke, 300, "the first publish smoke-testing")
        r = goldenhub("images", "publish", COURSE, env={**env, "GOLDENHUB_REGISTRY": registry})
        assert r.returncode == 1
        assert (f"A publish of {COURSE} is already running: publish {run.id}, started by {run.actor} at"
                in r.stderr)
        # notebooks run in order: once intro.ipynb is done, lessons/slow.ipynb is running
        wait_for(lambda: "Notebook intro.ipynb:" in (state / "publish" / f"{run.id}.log").read_text(), 120,
                 "the slow notebook running")
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 128 + signal.SIGTERM, out[-2000:] + err
    with factory() as s:
        run = versions.runs(s, COURSE, limit=1)[0]
        assert versions.current_pins(s, [COURSE])[COURSE].reference == SEEDED
    assert (run.state, run.step) == ("failed", "smoke")
    assert run.message.startswith(f"publish {run.id} stopped unexpectedly at step smoke (SystemExit)")
    assert "SystemExit" in (state / "publish" / f"{run.id}.log").read_text()
    assert docker.from_env().containers.list(all=True, filters={"name": f"{PREFIX}pbf-smoke"}) == []
    nxt = versions.begin_run(factory, COURSE, "", "prof")  # the course is free again
    versions.finish_run(factory, nxt.id, ok=False, message="not needed")
