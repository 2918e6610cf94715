"""The sessions loop of the goldenhub service: every GOLDENHUB_SESSIONS_EVERY seconds (default
30) it gathers the facts (sessions, their students, the hub's servers, free GPUs, who came last
time), asks hub_ext.sessions.planner for a plan and carries it out.

Rules:
- Starts go through the hub's API (POST /users/<name>/server with the template), so the
  spawner's admission queue, quotas and GPU rules apply as to a student's own click; at most
  GOLDENHUB_SESSIONS_RATE (default 5) per pass. A start the hub refuses for now (429: too many
  starting) is tried again next pass; any other refusal is recorded as failed with its sentence.
- A stop leaves a stop note (hub_ext.homes.stop_notes) so the student's start page says why;
  homes are never touched. Every stop is audited.
- The hub's calls are asynchronous; the database, the catalog and Docker run in a thread. One
  pass at a time; a failing pass is logged and tried again next time.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime
from urllib.parse import quote

from tornado import ioloop

from hub_ext import contract
from hub_ext.homes.stop_notes import stop_with_reason
from hub_ext.hubclient import HubAPIError
from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred
from hub_ext.service.db import utcnow
from hub_ext.sessions import planner, store

log = logging.getLogger("goldenhub.sessions")
ACTOR = "class-session"  # the audit's actor for a stop of an unopened server
STOPPED_UNOPENED = N_("Your server was started for the %(course)s class at %(time)s and stopped because it "
                      "was not opened within 20 minutes of the start; your files are kept. Start it again when "
                      "you need it.")
SETTINGS = {"GOLDENHUB_SESSIONS_EVERY": (30, 1, 3600), "GOLDENHUB_SESSIONS_RATE": (5, 1, 100)}


def read_setting(name: str, env=os.environ) -> int:
    default, low, high = SETTINGS[name]
    raw = env.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} is {raw[:20]!r}; allowed: a whole number from {low} to {high}")
    return int(raw)


def hub_time(text) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if isinstance(text, str) else None
    except ValueError:
        return None


def server_of(user: dict) -> planner.Server | None:
    s = (user.get("servers") or {}).get("")
    if not s:
        return None
    return planner.Server(active=bool(s.get("ready") or s.get("pending")), pending=bool(s.get("pending")),
                          started=hub_time(s.get("started")), last_activity=hub_time(s.get("last_activity")))


class SessionsLoop:
    def __init__(self, ctx, state_dir, rate: int = 5, clock=store.now):
        self.ctx = ctx
        self.state_dir = state_dir
        self.rate = rate
        self.clock = clock
        self._in_pass = False

    def _gather(self, now: datetime):
        """Blocking: the live sessions, their records, the previous sessions, the catalog."""
        rows, records = store.live_sessions(self.ctx.db, now)
        previous = {r.id: store.previous_session(self.ctx.db, r) for r in rows}
        return rows, records, previous, self.ctx.catalog()

    def _free_gpus(self) -> int:
        from spawner.gpus import free_published_gpus

        return len(free_published_gpus(self.ctx.docker.api, self.state_dir))

    async def run_once(self) -> planner.Plan | None:
        if self._in_pass:
            return None
        self._in_pass = True
        try:
            now = await asyncio.to_thread(self.clock)
            rows, records, previous, catalog = await asyncio.to_thread(self._gather, now)
            if not rows:
                return planner.Plan()
            users = {u["name"]: u for u in await self.ctx.hub.active_users()}
            servers = {name: s for name, u in users.items() if (s := server_of(u))}
            facts, by_id = [], {}
            for row in rows:
                template = catalog.templates.get(row.template)
                session = planner.Session(row.id, row.course, row.template, template.gpus if template else 0,
                                          store.as_utc(row.starts_at), row.minutes, row.lead_minutes,
                                          row.cancelled_at is not None)
                by_id[row.id] = session
                students = await self.ctx.hub.group_members(contract.course_group(row.course))
                # came last time: opened the server that session started (the hub's user-level
                # last_activity cannot tell: a pre-start and a stop set it too)
                _earlier, opened = previous[row.id]
                facts.append(planner.Facts(session, tuple(students), records[row.id], frozenset(opened)))
            wants_gpus = any(f.session.gpus and f.session.pre_starting(now) for f in facts)
            free = await asyncio.to_thread(self._free_gpus) if wants_gpus else 0
            plan = planner.plan(now, facts, servers, free, self.rate)
            for sid, user in plan.ready:  # hub times are real: so is this one, whatever the sessions' clock
                await asyncio.to_thread(store.record, self.ctx.db, sid, user, planner.PRE_STARTED,
                                        ready_seen=utcnow())
            for sid, user in plan.lost:
                await asyncio.to_thread(store.record, self.ctx.db, sid, user, planner.FAILED)  # why: the hub's log
            for sid, user in plan.opened:
                await asyncio.to_thread(store.record, self.ctx.db, sid, user, planner.OPENED)
            await asyncio.gather(*(self._start(by_id[sid], user) for sid, user in plan.start))
            await asyncio.gather(*(self._stop(by_id[sid], user) for sid, user in plan.stop))
            return plan
        finally:
            self._in_pass = False

    async def _start(self, session: planner.Session, user: str) -> None:
        path = f"/users/{quote(user, safe='')}/server"
        try:
            await self.ctx.hub.request("POST", path, {contract.OPTION_TEMPLATE: session.template})
        except HubAPIError as e:
            if e.status == 400 and ("already running" in str(e) or "pending" in str(e)):
                return  # the student started it themselves meanwhile: theirs, not the session's
            if e.status == 429 or not e.reached:
                log.info("Session %s: start of %s deferred (%s)", session.id, user, e)
                return
            log.warning("Session %s: the hub refused to start %s: %s", session.id, user, e)
            await asyncio.to_thread(store.record, self.ctx.db, session.id, user, planner.FAILED, None, str(e))
            return
        model = await self.ctx.hub.user(user)
        started = hub_time(((model or {}).get("servers") or {}).get("", {}).get("started"))
        await asyncio.to_thread(store.record, self.ctx.db, session.id, user, planner.PRE_STARTED, started)
        log.info("Session %s (%s): started %s's server", session.id, session.course, user)

    async def _stop(self, session: planner.Session, user: str) -> None:
        reason = deferred(STOPPED_UNOPENED, course=session.course,
                          time=f"{session.starts_at:%H:%M} UTC")
        try:
            await stop_with_reason(self.ctx.hub, self.state_dir, user, reason)
        except HubAPIError as e:
            log.warning("Session %s: could not stop %s's unopened server: %s", session.id, user, e)
            return
        await asyncio.to_thread(store.record, self.ctx.db, session.id, user, planner.STOPPED_UNOPENED)
        await asyncio.to_thread(self.ctx.audit, ACTOR, "session-stop", user, session.course, "ok", reason)
        log.info("Session %s (%s): stopped %s's unopened server", session.id, session.course, user)

    async def tick(self) -> None:
        try:
            await self.run_once()
        except Exception:
            log.exception("Sessions pass failed; trying again next time")


def start(ctx, state_dir, env=os.environ) -> SessionsLoop:
    """Register the sessions pass on the service's event loop."""
    try:
        every = read_setting("GOLDENHUB_SESSIONS_EVERY", env)
        loop = SessionsLoop(ctx, state_dir, read_setting("GOLDENHUB_SESSIONS_RATE", env))
    except ValueError as e:
        log.error("%s", e)
        raise SystemExit(1) from None
    ioloop.PeriodicCallback(loop.tick, every * 1000).start()
    log.info("Class sessions checked every %s s, at most %s starts a pass", every, loop.rate)
    return loop
