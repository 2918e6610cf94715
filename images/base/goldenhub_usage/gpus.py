"""The GPUs this server was given, read through NVML inside the student's container.

Rules:
- A server was given GPUs when NVIDIA_VISIBLE_DEVICES (set by the spawner from the template's
  allocation) names devices; "void", "none" or nothing means none, and then NVML is never
  loaded: a CPU template reports no GPU and logs nothing about one.
- Only the student's own GPUs: inside the container NVML sees only the devices Docker gave it.
  As a second guard, when the spawner named devices by UUID ("GPU-..."/"MIG-...") only those
  UUIDs are reported; when it named them by index (renumbered inside the container), a
  container that sees more devices than it was given reports none rather than a neighbour's.
- A reading that a device does not support (e.g. utilisation of a MIG slice) is None, never
  a made-up number. An NVML failure reports no GPU and is logged once, not at every poll.

No Jupyter imports here: tests drive read_gpus with a stand-in of the pynvml module.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping

NO_DEVICES = ("", "void", "none")

log = logging.getLogger(__name__)


def given_devices(env: Mapping[str, str]) -> tuple[str, ...]:
    """The device ids the spawner gave this server (empty on a CPU template)."""
    value = env.get("NVIDIA_VISIBLE_DEVICES", "").strip()
    if value.lower() in NO_DEVICES:
        return ()
    return tuple(d.strip() for d in value.split(",") if d.strip())


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _optional(nvml, read: Callable[[], int]) -> int | None:
    try:
        return int(read())
    except nvml.NVMLError:
        return None


def read_gpus(nvml, given: tuple[str, ...]) -> list[dict]:
    """One entry per visible device this server was given: index, name, memory_used and
    memory_total (bytes), utilization (percent of the last sample period) or None."""
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    by_uuid = all(d.startswith(("GPU-", "MIG-")) for d in given)
    if not by_uuid and len(handles) > len(given):
        log.warning("NVML sees %d devices but this server was given %d (%s): no GPU is shown",
                    len(handles), len(given), ",".join(given))
        return []
    gpus = []
    for index, handle in enumerate(handles):
        if by_uuid and _text(nvml.nvmlDeviceGetUUID(handle)) not in given:
            continue
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        gpus.append({
            "index": index,
            "name": _text(nvml.nvmlDeviceGetName(handle)),
            "memory_used": int(memory.used),
            "memory_total": int(memory.total),
            "utilization": _optional(nvml, lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h).gpu),
        })
    return gpus


class GpuReader:
    """NVML initialised once, at the first read of a server that was given GPUs. Reads are
    blocking (call them off the event loop); a lock keeps the one-time init single."""

    def __init__(self, env: Mapping[str, str], load: Callable[[], object] = lambda: importlib.import_module("pynvml")):
        self.given = given_devices(env)
        self._load = load
        self._nvml = None
        self._failed = False
        self._lock = threading.Lock()

    def read(self) -> dict:
        if not self.given or self._failed:
            return {"gpus": []}
        with self._lock:
            try:
                if self._nvml is None:
                    nvml = self._load()
                    nvml.nvmlInit()
                    self._nvml = nvml
                return {"gpus": read_gpus(self._nvml, self.given)}
            except Exception as e:  # ImportError, NVMLError_LibraryNotFound, _DriverNotLoaded, ...
                self._failed = True
                log.warning("GPU usage is not shown: NVML could not be read (%s)", e)
                return {"gpus": []}
