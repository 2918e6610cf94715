"""Reset markers: "this home is being reset", so the spawner (in the hub process) refuses
to start a server on it while the service (another process) copies it.

A marker names its owner process (hub_ext.homes.owner) and an expiry. One whose owner is gone
(or, written on another host, whose time passed) is ignored and removed, so a crash never
keeps a student out of their environment. A marker is written whole (a temporary file
renamed), so it is never read half-made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hub_ext.contract import reset_marker
from hub_ext.homes.owner import Owner

# A reset or a restore: stopping servers, then at most two copies of up to an hour each
# (hub_ext.homes.resets.COPY_TIMEOUT; a restore backs the current home up first).
MARKER_TTL = 2 * 3600 + 600


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@contextmanager
def resetting(state_dir: Path, home_volume: str, ttl: float = MARKER_TTL, by_owner: bool = False) -> Iterator[None]:
    """Mark a home as being reset for the duration of the block; `by_owner`: the student whose
    home it is asked for it (the spawner then tells them "You reset...", not "An administrator...")."""
    marker = reset_marker(state_dir, home_volume)
    marker.parent.mkdir(parents=True, exist_ok=True)
    now = utcnow()
    record = {"owner": Owner.current().label(), "created": now.isoformat(),
              "expires": (now + timedelta(seconds=ttl)).isoformat(), "by_owner": bool(by_owner)}
    partial = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(record))
    os.replace(partial, marker)
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def _marker_is_live(text: str) -> bool:
    try:
        record = json.loads(text)
        expires = datetime.fromisoformat(record["expires"])
    except (ValueError, KeyError, TypeError):
        return False  # not a marker this version wrote (or a pre-owner one): it has no owner
    if expires.tzinfo is None or utcnow() >= expires:
        return False
    owner = Owner.parse(record.get("owner"))
    alive = owner.alive() if owner else False
    return alive is not False  # another host's owner: trusted until the marker expires


def reset_in_progress(state_dir: Path, home_volume: str) -> bool:
    """Whether a live reset holds this home; a stale marker is removed."""
    marker = reset_marker(state_dir, home_volume)
    try:
        text = marker.read_text()
    except OSError:
        return False
    if _marker_is_live(text):
        return True
    try:
        if marker.read_text() == text:  # not replaced by a new reset meanwhile
            marker.unlink()
    except OSError:
        pass
    return False


def reset_by_owner(state_dir: Path, home_volume: str) -> bool:
    """Whether the live reset of this home was asked for by its own student (False if unknown)."""
    try:
        record = json.loads(reset_marker(state_dir, home_volume).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("by_owner") is True


def remove_stale_markers(state_dir: Path) -> list[str]:
    """Remove every stale marker; returns the homes they named."""
    folder = Path(state_dir) / "resetting"
    try:
        markers = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []
    return [m.name for m in markers if m.is_file() and not reset_in_progress(state_dir, m.name)]
