"""The smoke test of a publish (hub_ext.images.smoke): a throw-away container made like a
student's, against a real Docker engine and the sample course image. What a publisher sees:
the report or the failure sentence (naming the notebook, the code cell and the error), and
that nothing is left behind in Docker. Pure tests first (notebook plan, create arguments)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest

from hub_ext import contract
from hub_ext.catalog.model import Courseware, Dataset, Template
from hub_ext.images import smoke
from spawner import container as student_container
from spawner.network import ensure_network
from tests.helpers import PREFIX

IMAGE = "goldenhub/course-intro-python:latest"
BROKEN_IMAGE = f"{PREFIX}/broken-jupyter:test"
NETWORK = f"{PREFIX}-net"


def make_template(gpus: int = 0, datasets=(), target: str = "course") -> Template:
    return Template(id="smk-cpu" if not gpus else "smk-gpu", course="smk", title="Smoke", description="",
                    image="goldenhub/course-smk:latest", gpus=gpus, cpu=1.0, memory=1 << 30, shm_size=64 << 20,
                    datasets=tuple(datasets),
                    courseware=Courseware("https://example.org/smk.git", "main", target) if target else None)


def notebook(*cells: str, metadata: dict | None = None, markdown_first: bool = True) -> str:
    body = [{"cell_type": "markdown", "metadata": {}, "source": "# A lesson"}] if markdown_first else []
    body += [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
             for c in cells]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": body,
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}, **(metadata or {})}})


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# --- pure ---------------------------------------------------------------------------------------

def test_plan_default_all_notebooks_sorted_opt_out_and_budget(tmp_path):
    write(tmp_path, {"b.ipynb": notebook("1"), "a/z.ipynb": notebook("1", metadata={"goldenhub": {"smoke": False}}),
                     "a/y.ipynb": notebook("1", metadata={"goldenhub": {"smoke_timeout": 120}}),
                     "a/.ipynb_checkpoints/y-checkpoint.ipynb": "not json", ".git/x.ipynb": "not json"})
    run, skipped = smoke.plan_notebooks(tmp_path, None, 300)
    assert run == [smoke.Notebook("a/y.ipynb", 120), smoke.Notebook("b.ipynb", 300)]
    assert skipped == ["a/z.ipynb"]


@pytest.mark.parametrize("meta, said", [
    ({"goldenhub": {"smoke_timeout": 0}}, "smoke_timeout is 0; allowed: whole seconds from 1 to 3600"),
    ({"goldenhub": {"smoke_timeout": "9"}}, "smoke_timeout is \"9\""),
    ({"goldenhub": {"smoke_timeout": True}}, "smoke_timeout is true"),
    ({"goldenhub": {"smoke": "no"}}, "goldenhub.smoke is \"no\"; allowed: true or false"),
    ({"goldenhub": []}, "the metadata goldenhub must be a mapping"),
])
def test_plan_refuses_bad_metadata_with_a_sentence(tmp_path, meta, said):
    write(tmp_path, {"x/n.ipynb": notebook("1", metadata=meta)})
    with pytest.raises(smoke.SmokeFailed) as e:
        smoke.plan_notebooks(tmp_path, None, 300)
    assert str(e.value).startswith("x/n.ipynb: ") and said in str(e.value)


@pytest.mark.parametrize("listed", [["../etc/passwd.ipynb"], ["/abs.ipynb"], ["missing.ipynb"], ["notes.txt"],
                                    ["outside/secret.ipynb"], [""], [7]])
def test_plan_listed_must_be_notebooks_inside(tmp_path, listed):
    write(tmp_path, {"cw/ok.ipynb": notebook("1"), "cw/notes.txt": "x", "elsewhere/secret.ipynb": notebook("1")})
    (tmp_path / "cw" / "outside").symlink_to(tmp_path / "elsewhere")
    tmp_path = tmp_path / "cw"
    assert smoke.plan_notebooks(tmp_path, ["ok.ipynb"], 300) == ([smoke.Notebook("ok.ipynb", 300)], [])
    with pytest.raises(smoke.SmokeFailed, match="No notebook .* in the courseware"):
        smoke.plan_notebooks(tmp_path, listed, 300)


def test_smoke_args_are_a_students_with_the_stated_differences():
    dataset = Dataset("toy", "/srv/data/toy", "/home/jovyan/datasets/toy")
    template = make_template(gpus=1, datasets=[dataset])
    expires = datetime(2030, 1, 1, tzinfo=timezone.utc)
    args = smoke.make_smoke_args(template, "reg/goldenhub/course-smk@sha256:ab", prefix="gh", network="net",
                                 gateway="172.30.0.1", run_id=7, token="tok", gpu_ids=("0",), owner="h/b/1/2",
                                 expires=expires)
    student = student_container.make_create_args(template, student_container.ServerContext(
        user="smoke-smk", server="", container_name="x", home_volume="gh-smoke-smk-7-scratch", network="net",
        hub_env={}, command=[], host_gateway="172.30.0.1", gpu_ids=("0",)))
    assert args["image"] == "reg/goldenhub/course-smk@sha256:ab"
    assert args["name"] == contract.smoke_container_name("gh", "smk", 7)
    for key in ("user", "working_dir", "ports"):
        assert args[key] == student[key]
    assert args["host_config"] == student["host_config"]  # limits, caps, mounts, GPUs, network
    assert args["host_config"]["device_requests"][0]["DeviceIDs"] == ["0"]
    assert args["environment"]["NVIDIA_VISIBLE_DEVICES"] == "0"
    assert args["environment"]["JUPYTER_TOKEN"] == "tok"
    assert not any(k.startswith("GOLDENHUB_COURSEWARE") for k in args["environment"])
    assert args["command"][-6:-4] == ["jupyter", "server"]
    assert args["labels"][contract.LABEL_KIND] == contract.KIND_SMOKE_TEST
    assert args["labels"][contract.LABEL_OWNER] == "h/b/1/2"
    assert args["labels"][contract.LABEL_EXPIRES] == expires.isoformat()
    assert args["labels"][contract.LABEL_GPUS] == "0"


# --- real Docker ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api():
    return docker.APIClient(timeout=600, **docker.utils.kwargs_from_env())


@pytest.fixture(scope="module")
def network():
    client = docker.from_env()
    gateway = ensure_network(client, NETWORK)
    yield NETWORK, gateway
    client.networks.get(NETWORK).remove()


def leftovers(api) -> list[str]:
    names = [n.lstrip("/") for c in api.containers(all=True) for n in c.get("Names") or []]
    volumes = [v["Name"] for v in api.volumes().get("Volumes") or []]
    return [n for n in names + volumes if n.startswith(f"{PREFIX}-smoke-")]


def run(api, network, courseware, template=None, run_id=1, **kwargs):
    lines: list[str] = []
    try:
        return smoke.run_smoke(api, template or make_template(), kwargs.pop("image", IMAGE), prefix=PREFIX,
                               network=network[0], gateway=network[1], run_id=run_id, courseware=courseware,
                               log=lines.append, **kwargs), lines
    finally:
        print("\n".join(lines))  # shown when a test fails


@pytest.mark.integration
def test_passing_courseware_runs_and_leaves_nothing(api, network, tmp_path):
    data = tmp_path / "data"
    write(data, {"value.txt": "42"})
    # readable by the student's uid whatever umask an earlier test of this process left behind
    data.chmod(0o755)
    (data / "value.txt").chmod(0o644)
    course = write(tmp_path / "cw", {
        "lessons/notes.txt": "hello",
        "lessons/one.ipynb": notebook(
            "import os\nassert os.getuid() == 1000, os.getuid()",
            "assert open('notes.txt').read() == 'hello'",  # relative to the notebook's directory
            "assert open('../../datasets/toy/value.txt').read() == '42'",  # the dataset, read-only
            "import pathlib\nassert pathlib.Path('notes.txt').stat().st_uid == 1000")})
    template = make_template(datasets=[Dataset("toy", str(data), "/home/jovyan/datasets/toy")])
    report, lines = run(api, network, course, template)
    assert report.notebooks == ["lessons/one.ipynb"] and report.gpu == ""
    assert any("The Jupyter server answered in" in ln for ln in lines)
    assert any("Notebook lessons/one.ipynb: 4 code cells ran without an error" in ln for ln in lines)
    assert leftovers(api) == []


@pytest.mark.integration
def test_raising_cell_names_notebook_cell_and_error(api, network, tmp_path):
    course = write(tmp_path / "cw", {"a-ok.ipynb": notebook("x = 1"),
                                     "unit 2/broken.ipynb": notebook("x = 1", "raise ValueError('boom')", "x = 3")})
    with pytest.raises(smoke.SmokeFailed) as e:
        run(api, network, course, run_id=2)
    assert str(e.value) == "notebook unit 2/broken.ipynb failed in code cell 2: ValueError: boom"
    assert "boom" in e.value.detail  # the runner's output, for the publish log
    assert leftovers(api) == []


@pytest.mark.integration
def test_opted_out_notebook_is_not_run(api, network, tmp_path):
    course = write(tmp_path / "cw", {
        "draft.ipynb": notebook("raise ValueError('not ready')", metadata={"goldenhub": {"smoke": False}}),
        "ready.ipynb": notebook("print('fine')")})
    report, lines = run(api, network, course, run_id=3)
    assert report.notebooks == ["ready.ipynb"] and report.skipped == ["draft.ipynb"]
    assert any("draft.ipynb skipped" in ln for ln in lines)


@pytest.mark.integration
def test_notebook_whose_kernel_the_image_lacks_cannot_run(api, network, tmp_path):
    nb = json.loads(notebook("1"))
    nb["metadata"]["kernelspec"]["name"] = "julia-1.10"
    course = write(tmp_path / "cw", {"julia.ipynb": json.dumps(nb)})
    with pytest.raises(smoke.SmokeFailed, match=r"^notebook julia.ipynb could not run: .*julia-1.10"):
        run(api, network, course, run_id=9)
    assert leftovers(api) == []


@pytest.mark.integration
def test_notebook_past_its_budget_fails_naming_it(api, network, tmp_path):
    course = write(tmp_path / "cw", {"slow.ipynb": notebook("import time\ntime.sleep(600)",
                                                            metadata={"goldenhub": {"smoke_timeout": 5}})})
    with pytest.raises(smoke.SmokeFailed, match=r"^notebook slow.ipynb did not finish within its budget of 5 seconds$"):
        run(api, network, course, run_id=4)
    assert leftovers(api) == []


@pytest.fixture
def broken_image():
    dockerfile = (f"FROM {IMAGE}\nUSER root\nRUN printf '#!/bin/sh\\necho \"jupyter is broken here\" >&2\\n"
                  "exit 1\\n' > \"$(command -v jupyter)\"\nUSER 1000\n")
    subprocess.run(["docker", "build", "-q", "-t", BROKEN_IMAGE, "-"], input=dockerfile, text=True, check=True,
                   capture_output=True)
    yield BROKEN_IMAGE
    docker.from_env().images.remove(BROKEN_IMAGE, force=True)


@pytest.mark.integration
def test_image_whose_jupyter_cannot_start(api, network, tmp_path, broken_image):
    course = write(tmp_path / "cw", {"ok.ipynb": notebook("1")})
    with pytest.raises(smoke.SmokeFailed) as e:
        run(api, network, course, run_id=5, image=broken_image)
    assert str(e.value).startswith(f"the Jupyter server in {broken_image} did not start: ")
    assert "jupyter is broken here" in str(e.value)
    assert leftovers(api) == []


@pytest.mark.integration
def test_gpu_template_gets_exactly_its_device(api, network, tmp_path):
    """This host has no NVIDIA runtime: the container is created with exactly device 0 (checked
    by inspecting it), and the start then fails with Docker's reason, leaving nothing behind.
    On a GPU host the same run passes only when the probe inside sees the GPU."""
    template = make_template(gpus=1)
    args = smoke.make_smoke_args(template, IMAGE, prefix=PREFIX, network=network[0], gateway=network[1], run_id=6,
                                 token="t", gpu_ids=("0",), owner=smoke.Owner.current().label(),
                                 expires=smoke.utcnow() + timedelta(minutes=5))
    args["host_config"] = api.create_host_config(**args["host_config"])
    created = api.create_container(**args)["Id"]
    try:
        info = api.inspect_container(created)
        requests = info["HostConfig"]["DeviceRequests"]
        assert [(r["Driver"], r["DeviceIDs"]) for r in requests] == [("nvidia", ["0"])]
        assert "NVIDIA_VISIBLE_DEVICES=0" in info["Config"]["Env"]
    finally:
        api.remove_container(created, force=True)
        api.remove_volume(contract.smoke_home_name(PREFIX, "smk", 6), force=True)
    if os.path.exists("/dev/nvidia0"):
        pytest.skip("a GPU host: the full run is the lead's GPU check")
    with pytest.raises(smoke.SmokeFailed, match="Docker could not create or start the smoke-test container"):
        run(api, network, None, template, run_id=6, gpu_ids=("0",))
    assert leftovers(api) == []


@pytest.mark.integration
def test_gpu_template_without_free_gpu_is_skipped_not_failed(api, network):
    report, lines = run(api, network, None, make_template(gpus=1), run_id=8, gpu_ids=())
    assert report.gpu == "GPU check skipped: this host has no free GPU"
    assert "GPU check skipped: this host has no free GPU" in lines


@pytest.mark.integration
def test_stale_smoke_objects_of_a_dead_owner_are_removed(api):
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = smoke.Owner.current()
    gone = smoke.Owner(owner.host, owner.boot, dead.pid, owner.start).label()
    future = smoke.utcnow() + timedelta(hours=1)
    stale = contract.smoke_container_name(PREFIX, "smk", 90)
    live = contract.smoke_container_name(PREFIX, "smk", 91)
    for name, who in ((stale, gone), (live, owner.label())):
        api.create_volume(name=f"{name}-scratch", labels=smoke.smoke_labels("smk", who, future))
        api.create_container(IMAGE, ["true"], name=name, labels=smoke.smoke_labels("smk", who, future))
    try:
        removed = smoke.cleanup_stale_smoke(api, PREFIX)
        assert sorted(removed) == [stale, f"{stale}-scratch"]
        assert sorted(leftovers(api)) == [live, f"{live}-scratch"]
        # the same owner, alive, but past its expiry: stale too
        later = smoke.utcnow() + timedelta(hours=2)
        assert sorted(smoke.cleanup_stale_smoke(api, PREFIX, now=later)) == [live, f"{live}-scratch"]
    finally:
        for name in (stale, live):
            for remove in (lambda: api.remove_container(name, force=True),
                           lambda: api.remove_volume(f"{name}-scratch", force=True)):
                try:
                    remove()
                except docker.errors.NotFound:
                    pass
    assert leftovers(api) == []


@pytest.mark.integration
def test_free_gpus_are_the_inventory_minus_live_holders(api, tmp_path):
    from spawner.gpus import free_published_gpus
    from spawner.start_events import publish_inventory

    assert free_published_gpus(api, tmp_path) == ()  # no inventory published
    publish_inventory(tmp_path, ["0", "1", "2"])
    holder = api.create_container(IMAGE, ["true"], name=f"{PREFIX}-smoke-holder",
                                  labels={contract.LABEL_GPUS: "1", contract.LABEL_USER: "someone"})["Id"]
    try:
        free = free_published_gpus(api, tmp_path)
        assert "1" not in free and set(free) <= {"0", "2"}
    finally:
        api.remove_container(holder, force=True)


def test_a_publisher_reading_chinese_gets_the_sentence_in_chinese(tmp_path):
    from hub_ext import i18n

    write(tmp_path, {"n.ipynb": notebook("1", metadata={"goldenhub": {"smoke_timeout": 99999}})})
    i18n.use("zh_CN")
    try:
        with pytest.raises(smoke.SmokeFailed) as e:
            smoke.plan_notebooks(tmp_path, None, 300)
    finally:
        i18n.use("en")
    assert str(e.value) == "n.ipynb：元数据 goldenhub.smoke_timeout 的值为 99999；允许的值：1 到 3600 之间的整数秒"
