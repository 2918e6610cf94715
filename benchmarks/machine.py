"""The machine a benchmark ran on, for every printed table and report: figures from two
machines are not comparable, so each result carries this."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import docker


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _docker_version() -> str:
    try:
        client = docker.from_env(timeout=10)
        try:
            return client.version().get("Version", "unknown")
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - a description, never a reason to fail a benchmark
        return "unreachable"


def describe() -> dict:
    """Cores, CPU model, memory, kernel, OS, Docker and Python versions of this machine."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
        if hasattr(platform, "freedesktop_os_release") else platform.system(),
        "docker": _docker_version(),
        "python": platform.python_version(),
        "gpus": len(list(Path("/dev").glob("nvidia[0-9]*"))),
    }


def describe_text(machine: dict | None = None) -> str:
    """One line: "2 cores (Intel ...), 24 GB, no GPU; Debian 12, kernel ..., Docker ...". """
    m = machine or describe()
    gpus = f"{m['gpus']} GPU(s)" if m.get("gpus") else "no GPU"
    return (f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {gpus}; {m['os']}, "
            f"kernel {m['kernel']}, Docker {m['docker']}, Python {m['python']}")


if __name__ == "__main__":
    print(describe_text())
