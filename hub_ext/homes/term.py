"""End of term for one course: what a term close does, in order, in one place.

The service's API and page (hub_ext.service.term_api) and `goldenhub term close` (through
the API) all run close_term(). Rules:

- Nothing is deleted. Every home of the course (enrolled student or not, staff too: a home
  of the course is one) moves to a dated, verified backup through the reset recipe
  (hub_ext.homes.recipe.Homes.reset: marker, stop, copy, verify, then remove the home), so
  it is crash-safe exactly as a reset is, and the student is told why their server stopped.
  The next start of anyone still allowed in is fresh; a backup is restored from Backups.
- Students are unenrolled first (removed from the course's student hub group, their
  enrolment rows removed and audited with why="term closed"), so an enrolled-only course
  takes no new start while its homes are being moved. Staff stay.
- Then every running server of the course that the homes step did not stop (one with no
  home yet) is stopped.
- Exports are optional and only ever of the backups this close made: one tar per student,
  named from contract.escape_part (no path from anywhere else), in a new directory made
  0700, each file 0600 and created exclusively (never overwriting). A backup is read through
  a never-started container (Docker's archive API), labelled with its owner process, which
  the next export removes if its process died meanwhile.
- Partial failure: each student's outcome is reported and the close goes on; a second close
  finds nothing left to do, or finishes what the first could not.
- One close of a course at a time in this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import docker
import docker.errors
from docker.types import Mount

from hub_ext import contract
from hub_ext.i18n import _, ngettext
from hub_ext.accounts import records
from hub_ext.homes.owner import Owner
from hub_ext.homes.recipe import RESET_CONCURRENCY, Homes
from hub_ext.homes.resets import Backup, ResetError, ensure_helper_image, list_backups
from hub_ext.homes.stop_notes import stop_with_reason
from hub_ext.hubclient import HubAPIError

log = logging.getLogger("goldenhub.service")

AUDIT_ACTION = "term-close"
WHY_UNENROLLED = "term closed"
EXPORT_TIMEOUT = 6 * 3600  # seconds after which another host's export container counts as abandoned
EXPORTS_DIR = "exports"  # under the state directory: where the API and page export to
_closing: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ExportError(RuntimeError):
    """An export could not be written: the sentence says which and why; the backup is kept."""


# --- pure parts ----------------------------------------------------------------------------


def export_dir_name(course: str, when: datetime) -> str:
    """`<course>-<UTC date time>`: the directory a close exports into."""
    return f"{course}-{when.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"


def export_file_name(user: str, n: int = 1) -> str:
    """One tar per student, named by the injective escaping of contract.escape_part (never a
    path; no '/', no '.' inside it). A name that would start with '-' (an option to shell
    tools) gets a leading '_', which no unshortened escaped part has and a shortened one has
    only further in. The n-th file of one student (two homes) ends '.<n>.tar'."""
    name = contract.escape_part(user)
    name = f"_{name}" if name.startswith("-") else name
    return f"{name}.tar" if n == 1 else f"{name}.{n}.tar"


def course_servers(users: list[dict], template_ids: set[str]) -> list[tuple[str, str]]:
    """(user, server name) of every running or starting server started from one of these templates."""
    found = []
    for u in users:
        for name, server in (u.get("servers") or {}).items():
            if (server.get("ready") or server.get("pending")) and \
                    contract.requested_template_of(server) in template_ids:
                found.append((u["name"], name))
    return sorted(found)


def recorded_homes(users: list[dict], course: str, prefix: str) -> dict[str, str]:
    """{home volume: user} from the spawner's state: the homes the hub recorded for this course."""
    homes = {}
    for u in users:
        for server in (u.get("servers") or {}).values():
            home = contract.homes_of(server).get(course)
            if home and contract.is_home_volume_name(prefix, home):
                homes[home] = u["name"]
    return homes


def summary(result: dict) -> str:
    """The one line a close ends with, for the page, the CLI and the audit log (in the
    language of whoever closed the term)."""
    parts = [
        ngettext("%(num)d home moved to a backup", "%(num)d homes moved to backups", result["homes_backed_up"]),
        ngettext("%(num)d server stopped", "%(num)d servers stopped", result["servers_stopped"]),
        ngettext("%(num)d student unenrolled", "%(num)d students unenrolled", result["students_unenrolled"]),
        ngettext("%(num)d staff member kept", "%(num)d staff members kept", result["staff_kept"]),
    ]
    line = _("Term of %(course)s closed: %(counts)s", course=result["course"], counts=", ".join(parts))
    if result.get("export_dir"):
        line += "; " + ngettext("%(num)d tar file exported to %(folder)s", "%(num)d tar files exported to %(folder)s",
                                result["exported"], folder=result["export_dir"])
    if result["failures"]:
        line += "; " + ngettext("%(num)d problem, nothing was deleted: %(problems)s. Close the term again to retry",
                                "%(num)d problems, nothing was deleted: %(problems)s. Close the term again to retry",
                                len(result["failures"]),
                                problems="; ".join(f"{f['user'] or '-'}: {f['message']}" for f in result["failures"]))
    return line


# --- exports (blocking: async callers use a thread) ------------------------------------------


def make_export_dir(parent: Path, course: str, when: datetime) -> Path:
    """A new directory `<parent>/<course>-<stamp>` (0700, as `parent` if it is made); a taken
    name gets -2, -3, ..."""
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    base = export_dir_name(course, when)
    for n in range(1, 100):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)  # whatever the umask
        return path
    raise ExportError(f"Export directories {parent / base}-* are all taken: move old exports away, then export again.")


def remove_stale_exporters(client: docker.DockerClient, prefix: str) -> list[str]:
    """Remove export containers of this deployment whose process is gone (or, made on
    another host, whose time passed): they would keep their backup 'in use'."""
    removed = []
    now = utcnow()
    for c in client.api.containers(all=True, filters={
            "label": contract.label_filter(contract.LABEL_KIND, contract.KIND_EXPORT_HELPER)}):
        labels = c.get("Labels") or {}
        if not str(labels.get(contract.LABEL_SOURCE, "")).startswith(f"{prefix}-"):
            continue
        owner = Owner.parse(labels.get(contract.LABEL_OWNER))
        alive = owner.alive() if owner else False
        if alive is None:
            try:
                alive = now < datetime.fromisoformat(labels.get(contract.LABEL_EXPIRES, ""))
            except (TypeError, ValueError):
                alive = False
        if not alive:
            try:
                client.api.remove_container(c["Id"], force=True)
                removed.append(labels.get(contract.LABEL_SOURCE, ""))
            except docker.errors.NotFound:
                pass
    return removed


def export_backup(client: docker.DockerClient, backup: Backup, dest_dir: Path, helper_image: str) -> Path:
    """Write one backup as a tar of the home's files (paths ./..., owners and modes kept)
    to a new 0600 file in dest_dir; returns its path. A failure removes the partial file."""
    ensure_helper_image(client, helper_image)
    path = None
    for n in range(1, 100):
        candidate = dest_dir / export_file_name(backup.user, n)
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        path = candidate
        break
    if path is None:
        raise ExportError(f"{backup.user}: export file names in {dest_dir} are all taken")
    labels = {contract.LABEL_KIND: contract.KIND_EXPORT_HELPER, contract.LABEL_OWNER: Owner.current().label(),
              contract.LABEL_SOURCE: backup.volume, contract.LABEL_USER: backup.user,
              contract.LABEL_EXPIRES: (utcnow() + timedelta(seconds=EXPORT_TIMEOUT)).isoformat()}
    container = None
    try:
        with os.fdopen(fd, "wb") as out:
            container = client.api.create_container(
                helper_image, ["true"], labels=labels, network_disabled=True,
                host_config=client.api.create_host_config(
                    network_mode="none",
                    mounts=[Mount("/backup", backup.volume, type="volume", read_only=True, no_copy=True)]))
            stream, _ = client.api.get_archive(container["Id"], "/backup/.")
            for chunk in stream:
                out.write(chunk)
        os.chmod(path, 0o600)
        return path
    except (docker.errors.DockerException, OSError) as e:
        path.unlink(missing_ok=True)
        raise ExportError(f"{backup.user}: could not export {backup.volume} ({e}); the backup is kept") from None
    finally:
        if container is not None:
            try:
                client.api.remove_container(container["Id"], force=True)
            except docker.errors.DockerException as e:
                log.warning("Could not remove the export container of %s: %s", backup.volume, e)


def export_backups(client: docker.DockerClient, backups: list[Backup], dest_dir: Path, helper_image: str,
                   prefix: str) -> tuple[list[dict], list[dict]]:
    """Each backup as one tar in dest_dir: ([{user, backup, path}], [{user, message}])."""
    remove_stale_exporters(client, prefix)
    done, failed = [], []
    for b in backups:
        try:
            done.append({"user": b.user, "backup": b.volume, "path": str(export_backup(client, b, dest_dir, helper_image))})
        except (ExportError, ResetError) as e:
            failed.append({"user": b.user, "message": str(e)})
    return done, failed


# --- the close -----------------------------------------------------------------------------


@dataclass
class TermClose:
    """What one close needs: the homes (Docker, the hub, audit), the service database
    (a session factory) and who asks."""

    homes: Homes
    db: Callable
    actor: str
    course: str
    export_parent: Path | None = None  # export into a new dated directory here; None: no export
    failures: list[dict] = field(default_factory=list)

    @property
    def hub(self):
        return self.homes.hub

    async def run(self) -> dict:
        async with _closing[self.course]:
            return await self._run()

    async def _run(self) -> dict:
        catalog = await asyncio.to_thread(self.homes.catalog)
        templates = {t.id for t in [*catalog.templates.values(), *catalog.disabled.values()] if t.course == self.course}
        users = await self.hub.users()
        running_before = course_servers(users, templates)

        students, staff = await self.unenrol_students()
        outcomes = await self.move_homes(users)
        stopped_here = await self.stop_remaining(templates)

        after = await self.course_servers_now(templates)
        for user, name in after:
            self.fail(user, f"server {name or '(default)'} is still running: stop it, then close the term again")
        backups = [o["backup"] for o in outcomes if o.get("backup")]
        result = {"course": self.course, "homes_backed_up": len(backups),
                  "servers_stopped": len((set(running_before) - set(after)) | stopped_here),
                  "students_unenrolled": len(students), "staff_kept": len(staff),
                  "unenrolled": students, "homes": outcomes, "export_dir": None, "exports": [], "exported": 0}
        if self.export_parent is not None:
            await self.export(result, backups)
        result["failures"] = self.failures
        result["result"] = "partial" if self.failures else "ok"
        result["message"] = summary(result)
        await asyncio.to_thread(self.homes.audit, self.actor, AUDIT_ACTION, "", self.course,
                                result["result"], result["message"])
        return result

    async def course_servers_now(self, templates: set[str]) -> list[tuple[str, str]]:
        """The course's running servers now; none (and a problem reported) if the hub does not answer."""
        try:
            return course_servers(await self.hub.users(), templates)
        except HubAPIError as e:
            self.fail("", f"could not list the course's servers: {e}")
            return []

    def fail(self, user: str, message: str) -> None:
        self.failures.append({"user": user, "message": message})

    async def unenrol_students(self) -> tuple[list[str], list[str]]:
        """Remove the course's students (hub group members and recorded students) from its
        student group and their rows; staff are kept. Returns (students, staff)."""
        group = contract.course_group(self.course)
        members = set(await self.hub.group_members(group))
        staff = set(await self.hub.group_members(contract.staff_group(self.course)))

        def rows() -> dict:
            with self.db() as s:
                return {name: e.role for name, e in records.enrolments_of(s, self.course).items()}

        roles = await asyncio.to_thread(rows)
        staff |= {name for name, role in roles.items() if role in contract.STAFF_ROLES}
        students = sorted(members | {name for name, role in roles.items() if role == contract.ROLE_STUDENT})
        if members:
            try:
                await self.hub.remove_from_group(group, sorted(members))
            except HubAPIError as e:
                for name in sorted(members):
                    self.fail(name, f"still in hub group {group}: {e}")
                students = [s for s in students if s not in members]

        def forget() -> None:
            with self.db() as s:
                for name in students:
                    if roles.get(name, contract.ROLE_STUDENT) == contract.ROLE_STUDENT:
                        records.remove_enrolment(s, self.course, name, self.actor, WHY_UNENROLLED)
                s.commit()

        await asyncio.to_thread(forget)
        return students, sorted(staff)

    async def move_homes(self, users: list[dict]) -> list[dict]:
        """Every home of the course to a dated backup (the reset recipe), RESET_CONCURRENCY at a time."""
        labelled = await asyncio.to_thread(self.homes.home_volumes, course=self.course)
        homes = {v.name: (v.attrs.get("Labels") or {}).get(contract.LABEL_USER, "") for v in labelled}
        for home, user in recorded_homes(users, self.course, self.homes.prefix).items():
            homes.setdefault(home, user)
        limit = asyncio.Semaphore(RESET_CONCURRENCY)

        async def one(home: str, user: str) -> dict:
            if not user:
                self.fail("", f"home {home} names no student (no {contract.LABEL_USER} label): left as it is")
                return {"user": "", "home": home, "result": "failed"}
            async with limit:
                r = await self.homes.reset(self.actor, user, self.course, home=home, action=AUDIT_ACTION)
            if r["result"] != "ok":
                self.fail(user, r["message"])
            return {"user": user, "home": home, "result": r["result"], "backup": r.get("backup"),
                    "message": r["message"]}

        return sorted(await asyncio.gather(*(one(h, u) for h, u in homes.items())), key=lambda o: (o["user"], o["home"]))

    async def stop_remaining(self, templates: set[str]) -> set[tuple[str, str]]:
        """Stop the course's servers that had no home to move (so nothing stopped them yet)."""
        stopped = set()
        reason = (f"The term of {self.course} was closed; your files are kept in a backup that an "
                  "administrator can restore.")
        for user, name in await self.course_servers_now(templates):
            try:
                if name:
                    done = await self.hub.stop_server(user, name, start_grace=10)
                else:  # the student reads why at their next page load (hub_ext.homes.stop_notes)
                    done = await stop_with_reason(self.hub, self.homes.state_dir, user, reason, start_grace=10)
                if done:
                    stopped.add((user, name))
            except HubAPIError as e:
                self.fail(user, f"server {name or '(default)'} did not stop: {e}")
        return stopped

    async def export(self, result: dict, backup_names: list[str]) -> None:
        try:
            dest = await asyncio.to_thread(make_export_dir, self.export_parent, self.course, utcnow())
        except (ExportError, OSError) as e:
            self.fail("", f"no export: {e}")
            return
        result["export_dir"] = str(dest)
        every = await asyncio.to_thread(list_backups, self.homes.docker, course=self.course)
        mine = [b for b in every if b.volume in set(backup_names)]
        done, failed = await asyncio.to_thread(export_backups, self.homes.docker, mine, dest,
                                               self.homes.helper_image, self.homes.prefix)
        result["exports"], result["exported"] = done, len(done)
        for f in failed:
            self.fail(f["user"], f["message"])


async def close_term(homes: Homes, db: Callable, actor: str, course: str, export_parent: Path | None = None) -> dict:
    """Close the term of `course` (see the module's rules); the summary as a dict."""
    return await TermClose(homes, db, actor, course, export_parent).run()
