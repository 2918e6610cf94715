"""A student spawns course templates through the REST API of a real hub, on real Docker."""

import pytest

pytestmark = pytest.mark.integration


def test_the_sample_cpu_template_starts_its_course_image_as_uid_1000(hub):
    user, template, course = "sample-student", "intro-python-cpu", "intro-python"
    hub.spawn(user, {"template": template})
    try:
        container = hub.container(user)
        assert container.attrs["Config"]["Image"] == f"goldenhub/course-{course}:latest"
        assert hub.exec(user, "id -u") == (0, "1000\n")
        code, listing = hub.exec(user, f"ls ~/{course}")
        assert code == 0 and "README.md" in listing, listing
        code, _ = hub.exec(user, "ls ~/datasets/*/")
        assert code == 0
        hc = container.attrs["HostConfig"]
        assert hc["Privileged"] is False and hc["ShmSize"] > 64 * 2**20
        assert container.attrs["Config"]["Labels"]["goldenhub.template"] == template
    finally:
        hub.stop(user)


def test_home_persists_across_stop_and_start(hub):
    user = "persist"
    hub.spawn(user, {"template": "lab-cpu"})
    assert hub.exec(user, "echo 'my work' > ~/notes.txt && mkdir -p ~/.secret && echo x > ~/.secret/h")[0] == 0
    first_id = hub.container(user).id
    hub.stop(user)
    hub.spawn(user)  # no options: the hub reuses the last template
    assert hub.container(user).id != first_id  # a fresh container ...
    assert hub.exec(user, "cat ~/notes.txt ~/.secret/h") == (0, "my work\nx\n")  # ... the same home
    hub.stop(user)


def test_dataset_is_mounted_read_only(hub):
    user = "reader"
    hub.spawn(user, {"template": "lab-cpu"})
    try:
        assert hub.exec(user, "cat ~/datasets/numbers/numbers.csv") == (0, "n\n1\n2\n3\n")
        code, out = hub.exec(user, "echo evil > ~/datasets/numbers/numbers.csv")
        assert code != 0 and "Read-only file system" in out
        mounts = {m["Destination"]: m for m in hub.container(user).attrs["Mounts"]}
        assert mounts["/home/jovyan/datasets/numbers"]["RW"] is False
        # ... and the hub's mirror of the course repo, read-only too (hub_ext.courseware).
        assert set(mounts) == {"/home/jovyan", "/home/jovyan/datasets/numbers", "/srv/goldenhub-courseware.git"}
        assert mounts["/srv/goldenhub-courseware.git"]["RW"] is False
    finally:
        hub.stop(user)


def test_student_edit_to_courseware_survives_restart_and_repull(hub, lab_remote, tmp_path):
    user = "editor"
    hub.spawn(user, {"template": "lab-cpu"})
    assert "Original text" in hub.exec(user, "cat ~/lab/README.md")[1]
    assert hub.exec(user, "echo 'my answer' >> ~/lab/README.md")[0] == 0
    hub.stop(user)

    # The instructor pushes a new notebook while the student is away.
    instructor = lab_remote.clone("lab", tmp_path / "instructor")
    instructor.commit_and_push({"week2.py": "print('week 2')\n"}, "Week 2")

    hub.spawn(user)
    try:
        readme = hub.exec(user, "cat ~/lab/README.md")[1]
        assert "Original text" in readme and "my answer" in readme
        assert hub.exec(user, "cat ~/lab/week2.py") == (0, "print('week 2')\n")
    finally:
        hub.stop(user)


def test_only_a_template_id_is_accepted(hub):
    r = hub.start("chooser", {"template": "intro-python-cpu", "image": "evil/image"})
    assert r.status_code == 400
    assert "Only an environment template may be chosen, not image" in r.json()["message"]
    r = hub.start("chooser", {"template": "no-such-thing"})
    assert r.status_code == 400
    message = r.json()["message"]
    assert "No such environment template: 'no-such-thing'" in message and "intro-python-cpu" in message
    assert hub.server("chooser") is None


def test_deep_learning_image_runs_as_uid_1000_with_its_tools():
    """The GPU course's image, started CPU-only (this host has no GPU driver), as the
    course layer a student would get."""
    import docker

    out = docker.from_env().containers.run(
        "goldenhub/course-deep-learning:latest", ["sh", "-c", "id -u; which jupyterhub-singleuser gitpuller"],
        remove=True, environment={"NVIDIA_VISIBLE_DEVICES": "void"},
    ).decode()
    assert out.splitlines()[0] == "1000" and "jupyterhub-singleuser" in out and "gitpuller" in out
