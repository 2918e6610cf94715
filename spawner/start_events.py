"""One StartEvent row per server start (hub_ext.service.db.StartEvent), written by the spawner:
queued when start() is entered, admitted when a start slot is taken, finished with an outcome
and a reason code. The service's metrics (hub_ext.usage.metrics) count and time starts from
these rows.

Rules:
- outcome: ok (the server answered), refused (the start was turned down before anything
  was made: an HTTPError from start_refusal, e.g. over quota or no free GPU), failed
  (anything else that ended it, a cancelled start included).
- reason: one of REASONS. A refusal names its own (start_refusal's `reason`, read as
  `goldenhub_reason`); a failure carries its own (StartFailed's `reason`); a start that a
  reset interrupted is "reset" whatever it raised; a cancelled one "cancelled"; Docker's own
  errors "docker"; anything else "other".
- Writes run in a thread, never on the hub's event loop. A write that fails is logged and
  the start goes on: a missing metrics row never costs a student their server. Without a
  database URL nothing is written.
- The GPU inventory the hub hands out is published in the state directory (INVENTORY_FILE),
  so that the service can count free GPUs without asking NVML or the hub's configuration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import docker.errors
from tornado import web

from hub_ext.service.db import StartEvent, shared_database, utcnow

log = logging.getLogger("goldenhub.start_events")

REASONS = ("quota", "no-gpu", "image-missing", "timeout", "docker", "reset", "cancelled", "other")
INVENTORY_FILE = "gpu-inventory.json"  # in the state directory: {"gpus": ["GPU-…", …]}

def classify(error: BaseException | None, reset: bool = False) -> tuple[str, str]:
    """(outcome, reason) of a start that ended with `error` (None: it succeeded)."""
    if error is None:
        return "ok", ""
    if reset:
        return "failed", "reset"
    if isinstance(error, asyncio.CancelledError):
        return "failed", "cancelled"
    if isinstance(error, web.HTTPError):
        reason = getattr(error, "goldenhub_reason", "")
        return "refused", reason if reason in REASONS else "other"
    reason = getattr(error, "reason", "")
    if isinstance(reason, str) and reason in REASONS:
        return "failed", reason
    if isinstance(error, docker.errors.DockerException):
        return "failed", "docker"
    return "failed", "other"


# --- blocking writes (run in a thread) ------------------------------------------------------------


def write_queued(db_url: str, user: str, server: str, course: str, template: str) -> int:
    with shared_database(db_url)() as s:
        row = StartEvent(username=user, server=server, course=course, template=template, queued_at=utcnow())
        s.add(row)
        s.commit()
        return row.id


def write_admitted(db_url: str, event_id: int) -> None:
    with shared_database(db_url)() as s:
        row = s.get(StartEvent, event_id)
        if row is not None:
            row.admitted_at = utcnow()
            s.commit()


def write_finished(db_url: str, event_id: int, outcome: str, reason: str) -> None:
    with shared_database(db_url)() as s:
        row = s.get(StartEvent, event_id)
        if row is not None:
            row.finished_at, row.outcome, row.reason = utcnow(), outcome, reason
            s.commit()


def publish_inventory(state_dir: Path, gpu_ids: list[str]) -> None:
    """Write the hub's GPU inventory for the service (atomically: a reader never sees half)."""
    path = state_dir / INVENTORY_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"gpus": list(gpu_ids)}))
    os.replace(tmp, path)


def read_inventory(state_dir: Path) -> list[str] | None:
    """The GPU ids the hub hands out; None when the hub has not published them yet."""
    try:
        data = json.loads((state_dir / INVENTORY_FILE).read_text())
    except (OSError, ValueError):
        return None
    gpus = data.get("gpus") if isinstance(data, dict) else None
    return [str(g) for g in gpus] if isinstance(gpus, list) else None


# --- the spawner's side (async, never raising) -------------------------------------------------------


class StartRecord:
    """The row of one start. Every method is safe to call without a database (it does
    nothing) and never raises: a failed write is logged."""

    def __init__(self, db_url: str, label: str):
        self.db_url = db_url
        self.label = label  # the start's user/server, for the log
        self.event_id: int | None = None

    async def _write(self, what: str, fn, *args):
        if not self.db_url:
            return None
        try:
            return await asyncio.to_thread(fn, self.db_url, *args)
        except Exception as e:
            log.warning("Could not record the %s of the start of %s: %s", what, self.label, e)
            return None

    async def queued(self, user: str, server: str, course: str, template: str) -> None:
        self.event_id = await self._write("queueing", write_queued, user, server, course, template)

    async def admitted(self) -> None:
        if self.event_id is not None:
            await self._write("admission", write_admitted, self.event_id)

    async def finished(self, error: BaseException | None, reset: bool = False) -> None:
        if self.event_id is None:
            return
        outcome, reason = classify(error, reset)
        await self._write("end", write_finished, self.event_id, outcome, reason)
        self.event_id = None
