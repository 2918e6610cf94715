"""The Images page of a course (admin/courses/<c>/images): the pinned version with its
provenance, a Publish form whose log fills while the run runs (static/publish_log.js polls
api/publish/<run>), every version with "Roll back to this version", and which student's
server runs which version with "Restart idle servers on version N".

Rules: as the API (hub_ext.service.publish_api), whose actions the forms call: PUBLISH for
the course or a 403 page with the refusal sentence; every form is XSRF-checked and asks first
(static/confirm.js) saying what happens and how to undo it. The run shown is ?run=<id> of this
course, else the newest; its log is shown whole up to PAGE_LOG bytes (the newest part), and
a running one goes on from there in the browser.
"""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext.i18n import N_, _, ngettext
from hub_ext.images import servers as image_servers
from hub_ext.images import versions
from hub_ext.service import publish_api
from hub_ext.service.db import utcnow
from hub_ext.service.pages import PageHandler

PAGE_LOG = 512 * 1024  # bytes of a run's log the page shows at once (the end of it)
# The publish steps (versions.STEPS) in words; the API keeps the ids.
STEP_WORDS = {"build": N_("build the image"), "smoke": N_("smoke test"), "push": N_("push to the registry"),
              "pin": N_("pin the version"), "prepull": N_("pull onto the servers")}


def page_log(run_id: int) -> tuple[str, int, bool]:
    """Blocking: the end of the run's log (at most PAGE_LOG bytes), the offset after it, and
    whether the beginning was left out."""
    path = publish_api.log_path(run_id)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "", 0, False
    start = max(0, size - PAGE_LOG)
    text, end = publish_api.read_log(run_id, start, PAGE_LOG)
    if start:
        text = text.split("\n", 1)[-1]  # from the first whole line
    return text, end, start > 0


class ImagesPage(PageHandler):
    @web.authenticated
    async def get(self, course_id: str):
        course = await publish_api.publishable(self, course_id)
        run = self.get_query_argument("run", "")
        await self.show(course, run_id=int(run) if run.isdigit() and len(run) < 10 else None)

    async def show(self, course, flash=None, status: int = 200, run_id: int | None = None, ref: str = ""):
        state = await asyncio.to_thread(publish_api.images_state, self.ctx.db, course.id)
        published = state.pop("_versions")
        rows = await image_servers.course_servers(self.ctx.hub, self.ctx.docker, course, published, utcnow())
        shown = next((r for r in state["runs"] if r["id"] == run_id), None) or next(iter(state["runs"]), None)
        log_text, offset, cut = await asyncio.to_thread(page_log, shown["id"]) if shown else ("", 0, False)
        others = [r for r in rows if state["pin"] and r.version != state["pin"]["number"]]
        self.set_status(status)
        self.render_page(
            "publish_images.html", course=course, state=state, run=shown, log_text=log_text, log_offset=offset,
            log_cut=cut, servers=rows, idle_minutes=image_servers.IDLE_MINUTES,
            restartable=sum(1 for r in others if r.idle), flash=flash or [], ref=ref,
            busy=any(r["state"] == versions.RUNNING for r in state["runs"]),
            steps={step: _(STEP_WORDS[step]) for step in versions.STEPS})


class PublishPage(ImagesPage):
    @web.authenticated
    async def post(self, course_id: str):
        course = await publish_api.publishable(self, course_id)
        ref = self.get_body_argument("ref", "")[:300]
        try:
            ref = publish_api.check_ref(ref)
            run = await publish_api.start_publish(self.ctx, course.id, ref, self.username)
        except web.HTTPError as e:
            return await self.show(course, flash={"kind": "danger", "text": e.get_message()}, status=e.status_code,
                                   ref=ref)
        self.redirect(f"{self.settings['prefix']}admin/courses/{course.id}/images?run={run.id}", status=303)


class RollbackPage(ImagesPage):
    @web.authenticated
    async def post(self, course_id: str):
        course = await publish_api.publishable(self, course_id)
        number = self.get_body_argument("version", "")[:12]
        try:
            pin = await asyncio.to_thread(publish_api.do_rollback, self.ctx, course.id, number, self.username)
        except versions.VersionError as e:
            return await self.show(course, flash={"kind": "danger", "text": str(e)}, status=e.status)
        await self.show(course, flash={"kind": "success", "text": _(
            "%(course)s now uses version %(number)d. Servers started from now on run it; running servers keep "
            "their version until they restart.", course=course.id, number=pin["number"])})


class RestartIdlePage(ImagesPage):
    @web.authenticated
    async def post(self, course_id: str):
        course = await publish_api.publishable(self, course_id)
        number = self.get_body_argument("version", "")[:12]
        try:
            done = await publish_api.do_restart_idle(self.ctx, course, int(number) if number.isdigit() else None,
                                                     self.username)
        except web.HTTPError as e:
            return await self.show(course, flash={"kind": "danger", "text": e.get_message()}, status=e.status_code)
        text = ngettext("%(num)d idle server was restarted on version %(version)d.",
                        "%(num)d idle servers were restarted on version %(version)d.", len(done["restarted"]),
                        version=done["version"])
        if done["left"]:
            text += " " + _("Left as they were (in use, starting, or failed to restart): %(names)s.",
                            names=", ".join(r["user"] for r in done["left"]))
        await self.show(course, flash={"kind": "success", "text": text})


def handlers(prefix: str) -> list:
    base = prefix + r"admin/courses/([a-z0-9-]+)/images"
    return [(base, ImagesPage), (base + r"/publish", PublishPage), (base + r"/rollback", RollbackPage),
            (base + r"/restart-idle", RestartIdlePage)]
