"""What a pass of the sessions loop does, decided as data: a pure function of the time, the
sessions, their students, the hub's servers, the free GPUs and who came last time.

Rules (every one tested in tests/test_sessions_units.py):
- Pre-start window: from `lead_minutes` before the start until the start. A cancelled session
  starts nobody; a lead of 0 pre-starts nobody.
- Who: the members of the course's student group (course:<id>) with no server running or
  starting and no record in this session yet (a student is pre-started at most once per
  session: one whose pre-started server was stopped is never started again by it).
- Order: the students who came to the course's last session (opened the server it started) first,
  then by name.
- Rate: at most `rate` starts per pass, all sessions together (the spawner's admission queue
  takes them from there).
- GPUs: a GPU template's starts only while free GPUs remain (free GPUs minus those the
  pre-starts still starting will take), `gpus` per server.
- Ready: the first pass that sees a pre-started server ready records when (real time). Every
  activity the start itself causes (the hub's spawn, the proxy's new route, the server's own
  start report) is dated before that; so
- Lost: a pre-started server gone before it was ever seen ready (its start failed or was
  refused: quota, image, no GPU) is recorded as failed.
- Opened: a pre-started server whose hub last_activity is more than OPEN_MARGIN after it was
  seen ready (someone used it through the proxy, or its API or kernels).
- Stop unopened: from STOP_UNOPENED after the start until the session's end (after it the idle
  culler's rules apply), and at once for a cancelled session, only servers this session
  started (the same server: the hub's `started` recorded at the pre-start) that nobody opened,
  and never one that another session's pre-start window keeps (overlapping sessions).
  A server the student started, restarted or used is never stopped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

OPEN_MARGIN = timedelta(seconds=5)
STOP_UNOPENED = timedelta(minutes=20)
PRE_STARTED, OPENED, STOPPED_UNOPENED, FAILED = "pre-started", "opened", "stopped-unopened", "failed"
STATES = (PRE_STARTED, OPENED, STOPPED_UNOPENED, FAILED)


@dataclass(frozen=True)
class Session:
    id: int
    course: str
    template: str
    gpus: int  # GPUs one server of the template takes (0: CPU)
    starts_at: datetime
    minutes: int
    lead_minutes: int
    cancelled: bool = False

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.minutes)

    @property
    def window_opens(self) -> datetime:
        return self.starts_at - timedelta(minutes=self.lead_minutes)

    def pre_starting(self, now: datetime) -> bool:
        return not self.cancelled and self.window_opens <= now < self.starts_at

    def keeps(self, now: datetime) -> bool:
        """Its pre-started servers are wanted now: from its window until STOP_UNOPENED in."""
        return not self.cancelled and self.window_opens <= now < self.starts_at + STOP_UNOPENED


@dataclass(frozen=True)
class Server:
    """A student's default server as the hub reports it."""

    active: bool  # ready or starting
    pending: bool = False
    started: datetime | None = None
    last_activity: datetime | None = None


@dataclass(frozen=True)
class Record:
    """What a session did for one student (the page's row)."""

    state: str
    server_started: datetime | None = None  # the hub's `started` of the server it pre-started
    ready_seen: datetime | None = None  # when a pass first saw that server ready (real time)


@dataclass(frozen=True)
class Facts:
    session: Session
    students: tuple[str, ...]
    records: dict[str, Record] = field(default_factory=dict)
    attended: frozenset[str] = frozenset()  # came to the course's last session


@dataclass
class Plan:
    start: list[tuple[int, str]] = field(default_factory=list)  # (session id, user)
    ready: list[tuple[int, str]] = field(default_factory=list)  # seen ready for the first time
    lost: list[tuple[int, str]] = field(default_factory=list)  # gone before it was ever ready
    opened: list[tuple[int, str]] = field(default_factory=list)
    stop: list[tuple[int, str]] = field(default_factory=list)


def ours(record: Record, server: Server | None) -> bool:
    """The server running now is the one the session pre-started (not a later one)."""
    return bool(server and server.active and record.server_started is not None
                and server.started == record.server_started)


def was_opened(record: Record, server: Server) -> bool:
    return bool(record.ready_seen and server.last_activity and server.last_activity > record.ready_seen + OPEN_MARGIN)


def order(students, attended) -> list[str]:
    return sorted(students, key=lambda u: (u not in attended, u))


def plan(now: datetime, facts: list[Facts], servers: dict[str, Server], free_gpus: int, rate: int) -> Plan:
    """The starts, newly opened servers and stops of one pass (see the module's rules)."""
    result = Plan()
    keepers: dict[str, set[int]] = {}
    for f in facts:
        if f.session.keeps(now):
            for u in f.students:
                keepers.setdefault(u, set()).add(f.session.id)
    starting_gpus = sum(f.session.gpus for f in facts for u, r in f.records.items()
                        if r.state == PRE_STARTED and ours(r, servers.get(u)) and servers[u].pending)
    gpus_left = free_gpus - starting_gpus
    budget = rate
    for f in sorted(facts, key=lambda f: (f.session.starts_at, f.session.id)):
        s = f.session
        for user, record in sorted(f.records.items()):
            server = servers.get(user)
            if record.state != PRE_STARTED:
                continue
            if not ours(record, server):
                if record.ready_seen is None and record.server_started is not None:
                    result.lost.append((s.id, user))
                continue
            if record.ready_seen is None and not server.pending:
                result.ready.append((s.id, user))
            if was_opened(record, server):
                result.opened.append((s.id, user))
                continue
            stop_time = s.cancelled or s.starts_at + STOP_UNOPENED <= now < s.ends_at
            held = keepers.get(user, set()) - {s.id}
            if stop_time and not held and not server.pending:
                result.stop.append((s.id, user))
        if not s.pre_starting(now):
            continue
        for user in order(f.students, f.attended):
            if budget <= 0:
                break
            server = servers.get(user)
            if user in f.records or (server and server.active):
                continue
            if any(u == user for _, u in result.start):
                continue  # another session starts them this pass
            if s.gpus:
                if gpus_left < s.gpus:
                    break
                gpus_left -= s.gpus
            result.start.append((s.id, user))
            budget -= 1
    return result
