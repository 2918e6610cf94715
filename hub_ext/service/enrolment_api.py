"""A course's enrolment over the REST API: import a roster (POST api/courses/<c>/roster) and
list the course's people (GET api/courses/<c>/people).

What a roster means is hub_ext.accounts.roster, how it is applied hub_ext.accounts.enrolment;
here: who may ask, the upload's bounds, and the answers. Rules:

- Importing needs ENROL for the course (authz: the enrol scope unfiltered, or filtered to the
  course's student group, which its instructors and TAs hold).
- The people list needs ENROL for the course, or the reset scope for some of its students;
  a caller with only the latter sees only the people (and unenrolled homes) they may reset.
- An unknown course is a 404 that names the courses the caller may see; a known course the
  caller may not see is a 403 that names nobody of it.
- The upload (raw CSV bytes, or multipart/form-data field "roster") is streamed: at most
  MAX_UPLOAD bytes are kept and the rest, up to READ_LIMIT, read and dropped, so an oversized
  file is answered with a sentence naming the limit.
"""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext import contract
from hub_ext.accounts import enrolment
from hub_ext.accounts.roster import MAX_BYTES, MAX_ROWS, RosterError, parse_roster
from hub_ext.i18n import N_, _, ngettext
from hub_ext.i18n.format import size_text
from hub_ext.service.authz import Action, refusal
from hub_ext.service.base import APIHandler, BoundedUpload, Refusal

# The file plus a form's fields; base64 (the course page's "Apply" button sends the file back
# so) is 4/3 of the file. A bigger raw file still gets parse_roster's own sentence.
MAX_UPLOAD = MAX_BYTES * 4 // 3 + 64 * 1024
READ_LIMIT = 256 * 2**20
TOO_BIG = N_("The upload is %(size)s; a roster may be at most %(limit)s (%(rows)d people): split it into "
             "several files.")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class RosterUpload(BoundedUpload):
    """A roster upload: the file plus a form's fields, bounded (base.BoundedUpload)."""

    max_upload = MAX_UPLOAD
    read_limit = READ_LIMIT

    def too_big(self, size: int) -> str:
        return _(TOO_BIG, size=size_text(size), limit=size_text(MAX_BYTES), rows=MAX_ROWS)

    def form_file(self, name: str) -> bytes | None:
        """The bytes of an uploaded file field (or a plain field) `name`, if sent."""
        files = self.request.files.get(name) or []
        if files and files[0]["body"]:
            return files[0]["body"]
        values = self.request.body_arguments.get(name) or []
        return values[0] if values and values[0] else None


def flag(value: str, name: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise web.HTTPError(400, "%s", _("\"%(name)s\" must be 1 or 0 (true or false); got %(value)s.", name=name,
                                     value=repr(value[:20])))


async def may_see_people(rules, course: str) -> bool:
    return rules.may_for_course(Action.ENROL, course) or await rules.may_reset_some_in(course)


async def known_course(handler, course: str):
    """The course from the catalog; 404 naming the courses this caller may see otherwise."""
    catalog = await asyncio.to_thread(handler.ctx.catalog)
    if course in catalog.courses:
        return catalog.courses[course]
    visible = [c for c in catalog.courses if await may_see_people(handler.rules, c)]
    raise web.HTTPError(404, "%s", _("There is no course %(course)s. Courses you manage: %(courses)s.",
                                     course=repr(course[:64]), courses=", ".join(visible)) if visible
                        else _("There is no course %(course)s. You manage no course's enrolment.",
                               course=repr(course[:64])))


async def require_people(handler, course: str):
    course_obj = await known_course(handler, course)
    if not await may_see_people(handler.rules, course):
        raise web.HTTPError(403, refusal(Action.ENROL, course=course))
    return course_obj


def homes_by_user(homes, course: str) -> dict[str, list[str]]:
    """Blocking (Docker): the course's home volumes by their owner."""
    found: dict[str, list[str]] = {}
    for volume in homes.home_volumes(course=course):
        user = (volume.attrs.get("Labels") or {}).get(contract.LABEL_USER)
        if user:
            found.setdefault(user, []).append(volume.name)
    return found


async def visible_people(handler, course: str) -> dict:
    """The course's people as the caller may see them (see the module's rules)."""
    ctx = handler.ctx
    result = await enrolment.people_of(ctx.hub, ctx.db, course, lambda: homes_by_user(ctx.homes, course))
    if not handler.rules.may_for_course(Action.ENROL, course):
        may = handler.rules.may
        result["people"] = [p for p in result["people"] if await may(Action.RESET, p["username"], course)]
        result["homes_not_enrolled"] = [h for h in result["homes_not_enrolled"]
                                        if await may(Action.RESET, h["username"], course)]
    return result


async def run_import(handler, course: str, data: bytes, dry_run: bool, sync: bool) -> dict:
    """Parse and apply (or plan) a roster as the caller; Refusal 400 with every problem."""
    try:
        roster = await asyncio.to_thread(parse_roster, data)
        return await enrolment.import_roster(handler.ctx.hub, handler.ctx.db, course, roster, handler.username,
                                             dry_run=dry_run, sync=sync)
    except RosterError as e:
        raise Refusal(400, ngettext("The roster has %(num)d problem; nothing was changed. Fix the line listed "
                                    "and upload it again.",
                                    "The roster has %(num)d problems; nothing was changed. Fix every line listed "
                                    "and upload it again.", len(e.problems)),
                      problems=e.problems)


@web.stream_request_body
class RosterHandler(RosterUpload, APIHandler):
    async def post(self, course: str):
        body = self.upload_body()
        is_form = self.parse_form()
        await self.identify()
        await known_course(self, course)
        self.rules.require_for_course(Action.ENROL, course)
        data = self.form_file("roster") if is_form else body
        if not data:
            raise web.HTTPError(400, "%s", _("No roster was sent: send the CSV file as the request body, or as the "
                                             "form field \"roster\" of a multipart/form-data upload."))
        dry_run = flag(self.get_query_argument("dry_run", ""), "dry_run")
        sync = flag(self.get_query_argument("sync", ""), "sync")
        self.write_json(await run_import(self, course, data, dry_run, sync))


class PeopleHandler(APIHandler):
    async def get(self, course: str):
        await require_people(self, course)
        self.write_json(await visible_people(self, course))


def handlers(prefix: str) -> list:
    return [
        (prefix + r"api/courses/([a-z0-9-]+)/roster", RosterHandler),
        (prefix + r"api/courses/([a-z0-9-]+)/people", PeopleHandler),
    ]
