"""What a reset and a restore do, in order: the one place that answers it.

The service calls these (its API handlers and pages, for a student, an instructor or an
admin); the copying itself, with its verification and crash rules, is hub_ext.homes.resets;
the marker that keeps the spawner off a home being reset is hub_ext.homes.markers. Docker
calls run in threads, never on the service's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from hub_ext import contract
from hub_ext.homes import markers, resets
from hub_ext.hubclient import HubAPI, HubAPIError
from hub_ext.i18n import N_
from hub_ext.i18n.deferred import deferred, told

log = logging.getLogger("goldenhub.service")

RESET_CONCURRENCY = 4  # homes copied at once in a course-wide reset (disk-bound)

Audit = Callable[..., None]  # audit(actor, action, user, course, result, detail="")


class Homes:
    """One deployment's home volumes and backups, as the service sees and changes them."""

    def __init__(self, client: docker.DockerClient, hub: HubAPI, prefix: str, helper_image: str,
                 state_dir: Path, catalog: Callable, audit: Audit):
        self.docker = client
        self.hub = hub
        self.prefix = prefix
        self.helper_image = helper_image
        self.state_dir = state_dir
        self.catalog = catalog  # () -> the merged catalog, as the spawner sees it
        self.audit = audit
        # One lock per student: a reset and a restore of the same student never interleave.
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # --- the recipes ------------------------------------------------------------------------

    async def reset(self, actor: str, user: str, course: str, home: str | None = None,
                    action: str = "reset") -> dict:
        """Put one student's home of one course back to fresh; no file is lost (a term close
        (hub_ext.homes.term) names the `home` it found and audits as its own `action`):

        1. take the student's lock (a reset and a restore of one student never interleave);
        2. find the home: the one the spawner recorded, else the one Docker labels say is
           theirs; none means nothing to back up (their next start is fresh anyway);
        3. write the reset marker, so the spawner refuses to start a server on this home;
        4. stop the student's servers that use the home, through the hub (the spawner tells
           the student why at their next start);
        5. remove stopped containers a crashed server left holding the home;
        6. copy the home to a dated backup, verify it, remove the home (resets.move_home_to_backup);
        7. remove the marker and write the outcome, failed or not, to the audit log.
        """
        async with self.locks[user]:  # 1
            try:
                home = home or await self.home_volume(user, course)  # 2
                backup = None
                if home:
                    with markers.resetting(self.state_dir, home, by_owner=actor == user):  # 3 (7: gone on leaving)
                        await self.stop_servers_using(user, course, home)  # 4
                        await asyncio.to_thread(self.remove_stopped_containers, home)  # 5
                        backup = await asyncio.to_thread(  # 6
                            resets.move_home_to_backup, self.docker, home, user=user, course=course,
                            helper_image=self.helper_image)
            except (resets.ResetError, HubAPIError) as e:
                await asyncio.to_thread(self.audit, actor, action, user, course, "failed", str(e))  # 7
                return {"user": user, "result": "failed", "message": str(e)}
        # The audit keeps the detail deferred: each reader of the log reads it in their language.
        detail = (deferred(N_("home moved to backup %(volume)s"), volume=backup.volume) if backup
                  else deferred(N_("no home yet: nothing to back up")))
        await asyncio.to_thread(self.audit, actor, action, user, course, "ok", detail)  # 7
        return {"user": user, "result": "ok", "backup": backup.volume if backup else None,
                "backup_created": backup.created.strftime("%Y-%m-%dT%H:%M:%SZ") if backup else None,
                "message": told(detail)}

    async def reset_many(self, actor: str, users: list[str], course: str) -> list[dict]:
        """A course-wide reset: each student as in reset(), RESET_CONCURRENCY at a time."""
        limit = asyncio.Semaphore(RESET_CONCURRENCY)

        async def one(user):
            async with limit:
                return await self.reset(actor, user, course)

        return list(await asyncio.gather(*(one(u) for u in users)))

    async def restore(self, actor: str, backup: resets.Backup) -> dict:
        """Put a backup back as the home it came from; the backup is kept:

        1. take the student's lock;
        2. write the reset marker on the home;
        3. stop the student's servers that use the home; remove stopped containers holding it;
        4. move the current home, if any, to a backup of its own, then copy the backup into a
           new home and verify it (resets.restore_backup);
        5. remove the marker and write the outcome to the audit log.
        """
        async with self.locks[backup.user]:  # 1
            try:
                with markers.resetting(self.state_dir, backup.home_volume):  # 2 (and 5)
                    await self.stop_servers_using(backup.user, backup.course, backup.home_volume)  # 3
                    await asyncio.to_thread(self.remove_stopped_containers, backup.home_volume)
                    replaced = await asyncio.to_thread(  # 4
                        resets.restore_backup, self.docker, backup.volume, helper_image=self.helper_image)
            except (resets.ResetError, HubAPIError) as e:
                await asyncio.to_thread(self.audit, actor, "restore", backup.user, backup.course, "failed", str(e))
                return {"user": backup.user, "result": "failed", "message": str(e)}
        detail = (deferred(N_("restored %(volume)s; the home it replaced is in %(replaced)s"), volume=backup.volume,
                           replaced=replaced.volume) if replaced
                  else deferred(N_("restored %(volume)s"), volume=backup.volume))
        await asyncio.to_thread(self.audit, actor, "restore", backup.user, backup.course, "ok", detail)  # 5
        return {"user": backup.user, "result": "ok", "replaced": replaced.volume if replaced else None,
                "message": told(detail)}

    async def delete_backup(self, actor: str, backup: resets.Backup) -> dict:
        """Delete one backup for good (never one in use), and audit it."""
        try:
            await asyncio.to_thread(resets.delete_backup, self.docker, backup.volume)
        except resets.ResetError as e:
            await asyncio.to_thread(self.audit, actor, "delete-backup", backup.user, backup.course, "failed", str(e))
            return {"result": "failed", "message": str(e)}
        await asyncio.to_thread(self.audit, actor, "delete-backup", backup.user, backup.course, "ok", backup.volume)
        return {"result": "ok", "message": f"deleted {backup.volume}"}

    def clean_up_after_crash(self) -> None:
        """At service start: undo what an earlier service process left half-done (reset
        markers, copy helpers and their unverified copies, never a home or a verified backup)."""
        for home in markers.remove_stale_markers(self.state_dir):
            log.warning("Removed the stale reset marker of %s (its service process is gone)", home)
        from hub_ext.homes.term import remove_stale_exporters  # term builds on this module

        try:
            undone = resets.remove_stale_helpers(self.docker, prefix=f"{self.prefix}-")  # this deployment's
            undone += [f"an interrupted export of {b}: its reading container removed; {b} is untouched"
                       for b in remove_stale_exporters(self.docker, self.prefix)]
        except docker.errors.DockerException as e:
            log.error("Could not look for interrupted resets in Docker: %s", e)
            return
        for line in undone:
            log.warning("Cleaned up %s", line)
            self.audit("goldenhub", "cleanup", "", "", "ok", line)

    # --- what is there (blocking: async callers use a thread) -------------------------------

    def home_volumes(self, **labels: str) -> list:
        """This deployment's home volumes (not backups) carrying these labels (LABEL_USER=...)."""
        wanted = {"user": contract.LABEL_USER, "course": contract.LABEL_COURSE}
        found = self.docker.volumes.list(
            filters={"label": [contract.label_filter(wanted[k], v) for k, v in labels.items()]})
        return [v for v in found if contract.is_home_volume_name(self.prefix, v.name)
                and (v.attrs.get("Labels") or {}).get(contract.LABEL_KIND) != contract.KIND_BACKUP]

    def users_with_homes(self, course: str) -> set[str]:
        return {v.attrs["Labels"][contract.LABEL_USER] for v in self.home_volumes(course=course)
                if contract.LABEL_USER in v.attrs["Labels"]}

    def find_backup(self, name: str) -> resets.Backup | None:
        return next((b for b in self.backups() if b.volume == name), None)

    def backups(self, user: str | None = None, course: str | None = None) -> list[resets.Backup]:
        return [b for b in resets.list_backups(self.docker, user=user, course=course)
                if contract.is_home_volume_name(self.prefix, b.volume)]

    async def home_volume(self, user: str, course: str) -> str | None:
        """The home recorded in the spawner's state; else the one Docker labels say is theirs."""
        model = await self.hub.user(user) or {}
        for server in model.get("servers", {}).values():
            home = contract.homes_of(server).get(course)
            if home:
                return home
        homes = await asyncio.to_thread(self.home_volumes, user=user, course=course)
        return homes[0].name if homes else None

    def _servers_mounting(self, home: str) -> set[str]:
        """Names of the servers whose containers (running or not) mount this home."""
        found = self.docker.containers.list(
            all=True, filters={"label": contract.label_filter(contract.LABEL_HOME_VOLUME, home)})
        return {c.labels.get(contract.LABEL_SERVER, "") for c in found}

    async def servers_using(self, user: str, course: str, home: str) -> list[str]:
        """The user's servers that use this course's home: those started from one of the
        course's templates, and those whose container mounts the home. A server of another
        course keeps running."""
        model = await self.hub.user(user) or {}
        catalog = await asyncio.to_thread(self.catalog)
        course_of = {t.id: t.course for t in [*catalog.templates.values(), *catalog.disabled.values()]}
        mounting = await asyncio.to_thread(self._servers_mounting, home)
        using = []
        for name, server in model.get("servers", {}).items():
            if not (server.get("ready") or server.get("pending")):
                continue
            if name in mounting or course_of.get(contract.requested_template_of(server)) == course:
                using.append(name)
        return using

    async def stop_servers_using(self, user: str, course: str, home: str) -> None:
        for server in await self.servers_using(user, course, home):
            await self.hub.stop_server(user, server, start_grace=10)  # the spawner tells the student

    def remove_stopped_containers(self, home: str) -> None:
        """A crashed server can leave its container behind, holding the home: remove it
        (never a running one: that is the student's server, stopped through the hub)."""
        for c in self.docker.containers.list(
                all=True, filters={"label": contract.label_filter(contract.LABEL_HOME_VOLUME, home)}):
            if c.status != "running":
                c.remove(v=False)
