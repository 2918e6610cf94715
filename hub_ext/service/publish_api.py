"""Publishing a course's golden image over the REST API, and what its page shares with it:

  GET  api/courses/<c>/images             the pin, versions with provenance, pin history,
                                          recent runs, and which server runs which version
  POST api/courses/<c>/publish {ref?}      202 {run}: a publish started in its own process
  GET  api/publish/<run>?offset=N          the run's state, step, message and log from byte N
  POST api/courses/<c>/rollback {version}  the new pin
  POST api/courses/<c>/restart-idle {version?}  idle servers on another version restarted

Rules:
- Every method needs PUBLISH for the course (authz: the publish scope for the course's
  group, which its instructors and TAs hold; admins unfiltered); a run's course decides who
  may read its log. Anyone else gets 403 with the refusal sentence; nothing is shown.
- A ref is a git branch, tag or commit: full-match REF_RE, no "..", else 400; "" = the
  courseware's default branch.
- Publishing needs a registry (GOLDENHUB_REGISTRY or `registry:` in state/goldenhub.yaml);
  without one it is a 400 saying how to set it. One publish per course at a time: a second
  is a 409 naming the running one (versions.PublishBusy).
- The service takes the course's lock (versions.begin_run), then starts
  `python -m hub_ext.cli images publish <c> [--ref R] --run <id>`, which adopts the run and
  writes its log (state/publish/<run>.log; its stderr is appended there too). The service
  waits for the process without blocking its loop; a process that ends while its run is
  still running fails the run with its exit status (and so frees the lock).
- The log is read at most LOG_CHUNK bytes at a time, cut at a whole UTF-8 character.
- Restart-idle restarts only onto the pinned version (a restart starts the template, which
  runs the pin); rollbacks and restarts are audited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from tornado import web

from hub_ext import contract, paths
from hub_ext.i18n import N_, _
from hub_ext.i18n.deferred import deferred, told
from hub_ext.images import servers as image_servers
from hub_ext.images import versions
from hub_ext.service.authz import Action, refusal
from hub_ext.service.base import APIHandler, int_value, str_field
from hub_ext.service.db import PublishRun, as_utc, utcnow

log = logging.getLogger("goldenhub.service")

REF_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
LOG_CHUNK = 64 * 1024  # bytes of log one answer carries
_watchers: set[asyncio.Task] = set()  # the publish processes being waited for (kept from the GC)


def check_ref(ref: str | None) -> str:
    """A git ref fit to pass on, or "" (the default branch); a 400 sentence otherwise."""
    ref = (ref or "").strip()
    if ref and (not REF_RE.fullmatch(ref) or ".." in ref):
        raise web.HTTPError(400, "%s", _(
            "The ref %(ref)s is not a git branch, tag or commit name: use letters, digits, and . _ / - "
            "(at most 200 characters, starting with a letter or digit, no \"..\"), or leave it empty for "
            "the default branch. Nothing was published.", ref=repr(ref[:60])))
    return ref


def registry() -> str:
    return os.environ.get("GOLDENHUB_REGISTRY", "").strip()


def no_registry() -> str:
    return _("Publishing is off on this hub: no registry is configured. An administrator sets GOLDENHUB_REGISTRY "
             "(or registry: in state/goldenhub.yaml) to the registry's address, e.g. registry.example.org:5000, and "
             "restarts the hub. Nothing was published.")


def log_path(run_id: int) -> Path:
    return paths.state_dir() / "publish" / f"{run_id}.log"


def read_log(run_id: int, offset: int, limit: int = LOG_CHUNK) -> tuple[str, int]:
    """Blocking: the run's log text from byte `offset` (at most `limit` bytes, ending at a whole
    character) and the offset to read from next."""
    try:
        with log_path(run_id).open("rb") as f:
            f.seek(offset)
            data = f.read(limit)
    except FileNotFoundError:
        return "", offset
    if len(data) == limit:
        for cut in range(0, 4):  # a UTF-8 character is at most 4 bytes: drop a cut one
            try:
                data[:len(data) - cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
            data = data[:len(data) - cut]
            break
    return data.decode("utf-8", errors="replace"), offset + len(data)


# --- JSON of the rows ------------------------------------------------------------------------

def _time(value) -> str | None:
    return as_utc(value).isoformat() if value else None


def provenance(v) -> dict:
    """Where a version came from, read from its image's labels."""
    labels = json.loads(v.labels or "{}")

    def label(name: str) -> str:  # "none": what a build from files outside git writes
        value = str(labels.get(name) or "")
        return "" if value == "none" else value

    return {"source": label(contract.LABEL_ENV_SOURCE),
            "commit": label(contract.LABEL_ENV_COMMIT) or ("" if v.commit == "none" else v.commit),
            "ref": label(contract.LABEL_ENV_REF) or ("" if v.ref == "none" else v.ref),
            "built": label("org.opencontainers.image.created"),
            "base_image": label(contract.LABEL_BASE_IMAGE),
            "framework_image": label(contract.LABEL_FRAMEWORK_IMAGE),
            "requirements_digest": label(contract.LABEL_REQUIREMENTS) or v.requirements_digest}


def version_json(v) -> dict:
    return {"number": v.number, "reference": v.reference, "tag": v.tag, "image_id": v.image_id,
            "published_by": v.published_by, "at": _time(v.at), "publish_id": v.publish_id,
            "provenance": provenance(v)}


def run_json(r: PublishRun) -> dict:
    return {"id": r.id, "course": r.course, "ref": r.ref, "actor": r.actor, "state": r.state, "step": r.step,
            "message": told(r.message or ""), "version_id": r.version_id, "started_at": _time(r.started_at),
            "finished_at": _time(r.finished_at)}


def images_state(db, course: str) -> dict:
    """Blocking: the course's pin, versions, pin history and recent runs (JSON-ready), and the
    version rows themselves under "_versions" (for the servers' versions)."""
    with db() as s:
        published = versions.versions(s, course)
        by_id = {v.id: v.number for v in published}
        pin = versions.current_pins(s, [course]).get(course)
        return {"course": course, "registry": registry(),
                "pin": version_json(pin) if pin else None,
                "versions": [version_json(v) for v in published],
                "pin_history": [{"number": p.number, "version": by_id.get(p.version_id), "action": p.action,
                                 "author": p.author, "at": _time(p.at)} for p in versions.pin_history(s, course)],
                "runs": [{**run_json(r), "version": by_id.get(r.version_id)} for r in versions.runs(s, course)],
                "_versions": published}


def run_row(db, run_id: int) -> PublishRun | None:
    with db() as s:
        return s.get(PublishRun, run_id)


# --- what the API and the page both do -------------------------------------------------------

async def publishable(handler, course_id: str):
    """The course, if it exists and the caller may publish it; 404/403 sentences otherwise."""
    catalog = await asyncio.to_thread(handler.ctx.catalog)
    if course_id not in catalog.courses:
        raise web.HTTPError(404, "%s", _("There is no course %(course)s.", course=repr(course_id[:64])))
    if not handler.rules.may_for_course(Action.PUBLISH, course_id):
        raise web.HTTPError(403, "%s", refusal(Action.PUBLISH, course=course_id))
    return catalog.courses[course_id]


async def start_publish(ctx, course: str, ref: str, actor: str) -> PublishRun:
    """Take the course's lock and start the publish process (see the module rules)."""
    if not registry():
        raise web.HTTPError(400, "%s", no_registry())
    try:
        run = await asyncio.to_thread(versions.begin_run, ctx.db, course, ref, actor)
    except versions.PublishBusy as e:
        raise web.HTTPError(409, "%s", str(e)) from None
    path = log_path(run.id)
    command = [sys.executable, "-m", "hub_ext.cli", "images", "publish", course, *(["--ref", ref] if ref else []),
               "--run", str(run.id)]
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with path.open("ab") as stderr:
            proc = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL,
                                                        stdout=subprocess.DEVNULL, stderr=stderr)
    except OSError as e:
        log.error("Could not start the publish process of %s: %s", course, e)
        await asyncio.to_thread(versions.finish_run, ctx.db, run.id, False,
                                deferred(N_("the publish process could not be started: %(error)s"),
                                         error=str(e.strerror or e)))
        raise web.HTTPError(500, "%s", _("The publish could not be started; an administrator can find the "
                                         "details in the service log.")) from None
    ctx.audit(actor, "publish", "", course, "started",
              deferred(N_("publish %(run)d started (git ref: %(ref)s)"), run=run.id, ref=ref or "-"))
    task = asyncio.get_running_loop().create_task(_watch(ctx, proc, run.id))
    _watchers.add(task)
    task.add_done_callback(_watchers.discard)
    return run


async def _watch(ctx, proc, run_id: int) -> None:
    code = await proc.wait()
    run = await asyncio.to_thread(run_row, ctx.db, run_id)
    if run is not None and run.state == versions.RUNNING:
        log.warning("The publish process of run %d ended with status %s while its run was running", run_id, code)
        await asyncio.to_thread(versions.finish_run, ctx.db, run_id, False,
                                deferred(N_("the publish process ended with status %(code)s"), code=str(code)))


def do_rollback(ctx, course: str, number, actor: str) -> dict:
    """Blocking: pin an earlier version (VersionError 404/409 carries its sentence); audited."""
    with ctx.db() as s:
        revision = versions.rollback(s, course, number, actor)
        target = s.get(versions.ImageVersion, revision.version_id)
        s.commit()
        pin = version_json(target)
    ctx.audit(actor, "rollback", "", course, "ok",
              deferred(N_("rolled back to version %(number)s (%(reference)s)"), number=pin["number"],
                       reference=pin.get("reference", "")))
    return pin


async def do_restart_idle(ctx, course, target: int | None, actor: str) -> dict:
    """Restart the course's idle servers that run another version than the pin."""
    state = await asyncio.to_thread(images_state, ctx.db, course.id)
    pin = state["pin"]
    if pin is None:
        raise web.HTTPError(409, "%s", _("%(course)s has no published version yet: publish one first.",
                                         course=course.id))
    if target is not None and target != pin["number"]:
        raise web.HTTPError(409, "%s", _(
            "Servers restart on the pinned version, %(pin)d, not %(number)d: roll back to version %(number)d "
            "first, then restart.", pin=pin["number"], number=target))
    rows = await image_servers.course_servers(ctx.hub, ctx.docker, course, state["_versions"], utcnow())

    def audit(user: str, result: str, detail: str) -> None:
        ctx.audit(actor, "restart-on-version", user, course.id, result, detail)

    done = await image_servers.restart_idle(ctx.hub, rows, pin["number"], audit)
    return {"version": pin["number"], "restarted": done.restarted, "left": done.left}


# --- handlers --------------------------------------------------------------------------------

class ImagesHandler(APIHandler):
    async def get(self, course_id: str):
        course = await publishable(self, course_id)
        state = await asyncio.to_thread(images_state, self.ctx.db, course_id)
        rows = await image_servers.course_servers(self.ctx.hub, self.ctx.docker, course, state.pop("_versions"),
                                                  utcnow())
        self.write_json({**state, "servers": [r.as_json() for r in rows],
                         "idle_after_minutes": image_servers.IDLE_MINUTES})


class PublishHandler(APIHandler):
    async def post(self, course_id: str):
        await publishable(self, course_id)
        body = self.json_body()
        unknown = sorted(set(body) - {"ref"})
        if unknown:
            raise web.HTTPError(400, "%s", _("Unknown fields: %(fields)s; allowed: ref.", fields=", ".join(unknown)[:200]))
        ref = check_ref(str_field(body, "ref", ""))
        run = await start_publish(self.ctx, course_id, ref, self.username)
        self.write_json({"run": run_json(run)}, 202)


class RunHandler(APIHandler):
    async def get(self, run_id: str):
        run = await asyncio.to_thread(run_row, self.ctx.db, int_value("run", run_id, 1, 10**9))
        if run is None:
            raise web.HTTPError(404, "%s", _("There is no publish %(id)s.", id=run_id[:12]))
        await publishable(self, run.course)
        offset = int_value("offset", self.get_query_argument("offset", "0"), 0, 2**40)
        text, next_offset = await asyncio.to_thread(read_log, run.id, offset)
        self.write_json({**run_json(run), "log": text, "offset": offset, "next_offset": next_offset})


class RollbackHandler(APIHandler):
    async def post(self, course_id: str):
        await publishable(self, course_id)
        body = self.json_body()
        if "version" not in body:
            raise web.HTTPError(400, "%s", _("\"version\" is required: the number of a published version."))
        pin = await asyncio.to_thread(do_rollback, self.ctx, course_id, body["version"], self.username)
        self.write_json({"course": course_id, "pin": pin})


class RestartIdleHandler(APIHandler):
    async def post(self, course_id: str):
        course = await publishable(self, course_id)
        body = self.json_body()
        target = body.get("version")
        if target is not None:
            target = int_value("version", target, 1, 10**9)
        self.write_json({"course": course_id, **await do_restart_idle(self.ctx, course, target, self.username)})


def handlers(prefix: str) -> list:
    course = r"api/courses/([a-z0-9-]+)/"
    return [
        (prefix + course + r"images", ImagesHandler),
        (prefix + course + r"publish", PublishHandler),
        (prefix + course + r"rollback", RollbackHandler),
        (prefix + course + r"restart-idle", RestartIdleHandler),
        (prefix + r"api/publish/([^/]{1,20})", RunHandler),
    ]
