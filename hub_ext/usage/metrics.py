"""Prometheus metrics of the platform, computed at each scrape from what is true then: Docker
(servers running, GPUs they hold), the service database (start events, audit log, usage
ledger) and the GPU inventory the hub published (spawner.start_events.INVENTORY_FILE).

Rules:
- A fresh CollectorRegistry per scrape, never prometheus_client's global one: nothing is kept
  between scrapes, so two services or a test never see each other's numbers.
- read_facts() does every blocking read (Docker, database, file); make_families() is pure
  (facts in, metric families out) and tested without Docker. scrape() runs both and is
  called in a thread by the handler (hub_ext.service.metrics_api), never on the event loop.
- Counters are counts of rows (start events, audit entries, ledger sessions), so they grow
  as rows are written and stay right across service restarts.
- Start queue: starts queued, not admitted and not finished, queued less than STALE_AFTER
  ago (a row left by a hub that died mid-start stops counting once no start could still
  be waiting). Start durations: queued → finished of the starts that succeeded, per template.
- GPU-hours per course: each ledger session's wall time × its GPUs (a CPU session, marked
  records.CPU_MARK, counts none); an open session up to now.
- Servers running: this hub's student containers (named <prefix>-…, with goldenhub labels)
  that Docker reports running, per course and template. GPUs allocated: the distinct GPU ids
  on those containers; free: the inventory's ids not allocated (only once it is published).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from hub_ext import contract
from hub_ext.service.db import AuditEntry, StartEvent, UsageSession, as_utc, utcnow
from hub_ext.usage.records import CPU_MARK

# Longer than any start may take: GoldenSpawner.start_timeout is queue_timeout (1800 s) +
# 3 × http_timeout + 600 s by default.
STALE_AFTER = timedelta(minutes=45)
DURATION_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass
class Facts:
    """Everything one scrape reports, as plain data."""

    running: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # (course, template, gpu ids)
    inventory: list[str] | None = None
    queued: int = 0
    durations: dict[str, list[float]] = field(default_factory=dict)  # template → seconds of ok starts
    failures: dict[tuple[str, str], int] = field(default_factory=dict)  # (outcome, reason) → starts
    quota_refusals: dict[str, int] = field(default_factory=dict)  # course → starts refused over quota
    resets: dict[tuple[str, str], int] = field(default_factory=dict)  # (course, result) → resets
    culls: dict[str, int] = field(default_factory=dict)  # course → culls
    gpu_hours: dict[str, float] = field(default_factory=dict)  # course → GPU-hours


# --- blocking reads --------------------------------------------------------------------------------


def running_containers(api, prefix: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(course, template, gpu ids) of this hub's running student containers (docker APIClient)."""
    found = []
    for c in api.containers(filters={"label": contract.LABEL_GPUS, "status": "running"}):
        labels = c.get("Labels") or {}
        names = [n.lstrip("/") for n in c.get("Names") or []]
        if contract.LABEL_USER not in labels or contract.LABEL_KIND in labels:
            continue
        if not any(n.startswith(f"{prefix}-") for n in names):
            continue
        gpus = tuple(g for g in labels.get(contract.LABEL_GPUS, "").split(",") if g)
        found.append((labels.get(contract.LABEL_COURSE, ""), labels.get(contract.LABEL_TEMPLATE, ""), gpus))
    return found


def read_database(db: sessionmaker, now: datetime, facts: Facts) -> Facts:
    """The database's part of the facts (start events, audit log, ledger)."""
    with db() as s:
        facts.queued = s.scalar(select(func.count()).select_from(StartEvent).where(
            StartEvent.admitted_at.is_(None), StartEvent.finished_at.is_(None),
            StartEvent.queued_at > now - STALE_AFTER)) or 0
        durations: dict[str, list[float]] = {}
        for template, queued_at, finished_at in s.execute(select(
                StartEvent.template, StartEvent.queued_at, StartEvent.finished_at).where(
                StartEvent.outcome == "ok", StartEvent.finished_at.is_not(None))):
            seconds = (as_utc(finished_at) - as_utc(queued_at)).total_seconds()
            durations.setdefault(template, []).append(max(0.0, seconds))
        facts.durations = durations
        facts.failures = {(o, r): n for o, r, n in s.execute(
            select(StartEvent.outcome, StartEvent.reason, func.count()).where(
                StartEvent.outcome.in_(("failed", "refused"))).group_by(StartEvent.outcome, StartEvent.reason))}
        facts.quota_refusals = {c: n for c, n in s.execute(
            select(StartEvent.course, func.count()).where(
                StartEvent.outcome == "refused", StartEvent.reason == "quota").group_by(StartEvent.course))}
        facts.resets = {(c, r): n for c, r, n in s.execute(
            select(AuditEntry.course, AuditEntry.result, func.count()).where(
                AuditEntry.action.like("reset%")).group_by(AuditEntry.course, AuditEntry.result))}
        facts.culls = {c: n for c, n in s.execute(
            select(AuditEntry.course, func.count()).where(AuditEntry.action == "cull").group_by(AuditEntry.course))}
        hours: Counter = Counter()
        for course, gpus, started, ended in s.execute(select(
                UsageSession.course, UsageSession.gpus, UsageSession.started_at, UsageSession.ended_at)):
            count = len([g for g in gpus.split(",") if g and g != CPU_MARK])
            seconds = ((as_utc(ended) if ended else now) - as_utc(started)).total_seconds()
            hours[course] += max(0.0, seconds) * count / 3600
        facts.gpu_hours = dict(hours)
    return facts


def read_facts(ctx, state_dir: Path, now: datetime | None = None) -> Facts:
    """Every blocking read of one scrape (run it in a thread)."""
    from spawner.start_events import read_inventory

    facts = Facts(running=running_containers(ctx.docker.api, ctx.prefix), inventory=read_inventory(state_dir))
    return read_database(ctx.db, now or utcnow(), facts)


# --- pure: facts → metric families ----------------------------------------------------------------


def histogram_buckets(values: list[float], bounds=DURATION_BUCKETS) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs, +Inf last, as Prometheus histograms expose them."""
    buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in bounds]
    return buckets + [("+Inf", float(len(values)))]


def make_families(facts: Facts) -> list:
    servers = GaugeMetricFamily("goldenhub_servers_running", "Student servers running, per course and template.",
                                labels=["course", "template"])
    for (course, template), n in sorted(Counter((c, t) for c, t, _ in facts.running).items()):
        servers.add_metric([course, template], n)
    allocated = {g for _, _, gpus in facts.running for g in gpus}
    families = [servers, GaugeMetricFamily("goldenhub_gpus_allocated", "GPUs held by running student servers.",
                                           value=len(allocated))]
    if facts.inventory is not None:
        families += [
            GaugeMetricFamily("goldenhub_gpus_total", "GPUs the hub hands out to students.",
                              value=len(facts.inventory)),
            GaugeMetricFamily("goldenhub_gpus_free", "GPUs no running student server holds.",
                              value=len(set(facts.inventory) - allocated)),
        ]
    families.append(GaugeMetricFamily("goldenhub_start_queue_length", "Starts waiting for a start slot.",
                                      value=facts.queued))
    duration = HistogramMetricFamily("goldenhub_start_duration_seconds",
                                     "Seconds from a start's request to its server answering, per template "
                                     "(successful starts).", labels=["template"])
    for template, values in sorted(facts.durations.items()):
        duration.add_metric([template], histogram_buckets(values), sum(values))
    failures = CounterMetricFamily("goldenhub_spawn_failures", "Starts that failed or were refused, by reason.",
                                   labels=["outcome", "reason"])
    for (outcome, reason), n in sorted(facts.failures.items()):
        failures.add_metric([outcome, reason or "other"], n)
    refusals = CounterMetricFamily("goldenhub_quota_refusals", "Starts refused because the GPU-hour quota was "
                                   "used up, per course.", labels=["course"])
    for course, n in sorted(facts.quota_refusals.items()):
        refusals.add_metric([course], n)
    resets = CounterMetricFamily("goldenhub_resets", "Resets of students' environments, per course and result.",
                                 labels=["course", "result"])
    for (course, result), n in sorted(facts.resets.items()):
        resets.add_metric([course, result], n)
    culls = CounterMetricFamily("goldenhub_culls", "Idle servers stopped by the culler, per course.",
                                labels=["course"])
    for course, n in sorted(facts.culls.items()):
        culls.add_metric([course], n)
    hours = CounterMetricFamily("goldenhub_gpu_hours", "GPU-hours held by students' servers, per course.",
                                labels=["course"])
    for course, value in sorted(facts.gpu_hours.items()):
        hours.add_metric([course], round(value, 6))
    return families + [duration, failures, refusals, resets, culls, hours]


class FactsCollector:
    """A prometheus_client collector over one scrape's facts."""

    def __init__(self, facts: Facts):
        self.facts = facts

    def collect(self):
        yield from make_families(self.facts)


def exposition(facts: Facts) -> bytes:
    """The text format of these facts, from a registry of their own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FactsCollector(facts))
    return generate_latest(registry)


def scrape(ctx, state_dir: Path) -> bytes:
    """One scrape, start to end (blocking: the handler runs it in a thread)."""
    return exposition(read_facts(ctx, state_dir))
