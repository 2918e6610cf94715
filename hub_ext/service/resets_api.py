"""Resets, backups and the audit log over the REST API.

What a reset does is hub_ext.homes.recipe; here: who may ask for one, and the answers.
Every attempt is written to the audit log, refused ones too.
"""

from __future__ import annotations

import asyncio

from tornado import web

from hub_ext.i18n import _, ngettext
from hub_ext.service.authz import RESET_SCOPE, Action, refusal
from hub_ext.service.base import APIHandler, bool_field, int_value, str_field
from hub_ext.service.db import AuditEntry


def backup_dict(b) -> dict:
    return {"volume": b.volume, "user": b.user, "course": b.course, "home_volume": b.home_volume,
            "created": b.created.isoformat(), "size_bytes": b.size_bytes}


async def authorize_reset(handler, targets: list[str], course_id: str) -> list[str]:
    """The targets, if the caller may reset every one of them in this course; else 403 (and
    an audit entry for the refusal). Unknown users are 404."""
    for target in targets:
        if not await handler.rules.may(Action.RESET, target, course_id):
            await asyncio.to_thread(handler.ctx.audit, handler.username, "reset", target, course_id, "refused",
                                    "missing scope")
            raise web.HTTPError(403, refusal(Action.RESET, target, course_id))
        if await handler.ctx.hub.user(target) is None:
            raise web.HTTPError(404, "%s", _("There is no user %(user)s.", user=target[:80]))
    return targets


async def partition_reset_targets(handler, targets: list[str], course_id: str) -> tuple[list[str], list[dict]]:
    """For a course-wide reset: the targets the caller may reset, and a result for each of
    the others saying why not (each refusal audited). 403 only if every target is refused."""
    allowed, refused = [], []
    for target in targets:
        if await handler.rules.may(Action.RESET, target, course_id):
            allowed.append(target)
        else:
            await asyncio.to_thread(handler.ctx.audit, handler.username, "reset", target, course_id, "refused",
                                    "missing scope")
            refused.append({"user": target, "result": "refused", "message": refusal(Action.RESET, target, course_id)})
    if refused and not allowed:
        raise web.HTTPError(403, "%s", ngettext(
            "You may not reset the %(num)d environment of %(course)s: that needs the scope %(scope)s for its "
            "course group. Nothing was changed.",
            "You may not reset any of the %(num)d environments of %(course)s: that needs the scope %(scope)s for "
            "their course group. Nothing was changed.", len(refused), course=course_id, scope=RESET_SCOPE))
    return allowed, refused


def raise_if_failed(result: dict) -> dict:
    """A failed single reset, restore or deletion is a 500 with the recipe's own sentence."""
    if result["result"] != "ok":
        raise web.HTTPError(500, "%s", result["message"])
    return result


class ResetsHandler(APIHandler):
    async def post(self):
        body = self.json_body()
        course_id = str_field(body, "course", required=True)
        catalog = await asyncio.to_thread(self.ctx.catalog)
        if course_id not in catalog.courses:
            raise web.HTTPError(400, "%s", _("There is no course %(course)s. Courses: %(courses)s.",
                                             course=repr(course_id)[:80], courses=", ".join(catalog.courses)))
        if bool_field(body, "all"):
            if str_field(body, "confirm") != course_id:
                raise web.HTTPError(400, "%s", _("Nothing was reset: a course-wide reset needs \"confirm\": "
                                                 "\"%(course)s\".", course=course_id))
            targets = sorted(await asyncio.to_thread(self.ctx.homes.users_with_homes, course_id))
        else:
            user = body.get("user", self.username)
            if not isinstance(user, str) or not user:
                raise web.HTTPError(400, "%s", _("\"user\" must be a user name."))
            targets = [user]
        unknown = set(body) - {"course", "user", "all", "confirm"}
        if unknown:
            raise web.HTTPError(400, "%s", _("Unknown fields: %(fields)s; allowed: course, user, all, confirm.",
                                             fields=", ".join(sorted(unknown))[:200]))

        if body.get("all"):  # reset those the actor may; list the others with why
            allowed, refused = await partition_reset_targets(self, targets, course_id)
        else:
            allowed, refused = await authorize_reset(self, targets, course_id), []
        results = await self.ctx.homes.reset_many(self.username, allowed, course_id)
        if not body.get("all"):  # one student: a failure is an error; course-wide, one result each
            raise_if_failed(results[0])
        self.write_json({"course": course_id, "results": results + refused})


class BackupsHandler(APIHandler):
    """Backups the caller may see: their own, and those of the students they may reset."""

    async def get(self):
        user = self.get_argument("user", None)
        course = self.get_argument("course", None)
        if not self.rules.manages_students():
            if user not in (None, self.username):
                await self.rules.require(Action.SEE_BACKUP, user, course)
            user = self.username  # students see their own
        backups = await asyncio.to_thread(self.ctx.homes.backups, user=user, course=course)
        visible = await self.rules.only_allowed(Action.SEE_BACKUP, backups, lambda b: (b.user, b.course))
        self.write_json({"backups": [backup_dict(b) for b in visible]})


class BackupHandler(APIHandler):
    async def _backup(self, name: str):
        self.rules.require_manager("Restoring or deleting backups")
        backup = await asyncio.to_thread(self.ctx.homes.find_backup, name)
        if backup is None:
            raise web.HTTPError(404, "%s", _("There is no backup %(name)s.", name=name[:200]))
        await self.rules.require(Action.MANAGE_BACKUP, backup.user, backup.course)
        return backup

    async def post(self, name: str, action: str):
        if action != "restore":
            raise web.HTTPError(404, "%s", _("There is no action %(action)s; allowed: restore.", action=action[:40]))
        backup = await self._backup(name)
        self.write_json(raise_if_failed(await self.ctx.homes.restore(self.username, backup)))

    async def delete(self, name: str, action: str | None = None):
        backup = await self._backup(name)
        if self.get_argument("confirm", "") != name:
            raise web.HTTPError(400, "%s", _("Nothing was deleted: deleting a backup cannot be undone, so repeat "
                                             "its name as ?confirm=%(name)s.", name=name[:200]))
        self.write_json(raise_if_failed(await self.ctx.homes.delete_backup(self.username, backup)))


class AuditHandler(APIHandler):
    async def get(self):
        self.rules.require_now(Action.READ_AUDIT)
        limit = int_value("limit", self.get_argument("limit", "200"), 1, 1000)

        def newest() -> list[dict]:  # the database, in a thread
            with self.ctx.db() as s:
                return [r.to_dict() for r in s.query(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).all()]

        self.write_json({"entries": await asyncio.to_thread(newest)})


def handlers(prefix: str) -> list:
    return [
        (prefix + r"api/resets", ResetsHandler),
        (prefix + r"api/backups", BackupsHandler),
        (prefix + r"api/backups/([^/]+)(?:/(\w+))?", BackupHandler),
        (prefix + r"api/audit", AuditHandler),
    ]

