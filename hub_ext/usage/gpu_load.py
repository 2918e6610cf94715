"""How busy each GPU is: the one boundary between goldenhub and NVML's utilisation counters.

Rules:
- Read on the host (the hub's machine), never from inside a student's container: a student
  cannot fake being busy or idle.
- Devices are named as the allocator names them (spawner/gpus.py): "0" (index), "GPU-<uuid>",
  "MIG-<uuid>". A reading is a snapshot: the percent of NVML's last sample period (1/6 s to
  1 s depending on the GPU) in which a kernel ran, the memory in use, the compute processes.
- A MIG slice has no utilisation counter in NVML (NOT_SUPPORTED): its utilisation is None,
  and callers decide on memory and processes instead; a device NVML cannot find is absent.
- No NVML library or driver: every reading is empty, never an exception.
- Tests and machines without a GPU feed readings through a JSON file (FedReader):
  {"0": {"utilisation": 93, "memory_used_mib": 2048, "processes": 1}}, at most 64 KiB, every
  value checked.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_FED_BYTES = 64 * 1024


@dataclass(frozen=True)
class GPULoad:
    id: str
    utilisation: int | None  # percent, 0-100; None: NVML has no counter (MIG slice)
    memory_used_mib: int | None
    processes: int | None  # compute processes on the device

    def busy(self, min_utilisation: int) -> bool:
        """Running kernels at least `min_utilisation` percent of the time. A MIG slice (no
        counter) counts as busy while a compute process holds it."""
        if self.utilisation is None:
            return bool(self.processes)
        return self.utilisation >= min_utilisation


class NVMLReader:
    """Readings through NVML (nvidia-ml-py), one NVML session for the reader's life.
    Blocking: call it from a thread, never on an event loop."""

    def __init__(self):
        self._lock = threading.Lock()
        self._nvml = None

    def _open(self):
        if self._nvml is None:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        return self._nvml

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                try:
                    self._nvml.nvmlShutdown()
                finally:
                    self._nvml = None

    def read(self, ids: list[str] | None = None) -> dict[str, GPULoad]:
        """Readings of `ids` (all whole GPUs by index when None); {} without NVML."""
        with self._lock:
            try:
                nvml = self._open()
            except Exception as e:  # ImportError, NVMLError_LibraryNotFound, _DriverNotLoaded
                log.debug("No GPU readings: %s", e)
                return {}
            wanted = ids if ids is not None else [str(i) for i in range(nvml.nvmlDeviceGetCount())]
            found = {}
            for device_id in wanted:
                try:
                    found[device_id] = _reading(nvml, device_id)
                except Exception as e:  # NVMLError: gone, lost, invalid id
                    log.warning("No reading for GPU %s: %s", device_id, e)
            return found


def _handle(nvml, device_id: str):
    if device_id.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(device_id))
    return nvml.nvmlDeviceGetHandleByUUID(device_id)


def _reading(nvml, device_id: str) -> GPULoad:
    handle = _handle(nvml, device_id)
    try:
        utilisation = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except nvml.NVMLError_NotSupported:
        utilisation = None
    memory = int(nvml.nvmlDeviceGetMemoryInfo(handle).used) // 2**20
    try:
        processes = len(nvml.nvmlDeviceGetComputeRunningProcesses(handle))
    except nvml.NVMLError_NotSupported:
        processes = None
    return GPULoad(device_id, utilisation, memory, processes)


class FedReader:
    """Readings from a JSON file that a test (or an operator's exporter) writes."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def read(self, ids: list[str] | None = None) -> dict[str, GPULoad]:
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_FED_BYTES + 1)
        except FileNotFoundError:
            return {}
        if len(raw) > MAX_FED_BYTES:
            raise ValueError(f"{self.path} holds more than {MAX_FED_BYTES} bytes of GPU readings")
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError(f"{self.path} must hold a JSON object: device id -> reading")
        found = {}
        for device_id, item in data.items():
            if ids is not None and device_id not in ids:
                continue
            found[device_id] = parse_fed(device_id, item)
        return found


def parse_fed(device_id: str, item) -> GPULoad:
    if not isinstance(item, dict):
        raise ValueError(f"the reading of GPU {device_id!r} must be an object such as {{\"utilisation\": 90}}")

    def number(name: str, high: int) -> int | None:
        value = item.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
            raise ValueError(f"GPU {device_id!r}: {name} is {value!r}; allowed: a whole number from 0 to {high}")
        return value

    return GPULoad(device_id, number("utilisation", 100), number("memory_used_mib", 2**24), number("processes", 4096))
