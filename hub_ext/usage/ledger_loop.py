"""The ledger loop: every EVERY seconds, Docker's metered containers → the usage ledger
(hub_ext.usage.ledger.reconcile, written by records.write_changes), then quotas enforced on
the servers that run (hub_ext.usage.quotas: warn, then stop through the hub).

Rules:
- Metered: this hub's student containers (named <prefix>-…, with goldenhub labels) that hold
  GPUs, and those of a CPU template with a quota (their gpus recorded as "cpu").
- Times are Docker's: State.StartedAt/FinishedAt of a container that is still there, and the
  start/die events (read back from Docker since the last look) of one the spawner already
  removed — so a stop, a cull, a crash and a hub or service restart are exact to the second.
  Only a container gone with no event left in Docker's buffer closes at its last look.
- end_reason: quota or cull when an audit row (action quota-stop / cull) for the student
  falls inside the session (up to REASON_SLACK after it); else crash when it died with a
  non-zero exit code and nobody asked Docker to stop or kill it; else stop; gone when
  nothing is known.
- Docker, the catalog and the database run in a thread; the hub's stop calls are async.
  One pass at a time; a failing pass is logged and tried again next time.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from tornado import ioloop

from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred, told
from hub_ext import contract
from hub_ext.homes import stop_notes
from hub_ext.hubclient import HubAPIError
from hub_ext.service.db import AuditEntry, utcnow
from hub_ext.usage import ledger, notices, quotas, records

log = logging.getLogger("goldenhub.ledger")
EVERY = 30  # seconds between two looks
REASON_SLACK = timedelta(minutes=5)
EVENTS = ("start", "die", "stop", "kill")
_TIME_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def docker_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 time with nanoseconds → an aware datetime; None for its zero time."""
    m = _TIME_RE.fullmatch(text or "")
    if not m or m.group(1).startswith("0001-"):
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = m.group(3) or "Z"
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if zone == 'Z' else zone}").astimezone(timezone.utc)


def _ours(labels: dict, name: str, prefix: str) -> bool:
    return (contract.LABEL_USER in labels and contract.LABEL_GPUS in labels and contract.LABEL_KIND not in labels
            and name.lstrip("/").startswith(f"{prefix}-"))


def _gpus(labels: dict, quota_templates: set[str]) -> tuple[str, ...]:
    gpus = tuple(g for g in labels.get(contract.LABEL_GPUS, "").split(",") if g)
    if not gpus and labels.get(contract.LABEL_TEMPLATE, "") in quota_templates:
        return (records.CPU_MARK,)
    return gpus


class LedgerLoop:
    def __init__(self, ctx, prefix: str, clock=utcnow, every: float = EVERY, warn_minutes: int = notices.WARN_MINUTES):
        self.ctx = ctx
        self.warn_minutes = warn_minutes
        self.prefix = prefix
        self.clock = clock
        self.every = every
        self.busy = False
        self.last_look: datetime | None = None

    # --- facts (blocking) ------------------------------------------------------------------

    def holders(self, now: datetime, quota_templates: set[str], since: datetime):
        """Metered containers as Holders, and for each id what its events say:
        {"exit": int|None, "asked": bool} (asked: someone stopped or killed it)."""
        api = self.ctx.docker.api
        found: dict[str, ledger.Holder] = {}
        facts: dict[str, dict] = {}
        for entry in api.containers(all=True, filters={"label": contract.LABEL_GPUS}):
            labels = entry.get("Labels") or {}
            if not _ours(labels, (entry.get("Names") or [""])[0], self.prefix):
                continue
            gpus = _gpus(labels, quota_templates)
            if not gpus:
                continue
            try:
                state = api.inspect_container(entry["Id"]).get("State") or {}
            except Exception:  # removed between the listing and now: its events tell
                continue
            started = docker_time(state.get("StartedAt"))
            if started is None:
                continue  # created, never started: held nothing yet
            finished = None if state.get("Running") else (docker_time(state.get("FinishedAt")) or now)
            found[entry["Id"]] = ledger.Holder(entry["Id"], labels[contract.LABEL_USER],
                                               labels.get(contract.LABEL_COURSE, ""),
                                               labels.get(contract.LABEL_TEMPLATE, ""), gpus, started, finished)
            facts[entry["Id"]] = {"exit": None if state.get("Running") else state.get("ExitCode"), "asked": False,
                                  "server": labels.get(contract.LABEL_SERVER, "")}
        starts: dict[str, datetime] = {}
        for ev in api.events(since=since, until=now, filters={"type": "container", "event": list(EVENTS)},
                             decode=True):
            cid = ev.get("id") or (ev.get("Actor") or {}).get("ID", "")
            attrs = (ev.get("Actor") or {}).get("Attributes") or {}
            action = ev.get("Action") or ev.get("status")
            if not _ours(attrs, attrs.get("name", ""), self.prefix):
                continue
            at = datetime.fromtimestamp(ev.get("timeNano", 0) / 1e9 or ev.get("time", 0), timezone.utc)
            fact = facts.setdefault(cid, {"exit": None, "asked": False})
            if action == "start":
                starts[cid] = at
            elif action in ("stop", "kill"):
                fact["asked"] = True
            elif action == "die":
                fact["exit"] = int(attrs.get("exitCode", "0") or 0)
                if cid not in found:
                    gpus = _gpus(attrs, quota_templates)
                    start = starts.get(cid)
                    if gpus:
                        found[cid] = ledger.Holder(cid, attrs[contract.LABEL_USER], attrs.get(contract.LABEL_COURSE, ""),
                                                   attrs.get(contract.LABEL_TEMPLATE, ""), gpus,
                                                   start or at, at)
                        fact["start_known"] = start is not None
        return list(found.values()), facts

    def _reasons(self, closed: list[ledger.Session], facts: dict[str, dict]) -> dict[str, str]:
        reasons = {}
        with self.ctx.db() as s:
            for x in closed:
                end = x.ended_at or x.last_seen
                audited = s.scalars(select(AuditEntry.action).where(
                    AuditEntry.target_user == x.user, AuditEntry.action.in_(("cull", quotas.QUOTA_STOP)),
                    AuditEntry.at >= x.started_at, AuditEntry.at <= end + REASON_SLACK)).all()
                fact = facts.get(x.container_id)
                if quotas.QUOTA_STOP in audited:
                    reasons[x.container_id] = "quota"
                elif "cull" in audited:
                    reasons[x.container_id] = "cull"
                elif fact is None or fact["exit"] is None:
                    reasons[x.container_id] = "gone"
                elif fact["exit"] and not fact["asked"]:
                    reasons[x.container_id] = "crash"
                else:
                    reasons[x.container_id] = "stop"
        return reasons

    def record(self) -> list[quotas.Running]:
        """One look: the ledger brought up to date; the running servers that have a quota."""
        now = self.clock()
        catalog = self.ctx.catalog()
        quota_templates = {t.id for t in catalog.templates.values() if t.quota}
        open_now = records.open_sessions(self.ctx.db)
        looks = [s.last_seen for s in open_now] + ([self.last_look] if self.last_look else [])
        since = min(looks) if looks else now - timedelta(seconds=4 * self.every)
        holders, facts = self.holders(now, quota_templates, since - timedelta(seconds=5))
        # A container removed before our first look with no start event: its start is unknown.
        holders = [h for h in holders if facts.get(h.container_id, {}).get("start_known", True)
                   or any(s.container_id == h.container_id for s in open_now)]
        changes = ledger.reconcile(list(open_now), holders, now)
        ended = [*changes.closed, *(x for x in changes.opened if x.ended_at)]
        records.write_changes(self.ctx.db, changes, self._reasons(ended, facts))
        self.last_look = now
        running = []
        for h in holders:
            t = catalog.templates.get(h.template)
            if h.finished_at is None and t is not None and t.quota is not None:
                st = records.standing(self.ctx.db, h.user, h.course, t.quota, now)
                server = facts.get(h.container_id, {}).get("server", "")
                running.append(quotas.Running(h.user, server, h.course, h.template, len(h.gpus), st))
        return running

    # --- acts -------------------------------------------------------------------------------

    def _warn_and_clear(self, plan: quotas.Plan) -> None:
        for r, due in plan.warn:
            st = r.standing
            notices.put(self.ctx.db, r.user, r.server, "quota", due, used=quotas.hours_text(st.used),
                        quota=quotas.hours_text(st.allowed), course=r.course, period=st.period, template_id=r.template)
        for r in plan.clear:
            notices.clear(self.ctx.db, r.user, r.server, "quota")

    async def _stop(self, r: quotas.Running, now: datetime) -> None:
        catalog = await asyncio.to_thread(self.ctx.catalog)
        course = catalog.courses.get(r.course)
        title = course.title if course else r.course
        state_dir = self.ctx.homes.state_dir
        reason = quotas.stop_reason(r.standing, title.text() if hasattr(title, "text") else str(title), now)
        await asyncio.to_thread(stop_notes.write_note, state_dir, r.user, reason)
        try:
            stopped = await self.ctx.hub.stop_server(r.user, r.server)
            result = "ok" if stopped else "failed"
        except HubAPIError as e:
            log.error("Could not stop %s's server at the quota: %s", r.user, e)
            result = "failed"
        finally:
            await asyncio.to_thread(stop_notes.remove_note, state_dir, r.user)
        detail = deferred(N_("server %(server)s stopped: %(used)s of %(allowed)s hours used (%(period)s)"),
                          server=repr(r.server), used=quotas.hours_text(r.standing.used),
                          allowed=quotas.hours_text(r.standing.allowed), period=r.standing.period)
        log.info("Quota stop of %s in %s: %s (%s)", r.user, r.course, told(detail), result)
        await asyncio.to_thread(self.ctx.audit, quotas.QUOTA_ACTOR, quotas.QUOTA_STOP, r.user, r.course, result, detail)
        await asyncio.to_thread(notices.clear, self.ctx.db, r.user, r.server, "quota")

    async def run_once(self) -> quotas.Plan | None:
        if self.busy:
            return None
        self.busy = True
        try:
            running = await asyncio.to_thread(self.record)
            now = self.clock()
            plan = quotas.plan(running, now, self.warn_minutes)
            await asyncio.to_thread(self._warn_and_clear, plan)
            for r in plan.stop:
                await self._stop(r, now)
            return plan
        except Exception:
            log.exception("Ledger pass failed; trying again in %s seconds", self.every)
            return None
        finally:
            self.busy = False


def start(ctx, settings) -> LedgerLoop:
    """Register the loop on the service's event loop: every EVERY seconds, or as often as
    the culler looks when that is sooner (GOLDENHUB_CULL_EVERY); warned as long before a
    stop as before a cull (GOLDENHUB_CULL_WARN_MINUTES)."""
    every = min(EVERY, settings.cull_every)
    loop = LedgerLoop(ctx, settings.name_prefix, every=every, warn_minutes=settings.warn_minutes)
    ioloop.PeriodicCallback(loop.run_once, every * 1000).start()
    ioloop.IOLoop.current().add_callback(loop.run_once)
    return loop
