"""The page of benchmarks/report.py: the targets of issue 13 judged from the parts' own numbers,
one Markdown table per part with ratios, and the time-to-notebook chart.

Rules: a part that failed or left nothing is shown as failed with why, never as zeros; a target
is "met" or "missed" only from a part's numbers at the size the target names, otherwise "not
measured" says why; every page carries the machine(s) its parts ran on (benchmarks/machine.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from benchmarks import machine

# The targets of issue 13 (and publish's goals from issue 12, which its JSON states itself).
REAL_OVER_STRIPPED = 1.15
CPU_RATIO = 0.67
SCHEDULED_P95_S = 1.0
HUB_P99_MS, HUB_MAX_MS = 100.0, 500.0


# --------------------------------------------------------------------------- Markdown


def num(x, digits: int = 1, unit: str = "") -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def ratio(a, b) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}x"


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(head: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
            + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows] + [""])


def failed_block(part: str, failure: dict) -> list[str]:
    lines = [f"**Failed**: {cell(failure.get('why', 'no result'))}"
             + (f" (exit {failure['rc']})" if failure.get("rc") is not None else "") + ".", ""]
    if failure.get("command"):
        lines += [f"Command: `{failure['command']}`", ""]
    if failure.get("stderr_tail"):
        lines += ["~~~", failure["stderr_tail"].replace("~~~", "~ ~ ~").rstrip(), "~~~", ""]
    return lines


SIDE_ORDER = {"stripped": 0, "real": 1, "stock": 2}


def by_size_and_side(item) -> tuple:
    (side, n), _ = item
    return n, SIDE_ORDER.get(side, 9), side


def spawn_results(d: dict) -> dict[tuple[str, int], dict]:
    sides = {"golden": "stripped"}  # spawn.py's old name of the stripped side
    return {(sides.get(r["spawner"], r["spawner"]), r["n"]): r for r in d.get("results", [])}


def section_spawn(d: dict) -> list[str]:
    res = spawn_results(d)
    rows = [[n, side, f"{r['ok']}/{n}", num(r.get("p50")), num(r.get("p95")), num(r.get("max")),
             num(r.get("makespan")), num(r.get("cpu_s_per_start"), 2)] for (side, n), r in sorted(res.items(), key=by_size_and_side)]
    lines = [f"Image {d.get('image', '?')}; seconds from a student's start to JupyterLab's first 200.", ""]
    lines += table(["N", "side", "ok", "p50 s", "p95 s", "max s", "makespan s", "CPU-s/start"], rows)
    ratio_rows = []
    for n in sorted({n for _, n in res}):
        for a, b in (("real", "stripped"), ("real", "stock"), ("stripped", "stock")):
            ra, rb = res.get((a, n)), res.get((b, n))
            if ra and rb:
                ratio_rows.append([n, f"{a}/{b}", ratio(ra.get("p50"), rb.get("p50")),
                                   ratio(ra.get("makespan"), rb.get("makespan"))])
    if ratio_rows:
        lines += table(["N", "ratio", "p50", "makespan"], ratio_rows)
    phases = list(dict.fromkeys(p for r in res.values() for p in (r.get("phases") or {})))  # the JSON's order
    if phases:
        lines += ["Per phase: p50 seconds (CPU-seconds) per start.", ""]
        lines += table(["N", "side", *phases], [
            [n, side, *(f"{num((r['phases'].get(p) or {}).get('p50_s'), 2)} "
                        f"({num((r['phases'].get(p) or {}).get('cpu_s'), 2)})" for p in phases)]
            for (side, n), r in sorted(res.items(), key=by_size_and_side) if r.get("phases")])
    return lines


def section_sessions(d: dict) -> list[str]:
    n = d.get("students")
    rows = [[side, f"{d[side]['ok']}/{n}", num(d[side].get("p50"), 2), num(d[side].get("p95"), 2),
             num(d[side].get("max"), 2)] for side in ("scheduled", "cold") if side in d]
    lines = [f"{n} students of intro-python (its real CPU template) open their notebook at once, with their "
             "own logged-in cookies: seconds from GET /hub/spawn to /user/<name>/api/status 200.", ""]
    if d.get("warmed"):
        lines += ["**Warmed run** (`--warm`, a diagnosis): each pre-started server had one anonymous request "
                  "before the class arrived; the sessions loop makes no such request.", ""]
    lines += table(["side", "ok", "p50 s", "p95 s", "max s"], rows)
    s, c = d.get("scheduled", {}), d.get("cold", {})
    lines += [f"Ratio cold/scheduled: p50 {ratio(c.get('p50'), s.get('p50'))}, p95 {ratio(c.get('p95'), s.get('p95'))}."
              + (f" The session pre-started the class in {s['prestart_s']:.1f} s before it began."
                 if s.get("prestart_s") is not None else ""), ""]
    cores = (d.get("machine") or {}).get("cores")
    for side in ("scheduled", "cold"):
        used = d.get(side, {}).get("platform_cpu_s")
        if used is not None and n and cores:
            lines += [f"CPU while the class opened ({side}): the platform used {used:.2f} CPU-s, {used / n:.3f} per "
                      f"student (the hub with its proxy and services {num(d[side].get('hub_cpu_s'), 2)}, the "
                      f"{n} servers {num(d[side].get('servers_cpu_s'), 2)}); on {cores} cores that alone "
                      f"takes {used / cores:.2f} s, however the work is scheduled; the simulated browsers used "
                      f"{num(d[side].get('client_cpu_s'), 2)} CPU-s more.", ""]
    steps = s.get("steps_p50") or {}
    if steps:
        lines += ["Where a scheduled student's time goes (p50 seconds until each response's headers):", ""]
        lines += table(["response", "p50 s"], [[label, num(x, 2)] for label, x in steps.items()])
    lines += [f"- pre-start failed: {cell(x)}" for x in s.get("prestart_failed", [])]
    lines += [f"- {side}: {cell(o['user'])} failed: {cell(o.get('message', ''))}" for side in ("scheduled", "cold")
              for o in d.get(side, {}).get("outcomes", []) if not o.get("ok")]
    return lines + [""]


def section_reset(d: dict) -> list[str]:
    homes, total = d.get("homes"), d.get("total_s")
    return table(["homes", "at once", "MB each", "ok", "total s", "s per student"], [[
        homes, d.get("concurrency"), d.get("mb"), f"{d.get('ok')}/{homes}", num(total),
        num(total / homes if total is not None and homes else None, 2)]]) + [
        "No stock comparison: stock DockerSpawner has no reset. No target in issue 13.", ""]


def section_publish(d: dict) -> list[str]:
    from hub_ext.i18n.format import size_text

    rows = [[r["case"], num(r.get("seconds")), size_text(r.get("pushed") or 0), r.get("note", "")]
            for r in d.get("rows", [])]
    own = f" Its own machine line: {d['machine']}." if isinstance(d.get("machine"), str) else ""
    return [f"Cold scope: {d.get('cold_scope')}.{own}", ""] + table(["case", "seconds", "pushed", "note"], rows) + [
        f"- {cell(x)}" for x in d.get("ratios", [])] + [""]


def section_hub_load(d: dict) -> list[str]:
    lat = d.get("latency_ms", {})
    lines = ["Hub API latency (ms), probed from a separate process.", ""]
    lines += table(["window", "p50", "p99", "max", "samples"], [
        [w, num(lat[w].get("p50")), num(lat[w].get("p99")), num(lat[w].get("max")), lat[w].get("samples", "-")]
        for w in ("before", "burst", "after") if w in lat])
    mem, rs = d.get("idle_memory_mib", {}), d.get("restart", {})
    lines += [f"Idle memory per server: p50 {num(mem.get('p50'))} MiB, max {num(mem.get('max'))} MiB; hub RSS "
              f"{num(mem.get('hub_rss_mib'))} MiB.",
              f"Hub restart with {rs.get('servers', '?')} servers: API answering after {num(rs.get('api_s'))} s, "
              f"every server answering after {num(rs.get('all_ready_s'))} s; all kept: "
              f"{'yes' if rs.get('all_kept') else 'NO'}.", ""]
    return lines


def section_server_start(d: dict) -> list[str]:
    return table(["image", "starts", "CPU-s p50", "wall s p50"], [
        [r["image"], r.get("starts"), num(r.get("cpu_s_p50"), 2), num(r.get("wall_s_p50"), 2)]
        for r in d.get("results", [])]) + [f"CPU ratio new/baseline: {num(d.get('ratio_cpu'), 2)}.", ""]


SECTIONS = {"spawn": ("Time-to-notebook in a burst (benchmarks/spawn.py)", section_spawn),
            "sessions": ("A scheduled class session's start (benchmarks/sessions_start.py)", section_sessions),
            "reset": ("Course-wide reset (benchmarks/reset.py)", section_reset),
            "publish": ("Publishing a course image (benchmarks/publish.py)", section_publish),
            "hub_load": ("The hub during a burst (benchmarks/hub_load.py)", section_hub_load),
            "server_start": ("A lighter server start (benchmarks/server_start.py)", section_server_start)}


def targets(parts: dict[str, dict]) -> list[list[str]]:
    """[target, measured, verdict] for each target of issue 13 (and publish's own goals)."""
    def absent(part):
        d = parts.get(part)
        return "not measured: the part was not run" if d is None else (
            f"not measured: {part} failed" if "_failed" in d else None)

    rows = []
    why = absent("spawn")
    if why:
        rows.append(["real template's 30-burst makespan ≤ 1.15× the stripped one's", "-", why])
    else:
        res = spawn_results(parts["spawn"])
        real, stripped = res.get(("real", 30)), res.get(("stripped", 30))
        if real and stripped and stripped.get("makespan"):
            x = real["makespan"] / stripped["makespan"]
            rows.append(["real template's 30-burst makespan ≤ 1.15× the stripped one's", f"{x:.2f}×",
                         "met" if x <= REAL_OVER_STRIPPED else "missed"])
        else:
            rows.append(["real template's 30-burst makespan ≤ 1.15× the stripped one's", "-",
                         "not measured: no real and stripped burst of 30"])
    why = absent("server_start")
    r = None if why else parts["server_start"].get("ratio_cpu")
    rows.append(["CPU-s per start of the stripped template ≤ 0.67× today's images", num(r, 2) + ("×" if r else ""),
                 why or ("not measured: no ratio" if r is None else "met" if r <= CPU_RATIO else "missed")])
    why = absent("sessions")
    if why:
        rows.append(["scheduled session: 30/30, p95 time-to-notebook < 1 s", "-", why])
    else:
        d = parts["sessions"]
        s, n = d.get("scheduled", {}), d.get("students")
        ok = s.get("ok") == n and s.get("p95") is not None and s["p95"] < SCHEDULED_P95_S
        rows.append(["scheduled session: 30/30, p95 time-to-notebook < 1 s",
                     f"{s.get('ok')}/{n}, p95 {num(s.get('p95'), 2)} s",
                     ("met" if ok else "missed") + ("" if n == 30 else f" (at {n} students, not 30)")
                     + (" (warmed: a diagnosis, not the product)" if d.get("warmed") else "")])
    why = absent("hub_load")
    burst = {} if why else parts["hub_load"].get("latency_ms", {}).get("burst", {})
    p99, mx = burst.get("p99"), burst.get("max")
    rows.append(["hub API during a 30-burst: p99 < 100 ms, max < 500 ms", f"p99 {num(p99)} ms, max {num(mx)} ms",
                 why or ("not measured: no burst window" if p99 is None or mx is None else
                         "met" if p99 < HUB_P99_MS and mx < HUB_MAX_MS else "missed")])
    why = absent("publish")
    for goal in ([] if why else [x for x in parts["publish"].get("ratios", []) if x.startswith("goal:")]):
        text, _, verdict = goal[len("goal: "):].partition(": ")
        rows.append([f"{text} (issue 12)", verdict.partition("(")[2].rstrip(")") or "-",
                     "missed" if "NOT met" in verdict else "met"])
    return rows


def machines_of(parts: dict[str, dict]) -> list[str]:
    seen = []
    for d in parts.values():
        m = d.get("machine")
        text = machine.describe_text(m) if isinstance(m, dict) else None  # a part's own words: in its section
        if text and text not in seen:
            seen.append(text)
    return seen


def render(parts: dict[str, dict], when: dt.datetime, chart: bool) -> str:
    ran = {k: v for k, v in parts.items() if "_failed" not in v}
    machines = machines_of(ran)
    lines = ["# Benchmarks report", "", f"Date: {when:%Y-%m-%d %H:%M} UTC. Generated by `benchmarks/report.py`; "
             "the raw results are in [raw/](raw/).", ""]
    lines += ([f"Machine: {machines[0]}.", ""] if len(machines) == 1 else
              ["Machines (the parts ran on more than one; compare ratios within a part only):", ""]
              + [f"- {m}" for m in machines] + [""] if machines else ["Machine: unknown (no part succeeded).", ""])
    lines += ["## Targets of issue 13", ""]
    lines += table(["target", "measured", "verdict"], targets(parts))
    if chart:
        lines += ["![time-to-notebook against burst size](time-to-notebook.png)", ""]
    for part, d in parts.items():
        title, section = SECTIONS[part]
        lines += [f"## {title}", ""]
        if "_failed" in d:
            lines += failed_block(part, d["_failed"])
            continue
        lines += section(d)
        extra = d.get("_report", {})
        if extra.get("rc"):
            lines += [f"The part exited with status {extra['rc']}; the end of its stderr:", "", "~~~",
                      extra.get("stderr_tail", "").replace("~~~", "~ ~ ~").rstrip(), "~~~", ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- the chart


def chart_series(parts: dict[str, dict]) -> dict[str, list[tuple[int, float | None, float | None]]]:
    """Side → [(burst size, p50, p95)]: spawn.py's sides, plus the scheduled session's class."""
    series: dict[str, list] = {}
    if "spawn" in parts and "_failed" not in parts["spawn"]:
        for (side, n), r in sorted(spawn_results(parts["spawn"]).items(), key=lambda kv: kv[0][1]):
            if r.get("p50") is not None:
                series.setdefault(side, []).append((n, r["p50"], r.get("p95")))
    s = parts.get("sessions", {})
    if "_failed" not in s and s.get("scheduled", {}).get("p50") is not None:
        series["scheduled session"] = [(s["students"], s["scheduled"]["p50"], s["scheduled"].get("p95"))]
    return series


def write_chart(series: dict, path: Path, machine_text: str) -> bool:
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullLocator

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for i, (side, points) in enumerate(series.items()):
        color = f"C{i}"
        ns = [p[0] for p in points]
        ax.plot(ns, [p[1] for p in points], "o-", color=color, label=f"{side} p50")
        if any(p[2] is not None for p in points):
            ax.plot(ns, [p[2] for p in points], "s--", color=color, label=f"{side} p95")
    sizes = sorted({p[0] for points in series.values() for p in points})
    ax.set_xscale("log")
    ax.set_yscale("log")  # a scheduled class's second and a 100-burst's minutes on one chart
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.axhline(SCHEDULED_P95_S, color="grey", linestyle=":", label="1 s: target of a scheduled class (p95)")
    ax.set_xlabel("students starting at once (log scale)")
    ax.set_ylabel("seconds to a working JupyterLab (log scale)")
    ax.set_title("Time-to-notebook against burst size", fontsize=11)
    fig.text(0.01, 0.01, machine_text[:140], fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(parts: dict[str, dict], out: Path, when: dt.datetime | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    png = out / "time-to-notebook.png"
    machines = machines_of({k: v for k, v in parts.items() if "_failed" not in v})
    drawn = write_chart(chart_series(parts), png, "; ".join(machines))
    if not drawn:
        png.unlink(missing_ok=True)
    page = out / "README.md"
    page.write_text(render(parts, when or dt.datetime.now(dt.timezone.utc), drawn))
    return page
