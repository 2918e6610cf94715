"""Time-to-notebook at a scheduled class session's start, against the same class starting cold.

One real jupyterhub (the repo's jupyterhub_config.py, the repo's courses/ catalog, the goldenhub
service with it, as tests/helpers.start_hub starts them), N students enrolled in intro-python
(its REAL CPU template: courseware from the sample git server, the iris dataset, branding).

1. scheduled: a session of intro-python is scheduled through the service's API
   (POST /services/goldenhub/api/sessions); the sessions loop's clock
   (GOLDENHUB_SESSIONS_NOW_FILE) is moved to the lead time, and the benchmark waits until the
   loop has pre-started every student's server (all ready, each recorded by the session). Then
   the clock is moved to the start and, --settle seconds later (a real class arrives minutes
   after its servers are ready), all N students open their notebook at once.
2. cold: the same N students, their servers stopped, no session: all N click Start at once.

"Opening the notebook" is what a browser does, with the student's own logged-in cookies:
GET /hub/spawn (the start link of the hub's home page); when the hub shows the start form
(no server yet) the form is posted with the course's template, as a click on Start does;
while the server starts, the spawn's progress stream is followed as the progress page does,
then /hub/spawn-pending/<name> is loaded again, its redirects followed through the OAuth
dance to /user/<name>/lab (200, JupyterLab's page), and /user/<name>/api/status is asked
with the same cookies. Each student's time runs from the first request to that 200. The
target of issue 13: scheduled 30/30, p95 under 1 s.

    python benchmarks/sessions_start.py --students 30 --json out.json

Ports: the hub on PORT..PORT+3 (default 34000). Containers and volumes: PREFIX-* (default rp).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import machine, measure  # noqa: E402
from benchmarks.hub_probe import loop_profile_config  # noqa: E402
from benchmarks.phases import percentile  # noqa: E402
from hub_ext import contract, samples  # noqa: E402
from tests.helpers import (ServiceClient, copy_courses, hub_running, user_token,  # noqa: E402
                           wait_for)

COURSE = "intro-python"
TEMPLATE = "intro-python-cpu"
LEAD_MINUTES = 10
TARGET_P95_S = 1.0  # issue 13: p95 time-to-notebook at the session start under 1 s
STOP_TIMEOUT = 300  # seconds for every server to be gone between the two sides




def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Outcome:
    user: str
    ok: bool = False
    seconds: float | None = None  # first request → 200 from /user/<name>/api/status
    message: str = ""
    steps: list[str] = field(default_factory=list)  # "GET /path 302 0.12" per response, redirects included


def trace(out: Outcome, r: requests.Response) -> requests.Response:
    """Note every response of a request (its redirects first) with the seconds until its headers."""
    for x in [*r.history, r]:
        path = x.url.split("//", 1)[-1].split("/", 1)[-1].split("?")[0]
        out.steps.append(f"{x.request.method} /{path} {x.status_code} {x.elapsed.total_seconds():.2f}")
    return r


def step_p50(outcomes: list[Outcome]) -> dict[str, float]:
    """Where the time goes: p50 seconds of each kind of response ("GET /user/<name>/lab 302"),
    over the successful students, in the order a student meets them."""
    seen: dict[str, list[float]] = {}
    for o in outcomes:
        if o.ok:
            for step in o.steps:
                label, _, seconds = step.rpartition(" ")
                seen.setdefault(label.replace(f"/{o.user}", "/<name>"), []).append(float(seconds))
    return {label: percentile(values, 0.5) for label, values in seen.items()}


def summary(outcomes: list[Outcome]) -> dict:
    """The JSON contract's side: {"ok", "n", "p50", "p95", "max", "steps_p50", "outcomes"} (seconds)."""
    times = [o.seconds for o in outcomes if o.ok and o.seconds is not None]
    return {"ok": len(times), "n": len(outcomes), "p50": percentile(times, 0.5), "p95": percentile(times, 0.95),
            "max": max(times) if times else None, "steps_p50": step_p50(outcomes),
            "outcomes": [asdict(o) for o in outcomes]}


# --------------------------------------------------------------------------- one student


def at_lab(r: requests.Response, user: str) -> bool:
    return (r.status_code == 200 and r.url.split("?")[0].rstrip("/").endswith(f"/user/{user}/lab")
            and "JupyterLab" in r.text)


def hub_xsrf(session: requests.Session, page: str) -> str:
    """The hub's XSRF token a browser posts with the form: the page's hidden field, else the hub's
    cookie (the single-user server sets a cookie of the same name under /user/<name>/)."""
    m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page)
    if m:
        return m.group(1)
    return next((c.value for c in session.cookies if c.name == "_xsrf" and not c.path.startswith("/user/")), "")


def wait_progress(hub, user: str, deadline: float) -> str | None:
    """Follow the spawn's progress stream as the progress page does: None once ready, else why not."""
    try:
        with hub.request("GET", f"/users/{user}/server/progress", stream=True,
                         timeout=(10, max(1.0, deadline - time.monotonic()))) as r:
            if r.status_code != 200:  # no spawn pending (ready, or not begun): the page load decides,
                time.sleep(0.25)  # a moment from now (a bound on the loop's pace, not a measurement)
                return None
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("ready"):
                        return None
                    if event.get("failed"):
                        return event.get("message", "the spawn failed")
    except (requests.RequestException, ValueError) as e:
        return f"progress stream: {e}"
    return None


def open_notebook(hub, session: requests.Session, user: str, start: threading.Barrier,
                  deadline_s: float) -> Outcome:
    """What a logged-in student's browser does from the start link to a working JupyterLab."""
    out = Outcome(user)
    try:
        start.wait(timeout=120)
        t0 = time.monotonic()
        deadline = t0 + deadline_s
        r = trace(out, session.get(f"{hub.url}/hub/spawn", timeout=deadline_s))
        if not at_lab(r, user) and 'id="spawn_form"' in r.text:  # no server: the student clicks Start
            r = trace(out, session.post(f"{hub.url}/hub/spawn", timeout=deadline_s, data={
                contract.OPTION_TEMPLATE: TEMPLATE, "_xsrf": hub_xsrf(session, r.text)}))
        while not at_lab(r, user):
            if r.status_code >= 400:
                text = re.sub(r"<[^>]+>|\s+", " ", r.text)[:200]
                out.message = f"{r.status_code} at {r.url}: {text}"
                return out
            if time.monotonic() > deadline:
                out.message = f"not at JupyterLab within {deadline_s:.0f}s (last page {r.url})"
                return out
            failure = wait_progress(hub, user, deadline)
            if failure:
                out.message = failure
                return out
            r = trace(out, session.get(f"{hub.url}/hub/spawn-pending/{user}",
                                       timeout=max(1.0, deadline - time.monotonic())))
        while time.monotonic() < deadline:
            s = trace(out, session.get(f"{hub.url}/user/{user}/api/status", timeout=30, allow_redirects=False))
            if s.status_code == 200:
                out.ok, out.seconds = True, time.monotonic() - t0
                return out
            time.sleep(0.1)
        out.message = f"/api/status did not answer 200 within {deadline_s:.0f}s"
    except Exception as e:  # noqa: BLE001 - one student's failure is a result, never the end of the run
        out.message = f"{type(e).__name__}: {e}"
    return out


def burst(hub, sessions: dict[str, requests.Session], deadline_s: float) -> list[Outcome]:
    """All students open their notebook at the same moment; each outcome bounded by deadline_s."""
    barrier = threading.Barrier(len(sessions))
    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        futures = [pool.submit(open_notebook, hub, s, u, barrier, deadline_s) for u, s in sessions.items()]
        return [f.result(timeout=deadline_s + 300) for f in futures]


def platform_cpu(hub, prefix: str) -> tuple[float, float]:
    """CPU-seconds used so far by the hub's process tree (the hub, its proxy, its services) and
    by the students' containers of this run."""
    import docker

    client = docker.from_env()
    try:
        containers = client.containers.list(filters={"name": f"{prefix}-"})
    finally:
        client.close()
    root = measure.cpuacct_dir()
    return (measure.process_tree_cpu(hub.process.pid),
            sum(measure.container_cpu(c.id, root) or 0.0 for c in containers))


def timed_burst(hub, sessions: dict[str, requests.Session], deadline_s: float, prefix: str) -> dict:
    """burst() summarised, with the CPU-seconds the simulated browsers themselves used (they
    share this machine's cores with the hub and the servers, where a real class's browsers run
    on the students' own computers) and those the platform used (the hub's processes and the
    containers): the platform's CPU-seconds over the cores bound how fast the last student can
    be served, however the work is scheduled."""
    cpu, platform = time.process_time(), platform_cpu(hub, prefix)
    result = summary(burst(hub, sessions, deadline_s))
    result["client_cpu_s"] = round(time.process_time() - cpu, 2)
    hub_after, servers_after = platform_cpu(hub, prefix)
    result["hub_cpu_s"] = round(hub_after - platform[0], 2)
    result["servers_cpu_s"] = round(servers_after - platform[1], 2)
    result["platform_cpu_s"] = round(result["hub_cpu_s"] + result["servers_cpu_s"], 2)
    return result


# --------------------------------------------------------------------------- the class


def pre_start(hub, admin: ServiceClient, clock: Path, users: list[str], timeout: float,
              log=print) -> tuple[float, list[str]]:
    """Schedule the session, move the clock to its lead time and wait until every student's
    pre-start is recorded ready (or failed) by the session; returns the seconds that took and
    the failed pre-starts ("user: why")."""
    now = datetime.fromisoformat(clock.read_text().replace("Z", "+00:00"))
    start = now + timedelta(minutes=30)
    r = admin.call("POST", "/sessions", json={"course": COURSE, "at": iso(start), "minutes": 60,
                                             "lead": LEAD_MINUTES, "template": TEMPLATE})
    if r.status_code != 201:
        raise RuntimeError(f"scheduling the session failed: {r.status_code} {r.text[:300]}")
    sid = r.json()["id"]
    t0 = time.monotonic()
    clock.write_text(iso(start - timedelta(minutes=LEAD_MINUTES)))
    log(f"session {sid} scheduled; the clock at its lead time: pre-starting {len(users)} servers ...")

    def all_done() -> list[dict] | None:
        students = admin.call("GET", f"/sessions/{sid}").json()["students"]
        done = len(students) == len(users) and all(s["ready_at"] or s["state"] == "failed" for s in students)
        return students if done else None

    students = wait_for(all_done, timeout, f"the session's pre-start of {len(users)} servers", interval=1)
    seconds = time.monotonic() - t0
    # A failed pre-start is a result: that student finds no server and starts it, as in class.
    failed = [f"{s['user']}: {s['detail']}" for s in students if s["state"] == "failed"]
    for line in failed:
        log(f"pre-start failed for {line}")
    clock.write_text(iso(start))
    return seconds, failed


def warm(hub, users: list[str]) -> None:
    """Diagnosis only (--warm): one anonymous GET /user/<name>/lab per pre-started server, the
    request a warm-up after the pre-start would make; its answer (a redirect to the hub's
    login) is not followed."""
    for u in users:
        requests.get(f"{hub.url}/user/{u}/lab", allow_redirects=False, timeout=60)


def stop_all(hub, users: list[str]) -> None:
    for u in users:
        hub.request("DELETE", f"/users/{u}/server")
    wait_for(lambda: all(hub.server(u) is None for u in users), STOP_TIMEOUT, f"{len(users)} servers stopping",
             interval=1)


def run(args: argparse.Namespace, workdir: Path, log=print) -> dict:
    samples.ensure_courseware_repos()  # the sample courseware and datasets, as `goldenhub up` prepares them
    samples.ensure_datasets()
    clock = workdir / "now"
    clock.write_text(iso(datetime.now(timezone.utc).replace(microsecond=0)))
    env = {"GOLDENHUB_SESSIONS_NOW_FILE": str(clock), "GOLDENHUB_SESSIONS_EVERY": str(args.every),
           "GOLDENHUB_SESSIONS_RATE": str(args.rate)}
    users = [f"{args.prefix}s{i:03d}" for i in range(args.students)]
    log(f"starting jupyterhub on 127.0.0.1:{args.port} (prefix {args.prefix}); {machine.describe_text()}")
    extra = loop_profile_config(str(Path(args.profile_hub).resolve())) if args.profile_hub else ""
    with hub_running(workdir / "state", copy_courses(workdir / "courses"), args.port, args.prefix,
                     extra_config=extra, env=env) as hub:
        try:
            for u in users:
                hub.enrol(u, COURSE)
            admin = ServiceClient(hub, user_token(hub, "admin", note="sessions benchmark"))
            sessions = {u: hub.login(u) for u in users}
            prestart_s, prestart_failed = pre_start(hub, admin, clock, users, args.prestart_timeout, log)
            # A class arrives at the session's start, minutes after its window opened: its servers
            # have sat idle since they were ready. SETTLE stands for those minutes, shortened.
            log(f"all {len(users)} pre-started in {prestart_s:.1f} s; the class arrives in {args.settle:.0f} s ...")
            if args.warm:
                warm(hub, users)
            time.sleep(args.settle)
            scheduled = timed_burst(hub, sessions, args.deadline, args.prefix)
            scheduled.update(prestart_s=prestart_s, prestart_failed=prestart_failed)
            log(f"scheduled: {scheduled['ok']}/{len(users)} ok")
            cold = None
            if not args.no_cold:
                log("stopping every server for the cold side ...")
                stop_all(hub, users)
                log("cold: the same students click Start at once ...")
                cold = timed_burst(hub, sessions, args.deadline, args.prefix)
                log(f"cold: {cold['ok']}/{len(users)} ok")
        except Exception:
            print(f"--- last lines of the hub log ({hub.log_path}) ---\n{hub.log_tail(40)}", file=sys.stderr)
            raise
    result = {"machine": machine.describe(), "students": args.students, "scheduled": scheduled,
              "warmed": args.warm}
    if cold is not None:
        result["cold"] = cold
    return result


# --------------------------------------------------------------------------- report


def machine_cores(result: dict) -> str:
    return str((result.get("machine") or {}).get("cores") or "?")


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def format_report(result: dict) -> str:
    n = result["students"]
    lines = [f"time-to-notebook of {n} students opening at once (seconds, first request → /api/status 200)"
             + (" — WARMED servers (--warm, a diagnosis)" if result.get("warmed") else ""),
             f"machine: {machine.describe_text(result['machine'])}",
             f"{'side':<10} {'ok/N':>7} {'p50':>7} {'p95':>7} {'max':>7}"]
    sides = [side for side in ("scheduled", "cold") if side in result]
    for side in sides:
        r = result[side]
        ok = f"{r['ok']}/{n}"
        lines.append(f"{side:<10} {ok:>7} {_s(r['p50']):>7} {_s(r['p95']):>7} {_s(r['max']):>7}")
    s, c = result["scheduled"], result.get("cold") or {}
    for key in ("p50", "p95", "max"):
        if s[key] and c.get(key):
            lines.append(f"ratio cold/scheduled {key}: {c[key] / s[key]:.1f}x")
    met = s["ok"] == n and s["p95"] is not None and s["p95"] < TARGET_P95_S
    lines.append(f"target: scheduled {n}/{n} with p95 < {TARGET_P95_S:.0f} s: {'met' if met else 'missed'}")
    if s.get("client_cpu_s") is not None:
        lines.append(f"the {n} simulated browsers themselves used {s['client_cpu_s']:.2f} CPU-s of this machine's "
                     f"{machine_cores(result)} cores while opening (a real class's browsers run elsewhere)")
    if s.get("platform_cpu_s") is not None:
        cores = (result.get("machine") or {}).get("cores") or 0
        bound = f"; over {cores} cores that alone is {s['platform_cpu_s'] / cores:.2f} s" if cores else ""
        lines.append(f"the platform used {s['platform_cpu_s']:.2f} CPU-s ({s['platform_cpu_s'] / n:.3f} per student) "
                     f"while they opened: the hub with its proxy and services {s.get('hub_cpu_s', 0):.2f}, the {n} "
                     f"servers {s.get('servers_cpu_s', 0):.2f}{bound}")
    if "prestart_s" in s:
        lines.append(f"the session's pre-start of {n} servers took {s['prestart_s']:.1f} s (before the class)")
    if s.get("steps_p50"):
        lines.append("scheduled, p50 seconds per response: " + ", ".join(
            f"{label} {seconds:.2f}" for label, seconds in s["steps_p50"].items()))
    for line in s.get("prestart_failed", []):
        lines.append(f"pre-start failed: {line}")
    for side in sides:
        for o in result[side]["outcomes"]:
            if not o["ok"]:
                lines.append(f"{side}: {o['user']} failed: {o['message']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=30, help="students in the class (default 30)")
    p.add_argument("--port", type=int, default=34000, help="the hub on PORT..PORT+3 (default 34000)")
    p.add_argument("--prefix", default="rp", help="container, volume and user names start with it (default rp)")
    p.add_argument("--json", metavar="OUT", help="also write every number (and each student's outcome) here")
    p.add_argument("--rate", type=int, default=5, help="the sessions loop's starts per pass (default 5)")
    p.add_argument("--every", type=int, default=5,
                   help="seconds between the sessions loop's passes (default 5: the pre-start goes faster than "
                        "the product's 30, and a pass still lists the servers during the class's burst)")
    p.add_argument("--deadline", type=float, default=600, help="seconds each student may take (default 600)")
    p.add_argument("--prestart-timeout", type=float, default=1200,
                   help="seconds the pre-start of the whole class may take (default 1200)")
    p.add_argument("--settle", type=float, default=30,
                   help="seconds between the last pre-started server ready and the class opening (default 30; "
                        "a real class arrives minutes later)")
    p.add_argument("--warm", action="store_true",
                   help="diagnosis: one anonymous request to each pre-started server before the class arrives "
                        "(what a warm-up by the sessions loop would do); the JSON says warmed: true")
    p.add_argument("--workdir", metavar="DIR", help="keep the hub's state and log here (default: a temp dir)")
    p.add_argument("--no-cold", action="store_true", help="only the scheduled side (a diagnosis run)")
    p.add_argument("--profile-hub", metavar="FILE",
                   help="diagnosis: cProfile the hub's event-loop thread, stats written to FILE at its exit (pstats)")
    args = p.parse_args(argv)
    if not 1 <= args.students <= 500:
        p.error(f"--students must be from 1 to 500, got {args.students}")
    if not re.fullmatch(r"[a-z][a-z0-9]{0,9}", args.prefix):
        p.error(f"--prefix must be 1 to 10 lowercase letters or digits, starting with a letter; got {args.prefix!r}")
    if not 1 <= args.rate <= 100 or not 1 <= args.every <= 3600 or not 0 <= args.settle <= 3600:
        p.error("--rate must be from 1 to 100, --every from 1 to 3600 and --settle from 0 to 3600")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="goldenhub-bench-sessions-") as tmp:
        workdir = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, workdir)
    print(format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if result["scheduled"]["ok"] == args.students else 1


if __name__ == "__main__":
    sys.exit(main())
