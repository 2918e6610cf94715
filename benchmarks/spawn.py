"""Time-to-notebook under a burst, measured on what students really start.

Three sides run in one invocation, each behind its own real jupyterhub started from the
repo's jupyterhub_config.py, all on the same image:
  stripped  GoldenSpawner with a bare benchmark template: no courseware, no dataset (the
            platform's branding goes into every GoldenSpawner start); `golden` is an alias
  real      GoldenSpawner with the repo's courses/ catalog, starting intro-python's CPU
            template exactly as the hub serves it: courseware merged from the hub's mirror of
            the sample git server, the iris dataset read-only, the platform's branding
  stock     stock DockerSpawner, every timeout at its default
For each burst size N, N fresh users ask for a server at the same moment; each user's time
runs from its own POST /hub/api/users/<u>/server to the first 200 from JupyterLab's
/api/status through the proxy.

    python benchmarks/spawn.py --sizes 1,10,30,100 --spawners stripped,real,stock --json out.json

Measures, per side and size: successes, p50/p95/max of the successful times, makespan
(first request until every user is ready or has failed), CPU-seconds per start (hub process
tree over the burst, plus each container's cgroup CPU up to the moment it answered), and the
p50 of each phase of a start (benchmarks/phases.py says where each phase's marks come from).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker
import requests

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import machine  # noqa: E402
from benchmarks.measure import (check_image, container_facts, cpuacct_dir, process_tree_cpu,  # noqa: E402
                                start_event_marks)
from benchmarks.phases import (branded_marks, make_json, percentile, phases_from_marks, report_text,  # noqa: E402
                               summarize_phases)
from hub_ext import contract, samples  # noqa: E402
from spawner.network import ensure_network  # noqa: E402
from tests.helpers import Hub, copy_courses, remove_docker_objects, start_hub, tear_down, wait_for  # noqa: E402

DEFAULT_IMAGE = "goldenhub/course-intro-python:latest"
TEMPLATE_ID = "bench-cpu"
REAL_TEMPLATE_ID = "intro-python-cpu"  # courses/intro-python.yaml: courseware, iris, branding
POLL_INTERVAL = 0.5  # seconds between readiness probes of one user
HUB_CHECK_INTERVAL = 2.0  # seconds between asking the hub whether a spawn has failed
STOP_TIMEOUT = 180  # seconds for all servers of a size to be gone
SIDE_OFFSETS = {"stripped": 0, "real": 100, "stock": 200}  # each hub uses PORT+offset .. +3


# --------------------------------------------------------------------------- the three sides


@dataclass
class Side:
    """One side under test: how its hub is configured, its catalog made, its containers named."""

    kind: str  # "stripped", "real" or "stock"
    prefix: str
    port: int
    extra_config: str
    spawn_options: dict
    make_courses: Callable[[Path], Path] | None = None  # the side's catalog (None: none needed)

    @property
    def golden(self) -> bool:
        return self.kind != "stock"

    def container_name(self, user: str) -> str:
        if self.golden:
            return contract.container_name(self.prefix, user)
        return f"{self.prefix}-{user}"  # stock name_template; bench usernames need no escaping


def make_side(kind: str, image: str, prefix: str, port: int) -> Side:
    port += SIDE_OFFSETS[kind]
    if kind == "stripped":  # the repo's config as shipped, a bare template
        return Side(kind, f"{prefix}str", port, "", {"template": TEMPLATE_ID},
                    lambda d: make_bench_course(d, image))
    if kind == "real":  # the repo's config and catalog as shipped: what a student starts
        return Side(kind, f"{prefix}real", port, "", {"template": REAL_TEMPLATE_ID}, make_real_courses)
    name_prefix = f"{prefix}stock"  # the same hub config switched to stock DockerSpawner
    extra = textwrap.dedent(f"""\
        c.JupyterHub.spawner_class = "docker"
        c.DockerSpawner.image = {image!r}
        c.DockerSpawner.network_name = "goldenhub"
        c.DockerSpawner.use_internal_ip = True
        c.DockerSpawner.remove = True
        c.DockerSpawner.name_template = {name_prefix + "-{username}"!r}
        """)
    return Side(kind, name_prefix, port, extra, {}, lambda d: make_bench_course(d, image))


def make_bench_course(courses_dir: Path, image: str) -> Path:
    """The stripped side's catalog: one CPU template, no datasets, no courseware."""
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


def make_real_courses(courses_dir: Path) -> Path:
    """The repo's courses/ catalog, with the sample git server and datasets it names up
    (as `goldenhub up` prepares them; nothing is done where they already are)."""
    samples.ensure_courseware_repos()
    samples.ensure_datasets()
    client = docker.from_env()
    try:
        gateway = ensure_network(client, "goldenhub")
    finally:
        client.close()
    samples.ensure_git_daemon(["127.0.0.1", gateway])
    return copy_courses(courses_dir)


# --------------------------------------------------------------------------- one user, one burst


@dataclass
class Outcome:
    user: str
    ok: bool = False
    seconds: float | None = None  # request → first 200 from /api/status (successes only)
    container_cpu_s: float | None = None
    message: str = ""
    image_id: str = ""  # the image the container ran (successes only)
    marks: dict[str, float] = field(default_factory=dict)  # benchmarks/phases.py
    phases: dict[str, float | None] = field(default_factory=dict)


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
        out.marks["t0"] = time.time()
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
                    out.marks["ready"] = time.time()
                    facts, out.container_cpu_s, out.image_id = container_facts(
                        client, side.container_name(user), cg_root)
                    out.marks.update(facts)
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
    """One side at one size; asdict() is the JSON contract benchmarks/report.py reads."""

    spawner: str
    n: int
    ok: int = 0
    p50: float | None = None
    p95: float | None = None
    max: float | None = None
    makespan: float = 0.0
    cpu_s_per_start: float = 0.0
    phases: dict[str, dict[str, float | None]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)


def add_hub_marks(hub: Hub, side: Side, outcomes: list[Outcome]) -> None:
    """The hub-side marks of each start: start events and the hub log's branding line."""
    if not side.golden:
        return
    events = start_event_marks(hub.state_dir, [o.user for o in outcomes])
    try:
        branded = branded_marks(hub.log_path.read_text(errors="replace"))
    except OSError:
        branded = {}
    for o in outcomes:
        o.marks.update(events.get(o.user, {}))
        if side.container_name(o.user) in branded:
            o.marks["branded"] = branded[side.container_name(o.user)]


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
    add_hub_marks(hub, side, outcomes)
    try:
        stop_all(hub, side, users)
    finally:
        remove_containers(side.prefix)
    times = [o.seconds for o in outcomes if o.ok]
    for o in outcomes:
        o.phases = phases_from_marks(o.marks) if o.ok else {}
    cont_cpu = [o.container_cpu_s for o in outcomes if o.ok and o.container_cpu_s is not None]
    cont_cpu_total = sum(cont_cpu)
    return SizeResult(
        spawner=side.kind, n=n, ok=len(times), p50=percentile(times, 0.5), p95=percentile(times, 0.95),
        max=max(times) if times else None, makespan=makespan, cpu_s_per_start=(hub_cpu + cont_cpu_total) / n,
        phases=summarize_phases([o.phases for o in outcomes if o.ok], hub_cpu / n,
                                cont_cpu_total / len(cont_cpu) if cont_cpu else None),
        outcomes=outcomes,
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
def running_hub(side: Side, workdir: Path, log=print) -> Iterator[Hub]:
    """A real jupyterhub for one side; on exit its servers, process and containers are gone."""
    remove_docker_objects(side.prefix)
    courses_dir = workdir / side.kind / "courses"
    courses = side.make_courses(courses_dir) if side.make_courses else make_bench_course(courses_dir, DEFAULT_IMAGE)
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
        tear_down(hub, side.prefix, tolerate_unanswered=True)


def run_benchmark(sides: list[Side], sizes: list[int], deadline_s: float, workdir: Path,
                  cg_root: Path | None, log=print) -> list[SizeResult]:
    """All hubs stay up for the whole run; each size runs on every side back to back, so
    all sides of a ratio see the machine in the same state."""
    results = []
    with ExitStack() as stack:
        hubs = [stack.enter_context(running_hub(side, workdir, log)) for side in sides]
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


def format_report(machine_info: dict, image: str, results: list[SizeResult]) -> str:
    return report_text(machine_info, image, [asdict(r) for r in results])


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,10,30,100", help="burst sizes, comma separated (default 1,10,30,100)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help=f"image every side runs (default {DEFAULT_IMAGE})")
    p.add_argument("--spawners", default="stripped,real,stock",
                   help="sides to run, comma separated: stripped (alias golden), real, stock (default all three)")
    p.add_argument("--json", metavar="OUT", help="also write every number (and each user's outcome) here")
    p.add_argument("--deadline", type=float, default=600, help="seconds each burst may take (default 600)")
    p.add_argument("--port", type=int, default=18100,
                   help="stripped hub on PORT..PORT+3, real on PORT+100.., stock on PORT+200.. (default 18100)")
    p.add_argument("--workdir", metavar="DIR",
                   help="keep each hub's state and jupyterhub.log under DIR/<side>/ (default: a temp dir)")
    p.add_argument("--prefix", default="b",
                   help="container names start with PREFIXstr- / PREFIXreal- / PREFIXstock- (default 'b')")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        p.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes needs at least one size, each 1 or more")
    names = [x.strip() for x in args.spawners.split(",") if x.strip()]
    unknown = set(names) - {"golden", *SIDE_OFFSETS}
    if unknown or not names:
        p.error(f"--spawners takes stripped (or golden), real and/or stock, got "
                f"{', '.join(sorted(unknown)) or 'nothing'}")
    args.spawners = list(dict.fromkeys("stripped" if x == "golden" else x for x in names))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_image(args.image)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    cg_root = cpuacct_dir()
    if cg_root is None:
        print("warning: no cgroup cpuacct directory found; container CPU is not counted", file=sys.stderr)
    sides = [make_side(kind, args.image, args.prefix, args.port) for kind in args.spawners]
    machine_info = machine.describe()
    with tempfile.TemporaryDirectory(prefix="goldenhub-bench-") as tmp:
        workdir = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        results = run_benchmark(sides, args.sizes, args.deadline, workdir, cg_root)
    print(format_report(machine_info, args.image, results))
    if args.json:
        doc = make_json(machine_info, args.image, args.sizes, [asdict(r) for r in results])
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
