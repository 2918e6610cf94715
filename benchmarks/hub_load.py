"""The hub under load: API latency during a burst of starts, idle memory per server, and a
hub restart with many running servers.

One real jupyterhub from the repo's jupyterhub_config.py with the sample courses (as `goldenhub
up` prepares them: courseware git server, datasets). In one run:

1. A probe in a separate process sends GET /hub/api/ and GET /hub/api/users/<probe user>
   every 50 ms, before, during and after N students press Start at once on the REAL
   intro-python-cpu template (courseware, iris dataset, branding). Latency p50/p99/max per
   window: before (the quiet seconds before the burst), burst (first request until every
   student's JupyterLab answers), after (the idle seconds after).
2. After the servers have been idle, each container's memory from its cgroup (v1:
   memory.usage_in_bytes minus total_cache; v2: memory.current) and the hub process's RSS.
3. The burst's servers are stopped and R servers are started on a stripped template (same
   image, no courseware, dataset or branding); the hub gets SIGTERM (cleanup_servers is False
   in hubconfig, so servers keep running), is started again, and the time until its API answers
   and until every server answers /api/status through the proxy is measured, with a check that
   every container is the same one, still running, never restarted.

    python benchmarks/hub_load.py --students 30 --restart-servers 100 --json out.json

The probe and the driver use the benchmark's own random token from config, marked trusted
(`trust_user_provided_tokens`): otherwise the hub hashes it 16384 times at every request, a
cost (~1.3 ms of the hub's loop a request) that no goldenhub client has: the hub generates
its services' tokens. `--hashed-token` measures the old way, as the issue's baseline.

`--slow-callback-ms 50` turns on asyncio debug mode in the hub and lists what held its event
loop longer than that (a diagnostic run: debug mode slows the hub, do not report its latencies);
`--profile-loop FILE` writes a cProfile of the loop's thread; `--gc-log-ms 20` lists the hub's
garbage collections longer than that.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import machine  # noqa: E402
from benchmarks.hub_probe import (API_ROOT, API_USER, Probe, container_memory, first_answer_after,  # noqa: E402
                                  loop_debug_config, loop_profile_config, percentile, process_rss,
                                  slow_callbacks, gc_log_config, TRUST_BENCH_TOKEN, window_stats)
from hub_ext import contract, samples  # noqa: E402
from spawner.network import ensure_network  # noqa: E402
from tests.helpers import Hub, copy_courses, remove_docker_objects, start_hub, tear_down, wait_for  # noqa: E402

REAL_TEMPLATE = "intro-python-cpu"
STRIPPED_TEMPLATE = "bh-stripped"
IMAGE = "goldenhub/course-intro-python:latest"
PROBE_USER = "probe"
TARGET = {"p99": 100.0, "max": 500.0}  # ms, the target for the burst window
BASELINE = {"p50": 25.0, "p99": 188.0, "max": 936.0}  # ms, the measurement
READY_TIMEOUT = 600  # seconds for R restarted servers to answer through the proxy
MiB = 1024 * 1024


def stripped_course(courses: Path, image: str = IMAGE) -> None:
    """A course with the real template's image and limits, without courseware, dataset or branding."""
    (courses / "bh-restart.yaml").write_text(textwrap.dedent(f"""\
        id: bh-restart
        title: Hub restart benchmark
        access: everyone
        templates:
          - id: {STRIPPED_TEMPLATE}
            title: Stripped (CPU)
            image: {image}
            gpus: 0
            cpu: 1
            memory: 1G
        """))


@dataclass
class Outcome:
    user: str
    ok: bool = False
    message: str = ""


def start_and_wait(hub: Hub, template: str, user: str, barrier: threading.Barrier, deadline_s: float,
                   cancel: threading.Event) -> Outcome:
    """Press Start once the barrier opens, then probe JupyterLab through the proxy until it
    answers, the hub has no server for the user any more (the start failed), or the deadline."""
    out = Outcome(user)
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    try:
        barrier.wait(timeout=60)
        deadline = time.monotonic() + deadline_s
        try:
            r = session.post(f"{hub.api}/users/{user}/server", json={"template": template}, timeout=deadline_s)
        except requests.RequestException as e:
            out.message = f"start request failed: {e}"
            return out
        if r.status_code not in (201, 202):
            out.message = f"start refused: {r.status_code} {r.text[:200]}"
            if r.status_code < 500:
                return out
        next_check = time.monotonic() + 2
        while time.monotonic() < deadline and not cancel.is_set():
            if answers(hub, session, user):
                out.ok = True
                return out
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 2
                try:
                    if not session.get(f"{hub.api}/users/{user}", timeout=30).json().get("servers", {}).get(""):
                        out.message += " the hub has no server for the user: the start failed (see the hub log)"
                        return out
                except (requests.RequestException, ValueError):
                    pass
            time.sleep(0.5)
        out.message += " cancelled" if cancel.is_set() else f" not ready within {deadline_s:.0f}s"
        return out
    finally:
        session.close()


def stop_all(hub: Hub, users: list[str]) -> None:
    for u in users:
        hub.request("DELETE", f"/users/{u}/server")

    def all_gone() -> bool:
        active = hub.request("GET", "/users", params={"state": "active"}).json()
        return not {u["name"] for u in active if u.get("servers")} & set(users)

    wait_for(all_gone, 300, f"{len(users)} servers stopping", interval=1)


def burst(hub: Hub, template: str, users: list[str], deadline_s: float) -> tuple[float, float, list[Outcome]]:
    """Every user's start request at once; (first request time, last ready time, outcomes)."""
    barrier = threading.Barrier(len(users) + 1)
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        futures = [pool.submit(start_and_wait, hub, template, u, barrier, deadline_s, cancel) for u in users]
        try:
            barrier.wait(timeout=60)
            t0 = time.monotonic()
            outcomes = [f.result(timeout=max(1.0, t0 + deadline_s + 120 - time.monotonic())) for f in futures]
        except BaseException:
            cancel.set()
            barrier.abort()
            raise
    return t0, time.monotonic(), outcomes


def create_users(hub: Hub, users: list[str]) -> None:
    """Before any window opens: creating 30 accounts is not part of a class start."""
    r = hub.request("POST", "/users", json={"usernames": users})
    if r.status_code not in (201, 409):
        raise RuntimeError(f"creating {len(users)} users failed: {r.status_code} {r.text[:200]}")


def idle_memory(hub: Hub, prefix: str, users: list[str]) -> dict:
    client = docker.from_env()
    try:
        found, how = [], ""
        for u in users:
            try:
                c = client.containers.get(contract.container_name(prefix, u))
            except docker.errors.NotFound:
                continue
            m = container_memory(c.id)
            if m:
                found.append(m[0] / MiB)
                how = m[1]
    finally:
        client.close()
    rss = process_rss(hub.process.pid)
    r = lambda x: None if x is None else round(x, 1)  # noqa: E731
    return {"p50": r(percentile(found, 0.5)), "max": r(max(found) if found else None),
            "min": r(min(found) if found else None),
            "hub_rss_mib": r(rss / MiB if rss else None), "containers": len(found), "source": how}


def containers_of(prefix: str, users: list[str]) -> dict[str, tuple[str, str, str]]:
    """user -> (container id, State.StartedAt, State.Status)."""
    client = docker.from_env()
    try:
        out = {}
        for u in users:
            try:
                c = client.containers.get(contract.container_name(prefix, u))
            except docker.errors.NotFound:
                continue
            out[u] = (c.id, c.attrs["State"]["StartedAt"], c.status)
        return out
    finally:
        client.close()


def answers(hub: Hub, session: requests.Session, user: str) -> bool:
    try:
        s = session.get(f"{hub.url}/user/{user}/api/status", allow_redirects=False, timeout=10)
        return s.status_code == 200 and "started" in s.json()
    except (requests.RequestException, ValueError):
        return False


def wait_all_answer(hub: Hub, users: list[str], timeout: float) -> float | None:
    """Monotonic time when the last of `users` answered /api/status through the proxy."""
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    todo, deadline = set(users), time.monotonic() + timeout
    try:
        while todo and time.monotonic() < deadline:
            for u in sorted(todo):
                if answers(hub, session, u):
                    todo.discard(u)
            if todo:
                time.sleep(0.1)
        return None if todo else time.monotonic()
    finally:
        session.close()


def restart(hub: Hub, args, courses: Path, extra: str, probe: Probe, log) -> tuple[Hub, dict]:
    """R stripped servers, SIGTERM, a new hub process: (the new hub, the restart figures)."""
    users = [f"r{i:03d}" for i in range(args.restart_servers)]
    log(f"starting {len(users)} servers on the stripped template ...")
    create_users(hub, users)
    _, _, outcomes = burst(hub, STRIPPED_TEMPLATE, users, args.deadline)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        log(f"  {o.user} failed: {o.message}")
    running = [o.user for o in outcomes if o.ok]
    before = containers_of(args.prefix, running)
    log(f"{len(running)} running; SIGTERM to the hub (pid {hub.process.pid}) ...")
    t_term = time.monotonic()
    hub.terminate()
    stop_s = time.monotonic() - t_term
    time.sleep(1)
    after_stop = containers_of(args.prefix, running)
    t0 = time.monotonic()
    new = start_hub(hub.state_dir, courses, args.port, args.prefix, hub.token, extra_config=extra)
    t_api = first_answer_after(probe.samples(), t0) or time.monotonic()
    t_ready = wait_all_answer(new, running, READY_TIMEOUT)
    after = containers_of(args.prefix, running)
    ready_in_hub = [u for u in running if (new.server(u) or {}).get("ready")]
    kept = (len(running) == args.restart_servers and before == after_stop == after
            and all(v[2] == "running" for v in after.values()) and len(ready_in_hub) == len(running))
    return new, {"servers": len(running), "stop_s": round(stop_s, 2), "api_s": round(t_api - t0, 2),
                 "all_ready_s": None if t_ready is None else round(t_ready - t0, 2), "all_kept": kept,
                 "template": f"{STRIPPED_TEMPLATE} (stripped: intro-python image, no courseware/dataset/branding)",
                 "failed_starts": len(failed)}


def run(args, workdir: Path, log=print) -> dict:
    samples.ensure_courseware_repos()
    samples.ensure_datasets()
    samples.ensure_git_daemon(["127.0.0.1", ensure_network(docker.from_env(), "goldenhub")])
    courses = copy_courses(workdir / "courses")
    stripped_course(courses)
    extra = "" if args.hashed_token else TRUST_BENCH_TOKEN
    extra += loop_debug_config(args.slow_callback_ms) if args.slow_callback_ms else ""
    extra += gc_log_config(args.gc_log_ms) if args.gc_log_ms else ""
    if args.profile_loop:
        extra += loop_profile_config(str(Path(args.profile_loop).resolve()))
    remove_docker_objects(args.prefix)
    log(f"starting jupyterhub on 127.0.0.1:{args.port} (prefix {args.prefix})")
    hub = start_hub(workdir / "state", courses, args.port, args.prefix, secrets.token_hex(16), extra_config=extra)
    hub.ensure_user(PROBE_USER)
    users = [f"s{i:03d}" for i in range(args.students)]
    create_users(hub, users)
    result: dict = {"machine": machine.describe(), "students": args.students,
                    "template": REAL_TEMPLATE, "probe_ms": 50,
                    "latency_endpoint": f"GET /hub/api/users/{PROBE_USER}",
                    "loop_debug_ms": args.slow_callback_ms, "hashed_token": args.hashed_token}
    try:
        with Probe(hub.api, hub.token, PROBE_USER, workdir / "probe.txt") as probe:
            t_begin = time.monotonic()
            time.sleep(args.before)
            log(f"burst: {args.students} students start {REAL_TEMPLATE} at once ...")
            t_fire, t_done, outcomes = burst(hub, REAL_TEMPLATE, users, args.deadline)
            ok = [o for o in outcomes if o.ok]
            for o in outcomes:
                if not o.ok:
                    log(f"  {o.user} failed: {o.message}")
            log(f"{len(ok)}/{len(users)} ready after {t_done - t_fire:.1f}s; idle {args.idle:.0f}s ...")
            time.sleep(args.idle)
            t_after = time.monotonic()
            data = probe.samples()
            windows = {"before": (t_begin, t_fire), "burst": (t_fire, t_done), "after": (t_done, t_after)}
            by_endpoint = {ep: {w: window_stats(data, a, b, ep) for w, (a, b) in windows.items()}
                           for ep in (API_ROOT, API_USER)}
            result["latency_ms"] = by_endpoint[API_USER]
            result["latency_ms_by_endpoint"] = {"GET /hub/api/": by_endpoint[API_ROOT],
                                                f"GET /hub/api/users/{PROBE_USER}": by_endpoint[API_USER]}
            result["burst"] = {"ok": len(ok), "makespan_s": round(t_done - t_fire, 1)}
            result["idle_memory_mib"] = idle_memory(hub, args.prefix, [o.user for o in ok])
            stop_all(hub, users)
            if args.restart_servers:
                hub, result["restart"] = restart(hub, args, courses, extra, probe, log)
        if args.slow_callback_ms:
            result["slow_callbacks"] = slow_callbacks(hub.log_path.read_text(errors="replace"))
    except Exception:
        print(f"--- last lines of the hub log ({hub.log_path}) ---\n{hub.log_tail(40)}", file=sys.stderr)
        raise
    finally:
        tear_down(hub, args.prefix, tolerate_unanswered=True)
    return result


# --------------------------------------------------------------------------- report


def _ms(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def _ratio(a, b) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}x"


def format_report(result: dict) -> str:
    lines = [f"machine: {machine.describe_text(result['machine'])}",
             f"burst: {result['burst']['ok']}/{result['students']} students on {result['template']}, "
             f"makespan {result['burst']['makespan_s']} s; probe every {result['probe_ms']} ms from its own process"]
    if result.get("hashed_token"):
        lines.append("the benchmark's token is hashed 16384 times per request (as the issue's baseline was)")
    if result.get("loop_debug_ms"):
        lines.append(f"asyncio debug mode ON (slow callback > {result['loop_debug_ms']} ms): "
                     "latencies include its overhead, do not compare them")
    lines += ["", f"{'endpoint':<28} {'window':<7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'samples':>8} {'failed':>7}"]
    for endpoint, windows in result["latency_ms_by_endpoint"].items():
        for w, s in windows.items():
            lines.append(f"{endpoint:<28} {w:<7} {_ms(s['p50']):>7} {_ms(s['p99']):>7} {_ms(s['max']):>7} "
                         f"{s['samples']:>8} {s['failed']:>7}")
    b = result["latency_ms"]["burst"]
    lines += ["", f"burst window ({result['latency_endpoint']}): "
              f"p99 {_ratio(b['p99'], TARGET['p99'])} of the {TARGET['p99']:.0f} ms target, "
              f"max {_ratio(b['max'], TARGET['max'])} of the {TARGET['max']:.0f} ms target; "
              f"against the issue's baseline p50 {_ratio(b['p50'], BASELINE['p50'])}, "
              f"p99 {_ratio(b['p99'], BASELINE['p99'])}, max {_ratio(b['max'], BASELINE['max'])}"]
    m = result["idle_memory_mib"]
    lines.append(f"idle memory per server ({m['containers']} containers, {m['source'] or 'no cgroup found'}): "
                 f"p50 {m['p50']} MiB, max {m['max']} MiB; hub process RSS {m['hub_rss_mib']} MiB")
    rs = result.get("restart")
    if rs:
        lines.append(f"hub restart with {rs['servers']} running servers ({rs['template']}): stop {rs['stop_s']} s, "
                     f"API answers after {rs['api_s']} s, every server answers through the proxy after "
                     f"{rs['all_ready_s']} s; all kept running: {'yes' if rs['all_kept'] else 'NO'}")
    for cb in result.get("slow_callbacks", []):
        lines.append(f"slow: {cb['count']:>4}x total {cb['total_s']:.2f}s max {cb['max_s']:.2f}s  {cb['what']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=30, help="students pressing Start at once (default 30)")
    p.add_argument("--restart-servers", type=int, default=100,
                   help="servers running when the hub restarts; 0 skips the restart (default 100)")
    p.add_argument("--before", type=float, default=10, help="seconds probed before the burst (default 10)")
    p.add_argument("--idle", type=float, default=30,
                   help="seconds probed after the burst, servers idle, before memory is read (default 30)")
    p.add_argument("--deadline", type=float, default=600, help="seconds a burst may take (default 600)")
    p.add_argument("--port", type=int, default=32000, help="hub on PORT..PORT+3 (default 32000)")
    p.add_argument("--prefix", default="bh", help="container and volume names start with PREFIX- (default bh)")
    p.add_argument("--slow-callback-ms", type=float, default=0,
                   help="asyncio debug mode in the hub: list callbacks longer than this (default off)")
    p.add_argument("--gc-log-ms", type=float, default=0,
                   help="log the hub's garbage collections longer than this (default off)")
    p.add_argument("--hashed-token", action="store_true",
                   help="leave the benchmark's config token untrusted, so the hub hashes it 16384 times at "
                        "every probe and driver request (how the issue's baseline was measured)")
    p.add_argument("--profile-loop", metavar="FILE",
                   help="cProfile the hub's event-loop thread, stats written to FILE at its exit (pstats)")
    p.add_argument("--json", metavar="OUT", help="also write every number here")
    p.add_argument("--workdir", metavar="DIR", help="keep the hub's state, log and probe samples here")
    args = p.parse_args(argv)
    if not 1 <= args.students <= 500:
        p.error(f"--students must be 1 to 500, got {args.students}")
    if not 0 <= args.restart_servers <= 500:
        p.error(f"--restart-servers must be 0 to 500, got {args.restart_servers}")
    if not 1024 <= args.port <= 65532:
        p.error(f"--port must be 1024 to 65532 (the hub uses PORT..PORT+3), got {args.port}")
    if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", args.prefix):
        p.error(f"--prefix must be 1 to 16 lowercase letters and digits, starting with a letter; got {args.prefix!r}")
    if min(args.before, args.idle, args.slow_callback_ms) < 0 or args.deadline <= 0:
        p.error("--before, --idle and --slow-callback-ms must be 0 or more, --deadline more than 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="goldenhub-hubload-") as tmp:
        workdir = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, workdir)
    print(format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
