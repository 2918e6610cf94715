"""GPUs are exclusive and explicit: allocation (pure, and from many threads at once),
discovery through NVML (a fake pynvml module at the library boundary: no library, no
driver, two GPUs, MIG slices), the Docker device requests of a created GPU container (real
Docker, not started: this host has no GPU), and what a student sees from a real hub with a
declared inventory."""

import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from hub_ext.catalog.model import load_catalog
from hub_ext.paths import REPO_ROOT
from spawner import container
from spawner.gpus import GPU, GPUAllocator, NoFreeGPU, discover_gpus, parse_declared


def allocator(n=2):
    return GPUAllocator(parse_declared([str(i) for i in range(n)]))


def test_three_students_two_gpus_third_is_refused():
    gpus = allocator(2)
    assert gpus.allocate("ann/", 1) == ["0"]
    assert gpus.allocate("bob/", 1) == ["1"]
    with pytest.raises(NoFreeGPU) as e:
        gpus.allocate("cat/", 1)
    assert (e.value.total, e.value.free) == (2, 0)
    gpus.release("ann/")
    assert gpus.allocate("cat/", 1) == ["0"]


def test_allocation_is_idempotent_and_release_frees_only_own_devices():
    gpus = allocator(4)
    assert gpus.allocate("ann/", 2) == ["0", "1"]
    assert gpus.allocate("ann/", 2) == ["0", "1"]  # a retry does not take more
    assert gpus.allocate("bob/", 2) == ["2", "3"]
    assert gpus.release("ann/") == ["0", "1"]
    assert gpus.usage() == {"0": [], "1": [], "2": ["bob/"], "3": ["bob/"]}


def test_concurrent_requests_never_share_a_gpu():
    """Ten starts ask for one GPU each at the same moment, from ten threads (the hub's
    event loop and the threads its spawners use). The allocator's clock, read between
    choosing free devices and taking them, yields to the other threads: without the lock
    two students would be handed the same GPU."""
    def yielding_clock():
        time.sleep(0.001)  # let the other threads run inside allocate()
        return time.monotonic()

    gpus = GPUAllocator(parse_declared([str(i) for i in range(4)]), clock=yielding_clock)
    students = [f"s{i}/" for i in range(10)]
    together = threading.Barrier(len(students))

    def ask(owner):
        together.wait()
        try:
            return gpus.allocate(owner, 1)
        except NoFreeGPU:
            return None

    with ThreadPoolExecutor(len(students)) as pool:
        got = [g for g in pool.map(ask, students) if g]
    handed_out = [device for g in got for device in g]
    print(f"{len(got)} of {len(students)} students got a GPU: {sorted(handed_out)}")
    assert sorted(handed_out) == ["0", "1", "2", "3"]  # each device once, none twice
    assert {d: len(owners) for d, owners in gpus.usage().items()} == {"0": 1, "1": 1, "2": 1, "3": 1}


def test_restart_reconstruction_keeps_busy_gpus_busy():
    before = allocator(2)
    held = before.allocate("ann/", 1)
    after = allocator(2)  # a restarted hub, rebuilt from spawner state
    assert after.reserve("ann/", held) == []
    assert after.allocate("bob/", 1) == ["1"]
    with pytest.raises(NoFreeGPU):
        after.allocate("cat/", 1)
    assert after.reserve("dan/", ["1"]) == ["1"]  # a clash is reported, not handed out twice
    assert after.reserve("eve/", ["7"]) == ["7"]  # unknown device


def test_sharing_only_between_templates_that_allow_it():
    gpus = allocator(1)
    assert gpus.allocate("ann/", 1, shared=True) == ["0"]
    assert gpus.allocate("bob/", 1, shared=True) == ["0"]
    with pytest.raises(NoFreeGPU):
        gpus.allocate("cat/", 1)  # exclusive wants a GPU nobody uses


def test_declared_inventory_errors_say_what_is_allowed():
    with pytest.raises(ValueError, match="gpu_inventory\\[1\\]: got None; allowed: a device index or UUID"):
        parse_declared(["0", None])
    with pytest.raises(ValueError, match="lists a device twice"):
        parse_declared(["0", "0"])


# --- discovery through NVML: a fake pynvml module stands at the library boundary ------------


class FakeNVML(types.ModuleType):
    """The part of pynvml (nvidia-ml-py) that discovery uses, over a described machine:
    `devices` are (name, memory MiB, MIG slices as (uuid, name, memory MiB) or None when the
    GPU has no MIG support, MIG enabled)."""

    NVML_DEVICE_MIG_ENABLE = 1

    class NVMLError(Exception):
        pass

    def __init__(self, devices=(), init_error: Exception | None = None):
        super().__init__("pynvml")
        self.devices, self.init_error, self.shut_down = list(devices), init_error, False

    def nvmlInit(self):
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self):
        self.shut_down = True

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("gpu", i)

    def _device(self, handle):
        kind, i, *j = handle
        name, memory, slices, _enabled = self.devices[i]
        return (name, memory) if kind == "gpu" else slices[j[0]][1:]

    def nvmlDeviceGetName(self, handle):
        return self._device(handle)[0].encode()  # older pynvml answers bytes

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(total=self._device(handle)[1] * 2**20)

    def nvmlDeviceGetMigMode(self, handle):
        slices, enabled = self.devices[handle[1]][2:]
        if slices is None:
            raise self.NVMLError("Not Supported")
        return (1 if enabled else 0, 0)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle):
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle, j):
        if j >= len(self.devices[handle[1]][2]):
            raise self.NVMLError("Not Found")  # an empty MIG position
        return ("mig", handle[1], j)

    def nvmlDeviceGetUUID(self, handle):
        kind, i, j = handle
        return self.devices[i][2][j][0]


def test_without_the_nvml_library_the_inventory_is_empty(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    assert discover_gpus() == []


def test_without_a_driver_the_inventory_is_empty_not_an_error(monkeypatch):
    nvml = FakeNVML(init_error=FakeNVML.NVMLError("Driver Not Loaded"))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert discover_gpus() == []


def test_two_gpus_are_found_by_index_with_name_and_memory(monkeypatch):
    nvml = FakeNVML([("NVIDIA A100-SXM4-40GB", 40960, None, False), ("NVIDIA A100-SXM4-40GB", 40960, [], False)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert discover_gpus() == [GPU("0", "NVIDIA A100-SXM4-40GB", 40960), GPU("1", "NVIDIA A100-SXM4-40GB", 40960)]
    assert nvml.shut_down


def test_a_gpu_in_mig_mode_is_offered_as_its_slices_not_whole(monkeypatch):
    slices = [("MIG-1111", "NVIDIA A100 MIG 3g.20gb", 19968), ("MIG-2222", "NVIDIA A100 MIG 3g.20gb", 19968)]
    nvml = FakeNVML([("NVIDIA A100-SXM4-40GB", 40960, slices, True), ("NVIDIA T4", 15360, None, False)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert discover_gpus() == [GPU("MIG-1111", "NVIDIA A100 MIG 3g.20gb", 19968),
                               GPU("MIG-2222", "NVIDIA A100 MIG 3g.20gb", 19968), GPU("1", "NVIDIA T4", 15360)]


def test_a_mig_capable_gpu_with_mig_off_is_offered_whole(monkeypatch):
    nvml = FakeNVML([("NVIDIA H100", 81559, [("MIG-3333", "x", 1)], False)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert discover_gpus() == [GPU("0", "NVIDIA H100", 81559)]


@pytest.mark.integration  # creates (never starts) containers in a real Docker engine
def test_created_gpu_container_requests_exactly_its_devices():
    template = load_catalog(REPO_ROOT / "courses").templates["deep-learning-gpu"]
    gpus = allocator(2)
    client = docker.from_env()
    created = []
    try:
        for student in ("ann", "bob"):
            ids = gpus.allocate(f"{student}/", template.gpus)
            ctx = container.ServerContext(
                user=student, server="", container_name=f"ghtest-gpu-{student}", home_volume=f"ghtest-gpu-home-{student}",
                network="bridge", hub_env={}, command=["jupyterhub-singleuser"], gpu_ids=tuple(ids))
            args = container.make_create_args(template, ctx)
            args["host_config"] = client.api.create_host_config(**args["host_config"])
            created.append(client.api.create_container(**args)["Id"])
        seen = []
        for cid in created:
            info = client.api.inspect_container(cid)
            requests = info["HostConfig"]["DeviceRequests"]
            assert len(requests) == 1 and requests[0]["Driver"] == "nvidia"
            assert requests[0]["Capabilities"] == [["gpu"]]
            env = dict(e.split("=", 1) for e in info["Config"]["Env"])
            assert env["NVIDIA_VISIBLE_DEVICES"] == ",".join(requests[0]["DeviceIDs"]) != "all"
            seen.append(tuple(requests[0]["DeviceIDs"]))
        assert seen == [("0",), ("1",)]
        with pytest.raises(NoFreeGPU):
            gpus.allocate("cat/", template.gpus)
    finally:
        for cid in created:
            client.api.remove_container(cid, force=True, v=True)
        for v in client.volumes.list(filters={"name": "ghtest-gpu-home-"}):
            v.remove(force=True)


def test_cpu_template_container_sees_no_gpu():
    template = load_catalog(REPO_ROOT / "courses").templates["intro-python-cpu"]
    ctx = container.ServerContext(user="a", server="", container_name="x", home_volume="v", network="bridge",
                                  hub_env={"NVIDIA_VISIBLE_DEVICES": "all"}, command=["x"])
    args = container.make_create_args(template, ctx)
    assert args["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "device_requests" not in args["host_config"]


@pytest.mark.integration
def test_gpu_start_failure_is_clean_and_releases_gpus(hub):
    """The hub declares 2 GPUs; this host has no driver, so starting fails. Three tries in
    a row each get the driver message (never 'all in use'), and no container is left."""
    for attempt in range(3):
        r = hub.start("gpu-student", {"template": "deep-learning-gpu"})
        message = r.json().get("message", "") if r.status_code >= 400 else hub.wait_spawn_failure("gpu-student")
        assert "The GPU driver on this server could not give your environment its GPU" in message, message
        assert hub.server("gpu-student") is None
        names = [c.name for c in docker.from_env().containers.list(all=True)]
        assert not any("gpu-2dstudent" in n.lower() for n in names)  # escapes are upper-case: -2D


@pytest.mark.integration
def test_options_form_shows_free_gpus(hub):
    html = hub.options_form("form-student")
    assert "2 of 2 GPUs free" in html
    assert 'id="template-intro-python-cpu"' in html


def make_spawner(user: str, inventory: list[str]):
    """A real GoldenSpawner outside a hub; the user stand-in carries only what it reads."""
    from types import SimpleNamespace

    from spawner import GoldenSpawner

    return GoldenSpawner(user=SimpleNamespace(name=user, groups=[]), gpu_inventory=inventory,
                         courses_dir=str(REPO_ROOT / "courses"))


def test_hub_restart_rebuilds_allocations_from_state_and_refuses_with_a_clear_message():
    from tornado import web

    inventory = ["GPU-a", "GPU-b"]
    ann = make_spawner("ann", inventory)
    ann.load_state({"object_id": "c0ffee", "template": "deep-learning-gpu", "gpus": ["GPU-a"]})
    assert ann.gpu_ids == ["GPU-a"] and ann.get_state()["gpus"] == ["GPU-a"]

    template = load_catalog(REPO_ROOT / "courses").templates["deep-learning-gpu"]
    bob = make_spawner("bob", inventory)
    bob.take_gpus(template)
    assert bob.gpu_ids == ["GPU-b"]  # never GPU-a, which ann's running server holds

    cat = make_spawner("cat", inventory)
    with pytest.raises(web.HTTPError) as e:
        cat.take_gpus(template)
    assert e.value.status_code == 503
    # what the hub shows (jupyterhub_message); no CPU environment of another course is offered
    assert e.value.jupyterhub_message == (
        "All 2 GPUs for Deep Learning with PyTorch are in use (0 free, 1 needed). Try again in a few minutes.")


def test_gpu_templates_say_so_when_the_host_has_none():
    from tornado import web

    from spawner.form import make_options_form

    spawner = make_spawner("dan", [])
    templates = load_catalog(REPO_ROOT / "courses").templates
    assert spawner.gpu_availability(templates["deep-learning-gpu"]) == "This server has no GPU."
    with pytest.raises(web.HTTPError) as e:
        spawner.take_gpus(templates["deep-learning-gpu"])
    assert e.value.jupyterhub_message == (
        "This server has no GPU, so PyTorch (1 GPU) of Deep Learning with PyTorch cannot start here. "
        "Ask your instructor which environment to use instead.")
    html = make_options_form(list(templates.values()), None, {"deep-learning-gpu": (0, 0)},
                             {"deep-learning-gpu": "This server has no GPUs."})
    assert 'value="deep-learning-gpu" disabled' in html and "This server has no GPUs." in html
    assert 'value="intro-python-cpu" checked' in html  # the startable one is preselected


def test_refused_students_are_counted_as_waiting_for_ten_minutes():
    now = [0.0]
    gpus = GPUAllocator(parse_declared(["0"]), clock=lambda: now[0])
    gpus.allocate("ann/", 1)
    for owner, waiting in (("bob/", 0), ("cat/", 1), ("bob/", 1), ("dan/", 2)):
        with pytest.raises(NoFreeGPU) as e:
            gpus.allocate(owner, 1)
        assert e.value.waiting == waiting, owner
    now[0] = 601  # ten minutes later nobody counts as waiting any more
    with pytest.raises(NoFreeGPU) as e:
        gpus.allocate("eve/", 1)
    assert e.value.waiting == 0
    gpus.release("ann/")
    assert gpus.allocate("bob/", 1) == ["0"]  # bob got one: no longer waiting
    with pytest.raises(NoFreeGPU) as e:
        gpus.allocate("fay/", 1)
    assert e.value.waiting == 1  # eve


def test_the_refusal_message_says_how_many_are_waiting():
    from tornado import web

    template = load_catalog(REPO_ROOT / "courses").templates["deep-learning-gpu"]
    make_spawner("ann", ["GPU-a"]).take_gpus(template)
    for name in ("bob", "cat"):
        with pytest.raises(web.HTTPError):
            make_spawner(name, ["GPU-a"]).take_gpus(template)
    with pytest.raises(web.HTTPError) as e:
        make_spawner("dan", ["GPU-a"]).take_gpus(template)
    assert e.value.jupyterhub_message == ("The only GPU for Deep Learning with PyTorch is in use (0 free, 1 needed). "
                                          "2 other students are waiting too. Try again in a few minutes.")
