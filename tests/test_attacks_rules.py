"""Attacks on what a template may name: datasets that are symlinks out of the allowed roots
(to /, /etc, a socket, goldenhub's state, the Docker socket), links swapped after validation,
ids and fields with a trailing newline, credentials in courseware URLs, and the secrets a
local user could read from the state directory or a process's environment.

Pure tests use real directories, symlinks, sockets and pipes in a temporary directory; the
integration tests go through a real hub, its goldenhub service and Docker.
"""

from __future__ import annotations

import os
import socket
import stat
import uuid
from dataclasses import replace
from pathlib import Path

import docker
import pytest
from sqlalchemy import create_engine, inspect

from hub_ext.catalog import rules
from hub_ext.catalog import store
from hub_ext.catalog.model import Catalog, CatalogError, parse_template
from hub_ext.service import db
from tests.helpers import (HUB_PORT, PREFIX, ServiceClient, goldenhub, hub_running, postgres_database, service_pid,
                           user_token)

TEMPLATE = {"id": "att-cpu", "title": "Attack", "image": "goldenhub/course-intro-python:latest",
            "gpus": 0, "cpu": 1, "memory": "512M"}


@pytest.fixture
def root(tmp_path) -> Path:
    """An allowed dataset root holding one real dataset directory."""
    root = tmp_path / "datasets"
    (root / "real").mkdir(parents=True)
    (root / "real" / "data.csv").write_text("n\n1\n")
    return root


def policy_for(root: Path, state: Path | None = None) -> store.Policy:
    return store.Policy(dataset_roots=(str(root),), **({"private_dirs": (str(state),)} if state else {}))


def dataset(source) -> dict:
    return {**TEMPLATE, "datasets": [{"name": "data", "source": str(source)}]}


def refusal(root: Path, source, state: Path | None = None) -> str:
    """What creating a runtime template with this dataset source answers (the API's validator)."""
    sessions = db.open_database(f"sqlite:///{root.parent / 'goldenhub.sqlite'}")
    with sessions() as s, pytest.raises(store.StoreError) as refused:
        store.create(s, Catalog(), "att", "", dataset(source), "admin", policy_for(root, state))
    assert refused.value.status == 400
    return str(refused.value)


# --- item 3: symlinks out of the dataset roots ----------------------------------------------


@pytest.mark.parametrize("target", ["/", "/etc", "/proc/self", "/var/run"])
def test_a_link_inside_the_root_to_a_system_directory_is_refused(root, target):
    (root / "evil").symlink_to(target)
    message = refusal(root, root / "evil")
    assert f"which resolves to {os.path.realpath(target)}" in message
    assert "dataset sources may not be /, system directories" in message


def test_a_link_to_a_socket_a_pipe_or_the_docker_socket_is_refused(root, tmp_path, monkeypatch):
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "some.sock"))
        (root / "sock").symlink_to(tmp_path / "some.sock")
        assert "which is a socket, device or pipe" in refusal(tmp_path, root / "sock")
    os.mkfifo(tmp_path / "pipe")
    (root / "pipe").symlink_to(tmp_path / "pipe")
    assert "which is a socket, device or pipe" in refusal(tmp_path, root / "pipe")
    # The Docker socket wherever it lives, and any directory holding it.
    engine = tmp_path / "engine"
    engine.mkdir()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine}/docker.sock")
    (root / "engine").symlink_to(engine)
    assert "the Docker socket" in refusal(tmp_path, root / "engine")


def test_a_link_into_goldenhubs_state_directory_is_refused(root, tmp_path):
    state = tmp_path / "state"
    (state / "sub").mkdir(parents=True)
    (root / "state").symlink_to(state / "sub")
    (root / "above").symlink_to(tmp_path)  # a directory holding the state directory
    assert "goldenhub's state directory" in refusal(root, root / "state", state)
    assert "goldenhub's state directory" in refusal(tmp_path, root / "above", state)


def test_links_out_of_the_root_are_refused_even_through_a_chain(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "hop1").symlink_to(root / "hop2")
    (root / "hop2").symlink_to("../outside")
    (root / "dotdot").mkdir()
    for source in (root / "out", root / "hop1", f"{root}/dotdot/../../outside"):
        message = refusal(root, source)
        assert f"which is outside the dataset roots; allowed: paths under {root}" in message, message
    # A root that is itself reached through a link counts by its real path.
    (tmp_path / "root-link").symlink_to(root)
    assert rules.resolve_dataset(str(root / "real"), (str(tmp_path / "root-link"),)) == str(root / "real")


def test_a_string_prefix_is_not_containment(root):
    sibling = root.parent / (root.name + "-evil")
    sibling.mkdir()
    assert "outside the dataset roots" in refusal(root, sibling)


def test_a_loop_of_links_is_a_sentence(root):
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    with pytest.raises(rules.RuleError, match="which cannot be resolved"):
        rules.resolve_dataset(str(root / "a"), (str(root),), must_exist=True)


def test_a_link_within_the_root_is_accepted_and_started_by_its_real_path(root):
    (root / "current").symlink_to(root / "real")
    template = parse_template(dataset(root / "current"), "t", "att")
    assert policy_for(root).problems(template) == []
    started = store.resolve_datasets(template, policy_for(root))
    assert started.datasets[0].source == str(root / "real")  # what Docker binds


def test_a_link_swapped_after_validation_is_refused_at_start(root):
    (root / "swap").symlink_to(root / "real")
    template = parse_template(dataset(root / "swap"), "t", "att")
    assert policy_for(root).problems(template) == []  # harmless when validated
    os.unlink(root / "swap")
    (root / "swap").symlink_to("/etc")
    runtime = replace(template, runtime=True)
    with pytest.raises(store.DatasetUnavailable) as refused:
        store.resolve_datasets(runtime, policy_for(root))
    assert str(refused.value) == "The dataset data is not available; an administrator has been told."
    assert "which resolves to /etc" in refused.value.detail
    # Course files are the admin's own (no roots), but /etc stays refused for them too.
    with pytest.raises(store.DatasetUnavailable):
        store.resolve_datasets(template, policy_for(root))


def test_a_dataset_gone_at_start_says_it_is_missing(root):
    (root / "gone").symlink_to(root / "nowhere")
    template = parse_template(dataset(root / "gone"), "t", "att")
    with pytest.raises(store.DatasetUnavailable) as refused:
        store.resolve_datasets(template, policy_for(root))
    assert str(refused.value) == (f"The dataset data is missing on this server ({root / 'gone'}); "
                                  "an administrator has been told.")


def test_courses_validate_judges_a_file_dataset_by_what_it_points_at(tmp_path):
    (tmp_path / "courses").mkdir()
    (tmp_path / "looks-harmless").symlink_to("/etc")
    (tmp_path / "courses" / "c.yaml").write_text(
        "id: c\ntitle: C\ntemplates:\n  - id: c-cpu\n    title: C\n    image: goldenhub/x:1\n"
        f"    gpus: 0\n    cpu: 1\n    memory: 1G\n    datasets:\n      - name: data\n"
        f"        source: {tmp_path / 'looks-harmless'}\n")
    result = goldenhub("courses", "validate", str(tmp_path / "courses"), timeout=60)
    assert result.returncode == 1
    assert "c-cpu.datasets.data.source: got" in result.stderr and "which resolves to /etc" in result.stderr


@pytest.mark.parametrize("source", ["//etc", "/srv/../etc/passwd", "/var/lib/docker/volumes", "/var"])
def test_forbidden_places_are_refused_by_name_too(source):
    with pytest.raises(rules.RuleError, match="dataset sources may not be"):
        rules.dataset_source(source)


# --- item 13: whole matches only ------------------------------------------------------------


@pytest.mark.parametrize("field,value", [
    ("id", "pids-nl\n"), ("id", "intro-python\n"), ("default_url", "/lab\n"),
    ("image", "goldenhub/course-intro-python:latest\n"),
])
def test_a_trailing_newline_is_refused(field, value):
    with pytest.raises(CatalogError, match=f"template.{field}: got "):
        parse_template({**TEMPLATE, field: value}, "template", "att")


@pytest.mark.parametrize("field,value", [("branch", "main\n"), ("target", "lab\n")])
def test_a_trailing_newline_in_courseware_is_refused(field, value):
    courseware = {"repo": "https://git.example.org/lab.git", field: value}
    with pytest.raises(CatalogError, match=f"template.courseware.{field}: got "):
        parse_template({**TEMPLATE, "courseware": courseware}, "template", "att")


def test_a_course_id_with_a_trailing_newline_is_refused(tmp_path):
    sessions = db.open_database(f"sqlite:///{tmp_path / 'goldenhub.sqlite'}")
    with sessions() as s, pytest.raises(store.StoreError, match="course: got 'att\\\\n'"):
        store.create(s, Catalog(), "att\n", "", TEMPLATE, "admin", store.Policy())


# --- item 7 (rules): credentials in courseware URLs -------------------------------------------


@pytest.mark.parametrize("url", ["https://ann:s3cr3t-token@git.example.org/lab.git",
                                 "https://s3cr3t-token@git.example.org/lab.git",
                                 "ssh://git:s3cr3t-token@git.example.org/lab.git",
                                 "git://s3cr3t-token@git.example.org/lab.git"])
def test_credentials_in_a_courseware_url_are_refused_without_repeating_them(url):
    with pytest.raises(CatalogError) as refused:
        parse_template({**TEMPLATE, "courseware": {"repo": url}}, "template", "att")
    message = str(refused.value)
    assert "use a deploy key or a credential setting instead" in message
    assert "s3cr3t-token" not in message


def test_an_ssh_login_name_is_not_a_credential():
    t = parse_template({**TEMPLATE, "courseware": {"repo": "ssh://git@git.example.org/lab.git"}}, "t", "att")
    assert t.courseware.repo == "ssh://git@git.example.org/lab.git"


# --- integration: a hub whose runtime templates may use one dataset root ---------------------

OWN_PREFIX = f"{PREFIX}r"
OWN_PORT = HUB_PORT + 20


@pytest.fixture(scope="module")
def rules_hub(tmp_path_factory, courses_dir):
    """An own hub: dataset root in a temporary directory, the service database on the test
    PostgreSQL (so that its URL holds a password)."""
    root = tmp_path_factory.mktemp("roots")
    db_url, drop = postgres_database(f"goldenhub_test_{uuid.uuid4().hex[:12]}")
    try:
        with hub_running(tmp_path_factory.mktemp("rules-state"), courses_dir, OWN_PORT, OWN_PREFIX,
                         env={"GOLDENHUB_DATASET_ROOTS": str(root), "GOLDENHUB_DB_URL": db_url}) as hub:
            hub.root, hub.db_url = root, db_url
            yield hub
    finally:
        create_engine(db_url).dispose()
        drop()


@pytest.fixture(scope="module")
def admin_api(rules_hub):
    return ServiceClient(rules_hub, user_token(rules_hub, "admin"))



@pytest.mark.integration
def test_api_refuses_a_runtime_template_whose_dataset_links_to_etc(rules_hub, admin_api):
    (rules_hub.root / "etc-link").symlink_to("/etc")
    r = admin_api.call("POST", "/templates", json={
        "course": "att", "template": {**dataset(rules_hub.root / "etc-link"), "id": "att-etc"}})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "which resolves to /etc" in message and "may not be /, system directories" in message
    assert "att-etc" not in [t["id"] for t in admin_api.call("GET", "/templates").json()["templates"]]


@pytest.mark.integration
def test_a_dataset_link_swapped_to_etc_after_validation_is_refused_at_start(rules_hub, admin_api):
    real = rules_hub.root / "numbers"
    real.mkdir()
    (real / "numbers.csv").write_text("n\n1\n")
    link = rules_hub.root / "current"
    link.symlink_to(real)
    r = admin_api.call("POST", "/templates", json={
        "course": "att", "template": {**dataset(link), "id": "att-swap"}})
    assert r.status_code == 201, r.text

    # While harmless, the start binds the link's real path, not the link.
    rules_hub.enrol("swapper", "att")
    rules_hub.spawn("swapper", {"template": "att-swap"})
    container = rules_hub.container("swapper")
    binds = [m for m in container.attrs["Mounts"] if m["Type"] == "bind"]
    assert [(m["Source"], m["RW"]) for m in binds] == [(str(real), False)]
    rules_hub.stop("swapper")

    os.unlink(link)
    link.symlink_to("/etc")
    response, events = rules_hub.spawn_with_progress("swapper", {"template": "att-swap"})
    message = response.json().get("message", "") if response.status_code >= 400 else events[-1]["message"]
    assert "The dataset data is not available on this server right now; an administrator has been told." in message, events
    assert "Traceback" not in message and "/etc" not in message
    assert rules_hub.server("swapper") is None
    mounts_etc = [c.name for c in docker.from_env().containers.list(all=True, filters={"name": OWN_PREFIX})
                  if any(m.get("Source") == "/etc" for m in c.attrs["Mounts"])]
    assert mounts_etc == []
    assert "dataset data refused" in rules_hub.log_tail(200)  # the admin's detail is in the hub log


@pytest.mark.integration
def test_ids_with_a_trailing_newline_cannot_be_created_or_reached(rules_hub, admin_api):
    r = admin_api.call("POST", "/templates", json={"course": "att", "template": {**TEMPLATE, "id": "pids-nl\n"}})
    assert r.status_code == 400 and "template.id: got 'pids-nl\\n'" in r.json()["message"], r.text
    r = admin_api.call("GET", "/templates/intro-python-cpu%0A")
    assert r.status_code == 404, r.text


@pytest.mark.integration
def test_state_files_and_the_service_environment_hold_no_readable_secret(rules_hub, admin_api):
    password = rules_hub.db_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert admin_api.call("GET", "/").status_code == 200  # the service found its database by file
    engine = create_engine(rules_hub.db_url)
    try:
        assert "templates" in inspect(engine).get_table_names()  # ...the PostgreSQL one
    finally:
        engine.dispose()

    state = rules_hub.state_dir
    readable = []
    for where, dirs, files in os.walk(state):
        for name in [*dirs, *files]:
            mode = os.lstat(os.path.join(where, name)).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                readable.append(f"{os.path.join(where, name)} {stat.filemode(mode)}")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert readable == [], "files other local users can read"
    for name in os.listdir(state):
        if name.startswith("jupyterhub.sqlite"):
            assert password.encode() not in (state / name).read_bytes(), name
    environ = Path(f"/proc/{service_pid(rules_hub)}/environ").read_bytes()
    assert password.encode() not in environ
    assert b"GOLDENHUB_DB_URL=" not in environ
