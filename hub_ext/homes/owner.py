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

from hub_ext import procstat


def _boot_id() -> str:
    try:
        return (procstat.PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, procstat.start_time(pid) or "-")

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
        return procstat.start_time(self.pid) == self.start
