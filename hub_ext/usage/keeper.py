"""The keeper's decisions, pure: which running servers are busy on their GPUs (activity is
posted for them), which are about to be culled (their owner is warned), which warnings go,
and which vanished servers were culled.

Rules:
- A server is busy when any GPU it holds reads busy (gpu_load.GPULoad.busy with the
  platform's busy_utilisation): the keeper posts activity for it, so the idle culler, which
  only sees the hub's last_activity, keeps it. A GPU at 0 % with no browser activity is idle.
- A server's cull is due at last_activity + its template's idle timeout (0: never culled;
  an unknown template: the platform default). From warn before due the owner has a `cull`
  notice; any activity moves due later and the notice goes.
- A server that was warned and is gone once its due time has come was culled: the keeper
  records it (audit) and drops the notice. A warned server gone before its due time was
  stopped by someone else: the notice just goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub_ext import contract
from hub_ext.catalog.usage_rules import CPU_IDLE_DEFAULT
from hub_ext.service.db import as_utc

DEFAULT_IDLE_MINUTES = CPU_IDLE_DEFAULT  # a server whose template is unknown (the culler's --timeout)


@dataclass(frozen=True)
class Running:
    user: str
    server: str  # "" for the default server
    template: str  # template id ("" when unknown)
    gpus: tuple[str, ...]
    last_activity: datetime


@dataclass(frozen=True)
class Warn:
    user: str
    server: str
    template: str
    due_at: datetime
    idle_minutes: int


@dataclass
class Plan:
    activity: list[Running] = field(default_factory=list)  # post activity (now) for these
    warn: list[Warn] = field(default_factory=list)  # put (or move) their cull notice
    clear: list[tuple[str, str]] = field(default_factory=list)  # (user, server): drop the cull notice
    culled: list[tuple[str, str]] = field(default_factory=list)  # (user, server): record a cull, drop notice


def running_servers(users: list[dict]) -> list[Running]:
    """The ready servers in the hub's user models (with state: the GPUs it holds)."""
    found = []
    for user in users:
        for name, server in (user.get("servers") or {}).items():
            if not server.get("ready") or server.get("pending") or server.get("stopped"):
                continue
            seen = server.get("last_activity") or server.get("started")
            if not seen:
                continue
            found.append(Running(user["name"], name, contract.requested_template_of(server),
                                 tuple(contract.gpus_of(server)), parse_time(seen)))
    return found


def parse_time(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def decide(running: list[Running], busy_gpus: set[str], timeouts: dict[str, int], default_timeout: int,
           warned: dict[tuple[str, str], datetime], now: datetime, warn: timedelta, unit: timedelta) -> Plan:
    """What to do now. timeouts: template id -> idle timeout in units (minutes, or seconds in
    tests); warned: (user, server) -> due_at of the cull notices that exist."""
    plan = Plan()
    present = set()
    for r in running:
        key = (r.user, r.server)
        present.add(key)
        last = r.last_activity
        if busy_gpus.intersection(r.gpus):
            plan.activity.append(r)
            last = now
        limit = timeouts.get(r.template, default_timeout)
        if limit <= 0:  # never culled
            if key in warned:
                plan.clear.append(key)
            continue
        due = last + limit * unit
        if now >= due - warn:
            plan.warn.append(Warn(r.user, r.server, r.template, due, limit))
        elif key in warned:
            plan.clear.append(key)
    for key, due in warned.items():
        if key not in present:
            (plan.culled if now >= due else plan.clear).append(key)
    return plan


def idle_minutes(template) -> int:
    """A template's idle timeout in minutes (0: never culled)."""
    return int(template.idle_timeout)


def idle_timeouts(catalog) -> dict[str, int]:
    """Template id -> idle timeout in minutes, for every template of a catalog."""
    return {tid: idle_minutes(t) for tid, t in catalog.templates.items()}
