"""Per-template idle timeouts for jupyterhub-idle-culler, through its own hook
(c.IdleCuller.cull_arbiter_hook, set by idle_culler_config.py), in the culler's process.

Rules:
- A server is culled when it has been inactive for its template's idle_timeout (the template
  the server was started with: its user option); 0 means never. A template the catalog does
  not know (deleted since the start), or a catalog that cannot be read, gets the culler's own
  --timeout, the platform default.
- The catalog (course files plus runtime templates) is read at most every CACHE_SECONDS, in a
  thread: the culler's event loop never waits on files or the database.
- Before the culler stops a default server, the hook leaves a stop note
  (hub_ext.homes.stop_notes) so the spawner tells the student why at their next visit; the
  note lives at most NOTE_TTL seconds, so a stop that fails tells nothing later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from hub_ext import contract, i18n
from hub_ext.homes.stop_notes import write_note
from hub_ext.i18n import _
from hub_ext.usage.keeper import idle_timeouts

log = logging.getLogger("goldenhub.cull")
CACHE_SECONDS = 30


class TimeoutBook:
    """Template id -> idle timeout (minutes), from the catalog, cached for CACHE_SECONDS."""

    def __init__(self, settings, clock=time.monotonic):
        self.settings = settings
        self.clock = clock
        self._read_at: float | None = None
        self._timeouts: dict[str, int] = {}

    def _load(self) -> dict[str, int]:
        from hub_ext.catalog import store

        catalog = store.load_full_catalog(self.settings.courses_dir, self.settings.db_url,
                                          store.Policy.from_env().git_schemes)
        return idle_timeouts(catalog)

    async def timeouts(self) -> dict[str, int]:
        if self._read_at is None or self.clock() - self._read_at >= CACHE_SECONDS:
            try:
                self._timeouts = await asyncio.to_thread(self._load)
            except Exception as e:  # a broken course file: every server gets the default
                log.error("Idle timeouts fall back to the default: the catalog cannot be read (%s)", e)
                self._timeouts = {}
            self._read_at = self.clock()
        return self._timeouts


def culled_reason(minutes: int) -> str:
    """What the student reads after a cull (at the next start, and on the hub's pages)."""
    return _("Your server was stopped after %(minutes)s minutes idle; your files are kept. Start it again when "
             "you need it.", minutes=minutes)


def limit_seconds(template: str, timeouts: dict[str, int], unit_seconds: int, default_limit: float) -> float | None:
    """The template's idle limit in seconds; None: never culled."""
    minutes = timeouts.get(template)
    if minutes is None:
        return default_limit
    return None if minutes <= 0 else minutes * unit_seconds


def make_arbiter(settings, book: TimeoutBook | None = None):
    """The culler's hook: decides per server and notes why before it is culled."""
    book = book or TimeoutBook(settings)
    i18n.set_default(settings.language)

    async def arbiter(inactive: timedelta, inactive_limit: float, server: dict, **kwargs) -> bool:
        template = contract.requested_template_of(server)
        limit = limit_seconds(template, await book.timeouts(), settings.cull_unit_seconds, inactive_limit)
        if limit is None or inactive is None or inactive.total_seconds() < limit:
            return False
        user, _sep, name = (server.get("full_name") or "").rpartition("/")
        if user and not name:  # the spawner takes notes for default servers
            minutes = round(limit / settings.cull_unit_seconds)
            await asyncio.to_thread(write_note, settings.state_dir, user, culled_reason(minutes))
        log.info("Culling %s (template %s, idle %.0f s, limit %.0f s)", server.get("full_name"), template or "?",
                 inactive.total_seconds(), limit)
        return True

    return arbiter
