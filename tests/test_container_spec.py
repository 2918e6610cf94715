"""How a template becomes a container, checked as plain dicts (no Docker needed)."""

from hub_ext import contract
from hub_ext.catalog.model import Courseware, Dataset, Template
from spawner import container

TEMPLATE = Template(
    id="intro-cpu", course="intro", title="Intro", description="", image="goldenhub/course-intro:1.0",
    gpus=0, cpu=1.5, memory=2 * 2**30, shm_size=256 * 2**20,
    datasets=(Dataset("iris", "/srv/datasets/iris", "/home/jovyan/datasets/iris"),),
    courseware=Courseware("git://host.docker.internal/intro.git", "main", "intro"),
)
CTX = container.ServerContext(
    user="alice", server="", container_name="gh-alice", home_volume="gh-home-alice--intro",
    network="goldenhub", hub_env={"JUPYTERHUB_API_TOKEN": "t"}, command=["jupyterhub-singleuser"],
    host_gateway="172.30.0.1",
)


def test_home_and_datasets_are_the_only_mounts_and_datasets_are_read_only():
    mounts = container.make_host_config(TEMPLATE, CTX)["mounts"]
    assert [dict(m) for m in mounts] == [
        {"Target": "/home/jovyan", "Source": "gh-home-alice--intro", "Type": "volume", "ReadOnly": False},
        {"Target": "/home/jovyan/datasets/iris", "Source": "/srv/datasets/iris", "Type": "bind", "ReadOnly": True},
    ]


def test_limits_come_from_the_template():
    hc = container.make_host_config(TEMPLATE, CTX)
    assert hc["mem_limit"] == hc["memswap_limit"] == 2 * 2**30
    assert hc["cpu_quota"] / hc["cpu_period"] == 1.5
    assert hc["shm_size"] == 256 * 2**20
    assert hc["privileged"] is False and hc["cap_drop"] == ["ALL"]
    assert hc["security_opt"] == ["no-new-privileges"]
    assert hc["extra_hosts"] == {"host.docker.internal": "172.30.0.1"}
    assert hc["network_mode"] == "goldenhub"


def test_container_runs_the_template_image_as_uid_1000_with_courseware_env():
    args = container.make_create_args(TEMPLATE, CTX)
    assert args["image"] == "goldenhub/course-intro:1.0"
    assert args["user"] == "1000"
    env = args["environment"]
    assert env["GOLDENHUB_COURSEWARE_REPO"] == "git://host.docker.internal/intro.git"
    assert env["GOLDENHUB_COURSEWARE_TARGET"] == "intro"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["JUPYTERHUB_API_TOKEN"] == "t"
    # the student's command runs after the sync script, as its arguments
    assert args["command"][:2] == ["sh", "-c"] and args["command"][-1] == "jupyterhub-singleuser"
    assert args["labels"]["goldenhub.template"] == "intro-cpu"


def test_no_courseware_means_no_sync_variables():
    from dataclasses import replace

    env = container.make_environment(replace(TEMPLATE, courseware=None), CTX)
    assert not any(k.startswith("GOLDENHUB_COURSEWARE") for k in env)


def test_names_do_not_collide_for_tricky_users():
    pairs = [
        (contract.container_name("gh", "user--foo"), contract.container_name("gh", "user", "foo")),
        (contract.container_name("gh", "Alice"), contract.container_name("gh", "alice")),
        (contract.container_name("gh", "has@"), contract.container_name("gh", "has")),
        (contract.home_volume_name("gh", "a--b", "c"), contract.home_volume_name("gh", "a", "b--c")),
    ]
    for a, b in pairs:
        assert a != b
    for name in ["José", "ünï", "has@", "x" * 200]:
        escaped = contract.container_name("gh", name)
        assert escaped.isascii() and len(escaped) < 80
        assert all(c.isalnum() or c in "-_" for c in escaped)  # "_" marks a shortened part
