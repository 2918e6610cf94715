"""Golden images: plan/label/tag rules (pure), and real builds, cache reuse and push (Docker)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub_ext.cli import images_cmd
from hub_ext.images import plan as images
from tests.helpers import PREFIX, goldenhub

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT_S = 1500


# --- pure ---------------------------------------------------------------------------------

def _course(cid, framework, templates=("t1",), title="A course"):
    return SimpleNamespace(id=cid, title=title, framework=framework,
                           templates=tuple(SimpleNamespace(id=t) for t in templates))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def images_tree(tmp_path):
    root = tmp_path / "images"
    for d in ("base", "frameworks/scipy", "frameworks/pytorch"):
        _write(root / d / "Dockerfile", "FROM scratch\n")
    for course in ("py", "dl", "other"):
        _write(tmp_path / "courses" / course / "environment/requirements.txt", "tabulate\n")
    (root / "frameworks/pytorch/requires-cuda").touch()
    return root


def test_names_and_tags():
    assert images.make_repository("base", "base") == "goldenhub/base"
    assert images.make_repository("framework", "scipy") == "goldenhub/framework-scipy"
    assert images.make_repository("course", "intro-python") == "goldenhub/course-intro-python"
    assert images.make_tags("goldenhub/base", "v1.0-3-gabc") == ["goldenhub/base:v1.0-3-gabc", "goldenhub/base:latest"]
    with pytest.raises(images.ImagesError, match="Docker image name"):
        images.make_repository("course", "Bad Name")
    with pytest.raises(images.ImagesError, match="valid Docker tag"):
        images.make_tags("goldenhub/base", "-bad")


def test_push_repository_rejects_a_scheme():
    assert images.make_push_repository("127.0.0.1:5000/", "goldenhub/base") == "127.0.0.1:5000/goldenhub/base"
    with pytest.raises(images.ImagesError, match="without http://"):
        images.make_push_repository("http://127.0.0.1:5000", "goldenhub/base")


@pytest.mark.parametrize("registry, bad", [
    ("127.0.0.1:5000", False), ("localhost:5000", False), ("registry.example.org", False),
    ("registry.example.org/teaching/ml", False),  # host/path
    ("https://registry.example.org", True), ("registry.example.org:port", True),
    ("registry.example.org/Team", True), ("reg istry", True),
])
def test_a_pushed_image_names_its_registry_so_hubs_pull_it_from_there(registry, bad):
    """What `images build --push` tags is what the spawner reads as a registry reference
    (and so pulls): the two sides share Docker's rule for where an image comes from."""
    from spawner.images import names_registry, split_reference

    repository = images.make_repository("course", "intro-python")
    assert not names_registry(f"{repository}:v1")  # a local build: not pulled from a registry
    if bad:
        with pytest.raises(images.ImagesError, match=r"give a registry as host\[:port\]"):
            images.make_push_repository(registry, repository)
        return
    pushed = images.make_push_repository(registry, repository)
    assert pushed == f"{registry}/goldenhub/course-intro-python"
    for tag in images.make_tags(pushed, "v1-2-gabc123"):
        assert names_registry(tag) and split_reference(tag)[0] == pushed


def test_plan_on_a_cuda_base_keeps_each_courses_framework(images_tree):
    plan = images.plan_chain([_course("py", "scipy"), _course("dl", "pytorch"), _course("other", "scipy")],
                             images_tree, cuda_base=True)
    assert [layer.repository for layer in plan.layers] == [
        "goldenhub/base", "goldenhub/framework-scipy", "goldenhub/framework-pytorch",
        "goldenhub/course-py", "goldenhub/course-dl", "goldenhub/course-other",
    ]
    dl = plan.layers[4]
    assert dl.parent == "goldenhub/framework-pytorch" and dl.requires_cuda and dl.requested_framework is None
    assert plan.notes == []


def test_plan_without_cuda_substitutes_scipy_and_says_so(images_tree):
    plan = images.plan_chain([_course("dl", "pytorch"), _course("none", None)], images_tree, cuda_base=False)
    assert [layer.repository for layer in plan.layers] == [
        "goldenhub/base", "goldenhub/framework-scipy", "goldenhub/course-dl"]
    assert plan.layers[2].framework == "scipy" and plan.layers[2].requested_framework == "pytorch"
    assert "dl: framework pytorch needs a CUDA base; built on scipy instead" in plan.notes
    assert any(n.startswith("none: no framework") for n in plan.notes)


def test_plan_names_a_missing_framework_and_the_available_ones(images_tree):
    with pytest.raises(images.ImagesError, match=r"framework 'tensorflow' \(used by course py; available: pytorch, scipy\)"):
        images.plan_chain([_course("py", "tensorflow")], images_tree, cuda_base=True)
    with pytest.raises(images.ImagesError, match="course layer of nolayer"):
        images.plan_chain([_course("nolayer", "scipy")], images_tree, cuda_base=True)


def test_select_courses():
    courses = {"a": _course("a", "scipy"), "b": _course("b", "scipy")}
    assert [c.id for c in images.select_courses(courses, None)] == ["a", "b"]
    assert [c.id for c in images.select_courses(courses, ["b", "b"])] == ["b"]
    with pytest.raises(images.ImagesError, match="no such course: x. Courses in the catalog: a, b"):
        images.select_courses(courses, ["x"])


def test_labels_are_a_function_of_the_layer_and_its_provenance(images_tree):
    plan = images.plan_chain([_course("dl", "pytorch", templates=("gpu", "cpu"), title="Deep")], images_tree,
                             cuda_base=False)
    prov = images.Provenance("abc123", "2024-01-02T03:04:05+00:00", "v1-2-gabc123", "file:///repo")
    labels = images.make_labels(plan.layers[2], prov)
    assert labels == images.make_labels(plan.layers[2], prov)
    assert labels["org.opencontainers.image.revision"] == "abc123"
    assert labels["org.opencontainers.image.created"] == "2024-01-02T03:04:05+00:00"
    assert labels["org.opencontainers.image.version"] == "v1-2-gabc123"
    assert labels["org.opencontainers.image.title"] == "Deep"
    assert labels["goldenhub.layer"] == "course" and labels["goldenhub.course"] == "dl"
    assert labels["goldenhub.framework"] == "scipy" and labels["goldenhub.framework.requested"] == "pytorch"
    assert labels["goldenhub.templates"] == "gpu,cpu"
    assert "goldenhub/course-dl:v1-2-gabc123" in labels["goldenhub.run"]
    assert "goldenhub.course" not in images.make_labels(plan.layers[0], prov)


def test_dockerfile_arg_default():
    default = images.dockerfile_arg_default(REPO_ROOT / "images/base/Dockerfile", "BASE_IMAGE")
    assert default and default.startswith("nvidia/cuda:")


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _commit_all(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", message)


def test_provenance_follows_the_last_commit_of_the_layer_directory(tmp_path):
    repo = tmp_path / "repo"
    _write(repo / "images/base/Dockerfile", "FROM scratch\n")
    _write(repo / "images/courses/c/Dockerfile", "FROM scratch\n")
    _git(repo, "init", "-q")
    _commit_all(repo, "first")
    first = _git(repo, "rev-parse", "HEAD")
    _write(repo / "images/courses/c/Dockerfile", "FROM scratch\nLABEL x=1\n")
    _commit_all(repo, "course only")
    second = _git(repo, "rev-parse", "HEAD")
    base = images.git_provenance(repo / "images/base")
    course = images.git_provenance(repo / "images/courses/c")
    assert (base.revision, course.revision) == (first, second)
    assert base.version == first[:7] and not base.dirty
    assert base.created == _git(repo, "log", "-1", "--format=%cI", first)
    assert images.git_provenance(repo / "images/base") == base  # deterministic

    _write(repo / "images/courses/c/extra.txt", "untracked\n")
    dirty = images.git_provenance(repo / "images/courses/c")
    assert dirty.dirty and dirty.version == second[:7] + "-dirty" and dirty.revision == second
    assert images.git_provenance(repo / "images/base") == base  # other layers unaffected


def test_images_build_arguments_reach_the_build():
    """`goldenhub images build …`, parsed by the real command line, runs the build with
    every option the admin gave."""
    from hub_ext.cli.main import make_parser

    args = make_parser().parse_args(["images", "build", "--course", "a", "--course", "b", "--offline-base",
                                     "--push", "127.0.0.1:5000"])
    assert args.courses == ["a", "b"] and args.offline_base and args.push == "127.0.0.1:5000"
    assert args.run is images_cmd.run_build


# --- with a Docker engine -----------------------------------------------------------------

@pytest.fixture(scope="module")
def api():
    docker = pytest.importorskip("docker")
    try:
        client = docker.APIClient(timeout=60, **docker.utils.kwargs_from_env())
        client.ping()
    except Exception as exc:  # any failure to reach the engine means: no Docker here
        pytest.skip(f"no Docker daemon answers: {exc}")
    return client


def _sections(output: str) -> dict[str, str]:
    """Build output split per layer, keyed by repository (from the `=== kind name: repo:tag` lines)."""
    parts = re.split(r"^=== \S+ \S+: ", output, flags=re.M)[1:]
    return {part.split(":", 1)[0]: part for part in parts}


def _labels(api, ref: str) -> dict:
    return api.inspect_image(ref)["Config"]["Labels"] or {}


def _expected_provenance(directory: Path) -> tuple[str, bool]:
    rel = directory.relative_to(REPO_ROOT)
    revision = subprocess.run(["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%H", "--", str(rel)],
                              capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=all",
                                 "--", str(rel)], capture_output=True, text=True).stdout.strip())
    return revision, dirty or not revision


@pytest.mark.images
def test_real_chain_is_labelled_with_each_layers_git_commit(api):
    result = goldenhub("images", "build", "--offline-base", "--course", "intro-python", timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert "OS base: goldenhub/os-base:bookworm — --offline-base was given" in result.stdout
    for ref, directory, layer in [
        ("goldenhub/base:latest", REPO_ROOT / "images/base", "base"),
        ("goldenhub/framework-scipy:latest", REPO_ROOT / "images/frameworks/scipy", "framework"),
        ("goldenhub/course-intro-python:latest", REPO_ROOT / "courses/intro-python/environment", "course"),
    ]:
        labels = _labels(api, ref)
        revision, dirty = _expected_provenance(directory)
        assert labels["org.opencontainers.image.revision"] == (revision or "unknown"), ref
        assert labels["org.opencontainers.image.version"].endswith("-dirty") == dirty, ref
        if revision and not dirty:
            describe = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--tags", "--always", revision],
                                      capture_output=True, text=True).stdout.strip()
            assert labels["org.opencontainers.image.version"] == describe
        assert labels["goldenhub.layer"] == layer
        for key in ("created", "source", "title"):
            assert labels[f"org.opencontainers.image.{key}"], (ref, key)
        assert labels["goldenhub.run"].startswith("docker run ")
    course = _labels(api, "goldenhub/course-intro-python:latest")
    assert course["goldenhub.course"] == "intro-python" and course["goldenhub.framework"] == "scipy"
    version = course["org.opencontainers.image.version"]
    assert api.inspect_image(f"goldenhub/course-intro-python:{version}")["Id"] == \
        api.inspect_image("goldenhub/course-intro-python:latest")["Id"]


TINY_COURSE = """\
id: {cid}
title: Tiny test course
framework: {framework}
templates:
  - id: {cid}-cpu
    title: Tiny
    image: {ns}/course-{cid}:latest
    gpus: 0
    cpu: 1
    memory: 512M
"""


@pytest.fixture
def tiny_repo(tmp_path, api):
    """A git repo with three cheap layers on the offline OS base, and a namespace removed afterwards."""
    ns = f"{PREFIX}-images-{uuid.uuid4().hex[:8]}"
    repo = tmp_path / "repo"
    _write(repo / "images/base/Dockerfile",
           "ARG BASE_IMAGE=goldenhub/os-base:bookworm\nFROM ${BASE_IMAGE}\n"
           "RUN echo base-one > /base1.txt\nRUN echo base-two > /base2.txt\n")
    _write(repo / "images/frameworks/tiny/Dockerfile",
           "ARG BASE\nFROM ${BASE}\nRUN echo fw-one > /fw1.txt\nRUN echo fw-two > /fw2.txt\n")
    # The course layer is generated from a postBuild (the tiny OS base has no pip).
    _write(repo / "courses/tinycourse/environment/postBuild", "#!/bin/sh\necho course-one > /tmp/course1.txt\n")
    _write(repo / "courses/tinycourse.yaml", TINY_COURSE.format(cid="tinycourse", framework="tiny", ns=ns))
    _git(repo, "init", "-q")
    _commit_all(repo, "tiny layers")
    yield SimpleNamespace(root=repo, ns=ns)
    for image in api.images():
        for ref in image.get("RepoTags") or []:
            if f"{ns}/" in ref:
                api.remove_image(ref, force=True)


def _tiny_build(repo, *extra: str) -> subprocess.CompletedProcess:
    return goldenhub("images", "build", "--offline-base", "--namespace", repo.ns, "--images-dir",
                     str(repo.root / "images"), "--courses-dir", str(repo.root / "courses"), *extra,
                     timeout=BUILD_TIMEOUT_S)


@pytest.mark.images
def test_changing_only_the_course_layer_reuses_base_and_framework(api, tiny_repo):
    ns = tiny_repo.ns
    refs = [f"{ns}/base:latest", f"{ns}/framework-tiny:latest", f"{ns}/course-tinycourse:latest"]
    first = _tiny_build(tiny_repo)
    assert first.returncode == 0, first.stderr
    before = [api.inspect_image(r)["Id"] for r in refs]

    _write(tiny_repo.root / "courses/tinycourse/environment/postBuild",
           "#!/bin/sh\necho course-one > /tmp/course1.txt\necho course-two > /tmp/course2.txt\n")
    _commit_all(tiny_repo.root, "course layer only")
    second = _tiny_build(tiny_repo)
    assert second.returncode == 0, second.stderr
    after = [api.inspect_image(r)["Id"] for r in refs]

    assert after[:2] == before[:2], "base or framework was rebuilt although only the course layer changed"
    assert after[2] != before[2]
    sections = _sections(second.stdout)
    for repo in (f"{ns}/base", f"{ns}/framework-tiny"):
        assert "Using cache" in sections[repo] and "Running in" not in sections[repo], repo
    course = sections[f"{ns}/course-tinycourse"]
    assert "Running in" in course  # the changed postBuild ran
    course_revision = _git(tiny_repo.root, "rev-parse", "HEAD")
    assert _labels(api, refs[2])["org.opencontainers.image.revision"] == course_revision
    assert _labels(api, refs[0])["org.opencontainers.image.revision"] == _git(tiny_repo.root, "rev-parse", "HEAD~1")


@pytest.mark.images
def test_push_publishes_every_layer_with_its_version(api, tiny_repo, registry):
    result = _tiny_build(tiny_repo, "--push", registry)
    assert result.returncode == 0, result.stderr
    version = _git(tiny_repo.root, "describe", "--tags", "--always", "HEAD")
    for name in ("base", "framework-tiny", "course-tinycourse"):
        with urllib.request.urlopen(f"http://{registry}/v2/{tiny_repo.ns}/{name}/tags/list", timeout=10) as resp:
            tags = json.load(resp)
        assert tags == {"name": f"{tiny_repo.ns}/{name}", "tags": [version]}
        assert f"Pushed {registry}/{tiny_repo.ns}/{name}:{version}" in result.stdout


@pytest.mark.images
def test_a_failing_build_exits_nonzero_with_a_clear_message(api, tiny_repo):
    _write(tiny_repo.root / "courses/tinycourse/environment/postBuild", "#!/bin/sh\necho about to fail\nexit 3\n")
    result = _tiny_build(tiny_repo)
    assert result.returncode == 1
    assert "building the course layer of tinycourse failed: postBuild exited with status 3" in result.stderr
    assert "about to fail" in result.stderr
