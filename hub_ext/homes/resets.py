"""Resets: put a student's environment back to fresh without losing a file.

The order of a reset (lock, marker, stop servers, move, audit) is hub_ext.homes.recipe;
this module is its copying step. A reset moves the student's home volume to a dated backup volume; the next start finds no
home, creates a fresh one (Docker fills it from the image's /home/jovyan) and pulls the
courseware. Rules:

- A home is removed only after its copy has been verified: both sides are described by a
  manifest computed in the copying container (type, mode, owner, size, mtime, symlink target
  of every path, a sha256 of every regular file's content) and the two must be identical.
- Any failure leaves the home untouched and removes the partial copy.
- A volume that any container uses (running or not) is never moved, restored over or deleted.
- Deleting backups is a separate, explicit action, only for volumes labelled as backups.
- One operation at a time per home within a process; different homes run in parallel.
- The helper image must exist on this machine: it is never pulled (it runs as root with
  homes mounted, so it must not come from a public registry).

Sparse files cost their allocated data, not their size: the copy is `cp --sparse=always`,
and files over 1 MiB are hashed by their non-zero 4 KiB blocks (with their offsets), read
only from the data extents that SEEK_DATA/SEEK_HOLE report. That hash does not depend on
where the holes are, so a hole and written zeros compare equal. A `truncate -s 1T` file
resets in about a second.

Verified or not. Each copy runs under two reset-helper containers labelled with the copy's
owner process (hub_ext.homes.owner), an expiry, the source and the destination: a *guard*
(created first, never started, mounting nothing) and the *copier* (whose mount creates the
destination volume, labelled with the operation's id). A volume named as the destination
of any reset-helper container is unverified: it is never listed, restored or deleted as a
backup. The copier is removed after verification, the guard after that, and only then is
the home removed. On failure the copier goes, then the destination, then the guard.

Crash points (the service killed at any moment) and what is left:

1. marker written, server stopping: the marker's owner is gone, so the spawner ignores and
   removes it; the home is untouched.
2. guard made, copier made or copying: the copy is unverified and not listed; at the next
   service start (or the next operation on the same volume) the stale helpers are removed
   with the copy they made. Never the source: the home, or the backup being restored.
3. copy verified, copier removed, guard still there: as 2 (the verified copy is removed;
   the home still holds every file).
4. guard removed, home not yet: a listed backup and the unchanged home, both complete.
5. home removed: the reset is done; the backup is listed.
A restore first moves the current home to a backup (points 1-5), then copies the backup
into a new home the same way: a crash leaves the backup intact and, at worst, no home (the
next start is fresh; restore again).

These are plain blocking functions taking a docker.DockerClient; async callers run them in a
thread pool.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import docker.errors
import requests
from docker.types import Mount

from hub_ext.contract import KIND_BACKUP, backup_volume_name
from hub_ext.contract import KIND_RESET_HELPER as HELPER
from hub_ext.contract import LABEL_BACKUP_OF as BACKUP_OF
from hub_ext.contract import LABEL_COURSE as COURSE
from hub_ext.contract import LABEL_CREATED as CREATED
from hub_ext.contract import LABEL_DEST as DEST
from hub_ext.contract import LABEL_EXPIRES as EXPIRES
from hub_ext.contract import LABEL_KIND as KIND
from hub_ext.contract import LABEL_OPERATION as OPERATION
from hub_ext.contract import LABEL_OWNER as OWNER
from hub_ext.contract import LABEL_RESTORED_FROM as RESTORED_FROM
from hub_ext.contract import LABEL_ROLE as ROLE
from hub_ext.contract import LABEL_SOURCE as SOURCE
from hub_ext.contract import LABEL_USER as USER
from hub_ext.homes.owner import Owner

COPY_TIMEOUT = 3600  # seconds one copy-and-verify may take before it is abandoned

COPY_COMMAND = "cp -a --sparse=always /from/. /to/"
# Reads NUL-separated paths; prints each path, NUL, then the sha256 of its non-zero 4 KiB
# blocks with their indexes, read from the data extents only (cost: the allocated data).
_CANONICAL_HASH = Path(__file__).with_name("reset_hash.pl").read_text()
# Prints one manifest of the tree under $1; identical manifests mean identical trees.
# Directory sizes are left out: they depend on the directory's history, not its content.
# Files up to 1 MiB are hashed whole (many at once); larger ones by their data blocks.
_MANIFEST = r"""
cat > /tmp/hash.pl <<'PERL' || exit 3
""" + _CANONICAL_HASH + r"""
PERL
manifest() {
  cd "$1" || exit 3
  { find . -type d -printf 'd %m %U:%G %T@ %p\0'
    find . ! -type d -printf '%y %m %U:%G %s %T@ %p -> %l\0'; } > /tmp/list || exit 3
  sort -z /tmp/list > /tmp/sorted || exit 3
  find . -type f ! -size +1048575c -print0 > /tmp/small || exit 3
  sort -z /tmp/small > /tmp/small.sorted || exit 3
  xargs -0r sha256sum -- < /tmp/small.sorted > /tmp/sums || exit 3
  find . -type f -size +1048575c -print0 > /tmp/big || exit 3
  sort -z /tmp/big > /tmp/big.sorted || exit 3
  perl /tmp/hash.pl < /tmp/big.sorted > /tmp/bigsums || exit 3
  cat /tmp/sorted /tmp/sums /tmp/bigsums > "$2"
}
"""
_SCRIPT = _MANIFEST + r"""
[ -z "$(ls -A /to)" ] || { echo "destination is not empty" >&2; exit 4; }
{COPY} || { echo "copy failed" >&2; exit 5; }
manifest /from /tmp/from.manifest
manifest /to /tmp/to.manifest
cmp -s /tmp/from.manifest /tmp/to.manifest || { echo "copy does not match its source" >&2; exit 6; }
cd /to && find . -type f -printf '%s\n' | awk '{s += $1; n++} END {printf "files=%d bytes=%.0f\n", n, s}'
"""


class ResetError(Exception):
    """A reset operation was refused or failed; the message says what to do."""


class _CopyFailed(Exception):
    """A copy did not complete or did not verify; the message is the reason. `kept` names
    a partial copy that could not be removed (it stays unverified, never listed)."""

    def __init__(self, reason: str, kept: str | None = None):
        super().__init__(reason)
        self.kept = kept


class _NameTaken(Exception):
    """The destination volume exists already (made by someone else)."""


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
        if labels.get(KIND) != KIND_BACKUP or not labels.get(BACKUP_OF):
            return None
        try:
            created = datetime.fromisoformat(labels.get(CREATED, ""))
        except ValueError:
            return None
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return cls(volume, labels.get(USER, ""), labels.get(COURSE, ""), labels[BACKUP_OF],
                   created.astimezone(timezone.utc), size_bytes)


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


def ensure_helper_image(client: docker.DockerClient, image: str) -> None:
    """Refuse unless the helper image is on this machine (it is never pulled)."""
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ResetError(f"The reset helper image {image} is not on this machine, and goldenhub never "
                         "downloads it: build it with `bash .ci/setup` (or `goldenhub images build "
                         "--offline-base`), then try again.") from None


def _helpers(client: docker.DockerClient) -> list[dict]:
    """Every reset-helper container (guards and copiers), as the list API gives them."""
    return client.api.containers(all=True, filters={"label": f"{KIND}={HELPER}"})


def unverified_volumes(client: docker.DockerClient) -> set[str]:
    """Volumes that a copy is being made into, or was interrupted making: not backups."""
    return {(h.get("Labels") or {}).get(DEST) for h in _helpers(client)} - {None}


def _remove_container(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass


def _remove_volume(client: docker.DockerClient, name: str, operation: str) -> bool:
    """Remove a volume made by this operation (its OPERATION label says so); True when it
    is gone. Docker refuses while a container uses it."""
    volume = _volume(client, name)
    if volume is None:
        return True
    if (volume.attrs.get("Labels") or {}).get(OPERATION) != operation:
        return False  # not ours: never removed
    try:
        volume.remove()
        return True
    except docker.errors.DockerException:
        return False


def _abandon(client: docker.DockerClient, helpers: list[dict]) -> str | None:
    """Undo one copy: its copier, then the volume it made, then its guard (kept, with the
    copy, if the copy cannot be removed). Returns the copy's name if it was kept."""
    labels = helpers[0].get("Labels") or {}
    dest, operation = labels.get(DEST, ""), labels.get(OPERATION, "")
    for h in helpers:
        if (h.get("Labels") or {}).get(ROLE) != "guard":
            _remove_container(client, h["Id"])
    if dest and not _remove_volume(client, dest, operation):
        return dest
    for h in helpers:
        _remove_container(client, h["Id"])
    return None


def remove_stale_helpers(client: docker.DockerClient, volume: str | None = None,
                         prefix: str | None = None) -> list[str]:
    """Undo copies whose owner process is gone (or, on another host, whose time passed),
    only those reading or writing `volume`, or those into volumes named `prefix`...
    Returns a line per copy undone."""
    now = utcnow()
    stale: dict[str, list[dict]] = {}
    for h in _helpers(client):
        labels = h.get("Labels") or {}
        if volume is not None and volume not in (labels.get(SOURCE), labels.get(DEST)):
            continue
        if prefix is not None and not str(labels.get(DEST, "")).startswith(prefix):
            continue
        owner = Owner.parse(labels.get(OWNER))
        alive = owner.alive() if owner else False
        if alive is None:
            try:
                alive = now < datetime.fromisoformat(labels.get(EXPIRES, ""))
            except (TypeError, ValueError):
                alive = False
        if not alive:
            stale.setdefault(labels.get(OPERATION, h["Id"]), []).append(h)
    done = []
    for helpers in stale.values():
        labels = helpers[0].get("Labels") or {}
        kept = _abandon(client, helpers)
        what = f"an interrupted copy of {labels.get(SOURCE)} into {labels.get(DEST)}"
        done.append(f"{what}: kept, still in use (retried at the next start)" if kept
                    else f"{what}: removed the partial copy; {labels.get(SOURCE)} is untouched")
    return done


def _copy_and_verify(client: docker.DockerClient, source: str, dest: str, dest_labels: dict,
                     helper_image: str, timeout: float) -> int:
    """Copy every file of volume `source` into a new volume `dest` (made with `dest_labels`,
    which carry the OPERATION id) in a throwaway root container (source mounted read-only),
    verify it, and return the bytes of regular files. Raises _NameTaken if `dest` exists."""
    operation = dest_labels[OPERATION]
    labels = {KIND: HELPER, OWNER: Owner.current().label(), OPERATION: operation, SOURCE: source,
              DEST: dest, EXPIRES: (utcnow() + timedelta(seconds=timeout + 600)).isoformat()}
    if _volume(client, dest) is not None:
        raise _NameTaken(dest)
    if _volume(client, source) is None:  # a mount would create it, empty
        raise _CopyFailed(f"{source} does not exist")
    try:
        guard = client.api.create_container(helper_image, ["true"], name=f"{dest}-guard",
                                            labels={**labels, ROLE: "guard"}, network_disabled=True)
    except docker.errors.APIError as e:
        if e.status_code == 409:
            raise _NameTaken(dest) from None
        raise _CopyFailed(f"the copying container for {dest} could not be made: {e}") from None
    helpers = [{"Id": guard["Id"], "Labels": {**labels, ROLE: "guard"}}]
    try:
        try:
            container = client.containers.create(
                helper_image, entrypoint=["sh", "-c", _SCRIPT.replace("{COPY}", COPY_COMMAND)], user="0:0",
                network_mode="none", name=f"{dest}-copy", labels={**labels, ROLE: "copy"},
                mounts=[Mount("/from", source, type="volume", read_only=True, no_copy=True),
                        Mount("/to", dest, type="volume", no_copy=True, labels=dest_labels)])
            helpers.insert(0, {"Id": container.id, "Labels": {**labels, ROLE: "copy"}})
            if (_volume(client, dest).attrs.get("Labels") or {}).get(OPERATION) != operation:
                raise _NameTaken(dest)  # made by someone else just before: theirs, not ours
            container.start()
        except docker.errors.DockerException as e:
            raise _CopyFailed(f"the copying container for {dest} did not start: {e}") from None
        try:
            code = container.wait(timeout=timeout)["StatusCode"]
        except requests.exceptions.RequestException:
            raise _CopyFailed(f"copying {source} to {dest} took longer than {timeout:g} s") from None
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
        match = re.search(r"files=(\d+) bytes=(\d+)", out)
        if code != 0 or not match:
            reason = err.splitlines()[-1] if err else f"exit status {code}"
            raise _CopyFailed(f"copying {source} to {dest} failed: {reason}")
        # Verified: the copier goes first, then the guard, and the copy counts.
        _remove_container(client, container.id)
        _remove_container(client, guard["Id"])
        return int(match.group(2))
    except _NameTaken:
        for h in helpers:
            _remove_container(client, h["Id"])
        raise
    except (_CopyFailed, docker.errors.DockerException) as e:
        kept = _abandon(client, helpers)
        raise _CopyFailed(str(e), kept) from None


def _operation_id() -> str:
    return secrets.token_hex(8)


# --- operations --------------------------------------------------------------------------


def _move(client, home_volume, user, course, helper_image, when, timeout) -> Backup | None:
    if _volume(client, home_volume) is None:
        return None
    ensure_helper_image(client, helper_image)
    remove_stale_helpers(client, home_volume)
    _refuse_if_in_use(client, home_volume, "The home")
    when = when or utcnow()
    labels = {BACKUP_OF: home_volume, USER: user, COURSE: course, CREATED: when.isoformat(), KIND: KIND_BACKUP,
              OPERATION: _operation_id()}
    base = backup_volume_name(home_volume, when)
    try:
        for n in range(1, 1000):
            name = base if n == 1 else f"{base}-{n}"
            try:
                size = _copy_and_verify(client, home_volume, name, labels, helper_image, timeout)
                break
            except _NameTaken:
                continue  # a name taken already (even by another process meanwhile): the next suffix
        else:
            raise ResetError(f"Backup names {base}-* are all taken: delete old backups of {home_volume}, "
                             "then try again.")
        # A container created meanwhile makes Docker refuse this removal: the home stays.
        client.volumes.get(home_volume).remove()
    except (_CopyFailed, docker.errors.DockerException) as e:
        kept = getattr(e, "kept", None)
        what = (f"the partial copy {kept} is kept, marked unverified, and removed at the service's next "
                "start" if kept else "no backup was kept")
        raise ResetError(f"Could not move {home_volume} to a backup ({e}); the home was left as it was "
                         f"and {what}.") from None
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
    """Verified backups, newest first; `sizes` asks Docker for disk usage (slow with many volumes)."""
    filters = [f"{KIND}={KIND_BACKUP}"]
    filters += [f"{USER}={user}"] if user is not None else []
    filters += [f"{COURSE}={course}"] if course is not None else []
    usage = {}
    if sizes:
        usage = {v["Name"]: (v.get("UsageData") or {}).get("Size") for v in client.df().get("Volumes") or []}
    unverified = unverified_volumes(client)
    found = []
    for volume in client.volumes.list(filters={"label": filters}):
        if volume.name in unverified:
            continue
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
                         f"{KIND}={KIND_BACKUP} can be restored or deleted.")
    if backup_volume in unverified_volumes(client):
        raise ResetError(f"{backup_volume} is an unverified copy (being made, or interrupted), not a "
                         "backup: list the backups to see which exist.")
    return backup


def restore_backup(client: docker.DockerClient, backup_volume: str, *, helper_image: str,
                   when: datetime | None = None, timeout: float = COPY_TIMEOUT) -> Backup | None:
    """Put a backup's content back as the home it came from; the backup is kept.

    A home that exists now is first moved to a backup of its own, which is returned."""
    home_volume = _backup(client, backup_volume).home_volume
    with home_lock(home_volume):
        backup = _backup(client, backup_volume)  # it may have been deleted while we waited
        ensure_helper_image(client, helper_image)
        remove_stale_helpers(client, home_volume)
        _refuse_if_in_use(client, home_volume, "The home")
        replaced = _move(client, home_volume, backup.user, backup.course, helper_image, when, timeout)
        labels = {USER: backup.user, COURSE: backup.course, RESTORED_FROM: backup_volume,
                  OPERATION: _operation_id()}
        kept = f" the home it replaced is kept in backup {replaced.volume};" if replaced else ""
        try:
            _copy_and_verify(client, backup_volume, home_volume, labels, helper_image, timeout)
        except _NameTaken:  # another process started a server meanwhile
            raise ResetError(f"Restoring {backup_volume} stopped: {home_volume} was created again meanwhile "
                             f"and was left as it is;{kept} {backup_volume} is unchanged; stop the "
                             "student's server and try again.") from None
        except _CopyFailed as e:
            home_now = (f"the partial copy in {home_volume} is marked unverified and removed at the service's "
                        "next start" if e.kept else "the next start gets a fresh home")
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
