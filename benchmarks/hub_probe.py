"""The measuring side of benchmarks/hub_load.py: a probe of the hub API that runs in its own
process, the statistics of its samples per time window, a container's memory from its cgroup,
a process's RSS, and the event loop's slow-callback lines read back from the hub log.

The probe is a separate process (multiprocessing, "spawn" start method) so that the burst
driver's threads cannot delay it: a slow answer is the hub's, not the client's. It writes
one line per request, `<monotonic seconds> <endpoint> <milliseconds> <HTTP status or 0>`,
to a file; CLOCK_MONOTONIC is the same clock in every process of the machine, so the driver's
timestamps and the probe's compare directly.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.phases import percentile

PROBE_INTERVAL = 0.05  # seconds between the starts of two probe ticks (the 50 ms)
PROBE_TIMEOUT = 10.0  # seconds one probe request may take; a timeout counts as a failed sample
API_ROOT = "api"  # GET /hub/api/: the cheapest authenticated call (no database query)
API_USER = "user"  # GET /hub/api/users/<probe user>: a model read from the hub's database


# --------------------------------------------------------------------------- the probe process


def probe_loop(hub_api: str, token: str, probe_user: str, out_path: str, stop, interval: float) -> None:
    """Every `interval` seconds GET /hub/api/ then GET /hub/api/users/<probe_user>, until `stop`
    is set. Ticks are on a fixed schedule; a tick that runs late is not made up for with a burst."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    urls = {API_ROOT: f"{hub_api}/", API_USER: f"{hub_api}/users/{probe_user}"}
    next_tick = time.monotonic()
    with open(out_path, "a", buffering=1) as out:
        while not stop.is_set():
            for endpoint, url in urls.items():
                t0 = time.monotonic()
                try:
                    status = session.get(url, timeout=PROBE_TIMEOUT).status_code
                except requests.RequestException:
                    status = 0
                out.write(f"{t0:.6f} {endpoint} {(time.monotonic() - t0) * 1000:.3f} {status}\n")
            next_tick += interval
            now = time.monotonic()
            if next_tick < now:
                next_tick = now
            stop.wait(next_tick - now)
    session.close()


class Probe:
    """The probe process for the duration of a `with` block."""

    def __init__(self, hub_api: str, token: str, probe_user: str, out_path: Path,
                 interval: float = PROBE_INTERVAL):
        self.out_path = out_path
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._process = ctx.Process(target=probe_loop, daemon=True, name="hub-api-probe",
                                    args=(hub_api, token, probe_user, str(out_path), self._stop, interval))

    def __enter__(self) -> "Probe":
        self.out_path.write_text("")
        self._process.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._process.join(PROBE_TIMEOUT * 2 + 5)
        if self._process.is_alive():
            self._process.kill()

    def samples(self) -> list["Sample"]:
        return read_samples(self.out_path.read_text())


# --------------------------------------------------------------------------- samples and windows


@dataclass(frozen=True)
class Sample:
    t: float  # monotonic seconds when the request was sent
    endpoint: str
    ms: float
    status: int  # 0: no answer (refused, reset, timed out)


def read_samples(text: str) -> list[Sample]:
    """The probe's lines; a torn last line (the probe killed mid-write) is skipped."""
    samples = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        try:
            samples.append(Sample(float(parts[0]), parts[1], float(parts[2]), int(parts[3])))
        except ValueError:
            continue
    return samples




def window_stats(samples: list[Sample], start: float, end: float, endpoint: str) -> dict:
    """p50/p99/max latency in ms of one endpoint's samples sent in [start, end). A request
    that got no answer or a 5xx counts with the time it took (a hub that hangs is not fast)
    and is also counted in `failed`."""
    chosen = [s for s in samples if s.endpoint == endpoint and start <= s.t < end]
    ms = [s.ms for s in chosen]
    r = lambda x: None if x is None else round(x, 1)  # noqa: E731
    return {"p50": r(percentile(ms, 0.5)), "p99": r(percentile(ms, 0.99)), "max": r(max(ms) if ms else None),
            "samples": len(chosen), "failed": sum(1 for s in chosen if s.status == 0 or s.status >= 500)}


def first_answer_after(samples: list[Sample], t: float, endpoint: str = API_ROOT) -> float | None:
    """When the first request sent at or after `t` got a 200 (its send time plus its latency)."""
    for s in sorted(samples, key=lambda s: s.t):
        if s.t >= t and s.endpoint == endpoint and s.status == 200:
            return s.t + s.ms / 1000
    return None


# --------------------------------------------------------------------------- memory


CGROUP_MEMORY_V1 = Path("/sys/fs/cgroup/memory/docker")
CGROUP_V2_DIRS = (Path("/sys/fs/cgroup/system.slice"), Path("/sys/fs/cgroup/docker"))


def memory_v1(usage_text: str, stat_text: str) -> int:
    """cgroup v1: memory.usage_in_bytes minus the page cache (memory.stat total_cache)."""
    stat = dict(line.split()[:2] for line in stat_text.splitlines() if len(line.split()) >= 2)
    cache = int(stat.get("total_cache", stat.get("cache", "0")))
    return max(0, int(usage_text.strip()) - cache)


def container_memory(container_id: str) -> tuple[int, str] | None:
    """(bytes, how it was measured) for a running container, or None when no cgroup is found."""
    v1 = CGROUP_MEMORY_V1 / container_id
    if v1.is_dir():
        return (memory_v1((v1 / "memory.usage_in_bytes").read_text(), (v1 / "memory.stat").read_text()),
                "cgroup v1 memory.usage_in_bytes - total_cache")
    for root in CGROUP_V2_DIRS:
        for d in (root / f"docker-{container_id}.scope", root / container_id):
            if (d / "memory.current").is_file():
                return int((d / "memory.current").read_text()), "cgroup v2 memory.current"
    return None


def process_rss(pid: int) -> int | None:
    """Resident set size in bytes (VmRSS of /proc/<pid>/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# --------------------------------------------------------------------------- slow callbacks

# asyncio's debug mode logs "Executing <Handle ...> took 0.123 seconds" for every callback
# or task step that held the loop longer than loop.slow_callback_duration.
SLOW_LINE = re.compile(r"Executing (?P<what>.{1,2000}?) took (?P<s>\d+(?:\.\d+)?) seconds")
WHAT_NOISE = re.compile(r" at 0x[0-9a-f]+|\bcreated at \S+|<Task pending name='[^']*'|"
                        r"wait_for=<[^>]*>|cb=\[[^\]]*\]")


def slow_callbacks(log_text: str, top: int = 10) -> list[dict]:
    """The hub log's slow-callback lines grouped by what ran (addresses and task names left
    out), the ones that held the loop longest in total first."""
    groups: dict[str, dict] = {}
    for m in SLOW_LINE.finditer(log_text):
        what = " ".join(WHAT_NOISE.sub("", m.group("what")).split())[:300]
        g = groups.setdefault(what, {"what": what, "count": 0, "total_s": 0.0, "max_s": 0.0})
        s = float(m.group("s"))
        g["count"] += 1
        g["total_s"] = round(g["total_s"] + s, 3)
        g["max_s"] = max(g["max_s"], s)
    return sorted(groups.values(), key=lambda g: -g["total_s"])[:top]


def loop_debug_config(slow_ms: float) -> str:
    """Extra hub config: asyncio debug mode on the hub's running loop, logging to the hub's
    stderr every callback that holds the loop longer than `slow_ms`. Debug mode itself costs
    time, so latencies of such a run are for finding causes, not for the table."""
    return (
        "import asyncio as _asyncio, logging as _logging, sys as _sys\n"
        "_loop = _asyncio.get_event_loop()\n"
        "_loop.set_debug(True)\n"
        f"_loop.slow_callback_duration = {slow_ms / 1000:.4f}\n"
        "_h = _logging.StreamHandler(_sys.stderr)\n"
        "_h.setFormatter(_logging.Formatter('[asyncio %(asctime)s] %(message)s'))\n"
        "_logging.getLogger('asyncio').addHandler(_h)\n"
        "_logging.getLogger('asyncio').setLevel(_logging.WARNING)\n"
    )


def gc_log_config(slow_ms: float) -> str:
    """Extra hub config: log to the hub's stderr every garbage collection that holds the
    process longer than `slow_ms` (its generation and the objects it looked at)."""
    return (
        "import gc as _gc, sys as _sys, time as _time\n"
        "_gc_began = [0.0]\n"
        "def _gc_timer(phase, info):\n"
        "    if phase == 'start':\n"
        "        _gc_began[0] = _time.perf_counter()\n"
        "        return\n"
        "    took = (_time.perf_counter() - _gc_began[0]) * 1000\n"
        f"    if took > {slow_ms:.1f}:\n"
        "        print(f'[gc] generation {info[\"generation\"]} took {took:.0f} ms, collected '\n"
        "              f'{info[\"collected\"]}, tracked objects {len(_gc.get_objects())}', file=_sys.stderr)\n"
        "_gc.callbacks.append(_gc_timer)\n"
    )


def loop_profile_config(out_path: str) -> str:
    """Extra hub config: cProfile on the hub's main thread (the event loop's) from start to
    exit, written to `out_path` for pstats. Work in executor threads is not in it: what is
    there ran on the loop and kept every other request waiting."""
    return (
        "import atexit as _atexit, cProfile as _cProfile\n"
        "_prof = _cProfile.Profile()\n"
        "_prof.enable()\n"
        f"_atexit.register(lambda: (_prof.disable(), _prof.dump_stats({out_path!r})))\n"
    )


# The benchmark's own API token comes from config (tests.helpers.start_hub adds it as a
# service's api_token). JupyterHub hashes such "user-provided" tokens 16384 times at every
# request unless told they are random; its own generated tokens (the goldenhub service's,
# students' OAuth tokens) it hashes once. The benchmark's token is secrets.token_hex(16), so
# trusting it saves the hub's loop ~1.3 ms a request (the probe alone: 40 requests a second).
TRUST_BENCH_TOKEN = "c.JupyterHub.trust_user_provided_tokens = True\n"
