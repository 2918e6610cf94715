"""What one Jupyter server start costs inside the container, image against image.

One real jupyterhub (this checkout's config, GoldenSpawner) serves a stripped template per
image (no courseware, no dataset; 1 CPU, 512M). Starts are sequential and interleaved: round r
starts image 1, then image 2, ..., each stopped before the next, so every image sees the
machine in the same state. Per start it records the wall time from the spawn request to the
server answering through the proxy, and the container's CPU-seconds (cgroup) at that moment
and after --settle seconds more (work a server does right after it answers still costs a
burst). It prints p50 per image and the ratio of each image to the first (the baseline):

    python benchmarks/server_start.py --starts 5 \\
        --images goldenhub/course-intro-python:baseline-0a0b8ec,goldenhub/course-intro-python:latest

The machine it ran on is printed and stored in --json. Figures from a busy machine are noisy:
compare only images measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import docker
import requests

if __package__ in (None, ""):  # run as a script: the checkout's packages come first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import machine  # noqa: E402
from benchmarks.phases import percentile  # noqa: E402
from hub_ext import contract  # noqa: E402
from tests.helpers import Hub, remove_docker_objects, start_hub, wait_for  # noqa: E402

DEFAULT_IMAGES = ("goldenhub/course-intro-python:baseline-0a0b8ec,"
                  "goldenhub/course-intro-python:latest")
POLL_INTERVAL = 0.2  # seconds between readiness probes
STOP_TIMEOUT = 120  # seconds for a stopped server to be gone
# cgroup v1 (cpuacct per container id) or v2 with the systemd driver (docker-<id>.scope)
CGROUP_ROOTS = (
    Path("/sys/fs/cgroup/cpuacct/docker"),
    Path("/sys/fs/cgroup/cpu,cpuacct/docker"),
    Path("/sys/fs/cgroup/system.slice"),
)


@dataclass
class Start:
    image: str
    ok: bool = False
    wall_s: float | None = None
    cpu_s: float | None = None  # container CPU when the server first answered
    cpu_settled_s: float | None = None  # ... and --settle seconds later
    message: str = ""


@dataclass
class ImageResult:
    image: str
    starts: list[Start] = field(default_factory=list)

    def values(self, name: str) -> list[float]:
        return [getattr(s, name) for s in self.starts if s.ok and getattr(s, name) is not None]

    def summary(self) -> dict:
        return {
            "image": self.image,
            "starts": len(self.starts),
            "ok": sum(s.ok for s in self.starts),
            "cpu_s_p50": percentile(self.values("cpu_s"), 0.5),
            "cpu_settled_s_p50": percentile(self.values("cpu_settled_s"), 0.5),
            "wall_s_p50": percentile(self.values("wall_s"), 0.5),
        }


# --------------------------------------------------------------------------- pure parts




def parse_images(text: str) -> list[str]:
    """A comma-separated list of at least one image reference, no duplicates."""
    images = [part.strip() for part in text.split(",") if part.strip()]
    if not images:
        raise ValueError("--images names no image; give e.g. goldenhub/course-intro-python:latest")
    if len(set(images)) != len(images):
        raise ValueError(f"--images names an image twice: {text}")
    return images


def parse_cpu(path_name: str, text: str) -> float:
    """CPU-seconds from cpuacct.usage (nanoseconds) or a cgroup v2 cpu.stat (usage_usec)."""
    if path_name == "cpuacct.usage":
        return int(text.strip()) / 1e9
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    raise ValueError(f"no usage_usec in {path_name}")


def ratio(new: float | None, base: float | None) -> float | None:
    return None if new is None or not base else new / base


def plan_rounds(images: list[str], starts: int, warmup: int) -> list[tuple[int, str, bool]]:
    """(round, image, counted) in order: warm-up rounds first (not counted), every round
    starting each image once, in the given order."""
    return [(r, image, r >= warmup) for r in range(warmup + starts) for image in images]


def make_course(courses_dir: Path, images: list[str]) -> dict[str, str]:
    """One course with a stripped template per image; returns image -> template id."""
    courses_dir.mkdir(parents=True, exist_ok=True)
    ids = {image: f"start-{i}" for i, image in enumerate(images)}
    templates = "".join(textwrap.dedent(f"""\
          - id: {ids[image]}
            title: Server start {i}
            image: {json.dumps(image)}
            gpus: 0
            cpu: 1
            memory: 512M
        """) for i, image in enumerate(images))
    (courses_dir / "serverstart.yaml").write_text(
        "id: serverstart\ntitle: Server start benchmark\naccess: everyone\ntemplates:\n" + templates)
    return ids


def format_report(results: list[ImageResult], machine_text: str) -> str:
    base = results[0].summary()
    lines = [f"machine: {machine_text}",
             "== sequential starts, stripped template (p50; ratios against the first image) ==",
             f"{'image':<58} {'ok/N':>6} {'CPU-s':>7} {'CPU-s+settle':>13} {'wall s':>7} "
             f"{'CPU ratio':>10} {'wall ratio':>11}"]

    def fmt(x: float | None, spec: str = ".2f") -> str:
        return "-" if x is None else format(x, spec)

    for r in results:
        s = r.summary()
        lines.append(f"{s['image']:<58} {str(s['ok']) + '/' + str(s['starts']):>6} {fmt(s['cpu_s_p50']):>7} "
                     f"{fmt(s['cpu_settled_s_p50']):>13} {fmt(s['wall_s_p50']):>7} "
                     f"{fmt(ratio(s['cpu_s_p50'], base['cpu_s_p50'])):>10} "
                     f"{fmt(ratio(s['wall_s_p50'], base['wall_s_p50'])):>11}")
    for r in results:
        for s in r.starts:
            if not s.ok:
                lines.append(f"failed start of {r.image}: {s.message}")
    return "\n".join(lines)


def make_json(results: list[ImageResult], machine_info: dict) -> dict:
    summaries = [r.summary() for r in results]
    base = summaries[0]
    return {
        "machine": machine_info,
        "results": summaries,
        "ratio_cpu": ratio(summaries[-1]["cpu_s_p50"], base["cpu_s_p50"]) if len(summaries) > 1 else None,
        "ratio_wall": ratio(summaries[-1]["wall_s_p50"], base["wall_s_p50"]) if len(summaries) > 1 else None,
    }


# --------------------------------------------------------------------------- measuring


def container_cpu(client: docker.DockerClient, name: str) -> float | None:
    """CPU-seconds the container has used so far, or None where no cgroup is readable."""
    try:
        cid = client.containers.get(name).id
    except docker.errors.DockerException:
        return None
    for root in CGROUP_ROOTS:
        for path in (root / cid / "cpuacct.usage", root / f"docker-{cid}.scope" / "cpu.stat"):
            try:
                return parse_cpu(path.name, path.read_text())
            except (OSError, ValueError):
                continue
    return None


def one_start(hub: Hub, client: docker.DockerClient, prefix: str, user: str, image: str,
              template: str, deadline_s: float, settle_s: float) -> Start:
    """Start the user's server, wait until it answers through the proxy, read its CPU, stop it."""
    out = Start(image)
    session = requests.Session()
    session.headers["Authorization"] = f"token {hub.token}"
    name = contract.container_name(prefix, user)
    try:
        t0 = time.monotonic()
        r = session.post(f"{hub.api}/users/{user}/server", json={"template": template}, timeout=deadline_s)
        if r.status_code not in (201, 202):
            out.message = f"spawn answered {r.status_code}: {r.text[:200]}"
            return out
        while time.monotonic() - t0 < deadline_s:
            try:
                s = session.get(f"{hub.url}/user/{user}/api/status", allow_redirects=False, timeout=10)
                if s.status_code == 200 and "started" in s.json():
                    out.wall_s = time.monotonic() - t0
                    out.cpu_s = container_cpu(client, name)
                    time.sleep(settle_s)
                    out.cpu_settled_s = container_cpu(client, name)
                    out.ok = True
                    return out
            except (requests.RequestException, ValueError):
                pass
            time.sleep(POLL_INTERVAL)
        out.message = f"not ready within {deadline_s:.0f}s"
        return out
    finally:
        session.close()
        stop(hub, user)


def stop(hub: Hub, user: str) -> None:
    hub.request("DELETE", f"/users/{user}/server")

    def gone() -> bool:
        r = hub.request("GET", f"/users/{user}")
        return r.status_code == 200 and not r.json().get("servers")

    wait_for(gone, STOP_TIMEOUT, f"{user}'s server stopping", interval=0.5)


@contextmanager
def running_hub(images: list[str], port: int, prefix: str, workdir: Path, log=print) -> Iterator[tuple[Hub, dict]]:
    remove_docker_objects(prefix)
    ids = make_course(workdir / "courses", images)
    log(f"starting jupyterhub on 127.0.0.1:{port} (prefix {prefix})")
    hub = start_hub(workdir / "state", workdir / "courses", port, prefix, secrets.token_hex(16))
    try:
        yield hub, ids
    except Exception:
        print(f"--- last lines of the hub log ({hub.log_path}) ---\n{hub.log_tail(40)}", file=sys.stderr)
        raise
    finally:
        hub.terminate()
        remove_docker_objects(prefix)


def run(images: list[str], starts: int, warmup: int, port: int, prefix: str, deadline_s: float,
        settle_s: float, workdir: Path, log=print) -> list[ImageResult]:
    results = {image: ImageResult(image) for image in images}
    client = docker.from_env()
    try:
        with running_hub(images, port, prefix, workdir, log) as (hub, ids):
            users = [f"s{i}" for i in range(len(images))]
            r = hub.request("POST", "/users", json={"usernames": users})
            if r.status_code not in (201, 409):
                raise RuntimeError(f"creating users failed: {r.status_code} {r.text[:200]}")
            for rnd, image, counted in plan_rounds(images, starts, warmup):
                user = users[images.index(image)]
                s = one_start(hub, client, prefix, user, image, ids[image], deadline_s, settle_s)
                tag = "" if counted else " (warm-up, not counted)"
                log(f"round {rnd} {image}: " + (f"{s.wall_s:.2f}s, CPU {s.cpu_s}" if s.ok else s.message) + tag)
                if counted:
                    results[image].starts.append(s)
    finally:
        client.close()
    return [results[i] for i in images]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", default=DEFAULT_IMAGES,
                   help="comma-separated images; the first is the baseline of the ratios (default: %(default)s)")
    p.add_argument("--starts", type=int, default=5, help="counted starts per image (default: 5)")
    p.add_argument("--warmup", type=int, default=1, help="uncounted rounds first (default: 1)")
    p.add_argument("--port", type=int, default=33000, help="the hub's port; it also takes the next 3 and +22")
    p.add_argument("--prefix", default="ls", help="prefix of the hub's Docker objects (default: ls)")
    p.add_argument("--deadline", type=float, default=180, help="seconds a start may take (default: 180)")
    p.add_argument("--settle", type=float, default=3, help="seconds after answering before the second CPU reading")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if not 1 <= args.starts <= 200 or not 0 <= args.warmup <= 10:
        p.error("--starts must be 1..200 and --warmup 0..10")
    try:
        args.images = parse_images(args.images)
    except ValueError as e:
        p.error(str(e))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine.describe()
    with tempfile.TemporaryDirectory(prefix="goldenhub-server-start-") as tmp:
        results = run(args.images, args.starts, args.warmup, args.port, args.prefix, args.deadline,
                      args.settle, Path(tmp))
    print(format_report(results, machine.describe_text(info)))
    if args.json:
        args.json.write_text(json.dumps(make_json(results, info), indent=2) + "\n")
    return 0 if all(s.ok for r in results for s in r.starts) else 1


if __name__ == "__main__":
    sys.exit(main())
