"""A course layer from requirements.txt / apt.txt / postBuild: the generated Dockerfile and
context, every refusal of hostile files, the requirements digest, courseware checkouts from a
real git daemon (pure: no Docker), and real builds on the sample scipy framework (images)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from hub_ext.images import build as images_build
from hub_ext.images import course_env
from hub_ext.images import plan as images
from hub_ext.images.course_env import EnvError
from tests.helpers import PREFIX, GitRemote, free_port

FRAMEWORK = "goldenhub/framework-scipy:latest"
BASE = "goldenhub/base:latest"


def _env_dir(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


# --- the generated Dockerfile and context -----------------------------------------------------

@pytest.mark.parametrize("files", [
    {"requirements.txt": "tabulate==0.10.0\n"},
    {"requirements.txt": "tabulate\n", "apt.txt": "# tools\ncowsay\n\ngraphviz=2.42.2-7  # pinned\n"},
    {"requirements.txt": "tabulate\n", "apt.txt": "cowsay\n", "postBuild": "#!/bin/sh\necho hi\n"},
    {"postBuild": "#!/bin/sh\necho only a script\n"},
    {"apt.txt": "cowsay\n"},
    {},
])
def test_the_layer_installs_each_file_in_cache_order_with_the_right_user(tmp_path, files):
    """apt as root first, pip as uid 1000 next, postBuild (as uid 1000) last; steps of absent
    files are left out; only the Dockerfile and the copied env files make the build context,
    whatever else (an instructor's Dockerfile) lies next to them."""
    directory = _env_dir(tmp_path / "env", {**files, "Dockerfile": "FROM evil\nUSER root\n", "notes.md": "x"})
    env = course_env.read_env_dir(directory)
    dockerfile = course_env.make_dockerfile(env)
    lines = dockerfile.splitlines()
    assert lines[1:3] == ["ARG FRAMEWORK_IMAGE", "FROM ${FRAMEWORK_IMAGE}"]
    assert "evil" not in dockerfile
    apt_at = dockerfile.find("apt-get install")
    pip_at = dockerfile.find("pip install")
    post_at = dockerfile.find("/tmp/goldenhub-env/postBuild &&")
    present = [at for at in (apt_at, pip_at, post_at) if at >= 0]
    assert present == sorted(present)
    assert (apt_at >= 0) == ("apt.txt" in files)
    assert (pip_at >= 0) == ("requirements.txt" in files)
    assert (post_at >= 0) == ("postBuild" in files)
    if "apt.txt" in files:
        assert dockerfile.rfind("USER root", 0, apt_at) >= 0
        assert "--no-install-recommends cowsay" in dockerfile and "rm -rf /var/lib/apt/lists/*" in dockerfile
        assert ("graphviz=2.42.2-7" in dockerfile) == ("graphviz" in files["apt.txt"])
        assert "pinned" not in dockerfile and "tools" not in dockerfile
    # Everything after the apt step runs as the student's uid, never as root.
    tail = dockerfile[apt_at:] if apt_at >= 0 else dockerfile
    assert "USER 1000" in tail and "USER root" not in tail.split("USER 1000", 1)[1]
    if "requirements.txt" in files:
        assert "pip install --no-cache-dir -r /tmp/goldenhub-env/requirements.txt" in dockerfile
    context = course_env.make_context(env, tmp_path / "context")
    expected = {"Dockerfile"} | {n for n in ("requirements.txt", "postBuild") if n in files}
    assert {p.name for p in context.iterdir()} == expected
    for name in expected - {"Dockerfile"}:
        assert (context / name).read_bytes() == (directory / name).read_bytes()


# --- hostile files --------------------------------------------------------------------------

def test_a_link_out_of_the_directory_is_refused_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root-only\n")
    directory = _env_dir(tmp_path / "env", {"requirements.txt": "tabulate\n"})
    (directory / "postBuild").symlink_to(secret)
    with pytest.raises(EnvError, match=r"postBuild is a symbolic link; allowed: a regular file") as caught:
        course_env.read_env_dir(directory)
    assert caught.value.file == "postBuild" and "root-only" not in str(caught.value)


def test_a_linked_binder_directory_in_a_checkout_is_refused(tmp_path):
    outside = _env_dir(tmp_path / "outside", {"requirements.txt": "evil\n"})
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "binder").symlink_to(outside)
    with pytest.raises(EnvError, match="binder is a symbolic link"):
        course_env.env_from_checkout(checkout, "https://example.org/c.git", "", "main")


@pytest.mark.parametrize("apt, line, shown", [
    ("curl\ncurl; rm -rf /\n", 2, "'curl; rm -rf /'"),
    ("# ok\n\n-o APT::Get::Foo=1\n", 3, "'-o APT::Get::Foo=1'"),
    ("Curl\n", 1, "'Curl'"),
    ("curl=$(id)\n", 1, "'curl=$(id)'"),
    ("curl vim\n", 1, "'curl vim'"),
])
def test_an_apt_line_that_is_not_one_package_name_is_refused(tmp_path, apt, line, shown):
    directory = _env_dir(tmp_path / "env", {"apt.txt": apt})
    with pytest.raises(EnvError) as caught:
        course_env.read_env_dir(directory)
    message = str(caught.value)
    assert message.startswith(f"apt.txt line {line}: {shown} is not a Debian package name; allowed: one package per line")
    assert (caught.value.file, caught.value.line) == ("apt.txt", line)


def test_at_most_200_apt_packages(tmp_path):
    ok = _env_dir(tmp_path / "ok", {"apt.txt": "".join(f"pkg{i}\n" for i in range(200))})
    assert len(course_env.read_env_dir(ok).apt) == 200
    bad = _env_dir(tmp_path / "bad", {"apt.txt": "".join(f"pkg{i}\n" for i in range(201))})
    with pytest.raises(EnvError, match=r"apt.txt line 201: more than 200 packages; allowed: at most 200"):
        course_env.read_env_dir(bad)


@pytest.mark.parametrize("name", ["requirements.txt", "postBuild", "apt.txt"])
def test_a_file_over_64_kib_is_refused(tmp_path, name):
    filler = b"# " + b"x" * 100 + b"\n"
    at_limit = filler * (64 * 1024 // len(filler)) + b"#" * (64 * 1024 % len(filler))
    assert len(at_limit) == 64 * 1024
    course_env.read_env_dir(_env_dir(tmp_path / "ok", {name: at_limit}))
    with pytest.raises(EnvError, match=rf"{name} is larger than 64 KiB; allowed: at most 64 KiB"):
        course_env.read_env_dir(_env_dir(tmp_path / "big", {name: at_limit + b"\n"}))


def test_other_bad_files_are_refused_with_file_and_line(tmp_path):
    with pytest.raises(EnvError, match=r"requirements.txt line 2: includes another file \(-r/-c\)"):
        course_env.read_env_dir(_env_dir(tmp_path / "a", {"requirements.txt": "tabulate\n-r extra.txt\n"}))
    with pytest.raises(EnvError, match=r"requirements.txt line 3 is not UTF-8 text"):
        course_env.read_env_dir(_env_dir(tmp_path / "b", {"requirements.txt": b"a\nb\n\xff\n"}))
    (tmp_path / "c" / "requirements.txt").mkdir(parents=True)
    with pytest.raises(EnvError, match=r"requirements.txt is not a regular file"):
        course_env.read_env_dir(tmp_path / "c")


def test_the_plan_names_a_course_without_environment_directory(tmp_path):
    (tmp_path / "images/base").mkdir(parents=True)
    (tmp_path / "images/base/Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images/frameworks/scipy").mkdir(parents=True)
    (tmp_path / "images/frameworks/scipy/Dockerfile").write_text("FROM scratch\n")
    course = type("C", (), {"id": "c1", "title": "C", "framework": "scipy", "templates": ()})()
    with pytest.raises(images.ImagesError, match=r"the course layer of c1: .*courses/c1/environment does not exist; "
                                                 r"create it with a requirements.txt"):
        images.plan_chain([course], tmp_path / "images", cuda_base=True)
    _env_dir(tmp_path / "courses/c1/environment", {"requirements.txt": "tabulate\n"})
    plan = images.plan_chain([course], tmp_path / "images", cuda_base=True)
    assert plan.layers[-1].directory == tmp_path / "courses/c1/environment"


def test_the_sample_courses_declare_their_packages_in_files():
    root = Path(__file__).resolve().parent.parent
    assert not (root / "images/courses").exists()
    for course, package in (("intro-python", "tabulate==0.10.0"), ("deep-learning", "tqdm==4.70.1")):
        env = course_env.read_env_dir(root / "courses" / course / "environment")
        assert package in env.requirements.splitlines()


# --- the requirements digest ----------------------------------------------------------------

def test_the_requirements_digest_changes_exactly_with_the_files(tmp_path):
    files = {"requirements.txt": "tabulate\n", "apt.txt": "cowsay\n", "postBuild": "#!/bin/sh\necho hi\n"}
    first = course_env.read_env_dir(_env_dir(tmp_path / "a", files), source="x", commit="c1", ref="main")
    same = course_env.read_env_dir(_env_dir(tmp_path / "b", {**files, "notes.md": "other"}), source="y",
                                   commit="c2", ref="v2")
    digest = course_env.requirements_digest(first)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    assert course_env.requirements_digest(same) == digest  # where and when: not what is installed
    for i, changed in enumerate([
        {**files, "requirements.txt": "tabulate==0.10.0\n"},
        {**files, "apt.txt": "cowsay\ngraphviz\n"},
        {**files, "postBuild": "#!/bin/sh\necho bye\n"},
        {"requirements.txt": "tabulate\n", "apt.txt": "cowsay\n"},
        # the same bytes under another file name install something else
        {"requirements.txt": "", "apt.txt": "cowsay\n", "postBuild": "tabulate\n"},
    ]):
        other = course_env.read_env_dir(_env_dir(tmp_path / f"c{i}", changed))
        assert course_env.requirements_digest(other) != digest, changed


def test_course_labels_name_the_files_and_the_exact_parents(tmp_path):
    env = course_env.read_env_dir(_env_dir(tmp_path / "env", {"requirements.txt": "tabulate\n"}),
                                  source="https://git.example.org/c.git", commit="a" * 40, ref="v1")
    layer = images.Layer("course", "c1", tmp_path, parent="goldenhub/framework-scipy", framework="scipy")
    labels = images.make_labels(layer, images_build.course_provenance(env), env=env,
                                parents=("goldenhub/base:v3", "goldenhub/framework-scipy:v7"))
    assert labels["goldenhub.env.source"] == "https://git.example.org/c.git"
    assert labels["goldenhub.env.commit"] == "a" * 40 and labels["goldenhub.env.ref"] == "v1"
    assert labels["goldenhub.requirements"] == course_env.requirements_digest(env)
    assert labels["goldenhub.base.image"] == "goldenhub/base:v3"
    assert labels["goldenhub.framework.image"] == "goldenhub/framework-scipy:v7"
    assert labels == images.make_labels(layer, images_build.course_provenance(env), env=env,
                                        parents=("goldenhub/base:v3", "goldenhub/framework-scipy:v7"))


# --- courseware checkouts (a real git daemon) -------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=I", "-c", "user.email=i@example.org",
                           "-c", "commit.gpgsign=false", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def courseware(tmp_path):
    """A courseware repo served by `git daemon` on loopback: main (binder/ files, tag v1, then a
    newer requirement) and a branch `plain` with the files at the root."""
    remote = GitRemote(tmp_path / "served", "127.0.0.1", free_port())
    work = tmp_path / "work-copy"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    _env_dir(work, {"binder/requirements.txt": "tabulate==0.9.0\n", "binder/apt.txt": "cowsay\n",
                    "requirements.txt": "ignored-when-binder-exists\n", "01.ipynb": "{}"})
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "first")
    _git(work, "tag", "v1")
    first = _git(work, "rev-parse", "HEAD")
    (work / "binder/requirements.txt").write_text("tabulate==0.10.0\n")
    _git(work, "commit", "-qam", "newer tabulate")
    _git(work, "checkout", "-q", "-b", "plain", first)
    _git(work, "rm", "-rq", "binder")
    _git(work, "commit", "-qm", "files at the root")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(remote.root / "course.git")], check=True)
    remote.start()
    yield remote, first, _git(work, "rev-parse", "main"), _git(work, "rev-parse", "plain")
    remote.stop()


def test_a_checkout_at_a_branch_tag_or_commit_reads_binder_first(courseware, tmp_path):
    remote, first, main, plain = courseware
    url = remote.url_from_container("course")  # as the course file names it: host.docker.internal
    assert "host.docker.internal" in url
    checkout, commit = course_env.checkout_courseware(url, "main", tmp_path / "co", gateway="127.0.0.1")
    assert commit == main and checkout.parent == tmp_path / "co"
    env = course_env.env_from_checkout(checkout, url, commit, "main")
    assert env.requirements == "tabulate==0.10.0\n" and env.apt == ("cowsay",)
    assert (env.source, env.commit, env.ref) == (url, main, "main")
    assert env.provenance.revision == main and env.provenance.version == f"v1-1-g{main[:7]}"  # git describe
    for ref, sha, requirements in (("v1", first, "tabulate==0.9.0\n"), (first, first, "tabulate==0.9.0\n"),
                                   ("plain", plain, "ignored-when-binder-exists\n")):
        checkout, commit = course_env.checkout_courseware(url, ref, tmp_path / "co", gateway="127.0.0.1")
        assert commit == sha
        assert course_env.env_from_checkout(checkout, url, commit, ref).requirements == requirements


def test_a_checkout_refuses_bad_refs_and_names_a_missing_one(courseware, tmp_path):
    remote, *_ = courseware
    url = remote.url_from_container("course")
    with pytest.raises(EnvError, match=rf"^no branch, tag or commit nosuch in {url}$"):
        course_env.checkout_courseware(url, "nosuch", tmp_path / "co", gateway="127.0.0.1")
    assert list((tmp_path / "co").iterdir()) == []  # nothing left behind
    for ref in ("main..v1", "-uhelp", "main;id", "", "a" * 201, "main@{1}"):
        with pytest.raises(EnvError, match="is not a git ref; allowed: a branch, tag or commit"):
            course_env.checkout_courseware(url, ref, tmp_path / "co", gateway="127.0.0.1")
    closed = f"git://host.docker.internal:{free_port()}/course.git"
    with pytest.raises(EnvError, match=rf"^fetching {closed} failed: fatal: unable to connect"):
        course_env.checkout_courseware(closed, "main", tmp_path / "co", gateway="127.0.0.1")
    with pytest.raises(EnvError, match="git transport helpers"):
        course_env.checkout_courseware("ext::sh -c id", "main", tmp_path / "co", gateway="127.0.0.1")


def test_host_url_maps_the_containers_name_for_the_host_to_the_gateway():
    assert course_env.host_url("git://host.docker.internal:9418/c.git", "172.30.0.1") == "git://172.30.0.1:9418/c.git"
    assert course_env.host_url("https://git.example.org/c.git", "172.30.0.1") == "https://git.example.org/c.git"
    assert course_env.strip_credentials("https://u:p@git.example.org/c.git") == "https://git.example.org/c.git"


# --- real builds on the sample scipy framework --------------------------------------------------

@pytest.fixture
def api():
    docker = pytest.importorskip("docker")
    try:
        client = docker.APIClient(timeout=900, **docker.utils.kwargs_from_env())
        client.inspect_image(FRAMEWORK)
    except Exception as exc:  # no engine, or the sample images were never built
        pytest.skip(f"needs a Docker engine with {FRAMEWORK}: {exc}")
    yield client


@pytest.fixture
def tiny_course(api):
    """A course layer named in the test prefix's namespace, removed afterwards."""
    layer = images.Layer("course", f"c{uuid.uuid4().hex[:8]}", Path("."), parent="goldenhub/framework-scipy",
                         framework="scipy", namespace=PREFIX)
    yield layer
    for image in api.images(name=layer.repository):
        for ref in image.get("RepoTags") or []:
            api.remove_image(ref, force=True)


class _Output:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def _build(api, layer, directory, commit="c1"):
    env = course_env.read_env_dir(directory, source="courses/x/environment", commit=commit, ref="main")
    options = images_build.BuildOptions(images_dir=Path("images"), work_dir=Path("."))
    out = _Output()
    built = images_build.build_course_layer(api, layer, env, BASE, FRAMEWORK, options, log=out.write, out=out)
    return built, out.text, env


def _step(output: str, marker: str) -> str:
    """The build output of the step whose instruction contains `marker`."""
    return output.split(marker, 1)[1].split("\nStep ", 1)[0]


@pytest.mark.images
def test_a_requirements_change_rebuilds_only_the_course_layer(api, tiny_course, tmp_path):
    framework_id = api.inspect_image(FRAMEWORK)["Id"]
    base_id = api.inspect_image(BASE)["Id"]
    directory = _env_dir(tmp_path / "env", {
        "requirements.txt": "numpy==2.4.6\n",  # already in the framework: no download
        "apt.txt": "ca-certificates\n",
        "postBuild": "#!/bin/bash\nset -e\necho \"postBuild ran as $(id -u)\" > /tmp/goldenhub-postbuild.txt\n",
    })
    first, _, env = _build(api, tiny_course, directory)
    ran = subprocess.run(["docker", "run", "--rm", "--entrypoint", "cat", first.image_id,
                          "/tmp/goldenhub-postbuild.txt"], capture_output=True, text=True, timeout=120)
    assert ran.stdout.strip() == "postBuild ran as 1000"
    labels = api.inspect_image(first.image_id)["Config"]["Labels"]
    assert labels["goldenhub.requirements"] == course_env.requirements_digest(env)
    assert labels["goldenhub.framework.image"] == FRAMEWORK and labels["goldenhub.env.commit"] == "c1"

    (directory / "requirements.txt").write_text("numpy==2.4.6\npandas==3.1.1\n")
    second, output, _ = _build(api, tiny_course, directory)
    assert second.image_id != first.image_id
    assert (api.inspect_image(FRAMEWORK)["Id"], api.inspect_image(BASE)["Id"]) == (framework_id, base_id)
    assert "Using cache" in _step(output, "apt-get install")
    assert "Running in" in _step(output, "pip install")
    assert "Running in" in _step(output, "/tmp/goldenhub-env/postBuild &&")

    # A courseware-only change (another commit, same files): every RUN step from the cache.
    third, output, _ = _build(api, tiny_course, directory, commit="c2")
    for marker in ("apt-get install", "pip install", "/tmp/goldenhub-env/postBuild &&"):
        assert "Using cache" in _step(output, marker), marker
    assert api.inspect_image(third.image_id)["Config"]["Labels"]["goldenhub.env.commit"] == "c2"


@pytest.mark.images
def test_a_requirement_that_does_not_exist_fails_with_pips_error_line(api, tiny_course, tmp_path):
    directory = _env_dir(tmp_path / "env", {"requirements.txt": "numpy==2.4.6\nnosuchpkg-goldenhub==1.0\n"})
    with pytest.raises(images.ImagesError) as caught:
        _build(api, tiny_course, directory)
    message = str(caught.value)
    assert message.startswith(f"building the course layer of {tiny_course.name} failed: "
                              "pip install -r requirements.txt exited with status 1:")
    assert "ERROR: No matching distribution found for nosuchpkg-goldenhub==1.0" in message
    assert not api.images(name=tiny_course.repository)


@pytest.mark.images
def test_a_failing_post_build_fails_with_its_status_and_last_lines(api, tiny_course, tmp_path):
    directory = _env_dir(tmp_path / "env", {"postBuild": "#!/bin/sh\necho downloading the data set\n"
                                                         "echo 'the mirror is gone' >&2\nexit 3\n"})
    with pytest.raises(images.ImagesError) as caught:
        _build(api, tiny_course, directory)
    message = str(caught.value)
    assert message.startswith(f"building the course layer of {tiny_course.name} failed: "
                              "postBuild exited with status 3; its last lines:")
    assert "downloading the data set" in message and "the mirror is gone" in message
    assert not api.images(name=tiny_course.repository)



def test_images_build_refuses_a_bad_environment_before_any_docker_work(tmp_path):
    """The admin's `goldenhub images build` names the course's directory, the file and the line."""
    from tests.helpers import goldenhub

    courses = tmp_path / "courses"
    _env_dir(courses, {"bad.yaml": "id: bad\ntitle: Bad\nframework: scipy\ntemplates:\n  - id: bad-cpu\n"
                                   "    title: Bad\n    image: x/course-bad:latest\n    gpus: 0\n    cpu: 1\n"
                                   "    memory: 512M\n",
                       "bad/environment/requirements.txt": "tabulate\n",
                       "bad/environment/apt.txt": "vim\ncurl && id\n"})
    result = goldenhub("images", "build", "--courses-dir", str(courses), "--namespace", PREFIX,
                       env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"goldenhub images build: error: {courses}/bad/environment: apt.txt line 2: 'curl && id' is not a Debian "
        "package name; allowed: one package per line (lower-case letters, digits, '+', '-' and '.'), optionally "
        "=VERSION, '#' starts a comment")
