"""A course-wide reset: move N students' homes to verified backups, N at a time bounded.

Creates N home volumes (named and labelled as the spawner makes them) holding a few MB each
(a random data file, a notebook checkpoint directory, small files), then resets all of them
through hub_ext.homes.resets.move_home_to_backup in a thread pool, as the hub service does, and
removes everything it created. There is no stock comparison: stock DockerSpawner has no
reset (an admin removes containers and volumes by hand, losing the files).

    python benchmarks/reset.py --homes 100 --concurrency 4 --mb 4 --json out.json

With --via-service the reset goes the way an admin's does: one POST to the goldenhub
service of a real hub ({"course": ..., "all": true}), while a probe measures how fast the
hub's own API keeps answering during the reset (it must never be blocked).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

if __package__ in (None, ""):  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_ext import contract  # noqa: E402
from hub_ext.homes import resets  # noqa: E402
from tests.helpers import remove_docker_objects  # noqa: E402

COURSE = "bench-course"
HELPER_IMAGE = contract.DEFAULT_HELPER_IMAGE
HOMES_PER_WRITER = 25  # volumes one data-making container mounts
MAX_MB = 64  # per home: keeps a run within the disk of these machines
WRITE_TIMEOUT = 600  # seconds for one data-making container


def make_homes(client: docker.DockerClient, prefix: str, count: int, mb: int, image: str) -> list[str]:
    """N labelled home volumes with ~mb MB each, filled by one container per batch."""
    homes = []
    for i in range(count):
        name = contract.home_volume_name(prefix, f"student{i:03d}", COURSE)
        client.volumes.create(name=name, labels={contract.LABEL_USER: f"student{i:03d}", contract.LABEL_COURSE: COURSE})
        homes.append(name)
    fill = (f"head -c {mb}M /dev/urandom > /tmp/data.bin && for h in /homes/*; do "
            "cp /tmp/data.bin $h/data.bin && mkdir -p $h/.ipynb_checkpoints $h/notes && "
            "for n in $(seq 1 20); do echo \"note $n of $h\" > $h/notes/$n.md; done && "
            "echo '{\"cells\": []}' > $h/.ipynb_checkpoints/lab-checkpoint.ipynb && "
            "chown -R 1000:100 $h || exit 1; done")
    for start in range(0, count, HOMES_PER_WRITER):
        batch = homes[start:start + HOMES_PER_WRITER]
        container = client.containers.run(
            image, entrypoint=["sh", "-c", fill], user="0:0", network_mode="none", detach=True,
            name=f"{prefix}-writer-{start}",
            volumes={h: {"bind": f"/homes/{n}", "mode": "rw"} for n, h in enumerate(batch)})
        try:
            code = container.wait(timeout=WRITE_TIMEOUT)["StatusCode"]
            if code != 0:
                raise RuntimeError(f"making homes failed: {container.logs().decode()[-1000:]}")
        finally:
            container.remove(force=True)
    return homes


def reset_all(client: docker.DockerClient, homes: list[str], concurrency: int, image: str) -> list[dict]:
    def one(home: str) -> dict:
        user = client.volumes.get(home).attrs["Labels"][contract.LABEL_USER]
        started = time.monotonic()
        try:
            backup = resets.move_home_to_backup(client, home, user=user, course=COURSE, helper_image=image)
            return {"home": home, "ok": backup is not None, "seconds": time.monotonic() - started,
                    "bytes": backup.size_bytes if backup else 0, "error": None}
        except resets.ResetError as e:
            return {"home": home, "ok": False, "seconds": time.monotonic() - started, "bytes": 0, "error": str(e)}

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, homes))


def probe_hub(hub, stop, latencies: list[float]) -> None:
    """GET /hub/api/ every 0.2 s until `stop` is set, recording each answer's time."""
    import requests

    while not stop.is_set():
        started = time.monotonic()
        requests.get(f"{hub.url}/hub/api/", timeout=30)
        latencies.append(time.monotonic() - started)
        stop.wait(0.2)


def reset_via_service(prefix: str, homes: list[str], workdir: Path) -> tuple[list[dict], dict]:
    """A course-wide reset through a real hub's goldenhub service; returns per-student
    results and the hub's API latency before and during the reset."""
    import secrets
    import threading

    import requests

    from tests.helpers import copy_courses, start_hub

    courses = copy_courses(workdir / "courses")
    (courses / f"{COURSE}.yaml").write_text(
        f"id: {COURSE}\ntitle: Benchmark course\naccess: everyone\ntemplates:\n  - id: {COURSE}-cpu\n    title: CPU\n"
        "    image: goldenhub/course-intro-python:latest\n    gpus: 0\n    cpu: 1\n    memory: 512M\n")
    hub = start_hub(workdir / "state", courses, 18700, prefix, secrets.token_hex(16))
    try:
        users = [f"student{i:03d}" for i in range(len(homes))]
        hub.request("POST", "/users", json={"usernames": users + ["admin"]})
        token = hub.request("POST", "/users/admin/tokens", json={"note": "benchmark"}).json()["token"]
        before: list[float] = []
        stop = threading.Event()
        probe_hub_thread = threading.Thread(target=probe_hub, args=(hub, stop, before))
        probe_hub_thread.start()
        time.sleep(3)
        stop.set()
        probe_hub_thread.join()
        during: list[float] = []
        stop = threading.Event()
        probe_hub_thread = threading.Thread(target=probe_hub, args=(hub, stop, during))
        probe_hub_thread.start()
        started = time.monotonic()
        try:
            r = requests.post(f"{hub.url}/services/goldenhub/api/resets", timeout=3600,
                              headers={"Authorization": f"token {token}"},
                              json={"course": COURSE, "all": True, "confirm": COURSE})
        finally:
            elapsed = time.monotonic() - started
            stop.set()
            probe_hub_thread.join()
        r.raise_for_status()
        results = [{"home": x["user"], "ok": x["result"] == "ok", "seconds": 0.0, "bytes": 0,
                    "error": None if x["result"] == "ok" else x["message"]} for x in r.json()["results"]]
        return results, {"before": before, "during": during, "elapsed": elapsed}
    finally:
        hub.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=100, help="students in the course (default 100)")
    parser.add_argument("--concurrency", type=int, default=4, help="resets at once (default 4)")
    parser.add_argument("--mb", type=int, default=4, help=f"MB of data per home (default 4, at most {MAX_MB})")
    parser.add_argument("--prefix", default="ghbench-reset", help="name prefix of everything created")
    parser.add_argument("--helper-image", default=HELPER_IMAGE, help="image of the copying containers")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--via-service", action="store_true",
                        help="reset through a real hub's goldenhub service API and probe the hub meanwhile")
    args = parser.parse_args(argv)
    if not 1 <= args.mb <= MAX_MB or args.homes < 1 or args.concurrency < 1:
        parser.error(f"--homes and --concurrency must be at least 1 and --mb within 1..{MAX_MB}")

    client = docker.from_env()
    remove_docker_objects(args.prefix)
    try:
        started = time.monotonic()
        homes = make_homes(client, args.prefix, args.homes, args.mb, args.helper_image)
        print(f"made {len(homes)} homes of ~{args.mb} MB in {time.monotonic() - started:.1f} s", flush=True)

        started = time.monotonic()
        latency = None
        if args.via_service:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                results, latency = reset_via_service(args.prefix, homes, Path(tmp))
        else:
            results = reset_all(client, homes, args.concurrency, args.helper_image)
        total = latency["elapsed"] if latency else time.monotonic() - started
        backups = [b for b in resets.list_backups(client, course=COURSE) if b.volume.startswith(args.prefix)]
        existing = {v.name for v in client.volumes.list(filters={"name": args.prefix})}
        left = [h for h in homes if h in existing]
    finally:
        remove_docker_objects(args.prefix)

    ok = [r for r in results if r["ok"]]
    seconds = sorted(r["seconds"] for r in ok) or [0.0]
    moved = sum(r["bytes"] for r in ok)
    how = "through the goldenhub service API, 4 at a time" if args.via_service else f"{args.concurrency} at a time"
    print(f"course-wide reset of {args.homes} homes, {how} "
          f"(copy + sha256 verification + removal of the home each):")
    print(f"  ok: {len(ok)}/{args.homes}; backups made: {len(backups)}; homes left: {len(left)}")
    if latency:  # the service reports results, not per-student timings or sizes
        print(f"  total: {total:.1f} s from the admin's request to the answer; "
              f"per student: {total / args.homes:.2f} s; ~{args.mb} MB moved each")
    else:
        print(f"  total: {total:.1f} s; {moved / 2**20:.0f} MB moved, {moved / 2**20 / total:.1f} MB/s")
        print(f"  per student: {total / args.homes:.2f} s of the total; each reset p50 "
              f"{statistics.median(seconds):.2f} s, max {seconds[-1]:.2f} s; "
              f"{moved / max(len(ok), 1) / 2**20:.1f} MB moved each")
    if latency:
        for phase in ("before", "during"):
            values = sorted(latency[phase]) or [0.0]
            print(f"  hub API answer time {phase} the reset: p50 {statistics.median(values) * 1000:.0f} ms, "
                  f"max {values[-1] * 1000:.0f} ms over {len(values)} probes")
    for r in results:
        if r["error"]:
            print(f"  failed {r['home']}: {r['error']}")
    print("  no stock comparison: stock DockerSpawner has no reset (an admin deletes volumes by hand, "
          "losing the files)")
    if args.json:
        args.json.write_text(json.dumps({"homes": args.homes, "concurrency": args.concurrency, "mb": args.mb,
                                         "total_s": total, "ok": len(ok), "results": results}, indent=1))
    return 0 if len(ok) == args.homes else 1


if __name__ == "__main__":
    sys.exit(main())
