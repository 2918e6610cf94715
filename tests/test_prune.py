"""`goldenhub images prune`: old course images that nothing needs are removed; an image that a
course pins, a template names, a container (even stopped) uses, or that is one of its course's
last K published versions stays, with the reason printed. The rules as data, then the real
command against real Docker images and a real service database."""

from __future__ import annotations

import io
import textwrap
import uuid
from datetime import datetime, timedelta, timezone

import docker
import pytest

from hub_ext.images import prune
from hub_ext.images.prune import (CONTAINER, NEWER, OTHER_REPOSITORY, PINNED, RECENT_VERSION, TEMPLATE, Container,
                                  LocalImage, Published)
from tests.helpers import PREFIX, goldenhub, remove_docker_objects

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
DIGEST = "sha256:" + "d" * 64


def _image(n: int, *tags: str, days: float = 60, digests: tuple[str, ...] = ()) -> LocalImage:
    return LocalImage(id=f"sha256:{n:064x}", tags=tags, digests=digests, created=NOW - timedelta(days=days),
                      size=1000 * n)


def _decide(images, containers=(), pins=None, published=(), templates=(), keep=2, days=30, namespace=None):
    decisions = prune.decide(images, containers=containers, pins=pins or {}, published=published,
                             template_images=templates, keep=keep, older_than_days=days, now=NOW,
                             namespace=namespace)
    return {d.image.tags[0] if d.image.tags else d.image.digests[0]: {r.kind for r in d.reasons}
            for d in decisions}


# --- the rules, as data ----------------------------------------------------------------------

@pytest.mark.parametrize("reference, course", [
    ("goldenhub/course-x:3", "x"),
    ("127.0.0.1:5000/goldenhub/course-intro-python@sha256:" + "a" * 64, "intro-python"),
    ("reg.example.org/lab/course-dl", "dl"),
    ("goldenhub/framework-scipy:latest", None),
    ("goldenhub/base:1", None),
    ("goldenhub/course-:1", None),
    ("<none>:<none>", None),
])
def test_a_course_repository_is_recognised_with_or_without_its_registry_host(reference, course):
    assert prune.course_of(reference) == course


def test_a_namespace_limits_which_course_repositories_count():
    assert prune.course_of("lab/course-x:1", "lab") == "x"
    assert prune.course_of("127.0.0.1:5000/lab/course-x:1", "lab") == "x"
    assert prune.course_of("goldenhub/course-x:1", "lab") is None


def test_references_match_by_tag_with_latest_implied_by_digest_on_any_host_and_by_id():
    image = _image(1, "goldenhub/course-x:latest", digests=(f"127.0.0.1:5000/goldenhub/course-x@{DIGEST}",))
    assert prune.refers_to("goldenhub/course-x", image)
    assert prune.refers_to("goldenhub/course-x:latest", image)
    assert not prune.refers_to("goldenhub/course-x:2", image)
    assert prune.refers_to(f"registry.lab:5000/goldenhub/course-x@{DIGEST}", image)
    assert not prune.refers_to(f"goldenhub/course-y@{DIGEST}", image)
    assert not prune.refers_to("goldenhub/course-x@sha256:" + "e" * 64, image)
    assert prune.refers_to(image.id, image)


def test_an_old_course_image_nothing_needs_is_removed_and_other_images_are_not_looked_at():
    decided = _decide([_image(1, "goldenhub/course-x:1"), _image(2, "goldenhub/framework-scipy:old"),
                       _image(3, "someone/else:1")])
    assert decided == {"goldenhub/course-x:1": set()}


def test_each_reason_to_keep_an_old_image():
    images = [_image(n, f"goldenhub/course-x:{n}") for n in range(1, 8)]
    images.append(_image(8, "goldenhub/course-x:8", "lab/private:1"))
    published = [Published("x", n, images[n - 1].id, f"reg:5000/goldenhub/course-x@sha256:{n:064x}")
                 for n in range(1, 6)]
    decided = _decide(
        images, containers=[Container("ghtest-alice", images[2].id)], pins={"x": published[1]},
        published=published, templates=["goldenhub/course-x:6"], keep=2)
    assert decided == {
        "goldenhub/course-x:1": set(),  # published, beyond the last 2, unpinned, unused
        "goldenhub/course-x:2": {PINNED},
        "goldenhub/course-x:3": {CONTAINER},
        "goldenhub/course-x:4": {RECENT_VERSION},
        "goldenhub/course-x:5": {RECENT_VERSION},
        "goldenhub/course-x:6": {TEMPLATE},
        "goldenhub/course-x:7": set(),  # never published, unused
        "goldenhub/course-x:8": {OTHER_REPOSITORY},
    }


def test_the_reasons_are_sentences_naming_what_needs_the_image():
    image = _image(2, "goldenhub/course-x:2")
    version = Published("x", 2, image.id, f"reg:5000/goldenhub/course-x@{DIGEST}")
    [decision] = prune.decide([image], containers=[Container("ghtest-bob", image.id)], pins={"x": version},
                              published=[version], template_images=["goldenhub/course-x:2"], keep=3,
                              older_than_days=30, now=NOW)
    texts = [r.text for r in decision.reasons]
    assert texts == ["pinned now by course x (version 2)", "a template refers to it (goldenhub/course-x:2)",
                     "used by container ghtest-bob",
                     "version 2 of x, one of its last 3 published versions (rollback may need it)"]
    assert prune.describe(decision) == f"goldenhub/course-x:2 ({'0' * 12}, 60 days old, 2 KiB)"


def test_a_pin_by_digest_keeps_the_image_pulled_by_that_digest():
    pulled = _image(9, digests=(f"127.0.0.1:5000/goldenhub/course-x@{DIGEST}",))
    version = Published("x", 1, "sha256:elsewhere", f"127.0.0.1:5000/goldenhub/course-x@{DIGEST}")
    decided = _decide([pulled], pins={"x": version}, published=[version], keep=1)
    assert decided == {f"127.0.0.1:5000/goldenhub/course-x@{DIGEST}": {PINNED, RECENT_VERSION}}


@pytest.mark.parametrize("age, removed", [
    (timedelta(days=30), False),  # exactly the limit: not older than it
    (timedelta(days=30, seconds=1), True),
    (timedelta(days=29, hours=23), False),
])
def test_only_images_strictly_older_than_the_limit_are_removed(age, removed):
    image = LocalImage("sha256:" + "1" * 64, ("goldenhub/course-x:1",), (), NOW - age)
    decided = _decide([image], days=30)
    assert decided["goldenhub/course-x:1"] == (set() if removed else {NEWER})


@pytest.mark.parametrize("keep, kept", [(1, {3}), (2, {2, 3}), (3, {1, 2, 3})])
def test_the_last_k_published_versions_of_each_course_are_kept(keep, kept):
    images = [_image(n, f"goldenhub/course-x:{n}") for n in (1, 2, 3)] + [_image(4, "goldenhub/course-y:1")]
    published = [Published("x", n, images[n - 1].id, "") for n in (1, 2, 3)] + [Published("y", 1, images[3].id, "")]
    decided = _decide(images, published=published, keep=keep)
    assert {n for n in (1, 2, 3) if decided[f"goldenhub/course-x:{n}"] == {RECENT_VERSION}} == kept
    assert decided["goldenhub/course-y:1"] == {RECENT_VERSION}  # K counts per course


def test_with_a_namespace_an_image_also_tagged_in_another_namespace_is_kept():
    decided = _decide([_image(1, "lab/course-x:1"), _image(2, "lab/course-x:2", "goldenhub/course-x:2"),
                       _image(3, "goldenhub/course-x:3")], namespace="lab")
    assert decided == {"lab/course-x:1": set(), "lab/course-x:2": {OTHER_REPOSITORY}}


# --- the real command ------------------------------------------------------------------------

FRAMEWORK = "goldenhub/framework-scipy:latest"


@pytest.fixture
def scene(tmp_path):
    """Course `prx` under namespace ghpr-...: versions 1-5 published (2 pinned again by a
    rollback, 3 used by a stopped container), `:latest` named by the course file, and an
    unpublished image in another course repository with a registry host; all tiny images
    FROM the scipy framework, told apart by a label."""
    client = docker.from_env()
    api = client.api
    if not client.images.list(name=FRAMEWORK):
        pytest.skip(f"{FRAMEWORK} is not built (goldenhub images build)")
    namespace = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    tags = {n: f"{namespace}/course-prx:{n}" for n in range(1, 6)}
    tags.update(latest=f"{namespace}/course-prx:latest", other=f"127.0.0.1:5000/{namespace}/course-other:1",
                unrelated=f"{namespace}/tools:1")
    ids = {}
    try:
        for key, tag in tags.items():
            dockerfile = f"FROM {FRAMEWORK}\nLABEL ghpr.test={namespace}-{key}\n".encode()
            for _line in api.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True, decode=True):
                pass
            ids[key] = api.inspect_image(tag)["Id"]
        container = f"{PREFIX}-prune-{namespace[-8:]}"
        client.containers.create(tags[3], name=container, command=["true"])

        url = f"sqlite:///{tmp_path / 'goldenhub.sqlite'}"
        from hub_ext.images import versions
        from hub_ext.service import db
        factory = db.open_database(url)
        with factory() as session:
            made = [versions.record_version(session, "prx", reference=f"127.0.0.1:5000/{namespace}/course-prx@"
                                            f"sha256:{n:064x}", image_id=ids[n], actor="alice") for n in range(1, 6)]
            for version in made:
                versions.pin(session, "prx", version, "publish", "alice")
            versions.rollback(session, "prx", 2, "alice")
            session.commit()
        factory.kw["bind"].dispose()
        courses = tmp_path / "courses"
        courses.mkdir()
        (courses / "prx.yaml").write_text(textwrap.dedent(f"""\
            id: prx
            title: Prune test
            templates:
              - id: prx-cpu
                title: CPU
                image: {tags['latest']}
                gpus: 0
                cpu: 1
                memory: 512M
            """))
        env = {"GOLDENHUB_DB_URL": url, "GOLDENHUB_COURSES_DIR": str(courses),
               "GOLDENHUB_STATE_DIR": str(tmp_path / "state"), "GOLDENHUB_DB_URL_FILE": None,
               "GOLDENHUB_PUBLISH_KEEP": None, "GOLDENHUB_LANGUAGE": "en"}
        yield {"namespace": namespace, "tags": tags, "ids": ids, "env": env, "container": container, "api": api}
    finally:
        remove_docker_objects(PREFIX + "-prune")
        for tag in tags.values():
            try:
                api.remove_image(tag)
            except docker.errors.NotFound:
                pass


def _exists(api, image_id: str) -> bool:
    try:
        api.inspect_image(image_id)
        return True
    except docker.errors.NotFound:
        return False


def _line(output: str, start: str) -> str:
    [line] = [x.strip() for x in output.splitlines() if x.strip().startswith(start)]
    return line


@pytest.mark.integration
def test_prune_removes_exactly_the_old_images_nothing_needs_and_says_why_it_keeps_the_rest(scene):
    tags, ids, env, api = scene["tags"], scene["ids"], scene["env"], scene["api"]
    prune_args = ("images", "prune", "--namespace", scene["namespace"], "--keep", "2")

    # The default age limit: every image here is minutes old, so nothing goes.
    young = goldenhub(*prune_args, env=env)
    assert young.returncode == 0
    assert "0 images removed, 7 kept." in young.stdout
    assert "not older than 30 days" in _line(young.stdout, f"kept {tags[1]} ")

    dry = goldenhub(*prune_args, "--older-than", "0", "--dry-run", env=env)
    assert dry.returncode == 0
    assert _line(dry.stdout, f"would remove {tags[1]} ")
    assert _line(dry.stdout, f"would remove {tags['other']} ")
    assert "2 images would be removed, 5 kept." in dry.stdout
    assert all(_exists(api, i) for i in ids.values())

    done = goldenhub(*prune_args, "--older-than", "0", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"{ids[1].split(':')[1][:12]}, 0 days old" in _line(out, f"removed {tags[1]} ")
    assert _line(out, f"removed {tags['other']} ")
    assert "pinned now by course prx (version 2)" in _line(out, f"kept {tags[2]} ")
    assert f"used by container {scene['container']}" in _line(out, f"kept {tags[3]} ")
    for n in (4, 5):
        assert (f"version {n} of prx, one of its last 2 published versions (rollback may need it)"
                in _line(out, f"kept {tags[n]} "))
    assert f"a template refers to it ({tags['latest']})" in _line(out, f"kept {tags['latest']} ")
    assert tags["unrelated"] not in out
    assert "2 images removed, 5 kept." in out
    assert {k for k, i in ids.items() if not _exists(api, i)} == {1, "other"}

    # Nothing left to remove: a second run removes nothing and fails on nothing.
    again = goldenhub(*prune_args, "--older-than", "0", env=env)
    assert again.returncode == 0 and "0 images removed, 5 kept." in again.stdout


@pytest.mark.integration
def test_prune_refuses_to_guess_when_the_course_files_are_broken(scene):
    courses = scene["env"]["GOLDENHUB_COURSES_DIR"]
    with open(f"{courses}/prx.yaml", "a") as f:
        f.write("    gpus_typo: 1\n")
    result = goldenhub("images", "prune", "--namespace", scene["namespace"], "--older-than", "0",
                       env=scene["env"])
    assert result.returncode == 2
    assert "have problems, so which images templates need is unknown; nothing was removed" in result.stderr
    assert all(_exists(scene["api"], i) for i in scene["ids"].values())
