"""The Kubernetes backend without a cluster (none can run here), pure: for every sample
template the pod, home PVC and NetworkPolicy are validated against the Kubernetes OpenAPI
schemas shipped with kubernetes-validate (pinned in the `k8s` extra; strict: an unknown field
fails), then checked field by field for the security settings, limits and GPUs a student's
server must have; `goldenhub k8s values` writes only key paths the Zero to JupyterHub chart
documents (tests/data/z2jh-values-keys.txt, from the pinned chart's values.schema.yaml)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from hub_ext import contract
from hub_ext.catalog.model import Dataset, load_catalog
from hub_ext.cli.main import main as cli
from hub_ext.hubconfig import Settings, update_service
from hub_ext.k8s.values import documented, key_paths, make_values
from spawner import container, k8s

kv = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[1]
KUBE_VERSION = "1.34"  # the newest schemas kubernetes-validate 1.34.1 ships
TEMPLATES = sorted(load_catalog(REPO / "courses").templates.values(), key=lambda t: t.id)
DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
HOSTILE_USERS = ["alice", "Alice", "a-2D", "a-", "-a", "a_b", "a.b", "用户", "x" * 200, "x" * 199 + "y",
                 "user--foo", "z-a", "z.-a", "A", "a@example.edu"]


def context(template, user="alice", server=""):
    return container.ServerContext(
        user=user, server=server, container_name=contract.container_name("goldenhub", user, server),
        home_volume=contract.home_volume_name("goldenhub", user, template.course), network="goldenhub",
        hub_env={"JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_API_URL": "http://hub:8081/hub/api"},
        command=["jupyterhub-singleuser"], gpu_ids=("0",) if template.gpus else (),
        courseware_mirror="/srv/state/courseware/x.git", courseware_stale="")


def manifests(template):
    ctx = context(template)
    return [k8s.make_pod(template, ctx), k8s.make_pvc(template, ctx), k8s.make_network_policy()]


def the_container(pod):
    [c] = pod["spec"]["containers"]
    return c


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_every_manifest_of_every_sample_template_passes_the_kubernetes_schemas(template):
    for manifest in manifests(template):
        assert kv.validate(manifest, KUBE_VERSION, strict=True) == KUBE_VERSION
        assert DNS_SUBDOMAIN.fullmatch(manifest["metadata"]["name"])
        assert all(LABEL_VALUE.fullmatch(v) for v in manifest["metadata"].get("labels", {}).values())


def test_the_schema_check_refuses_a_misspelt_or_mistyped_field():
    pod = k8s.make_pod(TEMPLATES[0], context(TEMPLATES[0]))
    the_container(pod)["securityContext"]["allowPrivilegeEscalatoin"] = False
    with pytest.raises(kv.ValidationError):
        kv.validate(pod, KUBE_VERSION, strict=True)
    pod = k8s.make_pod(TEMPLATES[0], context(TEMPLATES[0]))
    pod["spec"]["securityContext"]["runAsUser"] = "1000"
    with pytest.raises(kv.ValidationError):
        kv.validate(pod, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_the_pod_has_the_docker_containers_security(template):
    pod = k8s.make_pod(template, context(template))
    spec, c = pod["spec"], the_container(pod)
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert spec["securityContext"] == {"runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100, "runAsNonRoot": True,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    sc = c["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]) == (1000, 100, True)
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in spec and "hostPID" not in spec and "hostIPC" not in spec
    assert c["image"] == template.image and c["workingDir"] == "/home/jovyan"
    assert c["command"][:2] == ["sh", "-c"] and c["args"] == ["jupyterhub-singleuser"]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_limits_shm_and_gpus_come_from_the_template(template):
    pod = k8s.make_pod(template, context(template))
    res = the_container(pod)["resources"]
    assert int(res["limits"]["memory"]) == template.memory == int(res["requests"]["memory"])
    assert float(res["limits"]["cpu"]) == template.cpu
    assert int(res["requests"]["cpu"].removesuffix("m")) == int(template.cpu * 1000)
    [shm] = [v for v in pod["spec"]["volumes"] if v["name"] == k8s.SHM]
    assert shm == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": str(template.shm_size)}}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in the_container(pod)["volumeMounts"]
    env = {e["name"]: e["value"] for e in the_container(pod)["env"]}
    if template.gpus:
        assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == str(template.gpus)
        assert "NVIDIA_VISIBLE_DEVICES" not in env  # the device plugin sets exactly the allocated ones
    else:
        assert "nvidia.com/gpu" not in res["limits"] and env["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_a_site_may_lower_requests_below_the_limits():
    t = TEMPLATES[0]
    res = k8s.make_resources(t, k8s.KubeSettings(request_fraction=0.5))
    assert int(res["requests"]["memory"]) == t.memory // 2 and int(res["limits"]["memory"]) == t.memory


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.id)
def test_only_the_home_and_the_declared_datasets_are_mounted_and_datasets_are_read_only(template):
    pod = k8s.make_pod(template, context(template))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m for m in the_container(pod)["volumeMounts"]}
    assert volumes["home"] == {"name": "home", "persistentVolumeClaim": {"claimName": k8s.kube_name(
        contract.home_volume_name("goldenhub", "alice", template.course))}}
    assert mounts["home"]["mountPath"] == "/home/jovyan" and not mounts["home"].get("readOnly")
    host_paths = [v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v]
    assert host_paths == [d.source for d in template.datasets if not d.source.startswith("nfs://")]
    for i, d in enumerate(template.datasets):
        assert mounts[f"dataset-{i}"] == {"name": f"dataset-{i}", "mountPath": d.target, "readOnly": True}
    assert set(volumes) == {"home", "dshm", *(f"dataset-{i}" for i in range(len(template.datasets)))}
    # the hub's courseware mirror is a path on the hub's machine: never mounted in a pod
    env = {e["name"] for e in the_container(pod)["env"]}
    assert "GOLDENHUB_COURSEWARE_SOURCE" not in env


def test_an_nfs_dataset_is_a_read_only_nfs_volume():
    t = replace(TEMPLATES[0], datasets=(Dataset("iris", "nfs://nfs.example.edu/export/iris", "/home/jovyan/iris"),))
    pod = k8s.make_pod(t, context(t))
    assert kv.validate(pod, KUBE_VERSION, strict=True)
    [vol] = [v for v in pod["spec"]["volumes"] if v["name"] == "dataset-0"]
    assert vol == {"name": "dataset-0", "nfs": {"server": "nfs.example.edu", "path": "/export/iris", "readOnly": True}}
    assert not any("hostPath" in v for v in pod["spec"]["volumes"])


def test_env_and_labels_are_the_docker_builders():
    t = TEMPLATES[0]
    ctx = context(t, user="Bob Smith", server="gpu")
    pod = k8s.make_pod(t, ctx)
    docker_env = container.make_environment(t, replace(ctx, courseware_mirror="", gpu_ids=()))
    env = {e["name"]: e["value"] for e in the_container(pod)["env"]}
    assert env == {k: v for k, v in docker_env.items() if not (t.gpus and k == "NVIDIA_VISIBLE_DEVICES")}
    meta = pod["metadata"]
    assert meta["labels"][contract.LABEL_COURSE] == t.course and meta["labels"][contract.LABEL_TEMPLATE] == t.id
    assert meta["annotations"][contract.LABEL_USER] == "Bob Smith" and meta["annotations"][contract.LABEL_SERVER] == "gpu"
    assert meta["labels"]["component"] == "singleuser-server"


def test_kubernetes_names_and_label_values_stay_valid_and_distinct_for_any_username():
    pods = [k8s.kube_name(contract.container_name("goldenhub", u)) for u in HOSTILE_USERS]
    homes = [k8s.kube_name(contract.home_volume_name("goldenhub", u, "intro")) for u in HOSTILE_USERS]
    labels = [k8s.kube_label(u) for u in HOSTILE_USERS]
    for names in (pods, homes, labels):
        assert len(set(names)) == len(HOSTILE_USERS)
    assert all(DNS_SUBDOMAIN.fullmatch(n) and len(n) <= 253 for n in pods + homes)
    assert all(LABEL_VALUE.fullmatch(v) and len(v) <= 63 for v in labels)


def test_one_home_pvc_per_student_per_course_with_the_sites_storage():
    t = TEMPLATES[0]
    pvc = k8s.make_pvc(t, context(t), k8s.KubeSettings(storage_class="nfs-client", home_size="20Gi"))
    assert pvc["metadata"]["name"] == k8s.kube_name(contract.home_volume_name("goldenhub", "alice", t.course))
    assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}},
                           "storageClassName": "nfs-client"}
    assert "storageClassName" not in k8s.make_pvc(t, context(t))["spec"]  # the cluster's default
    other = replace(t, course="other-course")
    assert k8s.make_pvc(other, context(other))["metadata"]["name"] != pvc["metadata"]["name"]


def test_students_reach_only_the_hub_and_dns_and_only_the_proxy_reaches_them():
    spec = k8s.make_network_policy()["spec"]
    assert spec["podSelector"] == {"matchLabels": {"component": "singleuser-server"}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"component": "proxy"}}}],
                                "ports": [{"protocol": "TCP", "port": 8888}]}]
    hub, dns = spec["egress"]
    assert hub == {"to": [{"podSelector": {"matchLabels": {"component": "hub"}}}],
                   "ports": [{"protocol": "TCP", "port": 8081}]}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {p["port"] for p in dns["ports"]} == {53}
    extra = k8s.make_network_policy(k8s.KubeSettings(extra_egress_cidrs=("10.0.0.5/32",)))
    assert extra["spec"]["egress"][2] == {"to": [{"ipBlock": {"cidr": "10.0.0.5/32"}}]}


def test_bad_site_settings_are_named():
    problems = k8s.check_settings(k8s.KubeSettings(namespace="Bad_NS", home_size="lots", request_fraction=2,
                                                   extra_egress_cidrs=("everything",)))
    assert len(problems) == 4 and all("allowed:" in p for p in problems)
    assert k8s.check_settings(k8s.KubeSettings()) == []


# --- the chart's values -------------------------------------------------------------------

def chart_keys() -> set[str]:
    lines = (REPO / "tests/data/z2jh-values-keys.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_every_generated_values_key_is_documented_by_the_pinned_chart():
    values = make_values(Settings(), "registry.example.edu/goldenhub-hub", "0.1.0", storage_class="nfs-client")
    keys = chart_keys()
    undocumented = [p for p in key_paths(values) if not documented(p, keys)]
    assert undocumented == []
    assert not documented("hub.imagee.name", keys) and not documented("singleuser.storage.size", keys)


def test_the_values_run_goldenhub_in_the_hub_with_its_service_spawner_and_roles():
    s = Settings(admin_users=("root-admin",), language="zh_CN")
    values = make_values(s, "registry.example.edu/goldenhub-hub", "0.1.0")
    hub = values["hub"]
    assert hub["image"] == {"name": "registry.example.edu/goldenhub-hub", "tag": "0.1.0"}
    assert hub["config"]["JupyterHub"]["spawner_class"] == "goldenhub-kube"
    assert "update_kube(c)" in hub["extraConfig"]["goldenhub"]
    assert hub["services"]["goldenhub"]["command"] == ["python3", "-m", "hub_ext.service"]
    from traitlets.config import Config

    c = Config()
    update_service(c, s)
    assert hub["loadRoles"]["goldenhub-admin"]["users"] == ["root-admin"]
    assert {n: r["scopes"] for n, r in hub["loadRoles"].items()} == {r["name"]: r["scopes"]
                                                                     for r in c.JupyterHub.load_roles}
    assert hub["config"]["JupyterHub"]["custom_scopes"] == c.JupyterHub.custom_scopes
    assert hub["extraEnv"]["GOLDENHUB_LANGUAGE"] == "zh_CN"
    assert values["singleuser"]["storage"] == {"type": "none"}  # homes are GoldenKubeSpawner's PVCs


def test_the_hub_pods_extra_config_puts_the_service_on_the_pods_own_address(tmp_path, monkeypatch):
    from traitlets.config import Config

    from hub_ext.k8s.values import update_kube

    monkeypatch.setenv("GOLDENHUB_POD_IP", "10.1.2.3")
    monkeypatch.setenv("GOLDENHUB_SERVICE_PORT", "8090")
    monkeypatch.setenv("GOLDENHUB_STATE_DIR", str(tmp_path / "state"))
    c = Config()
    c.JupyterHub.services = [{"name": "other", "url": "http://x:1"},
                             {"name": "goldenhub", **make_values(Settings(), "i", "t")["hub"]["services"]["goldenhub"]}]
    update_kube(c)
    assert c.JupyterHub.services[1]["url"] == "http://10.1.2.3:8090"
    assert c.JupyterHub.services[0]["url"] == "http://x:1"
    assert (tmp_path / "state").is_dir()


def test_goldenhub_k8s_values_writes_a_yaml_file_and_refuses_bad_options(tmp_path, capsys):
    out = tmp_path / "values.yaml"
    assert cli(["k8s", "values", "-o", str(out), "--hub-image", "registry.example.edu/gh-hub",
                "--hub-tag", "0.1.0", "--storage-class", "nfs-client"]) == 0
    written = yaml.safe_load(out.read_text())
    assert written["hub"]["image"]["name"] == "registry.example.edu/gh-hub"
    assert written["hub"]["config"]["GoldenKubeSpawner"]["storage_class"] == "nfs-client"
    bad = tmp_path / "bad.yaml"
    assert cli(["k8s", "values", "-o", str(bad), "--hub-image", "evil image; rm -rf /", "--home-size", "1PB"]) == 2
    err = capsys.readouterr().err
    assert "--hub-image: got 'evil image; rm -rf /'; allowed:" in err and "--home-size" in err
    assert not bad.exists()


async def test_the_spawner_hands_kubespawner_exactly_the_built_manifests():
    pytest.importorskip("kubespawner")
    from kubernetes_asyncio.client import ApiClient

    from spawner.kube import _Json

    t = next(t for t in TEMPLATES if t.gpus) if any(t.gpus for t in TEMPLATES) else TEMPLATES[0]
    async with ApiClient() as api:
        for manifest, kind in ((k8s.make_pod(t, context(t)), "V1Pod"),
                               (k8s.make_pvc(t, context(t)), "V1PersistentVolumeClaim")):
            model = api.deserialize(_Json(manifest), kind)
            assert type(model).__name__ == kind and api.sanitize_for_serialization(model) == manifest


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: "unused"}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: goldenhub}}]
current-context: none
"""


async def test_the_kube_spawner_starts_only_catalog_templates_with_the_built_manifests(tmp_path, monkeypatch):
    """GoldenKubeSpawner in KubeSpawner's own test mode (no API call is made: the kubeconfig
    names a closed port): the picker offers the catalog, a chosen template becomes exactly
    spawner/k8s.py's pod and PVC, and an unknown template is refused with the valid ones."""
    pytest.importorskip("kubespawner")
    from tornado import web

    from spawner.kube import GoldenKubeSpawner

    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    from kubernetes_asyncio.config import kube_config  # reads $KUBECONFIG at import: set its default

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    spawner = GoldenKubeSpawner(_mock=True, courses_dir=str(REPO / "courses"))
    spawner.user.groups = []
    form = await spawner.get_options_form()
    assert all(t.id in form for t in TEMPLATES)
    t = TEMPLATES[0]
    spawner.user_options = spawner.options_from_form({"template": [t.id]})
    await spawner.load_user_options()
    pod, pvc = await spawner.get_pod_manifest(), spawner.get_pvc_manifest()
    ctx = spawner.server_context()
    settings = spawner.settings()
    sanitize = spawner.api.api_client.sanitize_for_serialization
    assert sanitize(pod) == k8s.make_pod(t, ctx, settings) and sanitize(pvc) == k8s.make_pvc(t, ctx, settings)
    assert spawner.pod_name == pod.metadata.name and spawner.pvc_name == pvc.metadata.name
    spawner.user_options = {"template": "no-such-template"}
    with pytest.raises(web.HTTPError) as e:
        await spawner.load_user_options()
    assert e.value.status_code == 400
    assert e.value.log_message == ("No such environment: no-such-template. Options include: "
                                   + ", ".join(sorted(x.id for x in TEMPLATES)))
