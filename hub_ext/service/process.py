"""The service process's tie to its hub: one service per state directory, gone with its hub.

Rules:
- The service belongs to the hub that started it (its parent process). When its parent
  changes (the hub was killed, even with -9, and the service was re-parented), the service
  stops: an orphan must never keep the port and answer for a hub that no longer exists.
- `goldenhub-service.pid` in the state directory names the running service and its hub.
  A new service finding a live goldenhub service there whose hub is gone stops it (TERM,
  then KILL after a bound) and takes over; one whose hub is still alive belongs to another
  hub on the same state directory, and the new one refuses to start, saying so.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from hub_ext.credentials import write_private
from hub_ext.procstat import parent_of

log = logging.getLogger("goldenhub.service")

PID_FILE = "goldenhub-service.pid"
STOP_WAIT = 10.0  # seconds an orphan gets to stop on SIGTERM before SIGKILL


class AnotherService(RuntimeError):
    """A live service of another live hub already serves this state directory."""


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def is_goldenhub_service(pid: int) -> bool:
    cmdline = _read_proc(pid, "cmdline") or b""
    return b"hub_ext.service" in cmdline.split(b"\0")


def _read_pid_file(path: Path) -> tuple[int, int] | None:
    try:
        service, hub = path.read_text().split()
        return int(service), int(hub)
    except (OSError, ValueError):
        return None


def _stop(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline:
            if parent_of(pid) is None:
                return
            time.sleep(0.1)


def claim(state_dir: Path, hub_pid: int) -> Path:
    """Record this process as the state directory's service (see the rules above)."""
    path = state_dir / PID_FILE
    old = _read_pid_file(path)
    if old and old[0] != os.getpid() and is_goldenhub_service(old[0]):
        service, its_hub = old
        if parent_of(service) == its_hub and its_hub != hub_pid:
            raise AnotherService(
                f"Another goldenhub service (pid {service}) of a running hub (pid {its_hub}) already serves "
                f"{state_dir}; stop that hub first, or give this hub its own GOLDENHUB_STATE_DIR.")
        log.warning("Stopping goldenhub service pid %s left behind by hub pid %s, which is gone", service, its_hub)
        _stop(service)
    write_private(path, f"{os.getpid()} {hub_pid}\n")
    return path


def release(path: Path) -> None:
    """Remove the pid file if it still names this process."""
    record = _read_pid_file(path)
    if record and record[0] == os.getpid():
        path.unlink(missing_ok=True)


def hub_is_gone(hub_pid: int) -> bool:
    """Whether this process was re-parented, i.e. the hub that started it has exited."""
    return os.getppid() != hub_pid
