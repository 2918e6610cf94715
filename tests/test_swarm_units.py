"""The Docker Swarm backend, pure (no engine): for every sample template the service spec that
spawner/swarm.py builds is checked field by field (user, capabilities, limits, mounts read-only,
/dev/shm, generic resources, placement), names and labels for hostile usernames, the cluster's
GPU count for the picker, the branding configs, the pre-pull job and the backend setting."""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
from traitlets.config import Config

from hub_ext import contract
from hub_ext.catalog import nfs
from hub_ext.catalog.model import HOME, Dataset, load_catalog
from hub_ext.hubconfig import Settings, refused_spawner_settings, update_spawner
from hub_ext.images import push as pushing
from hub_ext.images import swarm_prepull
from spawner import container, swarm, swarm_config
from spawner.gpus import NoFreeGPU

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(load_catalog(REPO / "courses").templates.values(), key=lambda t: t.id)
SERVICE_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*")
HOSTILE_USERS = ["alice", "Alice", "a-2D", "a-", "-a", "a_b", "a.b", "用户", "x" * 200, "x" * 199 + "y",
                 "user--foo", "a@example.edu", "a b", "a\nb", "$(reboot)", "../etc"]


def context(template, user="alice", server="", **kw):
    return container.ServerContext(
        user=user, server=server, container_name=contract.container_name("goldenhub", user, server),
        home_volume=contract.home_volume_name("goldenhub", user, template.course), network="",
        hub_env={"JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_API_URL": "http://10.0.0.1:8081/hub/api"},
        command=["jupyterhub-singleuser"], courseware_mirror="/srv/state/courseware/x.git",
        courseware_stale="stale", **kw)


def spec_of(template, settings=swarm.SwarmSettings(), node_id="", **kw):
    return swarm.make_service_spec(template, context(template, **kw), settings, node_id)


def env_of(spec) -> dict[str, str]:
    return dict(e.split("=", 1) for e in spec["TaskTemplate"]["ContainerSpec"]["Env"])


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_every_sample_template_runs_as_uid_1000_with_no_capability_and_its_limits(template):
    spec = spec_of(template)
    task = spec["TaskTemplate"]
    c = task["ContainerSpec"]
    assert c["User"] == "1000" and c["CapabilityDrop"] == ["ALL"]
    assert c["Image"] == template.image and c["Dir"] == HOME
    assert c["Command"][:2] == ["sh", "-c"] and c["Command"][2].endswith(container.STARTUP_SCRIPT)
    assert c["Args"] == ["jupyterhub-singleuser"]
    assert task["Resources"]["Limits"] == {"NanoCPUs": int(template.cpu * 10**9), "MemoryBytes": template.memory,
                                           "Pids": 1024}
    assert task["RestartPolicy"]["Condition"] == "none"  # a dead server is stopped, as on Docker
    assert task["Placement"]["Constraints"] == []
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    # Nothing the Docker backend refuses: no privileged field, no host network, no extra capability.
    assert "CapabilityAdd" not in c and "Privileges" not in c and "Networks" not in task


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_mounts_are_the_home_the_datasets_read_only_and_shm_nothing_else(template):
    mounts = spec_of(template)["TaskTemplate"]["ContainerSpec"]["Mounts"]
    home, *datasets, shm = mounts
    assert home["Type"] == "volume" and home["Target"] == HOME and not home.get("ReadOnly")
    assert home["Source"] == contract.home_volume_name("goldenhub", "alice", template.course)
    assert home["VolumeOptions"]["Labels"] == {contract.LABEL_USER: "alice", contract.LABEL_COURSE: template.course}
    assert [d["Target"] for d in datasets] == [d.target for d in template.datasets]
    assert all(d["ReadOnly"] is True for d in datasets)
    assert shm == {"Type": "tmpfs", "Target": "/dev/shm", "TmpfsOptions": {"SizeBytes": template.shm_size,
                                                                           "Mode": 0o1777}}
    sources = [m.get("Source", "") for m in mounts]
    assert not any("docker.sock" in s or s.startswith("/srv/state") for s in sources)  # no socket, no hub mirror


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_gpus_are_reserved_as_generic_resources_and_never_all(template):
    spec = spec_of(template)
    reservations = spec["TaskTemplate"]["Resources"]["Reservations"]
    env = env_of(spec)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"  # until the runtime/prelude takes Swarm's assignment
    assert "all" not in spec["TaskTemplate"]["ContainerSpec"]["Command"][2].split("NVIDIA_VISIBLE_DEVICES=")[-1][:6]
    if template.gpus:
        assert reservations == {"GenericResources": [{"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU",
                                                                                "Value": template.gpus}}]}
    else:
        assert reservations == {}
    # The courseware comes from its remote: the hub's mirror is a path of the hub's machine only.
    assert "GOLDENHUB_COURSEWARE_SOURCE" not in env and "GOLDENHUB_COURSEWARE_STALE" not in env


def test_the_gpu_prelude_exports_exactly_the_ids_swarm_assigned():
    import subprocess

    script = swarm.gpu_prelude() + 'printf "%s" "$NVIDIA_VISIBLE_DEVICES"'
    given = subprocess.run(["env", "DOCKER_RESOURCE_NVIDIA-GPU=GPU-a,GPU-b", "NVIDIA_VISIBLE_DEVICES=void",
                            "sh", "-c", script], capture_output=True, text=True, check=True)
    assert given.stdout == "GPU-a,GPU-b"
    none = subprocess.run(["env", "NVIDIA_VISIBLE_DEVICES=void", "sh", "-c", script],
                          capture_output=True, text=True, check=True)
    assert none.stdout == "void"


def test_a_pinned_home_constrains_the_task_to_its_node():
    template = TEMPLATES[0]
    spec = spec_of(template, node_id="k3x9node")
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.id==k3x9node"]


def test_nfs_homes_are_a_local_nfs_volume_per_home_read_write():
    template = TEMPLATES[0]
    settings = swarm.SwarmSettings(homes="nfs", homes_nfs_root="nfs://10.0.0.5/export/homes")
    home = spec_of(template, settings)["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    volume = contract.home_volume_name("goldenhub", "alice", template.course)
    assert home["Source"] == volume and not home.get("ReadOnly")
    assert home["VolumeOptions"]["DriverConfig"] == {"Name": "local", "Options": {
        "type": "nfs", "o": f"addr=10.0.0.5,rw,{swarm.HOME_NFS_OPTIONS}", "device": f":/export/homes/{volume}"}}
    assert home["VolumeOptions"]["NoCopy"] is True


def test_nfs_datasets_are_read_only_local_nfs_volumes():
    template = replace(TEMPLATES[0], datasets=(Dataset("iris", "nfs://files.example.edu/data/iris",
                                                       f"{HOME}/datasets/iris"),))
    [_, ds, _] = spec_of(template)["TaskTemplate"]["ContainerSpec"]["Mounts"]
    source = nfs.parse("nfs://files.example.edu/data/iris")
    assert ds["ReadOnly"] is True and ds["Source"] == nfs.volume_name("goldenhub", source)
    assert ds["VolumeOptions"]["DriverConfig"] == {"Name": "local", "Options": nfs.docker_volume_options(source)}
    assert ",ro," in ds["VolumeOptions"]["DriverConfig"]["Options"]["o"]


@pytest.mark.parametrize("connect,mode,endpoint", [("ingress", "ingress", "vip"), ("node", "host", "dnsrr")])
def test_the_port_is_published_as_the_connect_setting_says(connect, mode, endpoint):
    spec = spec_of(TEMPLATES[0], swarm.SwarmSettings(connect=connect))
    # no PublishedPort: Docker picks a free one (two students on one node never clash)
    assert spec["EndpointSpec"] == {"Mode": endpoint, "Ports": [{"Protocol": "tcp", "TargetPort": 8888,
                                                                 "PublishMode": mode}]}


def test_connect_defaults_to_the_node_port_which_needs_no_ipvs():
    assert swarm.SwarmSettings().connect == "node"
    assert spec_of(TEMPLATES[0])["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"


def test_connect_network_publishes_nothing_and_attaches_the_overlay():
    spec = spec_of(TEMPLATES[0], swarm.SwarmSettings(connect="network", network="gh-overlay"))
    assert spec["EndpointSpec"] == {"Mode": "dnsrr"}
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "gh-overlay"}]


def test_reservations_follow_the_fraction():
    template = next(t for t in TEMPLATES if t.gpus)
    res = spec_of(template, swarm.SwarmSettings(reserve_fraction=0.5))["TaskTemplate"]["Resources"]["Reservations"]
    assert res["MemoryBytes"] == template.memory // 2 and res["NanoCPUs"] == int(template.cpu * 10**9 / 2)
    assert res["GenericResources"][0]["DiscreteResourceSpec"]["Value"] == template.gpus


@pytest.mark.parametrize("user", HOSTILE_USERS)
def test_hostile_usernames_give_valid_distinct_service_names_and_exact_labels(user):
    template = TEMPLATES[0]
    spec = spec_of(template, user=user, server="")
    assert SERVICE_NAME.fullmatch(spec["Name"]) and len(spec["Name"]) <= 63
    assert spec["Labels"][contract.LABEL_USER] == user  # exact, whatever it is
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"][contract.LABEL_USER] == user
    names = {spec_of(template, user=u)["Name"] for u in HOSTILE_USERS}
    assert len(names) == len(HOSTILE_USERS)


def test_named_servers_get_their_own_service():
    template = TEMPLATES[0]
    assert spec_of(template, server="")["Name"] != spec_of(template, server="gpu")["Name"]


def node(node_id, gpus=(), state="ready", availability="active", count=0, host=""):
    resources = [{"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": g}} for g in gpus]
    if count:
        resources.append({"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": count}})
    return {"ID": node_id, "Status": {"State": state}, "Spec": {"Availability": availability},
            "Description": {"Hostname": host or node_id, "Resources": {"GenericResources": resources}}}


def task(node_id, gpus, state="running", desired="running"):
    return {"NodeID": node_id, "DesiredState": desired, "Status": {"State": state},
            "AssignedGenericResources": [{"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": g}} for g in gpus]}


def test_the_picker_counts_free_gpus_over_the_whole_cluster():
    nodes = [node("a", ["GPU-1", "GPU-2"]), node("b", ["GPU-3"], count=1), node("down", ["GPU-9"], state="down"),
             node("drained", ["GPU-8"], availability="drain")]
    tasks = [task("a", ["GPU-1"]), task("b", ["GPU-3"]), task("down", ["GPU-9"]),
             task("a", ["GPU-2"], state="complete", desired="shutdown")]
    gpus = swarm.ClusterGPUs.from_cluster(nodes, tasks)
    assert (gpus.total, gpus.free_count()) == (4, 2)  # a: 2, b: 1 named + 1 counted; down and drained not
    assert gpus.allocate("alice/", 2) == []  # Swarm assigns; the hub only refuses
    with pytest.raises(NoFreeGPU) as refused:
        gpus.allocate("alice/", 3)
    assert (refused.value.total, refused.value.free) == (4, 2)


def test_assigned_gpus_are_read_from_the_task():
    assert swarm.assigned_gpus(task("a", ["GPU-1", "GPU-2"])) == ("GPU-1", "GPU-2")
    engine_json = {"GenericResources": [{"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": "fake-m-0"}}]}
    assert swarm.assigned_gpus(engine_json) == ("fake-m-0",)  # what dockerd 20.10 answers
    assert swarm.assigned_gpus({"AssignedGenericResources": None}) == ()


def test_a_node_that_is_down_or_drained_is_not_up():
    assert swarm.node_is_up(node("a"))
    assert not swarm.node_is_up(node("a", state="down"))
    assert not swarm.node_is_up(node("a", availability="pause"))
    assert not swarm.node_is_up({})


def test_the_node_down_sentence_names_the_node_and_what_to_do():
    text = swarm.node_down_sentence("gpu-box-2", "Deep Learning")
    assert "gpu-box-2" in text and "down" in text and "administrator" in text and "Deep Learning" in text


def test_branding_files_become_read_only_configs_at_their_container_paths():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files = {"goldenhub-branding/custom/custom.css": b"css", "goldenhub-branding/lab/o.json": b"{}"}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    files = swarm.files_of_archive(buf.getvalue(), "/tmp")
    assert files == {"/tmp/goldenhub-branding/custom/custom.css": b"css", "/tmp/goldenhub-branding/lab/o.json": b"{}"}
    ids = {swarm.config_name("gh", p, d): f"id-{i}" for i, (p, d) in enumerate(files.items())}
    refs = swarm.make_config_refs(files, ids, "gh")
    assert [r["File"] for r in refs] == [{"Name": p, "UID": "0", "GID": "0", "Mode": 0o444} for p in sorted(files)]
    assert swarm.config_name("gh", "/a", b"1") != swarm.config_name("gh", "/a", b"2")  # a new logo, a new config


def test_the_prepull_job_runs_once_on_every_node_as_the_student_uid():
    spec = swarm_prepull.make_job_spec("127.0.0.1:5000/gh/course-x@sha256:" + "a" * 64, "gh")
    assert spec["Mode"] == {"Global": {}} and spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
    c = spec["TaskTemplate"]["ContainerSpec"]
    assert c["Command"] == ["true"] and c["User"] == "1000" and c["CapabilityDrop"] == ["ALL"]
    assert SERVICE_NAME.fullmatch(spec["Name"]) and spec["Name"].startswith("gh-prepull-")


class FakeManager:
    """The manager's answers for SwarmPuller (pure: a scripted engine)."""

    def __init__(self, ends):
        self.ends, self.removed, self.created = ends, [], None

    def remove_service(self, name):
        self.removed.append(name)

    def create_service(self, task_template, **kw):
        self.created = (task_template, kw)
        return {"ID": "svc"}

    def nodes(self):
        return [node("n1", host="box-1"), node("n2", host="box-2")]

    def tasks(self, filters):
        return [{"NodeID": n, "Status": {"State": s, "Err": "no such image" if s == "rejected" else ""}}
                for n, s in self.ends.items()]


def test_prepull_reports_the_nodes_that_did_not_pull():
    ok = pushing.prepull([("swarm", swarm_prepull.SwarmPuller(FakeManager({"n1": "complete", "n2": "complete"}),
                                                              "gh", sleep=lambda s: None))],
                         "r/c@sha256:" + "b" * 64, log=lambda line: None)
    assert ok == [pushing.PrepullResult("swarm", True, "")]
    manager = FakeManager({"n1": "complete", "n2": "rejected"})
    [bad] = pushing.prepull([("swarm", swarm_prepull.SwarmPuller(manager, "gh", sleep=lambda s: None))],
                            "r/c@sha256:" + "b" * 64, log=lambda line: None)
    assert not bad.ok and "node box-2: no such image" in bad.problem and "box-1" not in bad.problem
    assert manager.removed[-1] == "svc"  # the job is removed whatever happened


def test_prepull_gives_up_on_a_silent_node_after_its_bound():
    clock = iter(range(0, 10**6, 1000)).__next__
    puller = swarm_prepull.SwarmPuller(FakeManager({"n1": "complete", "n2": "running"}), "gh", timeout_s=1800,
                                       clock=clock, sleep=lambda s: None)
    [result] = pushing.prepull([("swarm", puller)], "r/c@sha256:" + "c" * 64, log=lambda line: None)
    assert not result.ok and "node box-2: no answer within 1800 s" in result.problem


def settings_with(env: dict, file: dict | None = None) -> Settings:
    s = Settings()
    swarm_config.read_swarm(s, env, file or {})
    return s


def test_the_backend_is_docker_unless_set():
    assert settings_with({}).backend == "docker"
    assert settings_with({}, {"backend": "swarm"}).backend == "swarm"
    assert settings_with({"GOLDENHUB_BACKEND": "docker"}, {"backend": "swarm"}).backend == "docker"


@pytest.mark.parametrize("env,words", [
    ({"GOLDENHUB_BACKEND": "kubernetes"}, "allowed: docker, swarm"),
    ({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_HOMES": "nfs"}, "homes_nfs_root"),
    ({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_HOMES": "nfs",
      "GOLDENHUB_SWARM_HOMES_NFS_ROOT": "nfs://h/x,rw"}, "nfs://server/export/path"),
    ({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_HOMES": "shared"}, "allowed: pinned, nfs"),
    ({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_CONNECT": "magic"}, "allowed: ingress, node, network"),
    ({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_CONNECT": "network"}, "attachable overlay network"),
    ({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_GPU_KIND": "a b"}, "gpu_kind"),
    ({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_RESERVE_FRACTION": "lots"}, "reserve_fraction"),
])
def test_a_bad_swarm_setting_is_refused_with_what_is_allowed(env, words):
    with pytest.raises(ValueError) as refused:
        settings_with(env)
    assert words in str(refused.value)


def test_the_swarm_backend_writes_its_spawner_config():
    s = settings_with({"GOLDENHUB_BACKEND": "swarm", "GOLDENHUB_SWARM_DOCKER_HOST": "tcp://10.0.0.2:2375",
                       "GOLDENHUB_SWARM_HOMES": "nfs", "GOLDENHUB_SWARM_HOMES_NFS_ROOT": "nfs://10.0.0.5/homes",
                       "GOLDENHUB_SWARM_CONNECT": "node", "GOLDENHUB_SWARM_HUB_IP": "10.0.0.1"})
    s.gateway = "172.30.0.1"
    c = Config()
    update_spawner(c, s)
    assert c.JupyterHub.spawner_class == "goldenhub-swarm"
    assert c.GoldenSwarmSpawner.client_kwargs == {"base_url": "tcp://10.0.0.2:2375"}
    assert (c.GoldenSwarmSpawner.homes_mode, c.GoldenSwarmSpawner.connect) == ("nfs", "node")
    assert c.JupyterHub.hub_ip == "10.0.0.1" and c.GoldenSwarmSpawner.host_gateway == "10.0.0.1"
    assert c.GoldenSpawner.name_prefix == s.name_prefix  # GoldenSpawner's settings are inherited
    c.SwarmSpawner.mem_limit = "4G"
    assert any("c.SwarmSpawner.mem_limit is not used" in line for line in refused_spawner_settings(c))


def test_the_swarm_spawner_is_registered():
    from importlib.metadata import entry_points

    from spawner.golden_swarm import GoldenSwarmSpawner

    [ep] = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "goldenhub-swarm"]
    assert ep.load() is GoldenSwarmSpawner


def test_a_failed_mount_of_an_nfs_home_is_told_as_the_home_server_unreachable():
    settings = swarm.SwarmSettings(homes="nfs", homes_nfs_root="nfs://10.0.0.5/export/homes")
    error = ('starting container failed: error while mounting volume "/var/lib/docker/volumes/gh-alice--lab/_data": '
             "failed to mount local volume: mount :/export/homes/gh-alice--lab:/var/lib/docker/volumes/gh-alice--lab"
             "/_data, data: addr=10.0.0.5,rw: connection refused")
    assert swarm.home_unreachable(error, "gh-alice--lab", settings)
    assert not swarm.home_unreachable(error, "gh-alice--lab", swarm.SwarmSettings())  # pinned homes: not NFS
    assert not swarm.home_unreachable("No such image: x", "gh-alice--lab", settings)
    assert "file server holding your home is unreachable" in swarm.home_unreachable_sentence()


def test_the_swarm_spawner_takes_goldenspawners_settings_and_always_removes_services():
    from spawner.golden_swarm import GoldenSwarmSpawner

    c = Config()
    c.GoldenSpawner.remove = False  # GoldenSpawner's section applies to the Swarm spawner too ...
    c.GoldenSpawner.pids_limit = 512
    spawner = GoldenSwarmSpawner(config=c)
    assert spawner.remove is True  # ... but a service is always removed at stop (its home stays)
    assert spawner.pids_limit == 512 and spawner.pull_policy == "skip" and spawner.connect == "node"
