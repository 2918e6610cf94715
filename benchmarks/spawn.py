"""Time-to-notebook under a burst: goldenhub's GoldenSpawner against stock DockerSpawner.

Both sides run in the same invocation, each behind its own real jupyterhub started from
the repo's jupyterhub_config.py, with the same image doing the same work. For each burst
size N, N fresh users ask for a server at the same moment; each user's time runs from its
own POST /hub/api/users/<u>/server to the first 200 from JupyterLab's /api/status through
the proxy. Stock DockerSpawner keeps every timeout at its default: that is the comparison.

    python benchmarks/spawn.py --sizes 1,10,30,100 --spawners golden,stock --json out.json

Measures, per spawner and size: successes, p50/p95/max of the successful times, makespan
(first request until every user is ready or has failed) and CPU-seconds per start (hub +
proxy process tree over the burst, plus each container's CPU up to the moment it answered).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker
import requests

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_ext import contract  # noqa: E402
from tests.helpers import Hub, remove_docker_objects, start_hub, wait_for  # noqa: E402

DEFAULT_IMAGE = "goldenhub/course-intro-python:latest"
TEMPLATE_ID = "bench-cpu"
POLL_INTERVAL = 0.5  # seconds between readiness probes of one user
HUB_CHECK_INTERVAL = 2.0  # seconds between asking the hub whether a spawn has failed
STOP_TIMEOUT = 180  # seconds for all servers of a size to be gone
CLK_TCK = os.sysconf("SC_CLK_TCK")
CGROUP_CPUACCT = (
    Path("/sys/fs/cgroup/cpuacct/docker"),
    Path("/sys/fs/cgroup/cpu,cpuacct/docker"),
    Path("/sys/fs/cgroup/system.slice"),  # cgroup v2 with the systemd driver: docker-<id>.scope
)


# --------------------------------------------------------------------------- the two sides


@dataclass
class Side:
    """One spawner kind under test: how its hub is configured and its containers named."""

    kind: str  # "golden" or "stock"
    prefix: str
    port: int
    extra_config: str
    spawn_options: dict

    def container_name(self, user: str) -> str:
        if self.kind == "golden":
            return contract.container_name(self.prefix, user)
        return f"{self.prefix}-{user}"  # stock name_template; bench usernames need no escaping


def make_golden_side(image: str, prefix: str, port: int) -> Side:
    """The repo's config as shipped: GoldenSpawner with its own timeouts."""
    return Side("golden", f"{prefix}gold", port, "", {"template": TEMPLATE_ID})


def make_stock_side(image: str, prefix: str, port: int) -> Side:
    """The same hub config switched to stock DockerSpawner, every timeout left at its default."""
    name_prefix = f"{prefix}stock"
    extra = textwrap.dedent(f"""\
        c.JupyterHub.spawner_class = "docker"
        c.DockerSpawner.image = {image!r}
        c.DockerSpawner.network_name = "goldenhub"
        c.DockerSpawner.use_internal_ip = True
        c.DockerSpawner.remove = True
        c.DockerSpawner.name_template = {name_prefix + "-{username}"!r}
        """)
    return Side("stock", name_prefix, port, extra, {})


def make_bench_course(courses_dir: Path, image: str) -> Path:
    """The golden side's catalog: one CPU template, no datasets, no courseware."""
    courses_dir.mkdir(parents=True, exist_ok=True)
    (courses_dir / "bench.yaml").write_text(textwrap.dedent(f"""\
        id: bench
        title: Spawn benchmark
        access: everyone
        templates:
          - id: {TEMPLATE_ID}
            title: Benchmark (CPU)
            image: {image}
            gpus: 0
            cpu: 1
            memory: 512M
        """))
    return courses_dir


# --------------------------------------------------------------------------- CPU accounting


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from #3 (state) on


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and int(fields[1]) == pid:  # field #4: ppid
                kids.append(int(entry.name))
    return kids


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children, and its live descendants (e.g. the proxy)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        fields = _proc_stat(p)
        if fields is None:
            continue
        total += sum(int(x) for x in fields[11:15]) / CLK_TCK  # utime, stime, cutime, cstime
        todo.extend(_children(p))
    return total


def cpuacct_dir() -> Path | None:
    for path in CGROUP_CPUACCT:
        if path.is_dir():
            return path
    return None


def container_cpu(client: docker.DockerClient, name: str, cg_root: Path | None) -> float | None:
    """CPU seconds a container has used so far (cgroup v1 cpuacct, or v2 cpu.stat)."""
    if cg_root is None:
        return None
    try:
        cid = client.containers.get(name).id
    except docker.errors.DockerException:
        return None
    for path, parse in (
        (cg_root / cid / "cpuacct.usage", lambda t: int(t) / 1e9),
        (cg_root / f"docker-{cid}.scope" / "cpu.stat", lambda t: int(t.split()[1]) / 1e6),
    ):
        try:
            return parse(path.read_text())
        except (OSError, ValueError, IndexError):
            continue
    return None


# --------------------------------------------------------------------------- one user, one burst


@dataclass
class Outcome:
    user: str
    ok: bool = False
    seconds: float | None = None  # request → first 200 from /api/status (successes only)
    container_cpu_s: float | None = None
    message: str = ""


def _error_message(r: requests.Response) -> str:
    try:
        return f"{r.status_code}: {r.json().get('message', r.text[:200])}"
    except ValueError:
        return f"{r.status_code}: {r.text[:200]}"


def spawn_failure(hub: Hub, session: requests.Session, user: str) -> str | None:
    """None while the hub still has the server pending or running; else why it failed."""
    r = session.get(f"{hub.api}/users/{user}", timeout=30)
    r.raise_for_status()
    if r.json().get("servers", {}).get(""):
        return None
    try:  # the progress stream answers a finished, failed spawn with one 'failed' event
        with session.get(f"{hub.api}/users/{user}/server/progress", stream=True, timeout=10) as p:
            for line in p.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("failed"):
                        return event.get("message", "Spawn failed")
    except (requests.RequestException, ValueError):
        pass
    return "the hub shows neither a pending nor a running server"


def spawn_and_time(hub: Hub, side: Side, user: str, start: threading.Barrier, deadline_s: float,
                   cg_root: Path | None, cancel: threading.Event) -> Outcome:
    """Ask for the user's server once the barrier opens, then probe until ready, failed or late."""
    out = Outcome(user)
    client = docker.from_env()
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    try:
        start.wait(timeout=60)
        t0 = time.monotonic()
        deadline = t0 + deadline_s
        try:
            r = session.post(f"{hub.api}/users/{user}/server", json=side.spawn_options,
                             timeout=max(1.0, deadline - t0))
        except requests.RequestException as e:
            out.message = f"spawn request failed: {e}"
            return out
        post_error = ""
        if r.status_code not in (201, 202):
            out.message = _error_message(r)
            if r.status_code < 500:  # refused (bad option, too many spawns): nothing was started
                return out
            # A 5xx can come while the spawn still runs (e.g. jupyterhub 6.1.1 answers 500 when
            # the container died during slow_spawn_timeout but start() has not given up yet):
            # the hub's own state below decides, and its reason is kept with this answer.
            post_error = out.message
        next_hub_check = time.monotonic() + HUB_CHECK_INTERVAL
        while time.monotonic() < deadline and not cancel.is_set():
            try:
                s = session.get(f"{hub.url}/user/{user}/api/status", allow_redirects=False, timeout=10)
                if s.status_code == 200 and "started" in s.json():
                    out.ok, out.seconds = True, time.monotonic() - t0
                    out.container_cpu_s = container_cpu(client, side.container_name(user), cg_root)
                    return out
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() >= next_hub_check:
                next_hub_check = time.monotonic() + HUB_CHECK_INTERVAL
                try:
                    failure = spawn_failure(hub, session, user)
                except requests.RequestException:
                    failure = None
                if failure:
                    out.message = f"{post_error}; {failure}" if post_error else failure
                    return out
            time.sleep(POLL_INTERVAL)
        late = "cancelled" if cancel.is_set() else f"not ready within the {deadline_s:.0f}s deadline"
        out.message = "; ".join(filter(None, [post_error, late]))
        return out
    finally:
        session.close()
        client.close()


@dataclass
class SizeResult:
    spawner: str
    n: int
    ok: int = 0
    p50: float | None = None
    p95: float | None = None
    max: float | None = None
    makespan: float = 0.0
    hub_cpu_s: float = 0.0
    containers_cpu_s: float = 0.0
    cpu_s_per_start: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def run_burst(hub: Hub, side: Side, n: int, deadline_s: float, cg_root: Path | None) -> SizeResult:
    users = [f"n{n}u{i:03d}" for i in range(n)]
    r = hub.request("POST", "/users", json={"usernames": users})
    if r.status_code not in (201, 409):
        raise RuntimeError(f"creating {n} users failed: {_error_message(r)}")
    barrier = threading.Barrier(n + 1)
    cpu_before = process_tree_cpu(hub.process.pid)
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(spawn_and_time, hub, side, u, barrier, deadline_s, cg_root, cancel)
                   for u in users]
        try:
            barrier.wait(timeout=60)  # every thread is ready: fire all N requests at once
            t_start = time.monotonic()
            # each user's loop is bounded by deadline_s (+ one probe/request); this bounds the lot
            outcomes = [f.result(timeout=max(1.0, t_start + deadline_s + 120 - time.monotonic()))
                        for f in futures]
        except BaseException:  # Ctrl-C or a stuck thread: stop every probe loop, then tear down
            cancel.set()
            barrier.abort()
            raise
    makespan = time.monotonic() - t_start
    hub_cpu = process_tree_cpu(hub.process.pid) - cpu_before
    try:
        stop_all(hub, side, users)
    finally:
        remove_containers(side.prefix)
    times = [o.seconds for o in outcomes if o.ok]
    cont_cpu = sum(o.container_cpu_s or 0.0 for o in outcomes)
    return SizeResult(
        spawner=side.kind, n=n, ok=len(times), p50=percentile(times, 0.5), p95=percentile(times, 0.95),
        max=max(times) if times else None, makespan=makespan, hub_cpu_s=hub_cpu,
        containers_cpu_s=cont_cpu, cpu_s_per_start=(hub_cpu + cont_cpu) / n, outcomes=outcomes,
    )


def stop_all(hub: Hub, side: Side, users: list[str]) -> None:
    for u in users:
        try:
            hub.request("DELETE", f"/users/{u}/server")
        except requests.RequestException:
            pass

    def all_gone() -> bool:
        listing = hub.request("GET", "/users", params={"state": "active"})
        listing.raise_for_status()
        active = {u["name"] for u in listing.json() if u.get("servers")}
        return not (active & set(users))

    try:
        wait_for(all_gone, STOP_TIMEOUT, f"all {len(users)} {side.kind} servers stopping", interval=1)
    except TimeoutError as e:
        print(f"warning: {e}; removing the containers by hand", file=sys.stderr)


def remove_containers(prefix: str) -> None:
    client = docker.from_env()
    try:
        for c in client.containers.list(all=True, filters={"name": f"{prefix}-"}):
            if c.name.startswith(prefix + "-"):
                c.remove(force=True)
    finally:
        client.close()


# --------------------------------------------------------------------------- a whole side


@contextmanager
def running_hub(side: Side, image: str, workdir: Path, log=print) -> Iterator[Hub]:
    """A real jupyterhub for one side; on exit its servers, process and containers are gone."""
    remove_docker_objects(side.prefix)
    courses = make_bench_course(workdir / side.kind / "courses", image)
    log(f"[{side.kind}] starting jupyterhub on 127.0.0.1:{side.port} (prefix {side.prefix})")
    hub = start_hub(workdir / side.kind / "state", courses, side.port, side.prefix,
                    secrets.token_hex(16), extra_config=side.extra_config)
    try:
        yield hub
    except Exception:  # a failed run shows why; Ctrl-C just tears down
        print(f"--- last lines of the {side.kind} hub log ({hub.log_path}) ---\n{hub.log_tail(40)}",
              file=sys.stderr)
        raise
    finally:
        try:
            for user in hub.request("GET", "/users").json():
                if user.get("servers"):
                    hub.request("DELETE", f"/users/{user['name']}/server")
        except (requests.RequestException, ValueError):
            pass
        hub.terminate()
        remove_docker_objects(side.prefix)


def run_benchmark(sides: list[Side], sizes: list[int], image: str, deadline_s: float, workdir: Path,
                  cg_root: Path | None, log=print) -> list[SizeResult]:
    """All hubs stay up for the whole run; each size runs on every side back to back, so
    both sides of a ratio see the machine in the same state."""
    results = []
    with ExitStack() as stack:
        hubs = [stack.enter_context(running_hub(side, image, workdir, log)) for side in sides]
        for n in sizes:
            for side, hub in zip(sides, hubs):
                log(f"[{side.kind}] burst of {n} ...")
                res = run_burst(hub, side, n, deadline_s, cg_root)
                log(f"[{side.kind}] N={n}: {res.ok}/{n} ok")
                for o in res.outcomes:
                    if not o.ok:
                        log(f"[{side.kind}]   {o.user} failed: {o.message}")
                results.append(res)
    return results


# --------------------------------------------------------------------------- report


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def format_report(results: list[SizeResult]) -> str:
    lines = []
    by_size: dict[int, dict[str, SizeResult]] = {}
    for r in results:
        by_size.setdefault(r.n, {})[r.spawner] = r
    header = f"{'spawner':<8} {'N':>4} {'ok/N':>8} {'p50':>7} {'p95':>7} {'max':>7} {'makespan':>9} {'CPU-s/start':>12}"
    for n in sorted(by_size):
        lines += ["", f"== burst of {n} (seconds from request to JupyterLab answering) ==", header]
        for kind in ("golden", "stock"):
            r = by_size[n].get(kind)
            if r:
                lines.append(f"{kind:<8} {n:>4} {f'{r.ok}/{n}':>8} {_s(r.p50):>7} {_s(r.p95):>7} "
                             f"{_s(r.max):>7} {_s(r.makespan):>9} {r.cpu_s_per_start:>12.2f}")
        for kind in ("golden", "stock"):
            r = by_size[n].get(kind)
            if r:
                lines.append(f"{kind}: {r.ok}/{n} ok")
        g, s = by_size[n].get("golden"), by_size[n].get("stock")
        if g and s:
            lines.append(f"ratio golden/stock N={n}: p50 {_ratio(g.p50, s.p50)}  p95 {_ratio(g.p95, s.p95)}"
                         f"  makespan {_ratio(g.makespan, s.makespan)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,10,30,100", help="burst sizes, comma separated (default 1,10,30,100)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help=f"image both sides run (default {DEFAULT_IMAGE})")
    p.add_argument("--spawners", default="golden,stock", help="which sides to run: golden, stock or both")
    p.add_argument("--json", metavar="OUT", help="also write every number (and each user's outcome) here")
    p.add_argument("--deadline", type=float, default=600, help="seconds each burst may take (default 600)")
    p.add_argument("--port", type=int, default=18100,
                   help="golden hub on PORT..PORT+2, stock hub on PORT+100..PORT+102 (default 18100)")
    p.add_argument("--workdir", metavar="DIR",
                   help="keep each hub's state and jupyterhub.log under DIR/<spawner>/ (default: a temp dir)")
    p.add_argument("--prefix", default="b",
                   help="container names start with PREFIXgold- / PREFIXstock- (default 'b')")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        p.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes needs at least one size, each 1 or more")
    args.spawners = [x.strip() for x in args.spawners.split(",") if x.strip()]
    unknown = set(args.spawners) - {"golden", "stock"}
    if unknown or not args.spawners:
        p.error(f"--spawners takes golden and/or stock, got {', '.join(sorted(unknown)) or 'nothing'}")
    return args


def check_image(image: str) -> str | None:
    client = docker.from_env()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return (f"The image {image} is not on this Docker engine. Build it first "
                "(goldenhub images build) or pass another one with --image.")
    finally:
        client.close()
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_image(args.image)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    cg_root = cpuacct_dir()
    if cg_root is None:
        print("warning: no cgroup cpuacct directory found; container CPU is not counted", file=sys.stderr)
    sides = [
        make_golden_side(args.image, args.prefix, args.port) if kind == "golden"
        else make_stock_side(args.image, args.prefix, args.port + 100)
        for kind in args.spawners
    ]
    with tempfile.TemporaryDirectory(prefix="goldenhub-bench-") as tmp:
        workdir = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        results = run_benchmark(sides, args.sizes, args.image, args.deadline, workdir, cg_root)
    report = format_report(results)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"image": args.image, "sizes": args.sizes, "results": [asdict(r) for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
