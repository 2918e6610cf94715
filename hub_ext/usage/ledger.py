"""GPU time accounting, pure: which student held which GPUs from when to when, and how many
GPU-hours that makes in a quota period.

Rules:
- A session is one container holding GPUs, from the moment Docker started it to the moment
  it stopped (Docker's own StartedAt/FinishedAt, or a start/die event's time): wall time
  held, busy or not, counted per GPU (2 GPUs for an hour = 2 GPU-hours).
- The ledger is reconciled with what Docker shows (reconcile): a running holder without a
  session opens one at its start time; a session whose container stopped closes at its
  stop time; a session whose container is gone without a stop time (removed while nobody
  watched) closes at the last time it was seen running — the only case not exact, bounded
  by the watch interval. A hub or service restart changes nothing: containers keep their
  times.
- Open sessions count up to `now` (one injectable clock for every computation).
- Periods: `week` starts Monday 00:00 UTC; `term` starts at the course's term start (the last
  term close, or the course's start); usage in a period is the overlap of each session with
  [period start, now].
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

PERIODS = ("term", "week")


@dataclass(frozen=True)
class Holder:
    """A container that holds GPUs, as Docker shows it now."""

    container_id: str
    user: str
    course: str
    template: str
    gpus: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None = None  # None while it runs


@dataclass(frozen=True)
class Session:
    container_id: str
    user: str
    course: str
    template: str
    gpus: tuple[str, ...]
    started_at: datetime
    last_seen: datetime
    ended_at: datetime | None = None

    def gpu_seconds(self, start: datetime, now: datetime) -> float:
        """GPU-seconds of this session inside [start, now]."""
        end = min(self.ended_at or now, now)
        return max(0.0, (end - max(self.started_at, start)).total_seconds()) * len(self.gpus)


@dataclass(frozen=True)
class Changes:
    opened: tuple[Session, ...] = ()
    closed: tuple[Session, ...] = ()
    seen: tuple[Session, ...] = ()  # open sessions whose last_seen moved to now


def reconcile(open_sessions: list[Session], holders: list[Holder], now: datetime) -> Changes:
    """What to write so the ledger matches Docker at `now` (see the module rules)."""
    by_container = {h.container_id: h for h in holders if h.gpus}
    opened, closed, seen = [], [], []
    for s in open_sessions:
        h = by_container.pop(s.container_id, None)
        if h is None:
            closed.append(replace(s, ended_at=s.last_seen))
        elif h.finished_at is not None:
            closed.append(replace(s, ended_at=max(h.finished_at, s.started_at), last_seen=now))
        else:
            seen.append(replace(s, last_seen=now))
    for h in by_container.values():
        session = Session(h.container_id, h.user, h.course, h.template, tuple(h.gpus), h.started_at, now)
        if h.finished_at is None:
            opened.append(session)
        else:  # started and stopped between two looks: still held, still counted
            opened.append(replace(session, ended_at=max(h.finished_at, h.started_at)))
    return Changes(tuple(opened), tuple(closed), tuple(seen))


def period_start(period: str, now: datetime, term_start: datetime | None = None) -> datetime:
    """When the quota period containing `now` began (UTC)."""
    if period == "week":
        day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if period == "term":
        return term_start or datetime.min.replace(tzinfo=timezone.utc)
    raise ValueError(f"period is {period!r}; allowed: {', '.join(PERIODS)}")


def gpu_hours(sessions: list[Session], user: str, course: str, start: datetime, now: datetime) -> float:
    """The GPU-hours `user` held in `course` from `start` to `now`."""
    seconds = sum(s.gpu_seconds(start, now) for s in sessions if s.user == user and s.course == course)
    return seconds / 3600
