"""GPUs are exclusive and explicit: allocation (pure), the Docker device requests of a
created GPU container (real Docker, not started: this host has no GPU), and what a
student sees from a real hub with a declared inventory."""

import asyncio

import docker
import pytest

from hub_ext.catalog.model import load_catalog
from hub_ext.paths import REPO_ROOT
from spawner import container
from spawner.gpus import GPUAllocator, NoFreeGPU, discover_gpus, parse_declared


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
    gpus = allocator(4)

    async def ask(owner):
        await asyncio.sleep(0)
        try:
            return gpus.allocate(owner, 1)
        except NoFreeGPU:
            return None

    async def burst():
        return await asyncio.gather(*(ask(f"s{i}/") for i in range(10)))

    got = [g for g in asyncio.run(burst()) if g]
    assert len(got) == 4 and len({tuple(g) for g in got}) == 4


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


def test_no_driver_means_empty_inventory():
    # This host has no NVIDIA driver: discovery must say "none", not fail.
    assert discover_gpus() == []


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

    from spawner import GoldenSpawner

    GoldenSpawner._allocators.clear()  # a freshly started hub process
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
    assert e.value.log_message == (
        "All 2 GPUs for Deep Learning with PyTorch are in use (0 free, 1 needed). "
        "Try again later or start the CPU environment: Python (CPU).")
    GoldenSpawner._allocators.clear()


def test_gpu_templates_say_so_when_the_host_has_none():
    from tornado import web

    from spawner import GoldenSpawner
    from spawner.form import make_options_form

    GoldenSpawner._allocators.clear()
    spawner = make_spawner("dan", [])
    templates = load_catalog(REPO_ROOT / "courses").templates
    assert spawner.gpu_availability(templates["deep-learning-gpu"]) == "This server has no GPUs."
    with pytest.raises(web.HTTPError, match="needs a GPU and this server has none"):
        spawner.take_gpus(templates["deep-learning-gpu"])
    html = make_options_form(list(templates.values()), None, {"deep-learning-gpu": (0, 0)},
                             {"deep-learning-gpu": "This server has no GPUs."})
    assert 'value="deep-learning-gpu" disabled' in html and "This server has no GPUs." in html
    assert 'value="intro-python-cpu" checked' in html  # the startable one is preselected
    GoldenSpawner._allocators.clear()


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

    from spawner import GoldenSpawner

    GoldenSpawner._allocators.clear()
    template = load_catalog(REPO_ROOT / "courses").templates["deep-learning-gpu"]
    make_spawner("ann", ["GPU-a"]).take_gpus(template)
    for name in ("bob", "cat"):
        with pytest.raises(web.HTTPError):
            make_spawner(name, ["GPU-a"]).take_gpus(template)
    with pytest.raises(web.HTTPError) as e:
        make_spawner("dan", ["GPU-a"]).take_gpus(template)
    assert "The only GPU for Deep Learning with PyTorch is in use (0 free, 1 needed); " \
           "2 other students are waiting too. Try again later or start the CPU environment" in e.value.log_message
    GoldenSpawner._allocators.clear()
