"""Datasets on NFS (`nfs://server/export/path`): the course-file rule (full match, bounded, a
clear sentence for anything else), the Docker volume the start declares (created here through
the real Engine and inspected, never mounted: no NFS server or kernel NFS on these machines),
and the one sentence a student reads when the mount fails (from the Engine's own refusal too)."""

from __future__ import annotations

from dataclasses import replace

import docker
import pytest

from hub_ext import contract
from hub_ext.catalog import nfs, rules
from hub_ext.catalog.model import CatalogError, Dataset, Template, parse_course
from spawner import container
from spawner.golden import _explain_docker_error

TEMPLATE = Template(
    id="iris-cpu", course="stats", title="Stats", description="", image="goldenhub/course-intro-python:latest",
    gpus=0, cpu=1, memory=2**30, shm_size=64 * 2**20,
    datasets=(Dataset("iris", "nfs://nfs.example.edu/export/datasets/iris", "/home/jovyan/datasets/iris"),
              Dataset("local", "/srv/goldenhub/datasets/mnist-sample", "/home/jovyan/datasets/local")),
)
IRIS = nfs.parse("nfs://nfs.example.edu/export/datasets/iris")


def course(source) -> dict:
    return {"id": "stats", "title": "Stats", "templates": [{
        "id": "iris-cpu", "title": "Stats", "image": "goldenhub/course-intro-python:latest", "gpus": 0, "cpu": 1,
        "memory": "1G", "datasets": [{"name": "iris", "source": source}]}]}


@pytest.mark.parametrize("source, clean", [
    ("nfs://nfs.example.edu/export/datasets/iris", "nfs://nfs.example.edu/export/datasets/iris"),
    ("nfs://NFS.Example.EDU/export/iris/", "nfs://nfs.example.edu/export/iris"),
    ("nfs://10.0.0.5/export/iris", "nfs://10.0.0.5/export/iris"),
    ("nfs://[fd00::5]/export/iris", "nfs://[fd00::5]/export/iris"),
])
def test_a_course_file_may_name_an_nfs_export(source, clean):
    [template] = parse_course(course(source), "stats.yaml").templates
    assert template.datasets[0].source == clean


@pytest.mark.parametrize("source", [
    "nfs://nfs.example.edu",  # no path
    "nfs://nfs.example.edu/export/../etc",  # climbs out
    "nfs://nfs.example.edu/export/./iris",
    "nfs://nfs.example.edu//export",
    "nfs://nfs.example.edu:2049/export",  # a port
    "nfs://user@nfs.example.edu/export",  # a user
    "nfs://a,nolock/export",  # an option through addr=
    "nfs://nfs.example.edu/export iris",
    "nfs://nfs.example.edu/export/iris\n",
    "nfs://nfs.example.edu/export/iris?x=1",
    "nfs://999.1.1.1/export",
    "nfs://-bad.example.edu/export",
    "nfs://[not-ipv6]/export",
    "nfs://nfs.example.edu/" + "a" * 2000,  # too long
    "nfs://" + "a" * 300 + "/export",
    "NFS://nfs.example.edu/export",
])
def test_anything_else_after_nfs_is_refused_with_a_sentence_naming_the_field(source):
    with pytest.raises(CatalogError) as e:
        parse_course(course(source), "stats.yaml")
    text = str(e.value)
    assert "stats.yaml: templates[0].datasets[0].source: got " in text
    assert "allowed: nfs://SERVER/EXPORT/PATH" in text and len(text) < 600


def test_an_api_template_may_use_nfs_only_under_an_nfs_dataset_root():
    roots = ("/srv/goldenhub/datasets", "nfs://nfs.example.edu/export/datasets")
    assert rules.resolve_dataset("nfs://nfs.example.edu/export/datasets/iris", roots) == IRIS.url
    for outside in ("nfs://nfs.example.edu/export/other", "nfs://evil.example.edu/export/datasets/iris",
                    "nfs://nfs.example.edu/export/datasets-2"):
        with pytest.raises(rules.RuleError, match="outside the dataset roots"):
            rules.resolve_dataset(outside, roots)
    with pytest.raises(rules.RuleError, match="outside the dataset roots"):
        rules.resolve_dataset(IRIS.url, ("/srv/goldenhub/datasets",))
    # a host root never lets an nfs:// look-alike through as a relative host path
    with pytest.raises(rules.RuleError):
        rules.resolve_dataset("/srv/goldenhub/datasets/x", ("nfs://nfs.example.edu/export",))


def test_the_container_mounts_the_export_read_only_through_a_local_nfs_volume():
    ctx = container.ServerContext(user="alice", server="", container_name="gh-alice", home_volume="gh-home-alice--stats",
                                  network="none", hub_env={}, command=["jupyterhub-singleuser"], volume_prefix="gh")
    mounts = [dict(m) for m in container.make_host_config(TEMPLATE, ctx)["mounts"]]
    assert mounts[1] == {
        "Target": "/home/jovyan/datasets/iris", "Source": nfs.volume_name("gh", IRIS), "Type": "volume",
        "ReadOnly": True,
        "VolumeOptions": {"NoCopy": True, "Labels": {"goldenhub.kind": "nfs-dataset", "goldenhub.source": IRIS.url},
                          "DriverConfig": {"Name": "local", "Options": {
                              "type": "nfs", "device": ":/export/datasets/iris",
                              "o": "addr=nfs.example.edu,ro,nfsvers=4.1,soft,timeo=100,retrans=3"}}},
    }
    assert mounts[2]["Type"] == "bind" and mounts[2]["ReadOnly"] is True


@pytest.mark.integration
def test_docker_makes_the_volume_with_exactly_these_nfs_options_without_mounting_it(prefix):
    """Through the real Engine: the volume as the start's create declares it (a container is
    created, never started, so nothing is mounted), and as docker_volume_args makes it."""
    client = docker.from_env()
    ctx = container.ServerContext(user="alice", server="", container_name=f"{prefix}-alice",
                                  home_volume=contract.home_volume_name(prefix, "alice", "stats"), network="none",
                                  hub_env={}, command=["jupyterhub-singleuser"], volume_prefix=prefix)
    template = replace(TEMPLATE, datasets=TEMPLATE.datasets[:1])
    args = container.make_create_args(template, ctx)
    args["host_config"] = client.api.create_host_config(**args["host_config"])
    created = client.api.create_container(**args)
    attrs = client.api.inspect_volume(nfs.volume_name(prefix, IRIS))
    assert attrs["Driver"] == "local"
    assert attrs["Options"] == {"type": "nfs", "device": ":/export/datasets/iris",
                                "o": "addr=nfs.example.edu,ro,nfsvers=4.1,soft,timeo=100,retrans=3"}
    assert attrs["Labels"]["goldenhub.kind"] == "nfs-dataset"
    [mount] = [m for m in client.api.inspect_container(created["Id"])["Mounts"] if m["Type"] == "volume"
               and m["Name"] == attrs["Name"]]
    assert mount["RW"] is False and mount["Destination"] == "/home/jovyan/datasets/iris"
    assert client.api.inspect_container(created["Id"])["State"]["Status"] == "created"  # never started
    client.api.remove_container(created["Id"], force=True)

    other = nfs.parse("nfs://10.0.0.5/export/mnist")
    made = client.api.create_volume(**nfs.docker_volume_args(prefix, other))
    attrs = client.api.inspect_volume(made["Name"])
    assert attrs["Options"] == {"type": "nfs", "device": ":/export/mnist",
                                "o": "addr=10.0.0.5,ro,nfsvers=4.1,soft,timeo=100,retrans=3"}
    assert attrs["Name"].startswith(f"{prefix}-nfs-")


# The Engine's answer when a mount fails (as Docker 20.10 wrote it here, the server's address
# resolved), with the reason a server that refuses gives:
REFUSED = ("error while mounting volume '/var/lib/docker/volumes/gh-nfs-{digest}/_data': failed to mount local "
           "volume: mount :/export/datasets/iris:/var/lib/docker/volumes/gh-nfs-{digest}/_data, flags: 0x1, data: "
           "addr=192.0.2.7,nfsvers=4.1,soft,timeo=100,retrans=3: connection refused")


def test_a_failed_nfs_mount_tells_the_student_which_dataset_server_is_unreachable():
    error = docker.errors.APIError("500 Server Error", explanation=REFUSED.format(
        digest=nfs.volume_name("gh", IRIS).split("-nfs-")[1]))
    sentence = _explain_docker_error(error, TEMPLATE)
    assert sentence.startswith("The dataset server for iris is unreachable")
    assert "/export" not in sentence and "192.0.2.7" not in sentence and "volume" not in sentence
    # by the export path alone too (the volume may carry another prefix)
    by_path = docker.errors.APIError("500", explanation="failed to mount local volume: mount "
                                     ":/export/datasets/iris:/x, data: addr=192.0.2.7: no route to host")
    assert _explain_docker_error(by_path, TEMPLATE).startswith("The dataset server for iris is unreachable")


@pytest.mark.integration
def test_a_refused_mount_through_the_real_engine_gives_the_student_one_sentence(prefix):
    """A start whose export cannot be mounted (loopback has no NFS server; these machines have
    no kernel NFS either, so the Engine refuses at once): the student's sentence names the
    dataset, and no container is left running."""
    client = docker.from_env()
    template = replace(TEMPLATE, datasets=(Dataset("iris", "nfs://127.0.0.1/export/datasets/iris",
                                                   "/home/jovyan/datasets/iris"),))
    ctx = container.ServerContext(user="alice", server="", container_name=f"{prefix}-alice",
                                  home_volume=contract.home_volume_name(prefix, "alice", "stats"), network="none",
                                  hub_env={}, command=["true"], volume_prefix=prefix)
    args = container.make_create_args(template, ctx)
    args["host_config"] = client.api.create_host_config(**args["host_config"])
    created = client.api.create_container(**args)
    with pytest.raises(docker.errors.APIError) as e:
        client.api.start(created["Id"])
    sentence = _explain_docker_error(e.value, template)
    assert sentence == nfs.unreachable_sentence("iris"), e.value.explanation
    assert client.api.inspect_container(created["Id"])["State"]["Running"] is False


def test_other_errors_are_not_blamed_on_the_dataset_server():
    missing = docker.errors.APIError("400", explanation="invalid mount config for type \"bind\": bind source path "
                                     "does not exist: /srv/goldenhub/datasets/mnist-sample")
    assert "missing on this server" in _explain_docker_error(missing, TEMPLATE)
    other = docker.errors.APIError("500", explanation="failed to mount local volume: mount "
                                   ":/export/datasets/iris-2:/x: connection refused")
    assert "dataset server" not in _explain_docker_error(other, TEMPLATE)


def test_the_sentence_reads_in_chinese():
    from hub_ext import i18n

    token = i18n.use("zh_CN")
    try:
        sentence = nfs.unreachable_sentence("iris")
    finally:
        i18n._current.reset(token)
    assert "iris" in sentence and "数据集服务器" in sentence and "unreachable" not in sentence
