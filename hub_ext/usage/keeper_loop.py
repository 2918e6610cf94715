"""The keeper, the goldenhub service's loop beside jupyterhub-idle-culler: every cull_every
seconds it keeps servers that are busy on their GPUs (activity through the hub's API), warns
students before a cull (notices), and records culls (audit). The decisions are
hub_ext.usage.keeper's; this module only gathers the facts and carries the plan out.

Rules:
- The hub's API calls are asynchronous; the catalog, the GPU readings and the database run
  in a thread: the service's event loop never waits on them.
- One pass at a time: a pass still running when the next is due makes that one skip.
- A failing pass (hub unreachable, unreadable fed file) is logged and tried again next time;
  it never stops the service.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from urllib.parse import quote

from tornado import ioloop

from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred
from hub_ext.hubconfig import Settings
from hub_ext.i18n.format import iso
from hub_ext.service.db import utcnow
from hub_ext.usage import keeper, notices
from hub_ext.usage.gpu_load import FedReader, NVMLReader

log = logging.getLogger("goldenhub.keeper")
CULLER = "idle-culler"  # the audit's actor for a cull


class Keeper:
    def __init__(self, ctx, settings: Settings, reader=None, clock=utcnow):
        self.ctx = ctx
        self.s = settings
        self.reader = reader or (FedReader(settings.gpu_load_file) if settings.gpu_load_file else NVMLReader())
        self.clock = clock
        self._in_pass = False

    def _busy_gpus(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        try:
            loads = self.reader.read(ids)
        except (OSError, ValueError) as e:
            log.error("No GPU readings this pass: %s", e)
            return set()
        return {gid for gid, load in loads.items() if load.busy(self.s.busy_utilisation)}

    def _facts(self, running: list[keeper.Running]):
        catalog = self.ctx.catalog()
        warned = {(w.user, w.server): w.due_at for w in notices.all_notices(self.ctx.db) if w.kind == "cull"}
        busy = self._busy_gpus(sorted({g for r in running for g in r.gpus}))
        return catalog, warned, busy

    def _record(self, plan: keeper.Plan, catalog) -> None:
        for w in plan.warn:
            t = catalog.templates.get(w.template)
            notices.put(self.ctx.db, w.user, w.server, "cull", w.due_at, template=t.title if t else w.template,
                        template_id=w.template, course=t.course if t else "", idle_minutes=w.idle_minutes)
        for user, server in plan.clear:
            notices.clear(self.ctx.db, user, server, "cull")
        for user, server in plan.culled:
            course = next((w.params.get("course", "") for w in notices.for_user(self.ctx.db, user)
                           if w.server == server and w.kind == "cull"), "")
            self.ctx.audit(CULLER, "cull", user, course, "ok", deferred(N_("server %(server)s stopped after its idle timeout"), server=repr(server)))
            notices.clear(self.ctx.db, user, server, "cull")

    async def _post_activity(self, r: keeper.Running, now) -> None:
        at = iso(now)
        await self.ctx.hub.request("POST", f"/users/{quote(r.user, safe='')}/activity",
                                   {"last_activity": at, "servers": {r.server: {"last_activity": at}}})

    async def run_once(self) -> keeper.Plan | None:
        if self._in_pass:
            return None
        self._in_pass = True
        try:
            running = keeper.running_servers(await self.ctx.hub.active_users())
            catalog, warned, busy = await asyncio.to_thread(self._facts, running)
            now = self.clock()
            plan = keeper.decide(running, busy, keeper.idle_timeouts(catalog), keeper.DEFAULT_IDLE_MINUTES, warned, now,
                                 timedelta(seconds=self.s.warn_minutes * self.s.cull_unit_seconds),
                                 timedelta(seconds=self.s.cull_unit_seconds))
            for r in plan.activity:
                await self._post_activity(r, now)
            await asyncio.to_thread(self._record, plan, catalog)
            return plan
        finally:
            self._in_pass = False

    async def tick(self) -> None:
        try:
            await self.run_once()
        except Exception:
            log.exception("Keeper pass failed; trying again in %s s", self.s.cull_every)


def start(ctx, settings: Settings | None = None) -> Keeper:
    """Register the keeper's pass on the service's event loop, every cull_every seconds."""
    settings = settings or Settings.from_env()
    k = Keeper(ctx, settings)
    ioloop.PeriodicCallback(k.tick, settings.cull_every * 1000).start()
    log.info("Keeper every %s s: GPUs at %s%% or more count as busy; warnings %s min before a cull",
             settings.cull_every, settings.busy_utilisation, settings.warn_minutes)
    return k
