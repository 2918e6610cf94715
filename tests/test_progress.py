"""What a student sees while their server starts, and when it cannot: real progress
events (image pull with percent from a real registry) and one clear sentence on failure,
with nothing left behind."""

import io
import uuid

import docker
import pytest

from tests.helpers import extra_course

pytestmark = pytest.mark.integration

TEMPLATE = """\
- id: {tid}
  title: {tid}
  image: {image}
  gpus: 0
  cpu: 1
  memory: 512M
{extra}"""


def template(tid, image="goldenhub/course-intro-python:latest", extra=""):
    return TEMPLATE.format(tid=tid, image=image, extra=extra)


def no_container_left(name_part):
    return not any(name_part in c.name for c in docker.from_env().containers.list(all=True))


def test_progress_streams_pull_percent_and_startup_steps(hub, courses_dir, registry):
    client = docker.from_env(timeout=600)  # the push sends the whole course image (~2 GB)
    # An image whose top layer exists only in the registry, so the start must pull it.
    repo = f"{registry}/goldenhub/pulltest"
    dockerfile = "FROM goldenhub/course-intro-python:latest\nRUN head -c 20000000 /dev/urandom > /tmp/ballast\n"
    tag = f"{repo}:{uuid.uuid4().hex[:8]}"  # this one: a cached build's image may carry older runs' tags too
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    for line in client.images.push(tag.rsplit(":", 1)[0], tag=tag.rsplit(":", 1)[1], stream=True, decode=True):
        assert "error" not in line, line
    client.images.remove(image.id, force=True)

    with extra_course(courses_dir, "pulled", template("pulled-cpu", tag)):
        response, events = hub.spawn_with_progress("puller", {"template": "pulled-cpu"})
        try:
            messages = [e["message"] for e in events]
            assert events[-1].get("ready"), messages
            percents = [m for m in messages if m.startswith(f"Pulling image {tag}: ") and m.endswith("%")]
            assert percents, messages
            assert f"Pulled image {tag}: 100%" in messages
            order = ["Pulled image", "Container started", "Jupyter server is up"]
            positions = [next(i for i, m in enumerate(messages) if m.startswith(o)) for o in order]
            assert positions == sorted(positions)
            progress = [e["progress"] for e in events if "progress" in e]
            assert progress == sorted(progress)  # the bar only moves forward
        finally:
            hub.stop("puller")
            client.images.remove(tag, force=True)


def test_courseware_sync_is_reported(hub):
    response, events = hub.spawn_with_progress("synced", {"template": "lab-cpu"})
    try:
        assert any(e["message"] == "Courseware synced into ~/lab" for e in events), events
    finally:
        hub.stop("synced")


def test_missing_image_is_one_clear_sentence(hub, courses_dir):
    with extra_course(courses_dir, "noimage", template("noimage-cpu", "goldenhub/does-not-exist:1")):
        response, events = hub.spawn_with_progress("noimage", {"template": "noimage-cpu"})
        message = response.json().get("message", "") if response.status_code >= 400 else events[-1]["message"]
        assert "environment is not ready on this server yet; an administrator has been told" in message, events
        assert "goldenhub/does-not-exist" not in message
        assert "Traceback" not in message
        assert hub.server("noimage") is None
        assert no_container_left("noimage")


def test_missing_dataset_fails_cleanly(hub, courses_dir):
    extra = "  datasets:\n    - name: ghost\n      source: /srv/goldenhub/no-such-dataset\n"
    with extra_course(courses_dir, "nodata", template("nodata-cpu", extra=extra)):
        response, events = hub.spawn_with_progress("nodata", {"template": "nodata-cpu"})
        message = response.json().get("message", "") if response.status_code >= 400 else events[-1]["message"]
        assert "The dataset ghost is not available on this server right now" in message, events
        assert "/srv/" not in message
        assert hub.server("nodata") is None
        assert no_container_left("nodata")
