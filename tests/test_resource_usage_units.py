"""Resource use in view, the pure parts: the limits the spawner hands jupyter-resource-usage
(the template's, whatever the hub's environment says) and goldenhub_usage's GPU reading
(images/base/goldenhub_usage/gpus.py) driven with a stand-in of the pynvml module.

The stand-in proves the code path that reads NVML and its rules (only the student's devices,
None for an unsupported reading, NVML never loaded on a CPU template); it is no proof of
real GPU numbers: that check needs a session with a GPU machine (README "Resource use")."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from hub_ext.catalog.model import Template
from hub_ext.paths import REPO_ROOT
from spawner import container

BASE = REPO_ROOT / "images" / "base"


def _load_gpus():
    spec = importlib.util.spec_from_file_location("goldenhub_usage_gpus", BASE / "goldenhub_usage" / "gpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpus = _load_gpus()

TEMPLATE = Template(id="t-cpu", course="c", title="T", description="", image="goldenhub/course-c:1",
                    gpus=0, cpu=1.5, memory=512 * 2**20, shm_size=64 * 2**20)
CTX = container.ServerContext(
    user="ana", server="", container_name="gh-ana", home_volume="gh-home-ana--c", network="goldenhub",
    # what JupyterHub's get_env would say if someone had set Spawner.mem_limit: never what the student sees
    hub_env={"JUPYTERHUB_API_TOKEN": "t", "MEM_LIMIT": "8589934592", "CPU_LIMIT": "8.0"},
    command=["jupyterhub-singleuser"],
)


@pytest.mark.parametrize("memory, cpu, mem_env, cpu_env", [
    (512 * 2**20, 1.5, "536870912", "1.5"),
    (2**30, 1.0, "1073741824", "1"),
    (4 * 2**30, 0.5, "4294967296", "0.5"),
])
def test_the_student_sees_the_templates_memory_in_bytes_and_its_cpus(memory, cpu, mem_env, cpu_env):
    env = container.make_create_args(replace(TEMPLATE, memory=memory, cpu=cpu), CTX)["environment"]
    assert (env["MEM_LIMIT"], env["CPU_LIMIT"]) == (mem_env, cpu_env)


def test_the_displayed_memory_limit_is_the_one_docker_enforces():
    args = container.make_create_args(TEMPLATE, CTX)
    assert int(args["environment"]["MEM_LIMIT"]) == args["host_config"]["mem_limit"]


class NVMLError(Exception):
    pass


def fake_nvml(devices: list[dict], init_error: Exception | None = None):
    """A stand-in of pynvml with DEVICES as NVML inside the container would list them."""
    calls = []

    def utilisation(handle):
        if devices[handle].get("util") is None:
            raise NVMLError("Not Supported")
        return SimpleNamespace(gpu=devices[handle]["util"], memory=0)

    def init():
        calls.append("init")
        if init_error:
            raise init_error

    return SimpleNamespace(
        NVMLError=NVMLError, calls=calls, nvmlInit=init,
        nvmlDeviceGetCount=lambda: len(devices),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUUID=lambda h: devices[h]["uuid"],
        nvmlDeviceGetName=lambda h: devices[h]["name"].encode(),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=devices[h]["used"], total=devices[h]["total"],
                                                          free=devices[h]["total"] - devices[h]["used"]),
        nvmlDeviceGetUtilizationRates=utilisation,
    )


A100 = {"uuid": "GPU-aaaa", "name": "NVIDIA A100", "used": 3 * 2**30, "total": 40 * 2**30, "util": 37}
L4 = {"uuid": "GPU-bbbb", "name": "NVIDIA L4", "used": 2**30, "total": 24 * 2**30, "util": 5}


@pytest.mark.parametrize("value, given", [
    ("void", ()), ("", ()), ("none", ()), (" VOID ", ()),
    ("0", ("0",)), ("GPU-aaaa,GPU-bbbb", ("GPU-aaaa", "GPU-bbbb")),
])
def test_the_devices_given_come_from_what_the_spawner_set(value, given):
    assert gpus.given_devices({"NVIDIA_VISIBLE_DEVICES": value}) == given
    assert gpus.given_devices({}) == ()


def test_a_gpu_template_reports_its_gpus_memory_and_utilisation():
    nvml = fake_nvml([A100])
    reader = gpus.GpuReader({"NVIDIA_VISIBLE_DEVICES": "GPU-aaaa"}, load=lambda: nvml)
    assert reader.read() == {"gpus": [{"index": 0, "name": "NVIDIA A100", "memory_used": 3 * 2**30,
                                       "memory_total": 40 * 2**30, "utilization": 37}]}
    reader.read()
    assert nvml.calls == ["init"]  # NVML is initialised once, not at every poll


def test_a_cpu_template_never_loads_nvml_and_reports_no_gpu():
    def load():
        raise AssertionError("NVML loaded on a CPU template")

    assert gpus.GpuReader({"NVIDIA_VISIBLE_DEVICES": "void"}, load=load).read() == {"gpus": []}


def test_only_the_uuids_given_are_reported_even_if_nvml_lists_more():
    reader = gpus.GpuReader({"NVIDIA_VISIBLE_DEVICES": "GPU-bbbb"}, load=lambda: fake_nvml([A100, L4]))
    assert [g["name"] for g in reader.read()["gpus"]] == ["NVIDIA L4"]


def test_a_container_seeing_more_devices_than_its_indices_shows_none_rather_than_a_neighbours():
    reader = gpus.GpuReader({"NVIDIA_VISIBLE_DEVICES": "1"}, load=lambda: fake_nvml([A100, L4]))
    assert reader.read() == {"gpus": []}
    two = gpus.GpuReader({"NVIDIA_VISIBLE_DEVICES": "0,1"}, load=lambda: fake_nvml([A100, L4]))
    assert [g["index"] for g in two.read()["gpus"]] == [0, 1]


def test_a_reading_the_device_does_not_support_is_none_not_a_number():
    reader = gpus.GpuReader({"NVIDIA_VISIBLE_DEVICES": "MIG-cccc"},
                            load=lambda: fake_nvml([{**A100, "uuid": "MIG-cccc", "util": None}]))
    (gpu,) = reader.read()["gpus"]
    assert gpu["utilization"] is None and gpu["memory_used"] == 3 * 2**30


def test_nvml_that_fails_reports_no_gpu_and_is_not_retried_at_every_poll(caplog):
    nvml = fake_nvml([A100], init_error=NVMLError("Driver Not Loaded"))
    reader = gpus.GpuReader({"NVIDIA_VISIBLE_DEVICES": "GPU-aaaa"}, load=lambda: nvml)
    assert reader.read() == reader.read() == {"gpus": []}
    assert nvml.calls == ["init"]
    assert "Driver Not Loaded" in caplog.text


def test_the_images_server_config_turns_on_cpu_and_the_gpu_extension_and_keeps_the_light_start():
    config = json.loads((BASE / "jupyter_server_config.json").read_text())
    assert config["ServerApp"]["jpserver_extensions"] == {"jupyter_lsp": False, "notebook_shim": False,
                                                          "goldenhub_usage": True}
    display = config["ResourceUseDisplay"]
    assert display["track_cpu_percent"] is True
    # never the host's CPUs and memory in a student's panel, never a psutil walk every second
    assert display["show_host_usage"] is False and display["enable_prometheus_metrics"] is False
    assert "mem_limit" not in display and "cpu_limit" not in display  # MEM_LIMIT/CPU_LIMIT: the template's


@pytest.mark.parametrize("cpu_limit, shown", [("0.5", 50.0), ("2", 200.0), ("", 0.0), ("lots", 0.0), ("-1", 0.0)])
def test_the_cpu_limit_is_compared_in_the_unit_of_the_cpu_reading(monkeypatch, cpu_limit, shown):
    from traitlets.config import Config

    monkeypatch.setenv("CPU_LIMIT", cpu_limit)
    c = Config()
    exec((BASE / "jupyter_server_config.py").read_text(), {"c": c})
    assert c.ResourceUseDisplay.cpu_limit == shown


def test_the_labextension_names_a_load_file_that_exists():
    ext = BASE / "labextension"
    package = json.loads((ext / "package.json").read_text())
    assert package["name"] == "@goldenhub/gpu-usage"
    assert (ext / package["jupyterlab"]["_build"]["load"]).is_file()
