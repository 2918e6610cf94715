"""Where a start's time goes: pure parsing of the timestamps one start leaves behind, the
phases they make, percentiles, and the printed tables of benchmarks/spawn.py.

Marks of one start (wall-clock epoch seconds; every source runs on this machine's clock):
  t0          the benchmark sends POST /hub/api/users/<u>/server
  queued      GoldenSpawner.start() entered (start_events row, queued_at)
  admitted    a start slot taken (start_events row, admitted_at)
  created     Docker created the container (inspect: Created)
  branded     branding copied in, just before Docker start (hub log "goldenhub-phase branded")
  started     Docker started the container (inspect: State.StartedAt)
  script, courseware, server
              the container's "goldenhub-phase NAME EPOCH" lines (spawner/container.py)
  ready       the first 200 from /api/status through the proxy

Phases (a phase whose marks are missing is None; stock DockerSpawner has no queue, no
branding, no startup script):
  hub         t0 → queued (stock: t0 → created, its whole hub side and the create)
  queue       queued → admitted
  docker      admitted → created (datasets, home volume, mirror lookup, create) plus
              branded → script (Docker start until the startup script runs)
  branding    created → branded (the hub-side copy of logo, favicon and lab warnings)
  courseware  courseware → server (the merge from the mirror, inside the container)
  server      server → ready (stock: started → ready): the Jupyter server's start
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from benchmarks import machine

PHASES = ("hub", "queue", "docker", "branding", "courseware", "server")
SIDES = ("stripped", "real", "stock")

_MARKER = re.compile(r"^goldenhub-phase (script|courseware|server) (\d{1,12}(?:\.\d{1,9})?)\s*$")
_BRANDED = re.compile(r"goldenhub-phase branded (\S{1,255}) (\d{1,12}(?:\.\d{1,9})?)\s*$")
_DOCKER_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def container_marks(log_text: str) -> dict[str, float]:
    """The startup script's marks from a container's stdout; the first of each name counts."""
    marks: dict[str, float] = {}
    for line in log_text.splitlines():
        m = _MARKER.match(line.strip())
        if m and m.group(1) not in marks:
            marks[m.group(1)] = float(m.group(2))
    return marks


def branded_marks(hub_log: str) -> dict[str, float]:
    """Container name → when its branding was done, from the hub log (the last start wins)."""
    return {m.group(1): float(m.group(2)) for m in map(_BRANDED.search, hub_log.splitlines()) if m}


def docker_time(text: str) -> float | None:
    """Docker's RFC 3339 time with nanoseconds ("2026-11-27T05:14:17.123456789Z") as epoch
    seconds; None for anything else, Docker's zero time included."""
    m = _DOCKER_TIME.match(text or "")
    if not m or m.group(1).startswith("0001-"):
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}").timestamp()


def as_epoch(when: datetime | None) -> float | None:
    """A start_events time (SQLite hands them back naive; they are UTC) as epoch seconds."""
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _span(marks: dict[str, float], a: str, b: str) -> float | None:
    if marks.get(a) is None or marks.get(b) is None:
        return None
    return marks[b] - marks[a]


def phases_from_marks(marks: dict[str, float]) -> dict[str, float | None]:
    """Seconds of each phase of one start (rules in the module docstring)."""
    golden = marks.get("queued") is not None
    create = _span(marks, "admitted", "created")
    start = _span(marks, "branded", "script")
    docker = None if create is None and start is None else (create or 0.0) + (start or 0.0)
    return {
        "hub": _span(marks, "t0", "queued") if golden else _span(marks, "t0", "created"),
        "queue": _span(marks, "queued", "admitted"),
        "docker": docker if golden else _span(marks, "created", "started"),
        "branding": _span(marks, "created", "branded"),
        "courseware": _span(marks, "courseware", "server"),
        "server": _span(marks, "server", "ready") if "server" in marks else _span(marks, "started", "ready"),
    }


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summarize_phases(per_start: list[dict[str, float | None]], hub_cpu_per_start: float | None,
                     container_cpu_per_start: float | None) -> dict[str, dict[str, float | None]]:
    """p50 of each phase over the successful starts, and CPU-seconds per start where it is
    measured: the hub process tree (hub, proxy, service) against "hub", everything the
    container used up to ready (courseware merge and Jupyter) against "server"."""
    out = {}
    for name in PHASES:
        p50 = percentile([p[name] for p in per_start if p.get(name) is not None], 0.5)
        out[name] = {"p50_s": None if p50 is None else round(p50, 3), "cpu_s": None}
    out["hub"]["cpu_s"] = None if hub_cpu_per_start is None else round(hub_cpu_per_start, 3)
    out["server"]["cpu_s"] = None if container_cpu_per_start is None else round(container_cpu_per_start, 3)
    return out


# --------------------------------------------------------------------------- printed tables


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def format_sides(results: list[dict]) -> list[str]:
    """One table per burst size: each side's successes, times, makespan and CPU per start,
    then the ratios of the makespans (real/stripped is the issue's 1.15x target at 30)."""
    by_size: dict[int, dict[str, dict]] = {}
    for r in results:
        by_size.setdefault(r["n"], {})[r["spawner"]] = r
    head = f"{'side':<9} {'N':>4} {'ok/N':>8} {'p50':>7} {'p95':>7} {'max':>7} {'makespan':>9} {'CPU-s/start':>12}"
    lines = []
    for n in sorted(by_size):
        sides = by_size[n]
        lines += ["", f"== burst of {n}: seconds from request to JupyterLab answering ==", head]
        for kind in SIDES:
            r = sides.get(kind)
            if r:
                ok = f"{r['ok']}/{n}"
                lines.append(f"{kind:<9} {n:>4} {ok:>8} {_s(r['p50']):>7} {_s(r['p95']):>7} "
                             f"{_s(r['max']):>7} {_s(r['makespan']):>9} {r['cpu_s_per_start']:>12.2f}")
        lines += [f"{kind}: {sides[kind]['ok']}/{n} ok" for kind in SIDES if kind in sides]
        pairs = [("real", "stripped"), ("real", "stock"), ("stripped", "stock")]
        words = [f"{a}/{b} {ratio(sides[a]['makespan'], sides[b]['makespan'])}"
                 for a, b in pairs if a in sides and b in sides]
        if words:
            lines.append(f"makespan ratios at N={n}: " + "  ".join(words))
    return lines


def format_phases(results: list[dict]) -> list[str]:
    """p50 seconds of each phase per side and size, with CPU-s per start (hub / container)."""
    head = f"{'side':<9} {'N':>4} " + " ".join(f"{p:>10}" for p in PHASES) + f" {'CPU hub':>8} {'CPU ctr':>8}"
    lines = ["", "== phases: p50 seconds of the successful starts; CPU-s per start ==", head]
    for r in sorted(results, key=lambda r: (r["n"], SIDES.index(r["spawner"]))):
        ph = r["phases"]
        cells = " ".join(f"{_s(ph[p]['p50_s']):>10}" for p in PHASES)
        lines.append(f"{r['spawner']:<9} {r['n']:>4} {cells} {_s2(ph['hub']['cpu_s']):>8} "
                     f"{_s2(ph['server']['cpu_s']):>8}")
    return lines


def _s2(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def make_json(machine_info: dict, image: str, sizes: list[int], results: list[dict]) -> dict:
    """The JSON contract benchmarks/report.py reads: machine, image, sizes, and per side and
    size spawner, n, ok, p50, p95, max, makespan, cpu_s_per_start, phases, outcomes."""
    return {"machine": machine_info, "image": image, "sizes": list(sizes), "results": results}


def report_text(machine_info: dict, image: str, results: list[dict]) -> str:
    """The printed report: the machine, a warning when the image changed mid-run, the side
    tables with their ratios, the phase table."""
    lines = [f"machine: {machine.describe_text(machine_info)}", f"image: {image}"]
    ids = sorted({o["image_id"][:19] for r in results for o in r["outcomes"] if o.get("image_id")})
    if len(ids) > 1:  # someone rebuilt the tag mid-run: the sides did not run the same image
        lines.append(f"WARNING: {image} changed during the run ({', '.join(ids)}): do not compare these sides")
    return "\n".join(lines + format_sides(results) + format_phases(results))
