"""What /proc says of a process on this machine: the one reader of /proc/PID/stat for the
service's pid file (hub_ext.service.process) and for reset owners (hub_ext.homes.owner).

Rule: a zombie (state Z) or a dead entry (X) has exited, only its parent has not reaped it
yet; it counts as gone."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (the first is the state, the
    second the parent pid, the twentieth the start time), or None if the process is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields


def parent_of(pid: int) -> int | None:
    """The parent pid of a live process (None when it is gone)."""
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None when it is gone)."""
    fields = stat_fields(pid)
    return fields[19] if fields else None


def alive(pid: int) -> bool:
    return stat_fields(pid) is not None
