"""Runtime templates in the database merged with course files (no hub needed)."""

import textwrap

import pytest

from hub_ext.catalog import store
from hub_ext.catalog.model import load_catalog
from hub_ext.service import db

FILE = """\
id: files
title: From a file
templates:
  - id: shared-id
    title: File version
    image: goldenhub/course-intro-python:latest
    gpus: 0
    cpu: 1
    memory: 1G
"""
NEW = {"id": "api-one", "title": "API", "image": "goldenhub/x:1", "gpus": 0, "cpu": 1, "memory": "1G"}


@pytest.fixture
def env(tmp_path):
    courses = tmp_path / "courses"
    courses.mkdir()
    url = f"sqlite:///{tmp_path / 'gh.sqlite'}"
    sessions = db.open_database(url)
    return courses, url, sessions


def test_a_template_created_through_the_api_is_never_overwritten_by_a_file(env):
    courses, url, sessions = env
    with sessions() as s:
        store.create(s, load_catalog(courses), "runtime", "Runtime", {**NEW, "id": "shared-id", "memory": "2G"},
                     "admin", store.Policy())
    # Later someone adds a course file that defines the same id.
    (courses / "files.yaml").write_text(FILE)
    merged = store.load_full_catalog(courses, url)
    assert merged.templates["shared-id"].memory == 2 * 2**30  # the API version
    assert merged.managed_by["shared-id"] == "api"
    assert "defined in a course file and through the API" in merged.conflicts[0]
    assert [t.id for t in merged.courses["files"].templates] == []


def test_file_templates_are_read_only_and_ids_are_checked(env):
    courses, url, sessions = env
    (courses / "files.yaml").write_text(FILE)
    files = load_catalog(courses)
    with sessions() as s:
        with pytest.raises(store.StoreError, match="managed by file") as e:
            store.update(s, files, "shared-id", {"memory": "2G"}, "admin", store.Policy())
        assert e.value.status == 409
        with pytest.raises(store.StoreError, match="id cannot change"):
            store.create(s, files, "runtime", "", NEW, "admin", store.Policy())
            store.update(s, files, "api-one", {"id": "other"}, "admin", store.Policy())


def test_revisions_diff_and_rollback(env):
    courses, url, sessions = env
    files = load_catalog(courses)
    with sessions() as s:
        store.create(s, files, "runtime", "", NEW, "alice", store.Policy())
        store.update(s, files, "api-one", {"cpu": 2}, "bob", store.Policy(), "two cores")
        with pytest.raises(store.StoreError, match="Nothing changed"):
            store.update(s, files, "api-one", {"cpu": 2}, "bob", store.Policy())
        store.rollback(s, files, "api-one", 1, "carol", store.Policy())
        revs = store.revisions(s, "api-one")
    assert [(r.number, r.author) for r in revs] == [(3, "carol"), (2, "bob"), (1, "alice")]
    assert "-cpu: 1" in revs[1].diff and "+cpu: 2" in revs[1].diff
    assert revs[0].comment == "rollback to revision 1"
    assert store.load_full_catalog(courses, url).templates["api-one"].cpu == 1


def test_policy_names_what_is_allowed():
    policy = store.Policy(image_prefixes=("registry.campus:5000/teaching/",), dataset_roots=("/data",))
    from hub_ext.catalog.model import parse_template

    t = parse_template({**NEW, "datasets": [{"name": "d", "source": "/srv/elsewhere"}]}, "t", "c")
    problems = policy.problems(t)
    assert "allowed: registry.campus:5000/teaching/" in problems[0]
    assert "allowed: paths under /data" in problems[1]


def test_no_database_yet_means_files_only(tmp_path):
    courses = tmp_path / "courses"
    courses.mkdir()
    (courses / "files.yaml").write_text(textwrap.dedent(FILE))
    merged = store.load_full_catalog(courses, f"sqlite:///{tmp_path / 'missing.sqlite'}")
    assert list(merged.templates) == ["shared-id"] and not (tmp_path / "missing.sqlite").exists()
