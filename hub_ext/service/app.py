"""The goldenhub service application: create_application() wires handlers to a context
holding the database, the hub API client and Docker; main() runs it under the hub."""

from __future__ import annotations

import asyncio
from collections import defaultdict
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

import docker
from jinja2 import Environment, FileSystemLoader
from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from hub_ext import paths
from hub_ext.homes import resets
from hub_ext.catalog import store
from hub_ext.catalog.model import Catalog, load_catalog
from hub_ext.credentials import ensure_secret_file
from hub_ext.service.db import AuditEntry, SchemaError, open_database
from hub_ext.hubconfig import Settings
from hub_ext.hubclient import HubAPI, HubAPIError
from hub_ext.service import admin_pages, branding_api, pages, process, resets_api, templates_api
from hub_ext.service.base import APIHandler, NotFoundAPIHandler, log_request, samesite_cookie_options

log = logging.getLogger("goldenhub.service")
OPENAPI = Path(__file__).with_name("openapi.json")


class ServiceContext:
    """Everything the handlers share. Docker calls run in threads, never on the loop."""

    def __init__(self, db_url: str, courses_dir: Path, prefix: str, helper_image: str, hub: HubAPI,
                 policy: store.Policy | None = None):
        self.db_url = db_url
        self.db = open_database(db_url)
        self.policy = policy or store.Policy()
        self.courses_dir = courses_dir
        self.prefix = prefix
        self.helper_image = helper_image
        self.hub = hub
        self.docker = docker.from_env()
        # One lock per student: a reset and a restore of the same student never interleave.
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.clean_up_after_crash()

    def clean_up_after_crash(self) -> None:
        """At start: undo what an earlier service process left half-done (reset markers,
        copy helpers and their unverified copies, never a home or a verified backup)."""
        for home in resets.remove_stale_markers(paths.state_dir()):
            log.warning("Removed the stale reset marker of %s (its service process is gone)", home)
        try:
            undone = resets.remove_stale_helpers(self.docker, prefix=f"{self.prefix}-")  # this deployment's
        except docker.errors.DockerException as e:
            log.error("Could not look for interrupted resets in Docker: %s", e)
            return
        for line in undone:
            log.warning("Cleaned up %s", line)
            self.audit("goldenhub", "cleanup", "", "", "ok", line)

    def file_catalog(self) -> Catalog:
        return load_catalog(self.courses_dir, self.policy.git_schemes)

    def catalog(self) -> store.MergedCatalog:
        """Course files plus templates made at runtime, as the spawner sees them."""
        return store.load_full_catalog(self.courses_dir, self.db_url, self.policy.git_schemes)

    def audit(self, actor: str, action: str, user: str, course: str, result: str, detail: str = "") -> None:
        with self.db() as s:
            s.add(AuditEntry(actor=actor, action=action, target_user=user, course=course, result=result, detail=detail))
            s.commit()

    def _is_ours(self, volume_name: str) -> bool:
        return volume_name.startswith(f"{self.prefix}-home-")

    def home_volumes(self, **labels: str) -> list:
        """This deployment's home volumes (not backups) carrying these goldenhub.* labels."""
        found = self.docker.volumes.list(filters={"label": [f"goldenhub.{k}={v}" for k, v in labels.items()]})
        return [v for v in found if self._is_ours(v.name)
                and (v.attrs.get("Labels") or {}).get("goldenhub.kind") != "backup"]

    def users_with_homes(self, course: str) -> set[str]:
        return {v.attrs["Labels"]["goldenhub.user"] for v in self.home_volumes(course=course)
                if "goldenhub.user" in v.attrs["Labels"]}

    def find_backup(self, name: str) -> resets.Backup | None:
        return next((b for b in self.backups() if b.volume == name), None)

    def backups(self, user: str | None = None, course: str | None = None) -> list[resets.Backup]:
        return [b for b in resets.list_backups(self.docker, user=user, course=course) if self._is_ours(b.volume)]

    async def home_volume(self, user: str, course: str) -> str | None:
        """The home recorded in the spawner's state; else the one Docker labels say is theirs."""
        model = await self.hub.user(user) or {}
        for server in model.get("servers", {}).values():
            home = ((server.get("state") or {}).get("homes") or {}).get(course)
            if home:
                return home
        homes = await asyncio.to_thread(self.home_volumes, user=user, course=course)
        return homes[0].name if homes else None

    def _servers_mounting(self, home: str) -> set[str]:
        """Names of the servers whose containers (running or not) mount this home."""
        found = self.docker.containers.list(all=True, filters={"label": f"goldenhub.home-volume={home}"})
        return {c.labels.get("goldenhub.server", "") for c in found}

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
            # The options of the start now running (or pending); the state names the last start.
            template = (server.get("user_options") or {}).get("template") or (server.get("state") or {}).get("template")
            if name in mounting or course_of.get(template) == course:
                using.append(name)
        return using

    async def stop_servers_using(self, user: str, course: str, home: str) -> None:
        for server in await self.servers_using(user, course, home):
            await self.hub.stop_server(user, server, start_grace=10)  # the spawner tells the student

    def remove_stopped_containers(self, home: str) -> None:
        """A crashed server can leave its container behind, holding the home: remove it
        (never a running one: that is the student's server, stopped through the hub)."""
        for c in self.docker.containers.list(all=True, filters={"label": f"goldenhub.home-volume={home}"}):
            if c.status != "running":
                c.remove(v=False)

    async def reset(self, actor: str, user: str, course: str) -> dict:
        async with self.locks[user]:
            try:
                home = await self.home_volume(user, course)
                backup = None
                if home:
                    with resets.resetting(paths.state_dir(), home):
                        await self.stop_servers_using(user, course, home)
                        await asyncio.to_thread(self.remove_stopped_containers, home)
                        backup = await asyncio.to_thread(
                            resets.move_home_to_backup, self.docker, home, user=user, course=course,
                            helper_image=self.helper_image)
            except (resets.ResetError, HubAPIError) as e:
                await asyncio.to_thread(self.audit, actor, "reset", user, course, "failed", str(e))
                return {"user": user, "result": "failed", "message": str(e)}
        detail = f"home moved to backup {backup.volume}" if backup else "no home yet: nothing to back up"
        await asyncio.to_thread(self.audit, actor, "reset", user, course, "ok", detail)
        return {"user": user, "result": "ok", "backup": backup.volume if backup else None, "message": detail}

    async def restore(self, actor: str, backup: resets.Backup) -> dict:
        async with self.locks[backup.user]:
            try:
                with resets.resetting(paths.state_dir(), backup.home_volume):
                    await self.stop_servers_using(backup.user, backup.course, backup.home_volume)
                    await asyncio.to_thread(self.remove_stopped_containers, backup.home_volume)
                    replaced = await asyncio.to_thread(
                        resets.restore_backup, self.docker, backup.volume, helper_image=self.helper_image)
            except (resets.ResetError, HubAPIError) as e:
                await asyncio.to_thread(self.audit, actor, "restore", backup.user, backup.course, "failed", str(e))
                return {"user": backup.user, "result": "failed", "message": str(e)}
        detail = f"restored {backup.volume}" + (f"; the home it replaced is in {replaced.volume}" if replaced else "")
        await asyncio.to_thread(self.audit, actor, "restore", backup.user, backup.course, "ok", detail)
        return {"user": backup.user, "result": "ok", "replaced": replaced.volume if replaced else None,
                "message": detail}

    async def delete_backup(self, actor: str, backup: resets.Backup) -> dict:
        try:
            await asyncio.to_thread(resets.delete_backup, self.docker, backup.volume)
        except resets.ResetError as e:
            await asyncio.to_thread(self.audit, actor, "delete-backup", backup.user, backup.course, "failed", str(e))
            return {"result": "failed", "message": str(e)}
        await asyncio.to_thread(self.audit, actor, "delete-backup", backup.user, backup.course, "ok", backup.volume)
        return {"result": "ok", "message": f"deleted {backup.volume}"}


class InfoHandler(APIHandler):
    def get(self):
        self.write_json({"service": "goldenhub", "user": self.username,
                         "scopes": sorted(s for s in self.scopes if s.startswith("custom:goldenhub"))})


class OpenAPIHandler(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(OPENAPI.read_text())


def create_application(ctx: ServiceContext, prefix: str, cookie_secret: bytes) -> web.Application:
    templates = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True)
    routes = [
        (prefix + r"api/?", InfoHandler),
        (prefix + r"api/openapi.json", OpenAPIHandler),
        (prefix + r"oauth_callback", HubOAuthCallbackHandler),
        *resets_api.handlers(prefix),
        *templates_api.handlers(prefix),
        *branding_api.handlers(prefix),
        *pages.handlers(prefix),
        *admin_pages.handlers(prefix),
        (prefix + r"api/.*", NotFoundAPIHandler),
    ]
    return web.Application(
        routes, goldenhub=ctx, templates=templates, prefix=prefix, cookie_secret=cookie_secret,
        xsrf_cookies=True, xsrf_cookie_kwargs=samesite_cookie_options(), log_function=log_request,
        login_url=url_path_join(prefix, "oauth_callback"),
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s goldenhub] %(message)s")
    os.umask(0o077)  # the service's databases, markers and secrets are its own
    hub_pid = os.getppid()  # the hub that started this service
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/goldenhub/")
    try:
        s = Settings.from_env()  # the same settings the hub's config was made from
    except ValueError as e:
        log.error("%s", e)
        raise SystemExit(1) from None
    try:
        pid_file = process.claim(s.state_dir, hub_pid)
    except process.AnotherService as e:
        log.error("%s", e)
        raise SystemExit(1) from None
    try:
        ctx = ServiceContext(
            s.db_url, s.courses_dir, s.name_prefix,
            os.environ.get("GOLDENHUB_HELPER_IMAGE", "goldenhub/os-base:bookworm"), HubAPI(), store.Policy.from_env())
    except SchemaError as e:
        log.error("%s", e)  # refuse to run on a schema this version does not know
        raise SystemExit(1) from None
    cookie_secret = ensure_secret_file(s.state_dir / "service_cookie_secret")
    app = create_application(ctx, prefix, cookie_secret)
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    try:
        app.listen(url.port, url.hostname)
    except OSError as e:
        log.error("Cannot listen on %s:%s (%s): another program holds this port; stop it or set "
                  "GOLDENHUB_SERVICE_PORT to a free port", url.hostname, url.port, e.strerror)
        process.release(pid_file)
        raise SystemExit(1) from None
    log.info("goldenhub service at %s%s", os.environ["JUPYTERHUB_SERVICE_URL"], prefix)
    loop = ioloop.IOLoop.current()

    def watch_hub():
        if process.hub_is_gone(hub_pid):
            log.warning("The hub (pid %s) that started this service is gone; goldenhub service stopping", hub_pid)
            loop.stop()

    ioloop.PeriodicCallback(watch_hub, 1000).start()
    loop.asyncio_loop.add_signal_handler(signal.SIGTERM, loop.stop)  # type: ignore[attr-defined]
    try:
        loop.start()
    except KeyboardInterrupt:  # the hub stops its services with SIGINT/SIGTERM
        log.info("goldenhub service stopping")
    finally:
        process.release(pid_file)
