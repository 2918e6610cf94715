"""Device check for the GPU-load boundary (hub_ext/usage/gpu_load.py), run on a machine with
an NVIDIA GPU: NVML's utilisation reads high while a CUDA kernel spins and about 0 after.

The workload needs no CUDA toolkit or Python package: a small PTX kernel (a dependent chain
of FMAs) loaded through the driver API (libcuda) with ctypes. Prints every sample and a
summary; exit 1 when the readings do not show the load.

    python benchmarks/gpu_load_check.py [--seconds 12]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hub_ext.usage.gpu_load import NVMLReader  # noqa: E402

PTX = b"""
.version 7.0
.target sm_70
.address_size 64
.visible .entry spin(.param .u64 out, .param .u32 n)
{
  .reg .u32 %r<4>;
  .reg .f32 %f<2>;
  .reg .pred %p;
  .reg .u64 %rd<2>;
  ld.param.u32 %r1, [n];
  mov.u32 %r2, 0;
  mov.f32 %f1, 0f3F800000;
LOOP:
  fma.rn.f32 %f1, %f1, 0f3F7FFFFF, 0f3A83126F;
  add.u32 %r2, %r2, 1;
  setp.lt.u32 %p, %r2, %r1;
  @%p bra LOOP;
  ld.param.u64 %rd1, [out];
  st.global.f32 [%rd1], %f1;
  ret;
}
\0"""


def check(rc: int, what: str) -> None:
    if rc != 0:
        raise RuntimeError(f"{what} failed with CUDA error {rc}")


def spin(seconds: float, started: threading.Event) -> float:
    """Launch the kernel on GPU 0 back to back for `seconds`; returns kernels per second."""
    cuda = ctypes.CDLL("libcuda.so.1")
    check(cuda.cuInit(0), "cuInit")
    dev, ctx, mod, fn, out = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint64()
    check(cuda.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
    check(cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev), "cuCtxCreate")
    check(cuda.cuModuleLoadData(ctypes.byref(mod), PTX), "cuModuleLoadData")
    check(cuda.cuModuleGetFunction(ctypes.byref(fn), mod, b"spin"), "cuModuleGetFunction")
    check(cuda.cuMemAlloc_v2(ctypes.byref(out), 4), "cuMemAlloc")
    n = ctypes.c_uint32(2_000_000)
    params = (ctypes.c_void_p * 2)(ctypes.cast(ctypes.byref(out), ctypes.c_void_p),
                                   ctypes.cast(ctypes.byref(n), ctypes.c_void_p))
    launches, start = 0, time.monotonic()
    started.set()
    while time.monotonic() - start < seconds:
        check(cuda.cuLaunchKernel(fn, 2048, 1, 1, 256, 1, 1, 0, None, params, None), "cuLaunchKernel")
        check(cuda.cuCtxSynchronize(), "cuCtxSynchronize")
        launches += 1
    rate = launches / (time.monotonic() - start)
    cuda.cuMemFree_v2(out)
    cuda.cuCtxDestroy_v2(ctx)
    return rate


def sample(reader: NVMLReader, seconds: float, label: str) -> list[int]:
    values = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        load = reader.read(["0"]).get("0")
        print(f"{label:6} t={time.monotonic():.1f} {load}", flush=True)
        if load and load.utilisation is not None:
            values.append(load.utilisation)
        time.sleep(0.5)
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()
    reader = NVMLReader()
    found = reader.read()
    print("GPUs:", found)
    if not found:
        print("FAIL: NVML gives no readings on this machine")
        return 1
    before = sample(reader, 3, "idle")
    started, result = threading.Event(), {}
    worker = threading.Thread(target=lambda: result.update(rate=spin(args.seconds, started)))
    worker.start()
    started.wait(60)
    time.sleep(2)  # NVML's counter covers its last sample period
    during = sample(reader, args.seconds - 4, "busy")
    worker.join()
    time.sleep(2)
    after = sample(reader, 5, "after")
    reader.close()
    summary = {name: (min(v), statistics.median(v), max(v)) if v else None
               for name, v in (("idle", before), ("busy", during), ("after", after))}
    print(f"kernels/s: {result.get('rate', 0):.1f}; utilisation % (min, median, max): {summary}")
    ok = bool(during) and statistics.median(during) >= 50 and bool(after) and statistics.median(after) <= 5
    print("OK" if ok else "FAIL: the readings do not follow the load")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
