"""What benchmarks/spawn.py reads off the machine during a burst: CPU of the hub's process
tree (/proc) and of a container (its cgroup), a ready container's marks (Docker's created and
started times, the startup script's phase lines), and the hub's start events (SQLite)."""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

import docker

from benchmarks.phases import as_epoch, container_marks, docker_time

CLK_TCK = os.sysconf("SC_CLK_TCK")
CGROUP_CPUACCT = (
    Path("/sys/fs/cgroup/cpuacct/docker"),
    Path("/sys/fs/cgroup/cpu,cpuacct/docker"),
    Path("/sys/fs/cgroup/system.slice"),  # cgroup v2 with the systemd driver: docker-<id>.scope
)


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


def container_cpu(cid: str, cg_root: Path | None) -> float | None:
    """CPU seconds a container has used so far (cgroup v1 cpuacct, or v2 cpu.stat)."""
    if cg_root is None:
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


def container_facts(client: docker.DockerClient, name: str,
                    cg_root: Path | None) -> tuple[dict, float | None, str]:
    """A ready container's marks (created, started, the startup script's), its CPU so far and
    the id of the image it runs (a tag rebuilt during a run changes it)."""
    try:
        c = client.containers.get(name)
        logs = c.logs(stdout=True, stderr=False).decode(errors="replace")
    except docker.errors.DockerException:
        return {}, None, ""
    marks = {k: v for k, v in (("created", docker_time(c.attrs.get("Created", ""))),
                               ("started", docker_time(c.attrs.get("State", {}).get("StartedAt", ""))))
             if v is not None}
    return {**marks, **container_marks(logs)}, container_cpu(c.id, cg_root), c.attrs.get("Image", "")


def start_event_marks(state_dir: Path, users: list[str]) -> dict[str, dict[str, float]]:
    """user → queued/admitted of their latest start, from the service's SQLite start_events
    (read-only; {} where the database or the table is not there)."""
    path = state_dir / "goldenhub.sqlite"
    if not users or not path.exists():
        return {}
    marks: dict[str, dict[str, float]] = {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            rows = db.execute(
                f"SELECT username, queued_at, admitted_at FROM start_events WHERE username IN "
                f"({','.join('?' * len(users))}) ORDER BY id", users).fetchall()
    except sqlite3.Error as e:
        print(f"warning: start events not readable ({e}); no hub/queue phases", file=sys.stderr)
        return {}
    for user, queued, admitted in rows:  # later rows (a user's latest start) win
        found = {k: as_epoch(datetime.fromisoformat(v)) for k, v in (("queued", queued), ("admitted", admitted)) if v}
        marks[user] = found
    return marks


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
