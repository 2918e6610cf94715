"""Resets: put a student's environment back to fresh without losing a file.

A reset moves the student's home volume to a dated backup volume; the next start finds no
home, creates a fresh one (Docker fills it from the image's /home/jovyan) and pulls the
courseware. Rules:

- A home is removed only after its copy has been verified: both sides are described by a
  manifest computed in the copying container (type, mode, owner, size, mtime, symlink target
  of every path, sha256 of every regular file) and the two manifests must be identical.
- Any failure leaves the home untouched and removes the partial copy.
- A volume that any container uses (running or not) is never moved, restored over or deleted.
- Deleting backups is a separate, explicit action, only for volumes labelled as backups.
- One operation at a time per home within a process; different homes run in parallel.

These are plain blocking functions taking a docker.DockerClient; async callers run them in a
thread pool.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import docker
import docker.errors
import requests

KIND = "goldenhub.kind"
BACKUP_OF = "goldenhub.backup-of"
USER = "goldenhub.user"
COURSE = "goldenhub.course"
CREATED = "goldenhub.created"
COPY_TIMEOUT = 3600  # seconds one copy-and-verify may take before it is abandoned

COPY_COMMAND = "cp -a /from/. /to/"
# Prints one manifest of the tree under $1; identical manifests mean identical trees.
# Directory sizes are left out: they depend on the directory's history, not its content.
_MANIFEST = r"""
manifest() {
  cd "$1" || exit 3
  { find . -type d -printf 'd %m %U:%G %T@ %p\0'
    find . ! -type d -printf '%y %m %U:%G %s %T@ %p -> %l\0'; } > /tmp/list || exit 3
  sort -z /tmp/list > /tmp/sorted || exit 3
  find . -type f -print0 > /tmp/files || exit 3
  sort -z /tmp/files > /tmp/files.sorted || exit 3
  xargs -0r sha256sum -- < /tmp/files.sorted > /tmp/sums || exit 3
  cat /tmp/sorted /tmp/sums > "$2"
}
"""
_SCRIPT = _MANIFEST + r"""
[ -z "$(ls -A /to)" ] || { echo "destination is not empty" >&2; exit 4; }
{COPY} || { echo "copy failed" >&2; exit 5; }
manifest /from /tmp/from.manifest
manifest /to /tmp/to.manifest
cmp -s /tmp/from.manifest /tmp/to.manifest || { echo "copy does not match its source" >&2; exit 6; }
cd /to && find . -type f -printf '%s\n' | awk '{s += $1; n++} END {print "files=" n+0 " bytes=" s+0}'
"""


class ResetError(Exception):
    """A reset operation was refused or failed; the message says what to do."""


class _CopyFailed(Exception):
    """A copy did not complete or did not verify; the message is the reason. `touched` is
    False when nothing was written (the destination was not empty, or no copy started), so
    the destination must be kept: it is not ours."""

    def __init__(self, reason: str, touched: bool = True):
        super().__init__(reason)
        self.touched = touched


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Backup:
    volume: str
    user: str
    course: str
    home_volume: str
    created: datetime
    size_bytes: int | None = None

    @classmethod
    def from_labels(cls, volume: str, labels: dict | None, size_bytes: int | None = None) -> Backup | None:
        """The backup a volume's labels describe, or None if they are not a goldenhub backup's."""
        labels = labels or {}
        if labels.get(KIND) != "backup" or not labels.get(BACKUP_OF):
            return None
        try:
            created = datetime.fromisoformat(labels.get(CREATED, ""))
        except ValueError:
            return None
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return cls(volume, labels.get(USER, ""), labels.get(COURSE, ""), labels[BACKUP_OF],
                   created.astimezone(timezone.utc), size_bytes)


def backup_volume_name(home_volume: str, when: datetime) -> str:
    return f"{home_volume}-backup-{when.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"


# --- per-home locks ----------------------------------------------------------------------

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def home_lock(home_volume: str) -> Iterator[None]:
    """Held for a whole operation on one home, so operations on it never interleave."""
    with _locks_guard:
        lock = _locks.setdefault(home_volume, threading.Lock())
    with lock:
        yield


# --- Docker helpers ----------------------------------------------------------------------


def _volume(client: docker.DockerClient, name: str):
    try:
        return client.volumes.get(name)
    except docker.errors.NotFound:
        return None


def _refuse_if_in_use(client: docker.DockerClient, volume: str, what: str) -> None:
    # The low-level call lists without inspecting each container, so it cannot trip over
    # an unrelated container removed meanwhile.
    users = client.api.containers(all=True, filters={"volume": volume})
    if users:
        listed = ", ".join(sorted(name.lstrip("/") for c in users for name in c.get("Names") or [c["Id"][:12]]))
        raise ResetError(f"{what} {volume} is used by container(s) {listed}: stop the student's "
                         "server (and remove those containers) first, then try again.")


def _create_backup_volume(client: docker.DockerClient, home_volume: str, when: datetime, labels: dict) -> str:
    """A new backup volume; a name taken already (even by another process meanwhile: Docker
    then returns the existing volume, with its own labels) gets the next numeric suffix."""
    base = backup_volume_name(home_volume, when)
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        if _volume(client, name) is None:
            if client.volumes.create(name=name, labels=labels).attrs.get("Labels") == labels:
                return name
    raise ResetError(f"Backup names {base}-* are all taken: delete old backups of {home_volume}, then try again.")


def _copy_and_verify(client: docker.DockerClient, source: str, dest: str, helper_image: str,
                     timeout: float) -> int:
    """Copy every file of volume `source` into the empty volume `dest` in a throwaway root
    container (source mounted read-only), verify it, and return the bytes of regular files."""
    script = _SCRIPT.replace("{COPY}", COPY_COMMAND)
    container = None
    try:
        try:
            container = client.containers.run(
                helper_image, entrypoint=["sh", "-c", script], user="0:0", network_mode="none",
                name=f"{dest}-copy", labels={KIND: "reset-helper"}, detach=True,
                volumes={source: {"bind": "/from", "mode": "ro"}, dest: {"bind": "/to", "mode": "rw"}},
            )
        except docker.errors.DockerException as e:
            raise _CopyFailed(f"the copying container for {dest} did not start: {e}", touched=False) from None
        try:
            code = container.wait(timeout=timeout)["StatusCode"]
        except requests.exceptions.RequestException:
            raise _CopyFailed(f"copying {source} to {dest} took longer than {timeout:g} s") from None
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
        match = re.search(r"files=(\d+) bytes=(\d+)", out)
        if code != 0 or not match:
            reason = err.splitlines()[-1] if err else f"exit status {code}"
            raise _CopyFailed(f"copying {source} to {dest} failed: {reason}", touched=code != 4)
        return int(match.group(2))
    except docker.errors.DockerException as e:
        raise _CopyFailed(f"copying {source} to {dest} failed: {e}") from None
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


def _remove_quietly(client: docker.DockerClient, name: str) -> None:
    """Remove a partial copy made by this operation (Docker keeps it if a container uses it)."""
    try:
        client.volumes.get(name).remove()
    except docker.errors.DockerException:
        pass


# --- operations --------------------------------------------------------------------------


def _move(client, home_volume, user, course, helper_image, when, timeout) -> Backup | None:
    home = _volume(client, home_volume)
    if home is None:
        return None
    _refuse_if_in_use(client, home_volume, "The home")
    when = when or utcnow()
    labels = {BACKUP_OF: home_volume, USER: user, COURSE: course, CREATED: when.isoformat(), KIND: "backup"}
    name = None
    try:
        name = _create_backup_volume(client, home_volume, when, labels)
        size = _copy_and_verify(client, home_volume, name, helper_image, timeout)
        # A container created meanwhile makes Docker refuse this removal: the home stays.
        home.remove()
    except (_CopyFailed, docker.errors.DockerException) as e:
        if name and getattr(e, "touched", True):
            _remove_quietly(client, name)
        raise ResetError(f"Could not move {home_volume} to a backup ({e}); the home was left as it was "
                         "and no backup was kept.") from None
    return Backup(name, user, course, home_volume, when, size)


def move_home_to_backup(client: docker.DockerClient, home_volume: str, *, user: str, course: str,
                        helper_image: str, when: datetime | None = None,
                        timeout: float = COPY_TIMEOUT) -> Backup | None:
    """Move a home to a new, verified backup volume and remove the home.

    Returns None when the home does not exist (it is fresh already)."""
    with home_lock(home_volume):
        return _move(client, home_volume, user, course, helper_image, when, timeout)


def list_backups(client: docker.DockerClient, user: str | None = None, course: str | None = None,
                 *, sizes: bool = False) -> list[Backup]:
    """Backups, newest first; `sizes` asks Docker for disk usage (slow with many volumes)."""
    filters = [f"{KIND}=backup"]
    filters += [f"{USER}={user}"] if user is not None else []
    filters += [f"{COURSE}={course}"] if course is not None else []
    usage = {}
    if sizes:
        usage = {v["Name"]: (v.get("UsageData") or {}).get("Size") for v in client.df().get("Volumes") or []}
    found = []
    for volume in client.volumes.list(filters={"label": filters}):
        size = usage.get(volume.name)
        size = size if isinstance(size, int) and size >= 0 else None  # Docker says -1 for unknown
        backup = Backup.from_labels(volume.name, volume.attrs.get("Labels"), size)
        if backup is not None:
            found.append(backup)
    return sorted(found, key=lambda b: (b.created, b.volume), reverse=True)


def _backup(client: docker.DockerClient, backup_volume: str) -> Backup:
    volume = _volume(client, backup_volume)
    if volume is None:
        raise ResetError(f"There is no volume {backup_volume}: list the backups to see which exist.")
    backup = Backup.from_labels(volume.name, volume.attrs.get("Labels"))
    if backup is None:
        raise ResetError(f"{backup_volume} is not a goldenhub backup: only volumes labelled "
                         f"{KIND}=backup can be restored or deleted.")
    return backup


def restore_backup(client: docker.DockerClient, backup_volume: str, *, helper_image: str,
                   when: datetime | None = None, timeout: float = COPY_TIMEOUT) -> Backup | None:
    """Put a backup's content back as the home it came from; the backup is kept.

    A home that exists now is first moved to a backup of its own, which is returned."""
    home_volume = _backup(client, backup_volume).home_volume
    with home_lock(home_volume):
        backup = _backup(client, backup_volume)  # it may have been deleted while we waited
        _refuse_if_in_use(client, home_volume, "The home")
        replaced = _move(client, home_volume, backup.user, backup.course, helper_image, when, timeout)
        try:
            if _volume(client, home_volume) is not None:  # another process started a server meanwhile
                raise _CopyFailed(f"{home_volume} was created again meanwhile", touched=False)
            client.volumes.create(name=home_volume, labels={USER: backup.user, COURSE: backup.course})
            _copy_and_verify(client, backup_volume, home_volume, helper_image, timeout)
        except (_CopyFailed, docker.errors.DockerException) as e:
            if getattr(e, "touched", True):
                _remove_quietly(client, home_volume)
            kept = f" the home it replaced is kept in backup {replaced.volume};" if replaced else ""
            home_now = ("the next start gets a fresh home" if getattr(e, "touched", True)
                        else f"{home_volume} was left as it is")
            raise ResetError(f"Restoring {backup_volume} failed ({e});{kept} {backup_volume} is unchanged "
                             f"and {home_now}; try the restore again.") from None
        return replaced


def delete_backup(client: docker.DockerClient, backup_volume: str) -> None:
    """Delete one backup for good (an explicit admin action)."""
    home_volume = _backup(client, backup_volume).home_volume
    with home_lock(home_volume):
        _backup(client, backup_volume)
        _refuse_if_in_use(client, backup_volume, "The backup")
        try:
            client.volumes.get(backup_volume).remove()
        except docker.errors.DockerException as e:
            raise ResetError(f"Could not delete backup {backup_volume} ({e}); it was kept.") from None


@contextmanager
def resetting(state_dir: Path, home_volume: str) -> Iterator[None]:
    """Mark a home as being reset for the duration, so the spawner refuses to start a
    server on it meanwhile (the hub and the service are different processes)."""
    marker = reset_marker(state_dir, home_volume)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(utcnow().isoformat())
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def reset_marker(state_dir: Path, home_volume: str) -> Path:
    return Path(state_dir) / "resetting" / home_volume
