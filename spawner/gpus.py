"""GPU inventory and allocation: each server gets specific devices, exclusively.

The inventory comes from NVML (nvidia-ml-py) where a driver is present, or from a
declaration in config. One allocator per hub process holds who has which device; after a
hub restart it is rebuilt from what runs (the goldenhub.gpus labels of this hub's running
containers: rebuild_from_containers) and from spawner state, so a busy GPU is
never handed out twice, not even one of a start that was in flight when the hub died.
Its methods are synchronous: called from the hub's event loop they cannot interleave.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from hub_ext import contract

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GPU:
    id: str  # what Docker's device_ids and NVIDIA_VISIBLE_DEVICES receive: "0", "GPU-<uuid>", "MIG-<uuid>"
    name: str = ""
    memory_mib: int = 0


def discover_gpus() -> list[GPU]:
    """The host's GPUs through NVML, MIG slices instead of their parent where MIG is on;
    [] when there is no NVML library or driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        log.info("No NVIDIA driver found (%s); GPU inventory is empty unless declared", e)
        return []
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            found.extend(_mig_slices(pynvml, handle) or [_describe(pynvml, handle, str(i))])
        return found
    finally:
        pynvml.nvmlShutdown()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(pynvml, handle, device_id: str) -> GPU:
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20
    return GPU(device_id, _text(pynvml.nvmlDeviceGetName(handle)), memory)


def _mig_slices(pynvml, handle) -> list[GPU]:
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError:
        return []  # GPU without MIG support
    if current != pynvml.NVML_DEVICE_MIG_ENABLE:
        return []
    slices = []
    for j in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
        except pynvml.NVMLError:
            continue
        slices.append(_describe(pynvml, mig, _text(pynvml.nvmlDeviceGetUUID(mig))))
    return slices


def parse_declared(items: list) -> list[GPU]:
    """Config form: ["0", "1"] or [{"id": "GPU-…", "name": "A100", "memory_mib": 40960}]."""
    gpus = []
    for i, item in enumerate(items):
        if isinstance(item, (str, int)) and str(item).strip():
            gpus.append(GPU(str(item).strip()))
        elif isinstance(item, dict) and str(item.get("id", "")).strip():
            gpus.append(GPU(str(item["id"]).strip(), str(item.get("name", "")), int(item.get("memory_mib", 0))))
        else:
            raise ValueError(f"gpu_inventory[{i}]: got {item!r}; allowed: a device index or UUID such as "
                             "'0' or 'GPU-8f3…', or a mapping with an 'id'")
    ids = [g.id for g in gpus]
    if len(set(ids)) != len(ids):
        raise ValueError(f"gpu_inventory lists a device twice: {ids}")
    return gpus


class NoFreeGPU(Exception):
    def __init__(self, wanted: int, total: int, free: int, waiting: int = 0):
        self.wanted, self.total, self.free = wanted, total, free
        self.waiting = waiting  # other students refused recently who have no GPU yet
        super().__init__(f"wanted {wanted} GPU(s), {free} of {total} free")


WAITING_WINDOW = 600  # seconds a refused student counts as waiting for a GPU


class GPUAllocator:
    """Who holds which GPU. An owner is one server ("user/server")."""

    def __init__(self, gpus: list[GPU], clock=time.monotonic):
        self.gpus = list(gpus)
        self._clock = clock
        self._refused: dict[str, float] = {}  # owner → when it was last refused
        self._exclusive: dict[str, str] = {}  # gpu id → owner
        self._shared: dict[str, set[str]] = {}  # gpu id → owners sharing it
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return len(self.gpus)

    def free_count(self, shared: bool = False) -> int:
        with self._lock:
            return len(self._candidates(shared))

    def _candidates(self, shared: bool) -> list[str]:
        ids = [g.id for g in self.gpus if g.id not in self._exclusive]
        if shared:  # least shared first
            return sorted(ids, key=lambda i: len(self._shared.get(i, ())))
        return [i for i in ids if not self._shared.get(i)]

    def held_by(self, owner: str) -> list[str]:
        with self._lock:
            return self._held_by(owner)

    def _held_by(self, owner: str) -> list[str]:
        return [g.id for g in self.gpus
                if self._exclusive.get(g.id) == owner or owner in self._shared.get(g.id, ())]

    def allocate(self, owner: str, count: int, shared: bool = False) -> list[str]:
        """Give `owner` `count` GPUs (the ones it already holds, if any); NoFreeGPU otherwise."""
        with self._lock:
            held = self._held_by(owner)
            if held:
                return held
            if count == 0:
                return []
            candidates = self._candidates(shared)
            now = self._clock()
            if len(candidates) < count:
                self._refused[owner] = now
                waiting = sum(1 for o, t in self._refused.items() if o != owner and now - t < WAITING_WINDOW)
                raise NoFreeGPU(count, self.total, len(candidates), waiting)
            self._refused.pop(owner, None)
            chosen = candidates[:count]
            self._take(owner, chosen, shared)
            return chosen

    def reserve(self, owner: str, ids: list[str], shared: bool = False) -> list[str]:
        """Take back exactly `ids` for `owner` (hub restart). Returns ids that clash or are unknown."""
        with self._lock:
            known = {g.id for g in self.gpus}
            problems = [i for i in ids if i not in known
                        or self._exclusive.get(i, owner) != owner
                        or (not shared and self._shared.get(i, set()) - {owner})]
            self._take(owner, [i for i in ids if i not in problems], shared)
            return problems

    def _take(self, owner: str, ids: list[str], shared: bool) -> None:
        for i in ids:
            if shared:
                self._shared.setdefault(i, set()).add(owner)
            else:
                self._exclusive[i] = owner

    def release(self, owner: str) -> list[str]:
        with self._lock:
            released = self._held_by(owner)
            for i in released:
                if self._exclusive.get(i) == owner:
                    del self._exclusive[i]
                self._shared.get(i, set()).discard(owner)
            return released

    def usage(self) -> dict[str, list[str]]:
        """GPU id → owners, for pages and logs."""
        with self._lock:
            return {g.id: ([self._exclusive[g.id]] if g.id in self._exclusive else sorted(self._shared.get(g.id, ())))
                    for g in self.gpus}


@dataclass(frozen=True)
class LabelledContainer:
    """One entry of Docker's container list, as far as GPU holdings go."""

    id: str
    name: str
    user: str
    server: str
    gpu_ids: tuple[str, ...]
    running: bool
    template: str

    @property
    def owner(self) -> str:
        return f"{self.user}/{self.server}"

    @classmethod
    def from_listing(cls, entry: dict) -> LabelledContainer | None:
        """From docker's APIClient.containers() entry; None without goldenhub labels."""
        labels = entry.get("Labels") or {}
        if contract.LABEL_USER not in labels:
            return None
        return cls(entry["Id"], (entry.get("Names") or ["/"])[0].lstrip("/"), labels[contract.LABEL_USER],
                   labels.get(contract.LABEL_SERVER, ""),
                   tuple(i for i in labels.get(contract.LABEL_GPUS, "").split(",") if i),
                   entry.get("State") == "running", labels.get(contract.LABEL_TEMPLATE, ""))


def rebuild_from_containers(allocator: GPUAllocator, listing: list[dict], expected_name, has_server,
                            shares) -> tuple[list[LabelledContainer], list[LabelledContainer]]:
    """Take back the GPUs that containers hold, after a hub restart. Rules:
    - a container is this hub's only when its name is `expected_name(user, server)` for its
      labelled user and server (other hubs' containers are left alone);
    - one whose server `has_server(user, server)` says the hub has no record of (False: a
      start the hub forgot) is returned for removal, and its GPUs stay free;
    - one that runs keeps its GPUs for its owner (`shares(template)`: a gpu_sharing template).
    Returns (kept: reserved, with any clash logged; orphans: to remove)."""
    kept, orphans = [], []
    for entry in listing:
        c = LabelledContainer.from_listing(entry)
        if c is None or c.name != expected_name(c.user, c.server):
            continue
        if has_server(c.user, c.server) is False:
            orphans.append(c)
        elif c.running and c.gpu_ids:
            clash = allocator.reserve(c.owner, list(c.gpu_ids), shares(c.template))
            if clash:
                log.error("GPUs %s of running container %s are unknown or held twice", clash, c.name)
            kept.append(c)
    return kept, orphans


# A container in one of these states holds its GPUs.
LIVE_STATES = frozenset({"created", "running", "restarting", "paused"})


def free_published_gpus(client, state_dir) -> tuple[str, ...]:
    """For processes beside the hub (the service: publish smoke tests, scheduled sessions):
    the GPU inventory the hub published (start_events.read_inventory) minus the GPUs live
    containers hold (their LABEL_GPUS); () when the hub published none or none is free.
    `client` is a docker.APIClient. A start between this look and its use may take the same
    GPU: callers treat the answer as advice, never as an allocation."""
    from pathlib import Path

    from spawner.start_events import read_inventory

    inventory = read_inventory(Path(state_dir)) or []
    held: set[str] = set()
    for c in client.containers(all=True, filters={"label": contract.LABEL_GPUS}):
        if c.get("State") in LIVE_STATES:
            held.update(g for g in (c.get("Labels") or {}).get(contract.LABEL_GPUS, "").split(",") if g)
    return tuple(g for g in inventory if g not in held)

