"""The goldenhub service application: create_application() wires handlers to a context
holding the database, the hub API client and Docker; main() runs it under the hub."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

import docker
from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from hub_ext import contract, i18n, paths
from hub_ext.catalog import store
from hub_ext.catalog.model import Catalog, load_catalog
from hub_ext.credentials import ensure_secret_file
from hub_ext.homes.recipe import Homes
from hub_ext.hubclient import HubAPI
from hub_ext.hubconfig import Settings
from hub_ext.i18n.hub import make_transforms
from hub_ext.service import accounts_api, admin_pages, authz, branding_api, pages, process, resets_api, templates_api
from hub_ext.service import term_api
from hub_ext.service import notices_api
from hub_ext.service import grants_api
from hub_ext.service import usage_pages
from hub_ext.service import metrics_api
from hub_ext.service import publish_api, publish_pages
from hub_ext.service import sessions_api, sessions_pages
from hub_ext.service import template_pages, templating
from hub_ext.service import branding_pages, course_pages, enrolment_api
from hub_ext.service.base import APIHandler, NotFoundAPIHandler, log_request, samesite_cookie_options
from hub_ext.service.db import AuditEntry, SchemaError, open_database
from hub_ext.usage import keeper_loop
from hub_ext.usage import ledger_loop
from hub_ext.sessions import loop as sessions_loop

log = logging.getLogger("goldenhub.service")
OPENAPI = Path(__file__).with_name("openapi.json")


class ServiceContext:
    """Everything the handlers share: the database, the catalog, the hub API client, Docker
    and the homes (resets, restores, backups: hub_ext.homes.recipe).

    Its Docker and database calls block: a handler runs them in a thread
    (`await asyncio.to_thread(ctx.catalog)`), never on the event loop, which every other
    request (and the hub's health checks) waits on."""

    def __init__(self, db_url: str, courses_dir: Path, prefix: str, helper_image: str, hub: HubAPI,
                 policy: store.Policy | None = None):
        self.db_url = db_url
        self.db = open_database(db_url)
        self.policy = policy or store.Policy()
        self.courses_dir = courses_dir
        self.prefix = prefix
        self.hub = hub
        self.docker = docker.from_env()
        self.homes = Homes(self.docker, hub, prefix, helper_image, paths.state_dir(), self.catalog, self.audit)
        self.homes.clean_up_after_crash()

    def file_catalog(self) -> Catalog:
        return load_catalog(self.courses_dir, self.policy.git_schemes)

    def catalog(self) -> store.MergedCatalog:
        """Course files plus templates made at runtime, as the spawner sees them."""
        return store.load_full_catalog(self.courses_dir, self.db_url, self.policy.git_schemes)

    def audit(self, actor: str, action: str, user: str, course: str, result: str, detail: str = "") -> None:
        with self.db() as s:
            s.add(AuditEntry(actor=actor, action=action, target_user=user, course=course, result=result, detail=detail))
            s.commit()


class InfoHandler(APIHandler):
    def get(self):
        self.write_json({"service": "goldenhub", "user": self.username,
                         "scopes": sorted(s for s in self.scopes if s.startswith(authz.PREFIX))})


class HealthHandler(web.RequestHandler):
    """GET api/health, without login: the service is up and its event loop answers."""

    def get(self):
        self.set_header("Cache-Control", "no-store")
        self.finish({"ok": True})


class OpenAPIHandler(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(OPENAPI.read_text())


def create_application(ctx: ServiceContext, prefix: str, cookie_secret: bytes) -> web.Application:
    templates = templating.make_environment()  # the hub's page.html around every page
    routes = [
        (prefix + r"api/?", InfoHandler),
        (prefix + r"api/health", HealthHandler),
        (prefix + r"api/openapi.json", OpenAPIHandler),
        (prefix + r"oauth_callback", HubOAuthCallbackHandler),
        # the pages' scripts (the CSP allows script-src 'self' only: no inline scripts)
        (prefix + r"static/(.+)", web.StaticFileHandler, {"path": str(Path(__file__).with_name("static"))}),
        *resets_api.handlers(prefix),
        *enrolment_api.handlers(prefix),
        *accounts_api.handlers(prefix),
        *term_api.handlers(prefix),
        *templates_api.handlers(prefix),
        *branding_api.handlers(prefix),
        *notices_api.handlers(prefix),
        *grants_api.handlers(prefix),
        *pages.handlers(prefix),
        *admin_pages.handlers(prefix),
        *branding_pages.handlers(prefix),
        *template_pages.handlers(prefix),
        *course_pages.handlers(prefix),
        *usage_pages.handlers(prefix),
        *metrics_api.handlers(prefix),
        *publish_api.handlers(prefix), *publish_pages.handlers(prefix),
        *sessions_api.handlers(prefix), *sessions_pages.handlers(prefix),
        (prefix + r"api/.*", NotFoundAPIHandler),
        (prefix + r".*", pages.NotFoundPage),  # any other path: the error page, framed like the rest
    ]
    return web.Application(
        routes, goldenhub=ctx, templates=templates, prefix=prefix, cookie_secret=cookie_secret,
        xsrf_cookies=True, xsrf_cookie_kwargs=samesite_cookie_options(), log_function=log_request,
        login_url=url_path_join(prefix, "oauth_callback"),
        # every request's language (?lang=, remembered in the hub's cookie; the cookie; the
        # browser's; the default), chosen before its handler runs, as on the hub
        transforms=make_transforms({}),
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
    i18n.set_default(s.language)  # pages and messages of a request that names no language
    try:
        pid_file = process.claim(s.state_dir, hub_pid)
    except process.AnotherService as e:
        log.error("%s", e)
        raise SystemExit(1) from None
    try:
        ctx = ServiceContext(
            s.db_url, s.courses_dir, s.name_prefix,
            contract.helper_image(), HubAPI(), store.Policy.from_env())
    except SchemaError as e:
        log.error("%s", e)  # refuse to run on a schema this version does not know
        raise SystemExit(1) from None
    ctx.metrics_public = s.metrics_public  # GET metrics without a token (hub_ext.service.metrics_api)
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
    keeper_loop.start(ctx, s)  # GPU-busy servers kept, cull warnings, culls recorded
    ledger_loop.start(ctx, s)  # GPU time recorded; quotas warned and enforced
    sessions_loop.start(ctx, s.state_dir)  # class sessions: servers pre-started, unopened ones stopped
    loop.asyncio_loop.add_signal_handler(signal.SIGTERM, loop.stop)  # type: ignore[attr-defined]
    try:
        loop.start()
    except KeyboardInterrupt:  # the hub stops its services with SIGINT/SIGTERM
        log.info("goldenhub service stopping")
    finally:
        process.release(pid_file)
