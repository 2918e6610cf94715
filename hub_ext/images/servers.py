"""Which running student server of a course runs which published version of its image, and
restarting the idle ones on the pinned version.

Rules:
- A server belongs to a course when the template it was started with (or is starting with)
  is one of the course's templates.
- Its version is read from its container, never from names: the image id Docker created the
  container from is compared with every published version's image id, then the reference it
  was created with with every version's by-digest reference. A match on neither: no
  published version (the image of the course file before the first publish, or a pruned one).
- A server is idle when the hub recorded no activity for IDLE_MINUTES (15) minutes; one
  starting or stopping is never idle. Only idle servers are restarted: a student at work is
  never interrupted, and is listed as left.
- A restart stops the server through the hub API and starts it again with the same
  template; the template's image is then the course's pin (hub_ext.images.versions).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from hub_ext import contract
from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred

log = logging.getLogger("goldenhub.service")

IDLE_MINUTES = 15


def idle_after(env=os.environ) -> timedelta:
    """IDLE_MINUTES in the culler's minute (GOLDENHUB_CULL_UNIT_SECONDS, which the service gets
    from the hub's settings: 60 s in production, shorter only where tests make time pass)."""
    unit = int(env.get("GOLDENHUB_CULL_UNIT_SECONDS") or 60)
    return timedelta(seconds=IDLE_MINUTES * unit)


@dataclass(frozen=True)
class Container:
    """What Docker says a server's container was created from."""
    reference: str  # Config.Image: the reference given at create time
    image_id: str  # the image's id (sha256:...)


@dataclass
class ServerRow:
    user: str
    template: str
    version: int | None  # the published version it runs; None: none of them
    last_activity: datetime | None
    idle: bool
    state: str  # running | starting | stopping

    def as_json(self) -> dict:
        out = asdict(self)
        out["last_activity"] = self.last_activity.isoformat() if self.last_activity else None
        return out


def parse_time(text: str) -> datetime | None:
    """The hub's ISO time text as an aware UTC time; None when absent or not a time."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def version_of(container: Container | None, published: Iterable) -> int | None:
    """The number of the published version (ImageVersion rows) the container runs, or None."""
    if container is None:
        return None
    published = list(published)
    for v in published:
        if v.image_id and v.image_id == container.image_id:
            return v.number
    for v in published:
        if v.reference and v.reference == container.reference:
            return v.number
    return None


def make_rows(users: list[dict], template_ids: set[str], containers: dict[str, Container | None],
              published: list, now: datetime) -> list[ServerRow]:
    """One row per course server of these hub user models (sorted by user), with its version.
    `containers`: container name → what it was created from (None: not found)."""
    rows = []
    for model in users:
        server = (model.get("servers") or {}).get("")
        if not server or not (server.get("ready") or server.get("pending")):
            continue
        template = contract.requested_template_of(server)
        if template not in template_ids:
            continue
        last = parse_time(server.get("last_activity") or model.get("last_activity") or "")
        state = "running" if server.get("ready") and not server.get("pending") else (
            "stopping" if server.get("pending") == "stop" else "starting")
        idle = state == "running" and (last is None or now - last >= idle_after())
        rows.append(ServerRow(user=model.get("name", ""), template=template,
                              version=version_of(containers.get(contract.container_of(server)), published),
                              last_activity=last, idle=idle, state=state))
    return sorted(rows, key=lambda r: r.user)


def read_containers(client, names: Iterable[str]) -> dict[str, Container | None]:
    """Blocking: what each named container was created from (None when it is gone)."""
    import docker

    found: dict[str, Container | None] = {}
    for name in names:
        if not name:
            continue
        try:
            attrs = client.api.inspect_container(name)
        except docker.errors.NotFound:
            found[name] = None
            continue
        found[name] = Container(reference=(attrs.get("Config") or {}).get("Image", ""), image_id=attrs.get("Image", ""))
    return found


async def course_servers(hub, docker_client, course, published: list, now: datetime) -> list[ServerRow]:
    """The course's running servers with the version each runs (hub and Docker asked; Docker
    in a thread)."""
    users = await hub.users()
    template_ids = {t.id for t in course.templates}
    names = [contract.container_of((u.get("servers") or {}).get("") or {}) for u in users
             if contract.requested_template_of((u.get("servers") or {}).get("") or {}) in template_ids]
    containers = await asyncio.to_thread(read_containers, docker_client, names)
    return make_rows(users, template_ids, containers, published, now)


@dataclass
class RestartResult:
    restarted: list[dict]  # {user, template, from_version}
    left: list[dict]  # {user, template, version, reason: active | starting | failed}


async def restart_idle(hub, rows: list[ServerRow], target: int, audit: Callable[[str, str, str], None]
                       ) -> RestartResult:
    """Restart every idle server of `rows` not on version `target` with the same template;
    the others are left and say why. `audit(user, result, detail)` records each restart."""
    result = RestartResult([], [])
    for row in rows:
        if row.version == target:
            continue
        if not row.idle:
            result.left.append({"user": row.user, "template": row.template, "version": row.version,
                                "reason": "active" if row.state == "running" else row.state})
            continue
        try:
            await hub.stop_server(row.user)
            await hub.request("POST", f"/users/{_quote(row.user)}/server", {contract.OPTION_TEMPLATE: row.template},
                              ok=(201, 202))
        except Exception as e:  # one student's failure does not stop the others'; the log says why
            log.warning("Restarting the server of %s on version %d failed: %s", row.user, target, e)
            audit(row.user, "failed", deferred(N_("restart of %(template)s from version %(old)s onto version %(new)s "
                                                  "failed: %(error)s"), template=row.template,
                                               old=str(row.version or "-"), new=target, error=str(e)[:300]))
            result.left.append({"user": row.user, "template": row.template, "version": row.version,
                                "reason": "failed"})
            continue
        audit(row.user, "ok", deferred(N_("restarted %(template)s from version %(old)s onto version %(new)s"),
                                       template=row.template, old=str(row.version or "-"), new=target))
        result.restarted.append({"user": row.user, "template": row.template, "from_version": row.version})
    return result


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
