"""The publish command line without a hub: the real `goldenhub images publish | rollback |
versions` on a real SQLite database in a scratch state directory. What an admin sees when
publishing is off, when a publish of the course is already running, when input is hostile,
when a publish fails before building (its run failed, its log kept, nothing pinned), and the
versions table with its pin history after a rollback."""

from __future__ import annotations

import getpass
import io
import json
import textwrap
import urllib.request
from pathlib import Path

import docker
import pytest

from hub_ext import contract
from hub_ext.catalog import store
from hub_ext.images import push as pushing
from hub_ext.images import publish, versions
from hub_ext.service.db import AuditEntry, open_database
from spawner.network import ensure_network
from tests.helpers import (HUB_PORT, PREFIX, GitRemote, ServiceClient, free_port, goldenhub, hub_running,
                           make_notebook, publish_course_yaml, push_branch, remove_course_images, user_token, wait_for)

COURSE = textwrap.dedent("""\
    id: pubtest
    title: Publish test
    access: everyone
    templates:
      - id: pubtest-cpu
        title: Publish test (CPU)
        image: goldenhub/course-pubtest:latest
        gpus: 0
        cpu: 1
        memory: 512M
    """)
REF = "127.0.0.1:5999/goldenhub/course-pubtest@sha256:" + "a" * 64


@pytest.fixture
def place(tmp_path):
    state, courses = tmp_path / "state", tmp_path / "courses"
    state.mkdir()
    courses.mkdir()
    (courses / "pubtest.yaml").write_text(COURSE)
    env = {"GOLDENHUB_STATE_DIR": str(state), "GOLDENHUB_COURSES_DIR": str(courses), "GOLDENHUB_DB_URL": None,
           "GOLDENHUB_DB_URL_FILE": None, "GOLDENHUB_REGISTRY": "127.0.0.1:5999", "GOLDENHUB_LANGUAGE": "en",
           "LANG": "C.UTF-8", "LANGUAGE": None, "LC_ALL": None}
    factory = open_database(f"sqlite:///{state / 'goldenhub.sqlite'}")
    return state, env, factory


def test_publishing_off_says_how_to_turn_it_on(place):
    state, env, factory = place
    r = goldenhub("images", "publish", "pubtest", env={**env, "GOLDENHUB_REGISTRY": None})
    assert r.returncode == 1
    assert r.stderr.startswith("goldenhub images publish: error: publishing is off: no registry is configured.")
    assert f"{state / 'goldenhub.yaml'} (registry: 127.0.0.1:5000)" in r.stderr
    assert "GOLDENHUB_REGISTRY=127.0.0.1:5000" in r.stderr and "Traceback" not in r.stderr
    r = goldenhub("images", "publish", "pubtest", env={**env, "GOLDENHUB_REGISTRY": "http://evil/x y"})
    assert r.returncode == 1 and "the registry 'http://evil/x y' (GOLDENHUB_REGISTRY or registry: in" in r.stderr
    assert "give host[:port][/path] without http://, e.g. 127.0.0.1:5000" in r.stderr
    with factory() as s:
        assert versions.runs(s, "pubtest") == []
    # a run the service began for it ends failed with the same sentence: the course is not left locked
    run = versions.begin_run(factory, "pubtest", "", "prof")
    r = goldenhub("images", "publish", "pubtest", "--run", str(run.id), env={**env, "GOLDENHUB_REGISTRY": None})
    assert r.returncode == 1 and "publishing is off" in r.stderr
    with factory() as s:
        run = versions.runs(s, "pubtest")[0]
    assert run.state == "failed" and run.message.startswith("publishing is off: no registry is configured.")
    versions.finish_run(factory, versions.begin_run(factory, "pubtest", "", "prof").id, ok=True)


@pytest.mark.parametrize("command", [["publish", "pubtest"], ["versions", "pubtest"], ["rollback", "pubtest", "1"]])
def test_a_database_that_cannot_be_opened_is_one_sentence(place, command):
    state, env, factory = place
    gone = state / "no" / "such" / "dir"
    r = goldenhub("images", *command, env={**env, "GOLDENHUB_DB_URL": f"sqlite:///{gone}/goldenhub.sqlite"})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"goldenhub images {command[0]}: error: the goldenhub database sqlite:///{gone}/goldenhub.sqlite " \
           "cannot be used: " in r.stderr


@pytest.mark.parametrize("args, said", [
    (["pubtest", "--ref", "../../etc"], "REF must be a branch, tag or commit"),
    (["pubtest", "--ref", "-u"], "expected one argument"),
    (["pubtest", "--ref", "a" * 201], "at most 200"),
    (["pubtest", "--ref", "main\n"], "REF must be a branch, tag or commit"),
    (["Pub;rm -rf", "--ref", "main"], "COURSE must be a course id"),
    (["pubtest", "--run", "1e3"], "ID must be a publish number"),
    (["pubtest", "--run", "0"], "ID must be a publish number"),
])
def test_hostile_input_is_refused_with_a_sentence_and_nothing_starts(place, args, said):
    state, env, factory = place
    r = goldenhub("images", "publish", *args, env=env)
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr
    with factory() as s:
        assert versions.runs(s, "pubtest") == []


def test_a_second_publish_is_refused_naming_the_first(place):
    state, env, factory = place
    first = versions.begin_run(factory, "pubtest", "", "prof")  # this process holds it: alive
    r = goldenhub("images", "publish", "pubtest", env=env)
    assert r.returncode == 1
    assert (f"goldenhub images publish: error: A publish of pubtest is already running: publish {first.id}, "
            "started by prof at") in r.stderr
    with factory() as s:
        assert [(x.id, x.state) for x in versions.runs(s, "pubtest")] == [(first.id, "running")]


def test_a_failed_publish_keeps_its_log_and_pins_nothing(place):
    """A course the catalog does not have: the run fails at step build, its log says why."""
    state, env, factory = place
    r = goldenhub("images", "publish", "nosuchcourse", env=env)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("goldenhub images publish: error: there is no course nosuchcourse in")
    assert "Step 1/5: build the course image" in r.stdout
    with factory() as s:
        (run,) = versions.runs(s, "nosuchcourse")
        assert (run.state, run.step, run.actor) == ("failed", "build", f"cli:{getpass.getuser()}")
        assert versions.current_pins(s) == {}
    log = (state / "publish" / f"{run.id}.log").read_text()
    assert "Step 1/5" in log and "failed at step build: there is no course nosuchcourse" in log
    assert oct((state / "publish").stat().st_mode & 0o777) == "0o700"
    # the lock is free again: the next publish is not refused as busy
    assert versions.begin_run(factory, "nosuchcourse", "", "prof").state == "running"


def test_a_service_run_of_another_course_is_refused(place):
    state, env, factory = place
    run = versions.begin_run(factory, "other", "", "prof", holder="elsewhere:1")
    r = goldenhub("images", "publish", "pubtest", "--run", str(run.id), env=env)
    assert r.returncode == 1 and f"publish {run.id} is of course other, not pubtest" in r.stderr
    r = goldenhub("images", "publish", "pubtest", "--run", "999", env=env)
    assert r.returncode == 1 and "publish 999 is not running" in r.stderr


@pytest.mark.integration  # rollback counts the course's running containers in Docker
def test_versions_table_and_rollback(place):
    state, env, factory = place
    r = goldenhub("images", "versions", "pubtest", env=env)
    assert r.returncode == 0 and "pubtest has no published version yet" in r.stdout
    with factory() as s:
        for n in (1, 2):
            v = versions.record_version(s, "pubtest", reference=REF.replace("a" * 64, str(n) * 64),
                                        image_id="sha256:" + str(n) * 64, actor="prof", tag=f"x/course-pubtest:v{n}",
                                        commit=f"{n}" * 40, ref="main")
            versions.pin(s, "pubtest", v, "publish", "prof")
        s.commit()
    r = goldenhub("images", "rollback", "pubtest", "7", env=env)
    assert r.returncode == 1 and "pubtest has no published version 7; published versions: 2, 1" in r.stderr
    r = goldenhub("images", "rollback", "pubtest", "2", env=env)
    assert r.returncode == 1 and "pubtest already uses version 2; nothing changed" in r.stderr
    r = goldenhub("images", "rollback", "pubtest", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert f"pubtest uses version 1 again: {REF.replace('a' * 64, '1' * 64)}" in r.stdout
    assert "No running server of pubtest runs another version." in r.stdout
    with factory() as s:
        assert versions.current_pins(s)["pubtest"].number == 1
        audit = s.query(AuditEntry).filter_by(action="rollback").one()
        assert (audit.course, audit.result) == ("pubtest", "ok")
        assert audit.detail_text == f"rolled back to version 1 ({REF.replace('a' * 64, '1' * 64)})"
    lines = goldenhub("images", "versions", "pubtest", env=env).stdout.splitlines()
    assert lines[0].split() == ["version", "tag", "commit", "ref", "published", "by", "when"]
    assert lines[1].split()[:6] == ["2", "v2", "2" * 12, "main", "prof", lines[1].split()[5]]
    assert lines[2].split()[:3] == ["*", "1", "v1"]
    assert "Pin history (newest first):" in lines
    history = lines[lines.index("Pin history (newest first):") + 2:]
    assert [h.split()[:4] for h in history[:3]] == [["3", "1", "rollback", f"cli:{getpass.getuser()}"],
                                                    ["2", "2", "publish", "prof"], ["1", "1", "publish", "prof"]]


def test_references_and_the_run_log():
    digest = "sha256:" + "b" * 64
    ref = pushing.make_digest_reference("127.0.0.1:5000/goldenhub/course-x", digest)
    assert ref == f"127.0.0.1:5000/goldenhub/course-x@{digest}"
    assert pushing.split_digest_reference(ref) == ("127.0.0.1:5000/goldenhub/course-x", digest)
    assert versions.is_course_image(ref, "x")
    for bad in ("sha256:short", "md5:" + "b" * 64, ""):
        with pytest.raises(ValueError):
            pushing.make_digest_reference("r/x", bad)
    assert pushing.make_version_tag(3) == "v3"


def test_the_run_log_writes_the_stream_and_the_file(tmp_path):
    stream = io.StringIO()
    log = publish.RunLog(publish.log_path_of(tmp_path, 4), stream)
    log("Step 1/5: build")
    log.write("partial ")
    log.write("line\n")
    log.close()
    assert stream.getvalue() == "Step 1/5: build\npartial line\n"
    assert (tmp_path / "publish" / "4.log").read_text() == stream.getvalue()
    assert oct((tmp_path / "publish" / "4.log").stat().st_mode & 0o777) == "0o600"


# --- end to end through a real hub ---------------------------------------------------------------

FLOW = f"{PREFIX}pbc"  # the course published through the hub


@pytest.mark.integration
def test_publish_pins_by_digest_students_restart_onto_it_and_rollback_brings_the_old_one(tmp_path, registry):
    """A real hub (demo mode), the course's courseware on a real git daemon, a real registry.
    Version 1 comes from courses/<id>/environment/, version 2 from the courseware at --ref main.
    Student A, started on version 1, keeps it through the publish of version 2; student B
    restarts onto 2, and after a rollback onto 1 again. Their files are the same byte for byte."""

    client = docker.from_env()
    gateway = ensure_network(client, "goldenhub")
    remote = GitRemote(tmp_path / "git", gateway, free_port())
    push_branch(tmp_path / "git" / f"{FLOW}.git", "main",
                {"intro.ipynb": make_notebook("import numpy", "print(numpy.arange(3).sum())"),
                 "binder/requirements.txt": "numpy\n"})
    remote.start()
    courses, state = tmp_path / "courses", tmp_path / "state"
    courses.mkdir()
    (courses / f"{FLOW}.yaml").write_text(publish_course_yaml(FLOW, remote.url_from_container(FLOW)))
    (courses / FLOW / "environment").mkdir(parents=True)
    (courses / FLOW / "environment" / "requirements.txt").write_text("numpy\n")
    prefix = f"{PREFIX}pb"
    env = {"GOLDENHUB_STATE_DIR": str(state), "GOLDENHUB_COURSES_DIR": str(courses), "GOLDENHUB_DB_URL": None,
           "GOLDENHUB_DB_URL_FILE": None, "GOLDENHUB_PREFIX": prefix, "GOLDENHUB_REGISTRY": registry,
           "GOLDENHUB_LANGUAGE": "en"}
    options = {contract.OPTION_TEMPLATE: f"{FLOW}-cpu"}
    try:
        # The culler's minute is 5 s here, so a server untouched for 75 s counts as idle (15 of
        # them) for "restart idle servers"; the template's own culling is 240 such minutes away.
        with hub_running(state, courses, HUB_PORT + 150, prefix,
                         env={"GOLDENHUB_REGISTRY": registry, "GOLDENHUB_CULL_UNIT_SECONDS": "5"}) as hub:
            factory = open_database(f"sqlite:///{state / 'goldenhub.sqlite'}")

            def image_of(user: str) -> str:
                return hub.container(user).attrs["Image"]

            def home_digest(user: str) -> str:
                code, out = hub.exec(user, 'sha256sum "$HOME/keep.bin"')
                assert code == 0, out
                return out.split()[0]

            r = goldenhub("images", "publish", FLOW, env=env, timeout=900)
            assert r.returncode == 0, r.stderr
            with factory() as s:
                v1 = versions.version(s, FLOW, 1)
            repository = f"{registry}/goldenhub/course-{FLOW}"
            assert v1.reference.startswith(f"{repository}@sha256:") and v1.tag == f"{repository}:v1"
            assert r.stdout.strip().splitlines()[-1] == (
                f"Published {FLOW} version 1 ({v1.reference}); templates {FLOW}-cpu use it now")
            for k, step in enumerate(versions.STEPS, 1):
                assert f"Step {k}/5: " in r.stdout
            # the registry has the tag; a pull by digest gets the very image that was recorded
            tags = json.load(urllib.request.urlopen(f"http://{registry}/v2/goldenhub/course-{FLOW}/tags/list"))
            assert "v1" in tags["tags"]
            assert client.images.pull(repository, tag=v1.reference.split("@", 1)[1]).id == v1.image_id
            assert json.loads(v1.labels)[contract.LABEL_REQUIREMENTS] == v1.requirements_digest
            # the catalog's template now runs the pinned version by digest; the file's image is kept
            (template,) = store.load_full_catalog(courses, f"sqlite:///{state / 'goldenhub.sqlite'}") \
                .courses[FLOW].templates
            assert (template.image, template.pinned_version, template.declared_image) == (
                v1.reference, 1, f"goldenhub/course-{FLOW}:latest")

            # two students on version 1, each with a file of random bytes in the home
            for user in ("pa", "pb"):
                hub.spawn(user, options)
                assert image_of(user) == v1.image_id
                code, out = hub.exec(user, 'head -c 200000 /dev/urandom > "$HOME/keep.bin"')
                assert code == 0, out
            kept = {user: home_digest(user) for user in ("pa", "pb")}

            # version 2 from the courseware repo at a ref, in a run the service began for an
            # instructor (as its page does): a new image (its provenance differs), published by prof
            run = versions.begin_run(factory, FLOW, "main", "prof")
            r = goldenhub("images", "publish", FLOW, "--run", str(run.id), env=env, timeout=900)
            assert r.returncode == 0, r.stderr
            with factory() as s:
                v2 = versions.version(s, FLOW, 2)
                assert versions.current_pins(s, [FLOW])[FLOW].id == v2.id
                run = versions.runs(s, FLOW, limit=1)[0]
            assert (run.state, run.step, run.version_id) == ("succeeded", "prepull", v2.id)
            assert Path(run.log_path).read_text().splitlines()[-1].startswith(f"Published {FLOW} version 2 (")
            assert v2.image_id != v1.image_id and (v2.ref, v2.published_by) == ("main", "prof") and len(v2.commit) == 40
            assert image_of("pa") == v1.image_id  # A did not restart: A keeps version 1
            hub.stop("pb")
            hub.spawn("pb", options)
            assert image_of("pb") == v2.image_id  # B restarted onto version 2
            assert home_digest("pb") == kept["pb"]

            # "Restart idle servers on version 2" (the page's button, here its API as an admin):
            # B is on 2 already; A, untouched since its start, is restarted onto 2 with its files
            admin = ServiceClient(hub, user_token(hub, "admin"))

            def servers() -> dict:
                return {r["user"]: r for r in admin.call("GET", f"/courses/{FLOW}/images").json()["servers"]}

            wait_for(lambda: servers()["pa"]["idle"], 240, "student pa's server to count as idle")
            assert servers()["pa"]["version"] == 1
            r = admin.call("POST", f"/courses/{FLOW}/restart-idle", json={})
            assert r.status_code == 200, r.text
            assert (r.json()["restarted"], r.json()["left"]) == (
                [{"user": "pa", "template": f"{FLOW}-cpu", "from_version": 1}], [])
            wait_for(lambda: (hub.server("pa") or {}).get("ready"), 180, "pa's server to run again")
            assert image_of("pa") == v2.image_id and servers()["pa"]["version"] == 2
            assert home_digest("pa") == kept["pa"]

            r = goldenhub("images", "rollback", FLOW, "1", env=env)
            assert r.returncode == 0, r.stderr
            assert f"{FLOW} uses version 1 again: {v1.reference}" in r.stdout
            assert f"2 running servers run another version and keep it until they restart: {prefix}-" in r.stdout
            hub.stop("pb")
            hub.spawn("pb", options)
            assert image_of("pb") == v1.image_id  # the next restart gets the old one
            assert {user: home_digest(user) for user in ("pa", "pb")} == kept

            with factory() as s:
                audit = [(a.action, a.actor, a.course, a.result) for a in s.query(AuditEntry).order_by(AuditEntry.id)]
            actor = f"cli:{getpass.getuser()}"
            assert audit == [("publish", actor, FLOW, "ok"), ("publish", "prof", FLOW, "ok"),
                             ("restart-on-version", "admin", FLOW, "ok"), ("rollback", actor, FLOW, "ok")]
    finally:
        remote.stop()
        remove_course_images(FLOW)
