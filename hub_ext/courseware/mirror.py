"""The hub's bare mirror of each course repository (the rules are in rules.py).

ensure_mirror() is blocking (git and file locks): call it from a thread. One fetch per
repository at a time, across processes (the hub's starts, the service's publish): an
fcntl lock per mirror; a start waits for it at most `wait_s`, then uses the last good
state. A fetch is bounded in time (killed at `timeout_s`) and size (killed when the
mirror passes `max_bytes`); git only updates refs at its end, so a killed fetch leaves the
last good mirror as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hub_ext.catalog import rules as catalog_rules
from hub_ext.courseware.rules import (DEFAULT_FETCH_TIMEOUT_S, DEFAULT_INTERVAL_S, DEFAULT_MAX_BYTES,
                                      MirrorRecord, allowed_protocols, fetch_due, mirror_name)

log = logging.getLogger("goldenhub.courseware")


@dataclass(frozen=True)
class MirrorSettings:
    root: Path  # <state>/courseware
    interval_s: float = DEFAULT_INTERVAL_S
    timeout_s: float = DEFAULT_FETCH_TIMEOUT_S
    max_bytes: int = DEFAULT_MAX_BYTES
    gateway: str = ""  # the host's address for host.docker.internal
    schemes: tuple[str, ...] = catalog_rules.GIT_SCHEMES

    @property
    def wait_s(self) -> float:
        return self.timeout_s + 5


@dataclass(frozen=True)
class Mirror:
    """A usable mirror: its host path and what is known of it."""

    path: Path
    record: MirrorRecord


def ensure_mirror(url: str, settings: MirrorSettings, asked_at: float | None = None,
                  clock=time.time) -> Mirror | None:
    """The mirror of `url`, fetched first when due; None when there is no good mirror (a bad
    URL, or never fetched and the remote down): the container then pulls as before."""
    asked_at = clock() if asked_at is None else asked_at
    try:
        catalog_rules.git_url(url, settings.schemes)
    except catalog_rules.RuleError as e:
        log.warning("Courseware %s is not mirrored: %s", catalog_rules.mask_url(url), e)
        return None
    root = Path(settings.root)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    path = root / mirror_name(url)
    with _locked(root / (path.name + ".lock"), settings.wait_s) as held:
        record = _read_record(path)
        if held and fetch_due(record, clock(), asked_at, settings.interval_s):
            record = _fetch(url, path, record, settings, clock)
    return Mirror(path, record) if record.usable and path.is_dir() else None


@contextlib.contextmanager
def _locked(lock_path: Path, wait_s: float):
    """Yields True when the lock is held, False when `wait_s` ran out (last good state then)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_record(path: Path) -> MirrorRecord:
    try:
        data = json.loads(_record_path(path).read_text())
        return MirrorRecord(str(data["url"]), float(data["fetched"]), float(data["tried"]), str(data["error"]))
    except (OSError, ValueError, KeyError, TypeError):
        return MirrorRecord()


def _write_record(path: Path, record: MirrorRecord) -> None:
    tmp = _record_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(_record_path(path))


def _fetch(url: str, path: Path, record: MirrorRecord, settings: MirrorSettings, clock) -> MirrorRecord:
    from hub_ext.images.course_env import host_url

    began = clock()
    source = host_url(url, settings.gateway)
    fresh = not (record.usable and path.is_dir())
    if fresh:
        # A first clone goes to a temporary directory, renamed into place only when complete.
        work = Path(tempfile.mkdtemp(prefix=".clone-", dir=path.parent))
        args = ["clone", "--quiet", "--mirror", "--no-recurse-submodules", "-c", "core.sharedRepository=0644",
                "--", source, str(work / "m.git")]
        target = work / "m.git"
    else:
        work, target = None, path
        args = ["--git-dir", str(path), "fetch", "--quiet", "--prune", "--no-recurse-submodules", "--", source,
                "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
    error = _run_git(args, target, settings, path.parent)
    if error is None and fresh:
        shutil.rmtree(path, ignore_errors=True)
        (work / "m.git").chmod(0o755)  # made inside a 0700 temporary directory
        (work / "m.git").rename(path)
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
    if error is None:
        new = MirrorRecord(url, began, began, "")
    else:
        _drop_partial_packs(path)
        log.warning("Fetching courseware %s failed (%s); %s", catalog_rules.mask_url(url), error,
                    "the last good mirror stays" if record.usable else "no mirror yet")
        new = MirrorRecord(url, record.fetched, began, error)
    _write_record(path, new)
    return new


def _run_git(args: list[str], watched: Path, settings: MirrorSettings, cwd: Path) -> str | None:
    """None when git succeeded; else why not (its last error line, 'timed out', 'too large')."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false",
           "GIT_ALLOW_PROTOCOL": allowed_protocols(settings.schemes), "GIT_CONFIG_NOSYSTEM": "1"}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(["git", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env, start_new_session=True,
                                umask=0o022)  # the container's user reads the mirror (never writes it)
        deadline = time.monotonic() + settings.timeout_s
        why = None
        while proc.poll() is None:
            if time.monotonic() > deadline:
                why = f"timed out after {settings.timeout_s:g} s"
            elif _size(watched) > settings.max_bytes:
                why = f"larger than {settings.max_bytes} bytes"
            if why:
                proc.kill()
                proc.wait()
                return why
            time.sleep(0.05)
        if proc.returncode == 0:
            return None
        err.seek(0)
        lines = [ln.strip() for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
        return (" ".join(lines[-2:]) or f"git exit status {proc.returncode}")[:300]


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _drop_partial_packs(path: Path) -> None:
    """A killed fetch's temporary pack files (its refs were never updated)."""
    pack = path / "objects" / "pack"
    if pack.is_dir():
        for p in pack.glob("tmp_*"):
            with contextlib.suppress(OSError):
                p.unlink()


def mirror_for_start(url: str, settings: MirrorSettings, clock=time.time) -> tuple[str, str]:
    """For a student's start: (the mirror's host path to mount read-only, or '' for none;
    the warning sentence when the mirror could not be refreshed, or '')."""
    from hub_ext.courseware.rules import stale_warning

    try:
        mirror = ensure_mirror(url, settings, clock=clock)
    except OSError as e:  # a full or unwritable state dir: the container pulls as before
        log.warning("Courseware mirror of %s unavailable: %s", catalog_rules.mask_url(url), e)
        return "", ""
    if mirror is None:
        return "", ""
    return str(mirror.path), stale_warning(mirror.record, clock())


def refresh_mirror(url: str, state_dir: Path, gateway: str = "") -> None:
    """On publish: fetch the course's mirror now, whatever the interval (never fatal)."""
    try:
        ensure_mirror(url, MirrorSettings(Path(state_dir) / "courseware", interval_s=0, gateway=gateway))
    except OSError as e:
        log.warning("Courseware mirror of %s not refreshed: %s", catalog_rules.mask_url(url), e)
