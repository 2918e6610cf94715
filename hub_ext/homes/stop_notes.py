"""Stop notes: why an administrator stopped a student's server, handed from the service
(another process) to the spawner (in the hub), which keeps it as the server's stop reason
(contract.STATE_STOP_REASON) and tells the student on their next page load.

Rules: the service writes the note before it asks the hub to stop the server and removes it
when the stop has returned, so a note never outlives the stop it explains; the spawner takes
(reads and removes) a note at most NOTE_TTL seconds old, so a note left by a crash is never
told for a later stop. A note is written whole (a temporary file renamed). The file is named
by a hash of the user name: no user name reaches a path.

A reason is kept as a deferred sentence (hub_ext.i18n.deferred): it is written in the language
of whoever caused the stop and read later by the student in theirs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred

NOTE_TTL = 600  # seconds: longer than the hub takes to stop a server (hubclient's stop timeout)
MAX_NOTE = 4096  # bytes read from a note file; a longer one is not ours
ADMIN_STOPPED = N_("An administrator stopped your server at %(time)s; your files are kept. Start it again when "
                   "you need it.")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def admin_stop_reason(at: datetime) -> str:
    """The sentence a student reads after an administrator stopped their server (deferred)."""
    return deferred(ADMIN_STOPPED, time=f"{at.astimezone(timezone.utc):%H:%M} UTC")


def note_path(state_dir: Path, user: str) -> Path:
    digest = hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return Path(state_dir) / "stop-notes" / digest


def write_note(state_dir: Path, user: str, reason: str) -> Path:
    path = note_path(state_dir, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"user": user, "reason": reason, "created": utcnow().isoformat()}))
    os.replace(partial, path)
    return path


def remove_note(state_dir: Path, user: str) -> None:
    note_path(state_dir, user).unlink(missing_ok=True)


def take_note(state_dir: Path, user: str) -> str:
    """The reason noted for this user's stop ('' when none or stale); the note is removed."""
    path = note_path(state_dir, user)
    try:
        with path.open("rb") as f:
            text = f.read(MAX_NOTE + 1)
        path.unlink(missing_ok=True)
    except OSError:
        return ""
    try:
        record = json.loads(text) if len(text) <= MAX_NOTE else {}
        created = datetime.fromisoformat(record["created"])
        reason, named = record["reason"], record["user"]
    except (ValueError, KeyError, TypeError):
        return ""
    fresh = created.tzinfo is not None and timedelta(0) <= utcnow() - created <= timedelta(seconds=NOTE_TTL)
    if named != user or not fresh or not isinstance(reason, str):
        return ""
    return reason


async def stop_with_reason(hub, state_dir: Path, user: str, reason: str = "", start_grace: float = 0) -> bool:
    """Stop the user's default server through the hub, noting why for the spawner (default:
    an administrator stopped it, now); the note goes when the stop returns, told or not."""
    await asyncio.to_thread(write_note, state_dir, user, reason or admin_stop_reason(utcnow()))
    try:
        return await hub.stop_server(user, start_grace=start_grace)
    finally:
        await asyncio.to_thread(remove_note, state_dir, user)
