"""Published versions and pins in the service database (SQLite and a real PostgreSQL): a pin
moves a course's own-image templates to the published image by digest, file-based courses
included; rollback pins an earlier version as a new revision; one publish per course at a
time, and a crashed publisher never blocks the next one."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from hub_ext.catalog.store import load_full_catalog
from hub_ext.images import versions
from hub_ext.service import db
from tests.helpers import copy_courses

REF = "127.0.0.1:5000/goldenhub/course-intro-python@sha256:" + "a" * 64


@pytest.fixture
def url(any_db_url):
    yield any_db_url
    if any_db_url.startswith("postgresql"):  # close pooled connections before the database is dropped
        from hub_ext.catalog import store
        for engine in (store._engines.pop(any_db_url, None), _made.pop(any_db_url, None)):
            if engine is not None:
                engine.dispose()


_made: dict = {}


@pytest.fixture
def factory(url):
    made = db.open_database(url)
    _made[url] = made.kw["bind"]
    return made


def _publish(factory, course: str, reference: str, actor: str = "alice") -> db.ImageVersion:
    with factory() as session:
        version = versions.record_version(session, course, reference=reference, image_id="sha256:" + reference[-8:],
                                          actor=actor, commit="c" * 40)
        versions.pin(session, course, version, "publish", actor)
        session.commit()
        return version


@pytest.mark.parametrize("image, repository", [
    ("goldenhub/course-x:1", "goldenhub/course-x"),
    ("goldenhub/course-x", "goldenhub/course-x"),
    ("127.0.0.1:5000/goldenhub/course-x@sha256:" + "b" * 64, "goldenhub/course-x"),
    ("reg.example.org/teach/goldenhub/course-x:v2", "teach/goldenhub/course-x"),
    ("localhost/goldenhub/course-x:v2", "goldenhub/course-x"),
])
def test_image_repository_drops_registry_tag_and_digest(image, repository):
    assert versions.image_repository(image) == repository
    assert versions.is_course_image(image, "x")
    assert not versions.is_course_image(image, "y")


def test_a_pin_moves_a_file_courses_templates_to_the_published_digest(factory, url, tmp_path):
    courses = copy_courses(tmp_path / "courses")
    before = load_full_catalog(courses, url).templates["intro-python-cpu"]
    assert before.pinned_version == 0 and before.image == "goldenhub/course-intro-python:latest"
    _publish(factory, "intro-python", REF)
    after = load_full_catalog(courses, url)
    template = after.templates["intro-python-cpu"]
    assert template.image == REF and template.pinned_version == 1
    assert template.declared_image == "goldenhub/course-intro-python:latest"  # the file's, shown beside the pin
    # another course's templates are untouched
    assert after.templates["deep-learning-gpu"].image == "goldenhub/course-deep-learning:latest"


def test_rollback_is_a_new_revision_and_refuses_what_cannot_be(factory, url, tmp_path):
    courses = copy_courses(tmp_path / "courses")
    first = _publish(factory, "intro-python", REF)
    second = _publish(factory, "intro-python", REF.replace("a" * 64, "b" * 64), actor="bob")
    assert (first.number, second.number) == (1, 2)
    assert load_full_catalog(courses, url).templates["intro-python-cpu"].pinned_version == 2
    with factory() as session:
        revision = versions.rollback(session, "intro-python", "1", "carol")
        session.commit()
        assert (revision.number, revision.action, revision.author) == (3, "rollback", "carol")
        assert [r.action for r in versions.pin_history(session, "intro-python")] == ["rollback", "publish", "publish"]
    template = load_full_catalog(courses, url).templates["intro-python-cpu"]
    assert (template.image, template.pinned_version) == (REF, 1)
    with factory() as session:
        with pytest.raises(versions.VersionError, match="already uses version 1") as same:
            versions.rollback(session, "intro-python", 1, "carol")
        assert same.value.status == 409
        for bad in ("9", "1; drop table", "-1", "", None, "1" * 40):
            with pytest.raises(versions.VersionError, match="published versions: 2, 1") as missing:
                versions.rollback(session, "intro-python", bad, "carol")
            assert missing.value.status == 404
        assert len(versions.pin_history(session, "intro-python")) == 3  # nothing changed


def test_a_second_publish_of_a_course_is_refused_naming_the_first(factory):
    run = versions.begin_run(factory, "intro-python", "main", "alice")
    with pytest.raises(versions.PublishBusy, match=rf"publish {run.id}, started by alice") as busy:
        versions.begin_run(factory, "intro-python", "", "bob")
    assert busy.value.run.id == run.id
    other = versions.begin_run(factory, "deep-learning", "", "bob")  # another course is free
    versions.finish_run(factory, run.id, ok=False, message="the build failed")
    again = versions.begin_run(factory, "intro-python", "", "bob")
    with factory() as session:
        states = {r.id: (r.state, r.message) for r in versions.runs(session, "intro-python")}
    assert states[run.id] == ("failed", "the build failed") and states[again.id][0] == "running"
    versions.finish_run(factory, other.id, ok=True)


def test_a_lock_whose_holder_died_is_taken_over_and_its_run_marked_failed(factory):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_holder = f"{versions.this_holder().rsplit(':', 1)[0]}:{gone.stdout.strip()}"
    crashed = versions.begin_run(factory, "intro-python", "", "alice", holder=dead_holder)
    taken = versions.begin_run(factory, "intro-python", "", "bob")
    with factory() as session:
        old = session.get(db.PublishRun, crashed.id)
        assert old.state == "failed" and "ended without finishing" in old.message
        assert session.get(db.PublishLock, "intro-python").run_id == taken.id


def test_a_lock_older_than_any_publish_is_stale_even_on_another_host(factory):
    run = versions.begin_run(factory, "intro-python", "", "alice", holder="elsewhere.example:1")
    with pytest.raises(versions.PublishBusy):
        versions.begin_run(factory, "intro-python", "", "bob")  # another host: alive until proven old
    with factory() as session:
        lock = session.get(db.PublishLock, "intro-python")
        lock.at = lock.at - timedelta(seconds=versions.MAX_RUN_S + 60)
        session.commit()
    taken = versions.begin_run(factory, "intro-python", "", "bob")
    assert taken.id != run.id


def test_the_process_doing_a_run_adopts_it_and_only_a_running_one(factory):
    run = versions.begin_run(factory, "intro-python", "", "alice", holder="service:1")
    adopted = versions.adopt_run(factory, run.id)
    assert adopted.holder == versions.this_holder()
    versions.set_step(factory, run.id, "build", log_path="/tmp/x.log")
    with pytest.raises(ValueError, match="unknown publish step"):
        versions.set_step(factory, run.id, "deploy")
    versions.finish_run(factory, run.id, ok=True)
    with pytest.raises(versions.VersionError, match="not running"):
        versions.adopt_run(factory, run.id)


def test_a_database_without_the_publishing_tables_pins_nothing(tmp_path):
    """A service database still at schema 0004 (before an upgrade) must not stop starts."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    db.upgrade(url, "0004")
    courses = copy_courses(tmp_path / "courses")
    assert load_full_catalog(courses, url).templates["intro-python-cpu"].pinned_version == 0
    assert Path(url.removeprefix("sqlite:///")).exists()
