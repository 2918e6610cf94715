"""One report a department can trust: every benchmark of issue 13 in one run, one Markdown page.

Runs each part as a subprocess with its own ports and name prefix, keeps what each wrote
(docs/benchmarks/raw/<part>.json, or <part>.failed.json with its exit status and the tail of
its stderr), then writes (benchmarks/report_page.py) docs/benchmarks/README.md (the date, the machine, the targets of issue 13
met or missed, one table per part with ratios) and docs/benchmarks/time-to-notebook.png
(p50 and p95 time-to-notebook against burst size, one line per side, log-x).

    python benchmarks/report.py                          # everything, full sizes (hours)
    python benchmarks/report.py --only spawn,sessions --sizes 1,10 --students 10
    python benchmarks/report.py --from-raw docs/benchmarks/raw   # rebuild the page, run nothing

Rules: a part that fails, or wrote no JSON, is shown as failed with why (never as zeros), and
the page is still written. A target is "met" or "missed" only from a part's own numbers at the
size the target names; otherwise "not measured" says why. Ports from --port P: spawn P (and what
it derives, below P+300), sessions P+300, hub_load P+320, server_start P+360.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report_page import write_report  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT_DEFAULT = HERE.parent / "docs" / "benchmarks"
PARTS = ("spawn", "sessions", "reset", "publish", "hub_load", "server_start")
SCRIPTS = {"spawn": "spawn.py", "sessions": "sessions_start.py", "reset": "reset.py", "publish": "publish.py",
           "hub_load": "hub_load.py", "server_start": "server_start.py"}
PORT_OFFSETS = {"spawn": 0, "sessions": 300, "hub_load": 320, "server_start": 360}
PREFIXES = {"spawn": "sp", "sessions": "ss", "reset": "rs", "publish": "pb", "hub_load": "hl", "server_start": "st"}
BASELINE_IMAGE = "goldenhub/course-intro-python:baseline-0a0b8ec"
STDERR_TAIL = 3000  # characters of a failed part's stderr kept in the report

# --------------------------------------------------------------------------- running the parts


def part_command(part: str, args: argparse.Namespace, json_path: Path) -> list[str]:
    """The command line of one part; sizes from the report's flags, ports and prefixes of its own."""
    port = args.port + PORT_OFFSETS.get(part, 0)
    prefix = f"{args.prefix}{PREFIXES[part]}"
    cmd = [sys.executable, str(HERE / SCRIPTS[part])]
    if part == "spawn":
        cmd += ["--spawners", args.spawners, "--sizes", args.sizes, "--port", str(port), "--prefix", prefix]
    elif part == "sessions":
        cmd += ["--students", str(args.students), "--port", str(port), "--prefix", prefix]
    elif part == "reset":
        cmd += ["--homes", str(args.reset_homes), "--prefix", prefix]
    elif part == "publish":
        cmd += ["--cold-scope", "course", "--prefix", prefix]
    elif part == "hub_load":
        cmd += ["--students", str(args.students), "--restart-servers", str(args.restart_servers), "--port", str(port),
                "--prefix", prefix]
    elif part == "server_start":
        cmd += ["--images", f"{BASELINE_IMAGE},{args.image}", "--port", str(port), "--prefix", prefix]
    extra = dict(x.split("=", 1) for x in args.part_args)
    return cmd + shlex.split(extra.get(part, "")) + ["--json", str(json_path)]


def run_part(part: str, args: argparse.Namespace, raw: Path, log=print) -> None:
    """Run one part; its JSON lands in raw/<part>.json, or raw/<part>.failed.json says why not."""
    out, failed = raw / f"{part}.json", raw / f"{part}.failed.json"
    out.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)
    cmd = part_command(part, args, out)
    log(f"[{part}] {shlex.join(cmd)}")
    started = dt.datetime.now(dt.timezone.utc)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.part_timeout, cwd=HERE.parent)
        rc, stdout, stderr = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, stdout, stderr = 124, text_of(e.stdout), text_of(e.stderr)
        stderr += f"\nstopped after the part's limit of {args.part_timeout:.0f} s"
    (raw / f"{part}.log").write_text(stdout + "\n--- stderr ---\n" + stderr)
    data = load_json(out)
    if data is None or not isinstance(data, dict):
        out.unlink(missing_ok=True)
        failed.write_text(json.dumps({"part": part, "rc": rc, "command": shlex.join(cmd), "started": started.isoformat(),
                                      "why": "it wrote no JSON" if data is None else "its JSON is not an object",
                                      "stderr_tail": (stderr or stdout)[-STDERR_TAIL:]}, indent=1))
        log(f"[{part}] failed (exit {rc})")
        return
    data.setdefault("_report", {}).update({"rc": rc, "started": started.isoformat(),
                                           "stderr_tail": stderr[-STDERR_TAIL:] if rc else ""})
    out.write_text(json.dumps(data, indent=1))
    log(f"[{part}] done (exit {rc})")


def text_of(output) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_parts(raw: Path, parts: list[str]) -> dict[str, dict]:
    """Each part's data, or {"_failed": {...}} when it failed or left nothing."""
    found = {}
    for part in parts:
        data = load_json(raw / f"{part}.json")
        if isinstance(data, dict):
            found[part] = data
        else:
            failure = load_json(raw / f"{part}.failed.json")
            found[part] = {"_failed": failure if isinstance(failure, dict) else
                           {"part": part, "why": f"no {part}.json in {raw}"}}
    return found


# --------------------------------------------------------------------------- command line


def pick_parts(only: str, skip: str, p: argparse.ArgumentParser) -> list[str]:
    wanted = [x.strip() for x in (only or ",".join(PARTS)).split(",") if x.strip()]
    skipped = {x.strip() for x in (skip or "").split(",") if x.strip()}
    unknown = (set(wanted) | skipped) - set(PARTS)
    if unknown:
        p.error(f"no part {', '.join(sorted(unknown))}; the parts: {', '.join(PARTS)}")
    return [x for x in PARTS if x in wanted and x not in skipped]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help=f"comma-separated parts to run (default all: {', '.join(PARTS)})")
    p.add_argument("--skip", help="comma-separated parts not to run")
    p.add_argument("--from-raw", metavar="DIR", type=Path, help="rebuild the page from DIR/<part>.json, run nothing")
    p.add_argument("--out", type=Path, default=OUT_DEFAULT, help=f"where the page goes (default {OUT_DEFAULT})")
    p.add_argument("--port", type=int, default=34000, help="base port (see the module's docstring; default 34000)")
    p.add_argument("--prefix", default="rp", help="each part's names start with PREFIX + two letters (default rp)")
    p.add_argument("--spawners", default="stripped,real,stock", help="spawn.py's sides (default stripped,real,stock)")
    p.add_argument("--sizes", default="1,10,30,100", help="spawn.py's burst sizes (default 1,10,30,100)")
    p.add_argument("--students", type=int, default=30, help="the scheduled session's class and hub_load's burst (default 30)")
    p.add_argument("--reset-homes", type=int, default=100, help="homes reset.py resets (default 100)")
    p.add_argument("--restart-servers", type=int, default=100, help="hub_load.py's servers at the restart (default 100)")
    p.add_argument("--image", default="goldenhub/course-intro-python:latest",
                   help=f"server_start.py's new image, against {BASELINE_IMAGE}")
    p.add_argument("--part-args", action="append", default=[], metavar="PART=ARGS",
                   help="more arguments for one part, e.g. --part-args 'publish=--quick' (repeatable)")
    p.add_argument("--part-timeout", type=float, default=4 * 3600, help="seconds one part may take (default 4 h)")
    args = p.parse_args(argv)
    args.parts = pick_parts(args.only, args.skip, p)
    for x in args.part_args:
        if "=" not in x or x.split("=", 1)[0] not in PARTS:
            p.error(f"--part-args takes PART=ARGS with PART one of {', '.join(PARTS)}; got {x!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raw = args.out / "raw"
    if args.from_raw:
        if not args.from_raw.is_dir():
            print(f"error: {args.from_raw} is not a directory of raw JSONs", file=sys.stderr)
            return 2
        raw.mkdir(parents=True, exist_ok=True)
        if args.from_raw.resolve() != raw.resolve():  # the page's raw/ holds what it was built from
            for part in args.parts:
                for name in (f"{part}.json", f"{part}.failed.json"):
                    target = raw / name
                    target.unlink(missing_ok=True)
                    if (args.from_raw / name).is_file():
                        shutil.copy(args.from_raw / name, target)
    else:
        raw.mkdir(parents=True, exist_ok=True)
        for part in args.parts:
            run_part(part, args, raw)
    parts = load_parts(raw, args.parts)
    page = write_report(parts, args.out)
    print(f"wrote {page}")
    failed = [p for p, d in parts.items() if "_failed" in d]
    if failed:
        print(f"failed parts: {', '.join(failed)} (see {page})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
