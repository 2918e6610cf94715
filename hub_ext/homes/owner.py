"""Which process owns a marker or a helper container, and whether that process still lives.

An owner is (host, boot id, pid, process start time). Rules:

- Same host and boot: alive only if a process with that pid runs and started at that
  time (a reused pid is another process, and a zombie has exited: the owner is gone).
- Same host, another boot id: the machine restarted since, so the owner is gone.
- Another host: unknown (None); callers then go by the expiry time alone.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat),
    or None if there is no such process, or only its zombie (it has exited, unreaped)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, _start_time(pid) or "-")

    def label(self) -> str:
        """One string, fit for a Docker label or a marker file."""
        return f"{self.host}/{self.boot}/{self.pid}/{self.start}"

    @classmethod
    def parse(cls, text: object) -> Owner | None:
        if not isinstance(text, str):
            return None
        match = re.fullmatch(r"([^/\s]+)/([^/\s]+)/([0-9]{1,10})/([^/\s]+)", text)
        if not match:
            return None
        host, boot, pid, start = match.groups()
        return cls(host, boot, int(pid), start)

    def alive(self) -> bool | None:
        """True or False where this machine can tell; None for another host's process."""
        if self.host != socket.gethostname():
            return None
        if self.boot != _boot_id():
            return False
        return _start_time(self.pid) == self.start
